//! Application Auto Scaling of the service's desired count: a scalable target (tasks
//! min..max) and a target tracking policy on the service's average CPU. It carries no
//! tags of its own; the scaled service's decide ownership.

use std::fmt;

use aws_sdk_applicationautoscaling::types::{
    MetricType as AppMetric, PolicyType, PredefinedMetricSpecification as AppMetricSpec,
    ScalableDimension, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_ecs::types::ServiceField;

use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::tags::from_sdk;
use crate::resources::{Field, Id, Kind, Resource, Tags};

/// Application Auto Scaling of the service's desired count on its average CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceScaling {
    pub name: String,
    pub cluster: String,
    pub service: String,
    pub min: i32,
    pub max: i32,
    pub cpu_target: f64,
    pub scale_in_cooldown_s: i32,
    pub scale_out_cooldown_s: i32,
    /// Application Auto Scaling targets carry no tags of their own here: the scaled
    /// service's tags decide ownership.
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScalingObserved {
    pub min: i32,
    pub max: i32,
    pub cpu_target: Option<f64>,
    pub scale_in_cooldown_s: Option<i32>,
    pub tags: Tags,
}

/// The target tracking policy's settings that `diff` compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetTracking {
    /// The average CPU, in percent, the policy keeps the service at.
    pub cpu_target: f64,
    pub scale_in_cooldown_s: Option<i32>,
}

impl fmt::Display for TargetTracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPU {} %", self.cpu_target)?;
        match self.scale_in_cooldown_s {
            Some(cooldown) => write!(f, ", scale-in cooldown {cooldown} s"),
            None => Ok(()),
        }
    }
}

/// What `up` can change on the service's scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The range of the service's task count, `(min, max)`.
    Tasks { from: (i32, i32), to: (i32, i32) },
    /// The CPU target tracking policy (`from`: `None` when there is none).
    Policy {
        from: Option<TargetTracking>,
        to: TargetTracking,
    },
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        let range = |(min, max): (i32, i32)| format!("{min}..{max}");
        match self {
            Change::Tasks { from, to } => Field::new("tasks", Some(range(*from)), range(*to)),
            Change::Policy { from, to } => Field::new(
                "policy",
                Some(from.map_or("none".to_string(), |p| p.to_string())),
                to.to_string(),
            ),
        }
    }
}

