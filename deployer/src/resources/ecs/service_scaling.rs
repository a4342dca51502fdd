//! Application Auto Scaling of the service's desired count: a scalable target (tasks
//! min..max) and a target tracking policy on the service's average CPU. It carries no
//! tags of its own; the scaled service's decide ownership.

use aws_sdk_applicationautoscaling::types::{
    MetricType as AppMetric, PolicyType, PredefinedMetricSpecification as AppMetricSpec,
    ScalableDimension, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_ecs::types::ServiceField;

use super::tags_of;
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
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

impl Resource for ServiceScaling {
    type Observed = ScalingObserved;
    type Change = Field;
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
            .and_then(|o| o.services().first().map(|s| tags_of(s.tags())))
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

    fn diff(&self, o: &ScalingObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if (o.min, o.max) != (self.min, self.max) {
            d.push(Field::new(
                "tasks",
                Some(format!("{}..{}", o.min, o.max)),
                format!("{}..{}", self.min, self.max),
            ));
        }
        if o.cpu_target != Some(self.cpu_target)
            || o.scale_in_cooldown_s != Some(self.scale_in_cooldown_s)
        {
            d.push(Field::new(
                "policy",
                Some(match (o.cpu_target, o.scale_in_cooldown_s) {
                    (Some(cpu), Some(cooldown)) => {
                        format!("CPU {cpu} %, scale-in cooldown {cooldown} s")
                    }
                    (Some(cpu), None) => format!("CPU {cpu} %"),
                    (None, _) => "none".to_string(),
                }),
                format!(
                    "CPU {} %, scale-in cooldown {} s",
                    self.cpu_target, self.scale_in_cooldown_s
                ),
            ));
        }
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ScalingObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        if changed("tasks") {
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
        if changed("policy") {
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
        let names: Vec<&str> = s.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(names, ["tasks", "policy"]);
    }
}