impl Resource for ServiceScaling {
    type Observed = ScalingObserved;
    type Change = Change;
    const KIND: Kind = Kind::ServiceScaling;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::EcsService, &self.service)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ScalingObserved>, AwsError> {
        let targets = aws
            .appscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(self.resource_id())
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(error("application-autoscaling:DescribeScalableTargets"))?;
        let Some(t) = targets.scalable_targets().first() else {
            return Ok(None);
        };
        let policies = aws
            .appscaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(self.resource_id())
            .policy_names(self.policy_name())
            .send()
            .await
            .map_err(error("application-autoscaling:DescribeScalingPolicies"))?;
        let tt = policies
            .scaling_policies()
            .first()
            .and_then(|p| p.target_tracking_scaling_policy_configuration());
        let tags = aws
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .include(ServiceField::Tags)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DescribeServices")?
            .and_then(|o| o.services().first().map(|s| from_sdk(s.tags())))
            .unwrap_or_default();
        Ok(Some(ScalingObserved {
            min: t.min_capacity(),
            max: t.max_capacity(),
            cpu_target: tt.map(|c| c.target_value()),
            scale_in_cooldown_s: tt.and_then(|c| c.scale_in_cooldown()),
            tags,
        }))
    }

    fn tags(o: &ScalingObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ScalingObserved) -> Vec<Change> {
        let mut d = Vec::new();
        if (o.min, o.max) != (self.min, self.max) {
            d.push(Change::Tasks {
                from: (o.min, o.max),
                to: (self.min, self.max),
            });
        }
        let policy = TargetTracking {
            cpu_target: self.cpu_target,
            scale_in_cooldown_s: Some(self.scale_in_cooldown_s),
        };
        let have = o.cpu_target.map(|cpu_target| TargetTracking {
            cpu_target,
            scale_in_cooldown_s: o.scale_in_cooldown_s,
        });
        if have != Some(policy) {
            d.push(Change::Policy {
                from: have,
                to: policy,
            });
        }
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ScalingObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        // A new scaling has both.
        let (mut target, mut policy) = (observed.is_none(), observed.is_none());
        for change in changes {
            match change {
                Change::Tasks { .. } => target = true,
                Change::Policy { .. } => policy = true,
            }
        }
        if target {
            aws.appscaling
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(self.resource_id())
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(self.min)
                .max_capacity(self.max)
                .send()
                .await
                .map_err(error("application-autoscaling:RegisterScalableTarget"))?;
        }
        if policy {
            let metric = AppMetricSpec::builder()
                .predefined_metric_type(AppMetric::EcsServiceAverageCpuUtilization)
                .build()
                .map_err(|e| {
                    AwsError::new("application-autoscaling:PutScalingPolicy", e.to_string())
                })?;
            let config = TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(self.cpu_target)
                .predefined_metric_specification(metric)
                .scale_in_cooldown(self.scale_in_cooldown_s)
                .scale_out_cooldown(self.scale_out_cooldown_s)
                .build()
                .map_err(|e| {
                    AwsError::new("application-autoscaling:PutScalingPolicy", e.to_string())
                })?;
            aws.appscaling
                .put_scaling_policy()
                .policy_name(self.policy_name())
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(self.resource_id())
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(config)
                .send()
                .await
                .map_err(error("application-autoscaling:PutScalingPolicy"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &ScalingObserved) -> Result<(), AwsError> {
        // Deregistering the target deletes its policies and their alarms.
        aws.appscaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(self.resource_id())
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .found(
                Svc::AppScaling,
                "application-autoscaling:DeregisterScalableTarget",
            )?;
        Ok(())
    }

    fn detail(o: &ScalingObserved) -> String {
        format!(
            "tasks {}..{} at CPU {} %",
            o.min,
            o.max,
            o.cpu_target.map_or("?".into(), |t| format!("{t:.0}"))
        )
    }
}

impl ServiceScaling {
    pub fn resource_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.service)
    }

    fn policy_name(&self) -> String {
        format!("{}-cpu", self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    #[test]
    fn service_scaling_drift_is_named() {
        let s = ServiceScaling {
            name: "s-predictor".into(),
            cluster: "s-cluster".into(),
            service: "s-predictor".into(),
            min: 1,
            max: 5,
            cpu_target: 70.0,
            scale_in_cooldown_s: 60,
            scale_out_cooldown_s: 60,
            tags: Tags::new(),
        };
        assert_eq!(s.resource_id(), "service/s-cluster/s-predictor");
        let mut o = ScalingObserved {
            min: 1,
            max: 5,
            cpu_target: Some(70.0),
            scale_in_cooldown_s: Some(60),
            tags: Tags::new(),
        };
        assert_eq!(s.diff(&o), []);
        o.max = 3;
        o.cpu_target = Some(50.0);
        let names: Vec<&str> = s.diff(&o).iter().map(|c| c.name()).collect();
        assert_eq!(names, ["tasks", "policy"]);
        let texts: Vec<String> = s.diff(&o).iter().map(|c| c.field().to_string()).collect();
        assert_eq!(
            texts,
            [
                "tasks: 1..3 → 1..5",
                "policy: CPU 50 %, scale-in cooldown 60 s → CPU 70 %, scale-in cooldown 60 s"
            ]
        );
        // A policy without a cooldown, and none at all.
        o = ScalingObserved {
            max: 5,
            cpu_target: Some(70.0),
            scale_in_cooldown_s: None,
            ..o
        };
        assert_eq!(
            s.diff(&o)[0].field().to_string(),
            "policy: CPU 70 % → CPU 70 %, scale-in cooldown 60 s"
        );
        o.cpu_target = None;
        assert!(matches!(
            s.diff(&o)[..],
            [Change::Policy { from: None, .. }]
        ));
        assert_eq!(
            s.diff(&o)[0].field().to_string(),
            "policy: none → CPU 70 %, scale-in cooldown 60 s"
        );
    }
}
