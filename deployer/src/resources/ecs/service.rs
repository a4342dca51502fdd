//! The ECS service: one task per instance (distinct instances), on the capacity
//! provider's strategy, behind the target group, rolled out with the deployment circuit
//! breaker. Its task definition is in `task_definition`, the wait for a rollout in
//! `rollout`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, LoadBalancer, PlacementConstraint,
    PlacementConstraintType, PropagateTags, ServiceField,
};

use super::task_definition::find_task_spec;
use super::{
    SERVICE_LINKED_ROLE_PROPAGATION, TaskSpec, sdk_tags, strategy, tag, tags_of,
    with_service_linked_role,
};
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::{Field, Id, Kind, Resource, Tags, elb, tag_field};
use crate::wait::{self, Poll};

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub cluster: String,
    pub family: String,
    pub container: String,
    pub task: TaskSpec,
    pub region: String,
    pub capacity_provider: String,
    pub target_group: String,
    pub listener: String,
    pub execution_role: String,
    pub task_role: String,
    /// Tasks at creation; afterwards the desired count belongs to service scaling.
    pub initial_count: i32,
    /// How long `up` waits for the deployment to finish (0: not at all).
    pub wait: Duration,
    /// The image push of this run, when there is one: it must finish first.
    pub image_push: Option<Id>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObserved {
    pub arn: String,
    pub task_definition: String,
    pub task: Option<TaskSpec>,
    pub capacity_provider: Option<String>,
    pub target_group_arn: Option<String>,
    pub wanted_target_group_arn: Option<String>,
    /// `None` when the answer has no deployment configuration at all.
    pub circuit_breaker: Option<bool>,
    pub desired: i32,
    pub running: i32,
    pub rollout: String,
    pub tags: Tags,
}

impl Resource for Service {
    type Observed = ServiceObserved;
    type Change = Field;
    const KIND: Kind = Kind::EcsService;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        let mut deps = vec![
            Id::new(Kind::EcsCluster, &self.cluster),
            Id::new(Kind::CapacityProvider, &self.capacity_provider),
            // ECS refuses a target group that is not yet attached to a load balancer.
            Id::new(Kind::Listener, &self.listener),
            Id::new(Kind::TargetGroup, &self.target_group),
            Id::new(Kind::IamRole, &self.execution_role),
            Id::new(Kind::IamRole, &self.task_role),
            Id::new(Kind::LogGroup, &self.task.log_group),
        ];
        deps.extend(self.image_push.clone());
        deps
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ServiceObserved>, AwsError> {
        let Some(s) = self.describe(aws).await? else {
            return Ok(None);
        };
        let task_definition = s.task_definition().unwrap_or_default().to_string();
        let task = if task_definition.is_empty() {
            None
        } else {
            find_task_spec(aws, &task_definition, &self.container).await?
        };
        let primary = s
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        Ok(Some(ServiceObserved {
            arn: s.service_arn().unwrap_or_default().to_string(),
            task_definition,
            task,
            capacity_provider: s
                .capacity_provider_strategy()
                .first()
                .map(|c| c.capacity_provider().to_string()),
            target_group_arn: s
                .load_balancers()
                .first()
                .and_then(|l| l.target_group_arn())
                .map(str::to_string),
            wanted_target_group_arn: elb::find_target_group(aws, &self.target_group)
                .await?
                .and_then(|t| t.target_group_arn),
            // AWS always answers with the deployment configuration; moto never does.
            circuit_breaker: s.deployment_configuration().map(|d| {
                d.deployment_circuit_breaker()
                    .is_some_and(|c| c.enable() && c.rollback())
            }),
            desired: s.desired_count(),
            running: s.running_count(),
            rollout: primary
                .and_then(|d| d.rollout_state())
                .map_or("", |r| r.as_str())
                .to_string(),
            tags: tags_of(s.tags()),
        }))
    }

    fn tags(o: &ServiceObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ServiceObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if o.task.as_ref() != Some(&self.task) {
            // Only what differs, so a new image shows as just that.
            let have = o
                .task
                .as_ref()
                .map(|t| serde_json::to_value(t).unwrap_or_default());
            let want = serde_json::to_value(&self.task).unwrap_or_default();
            let changed: BTreeMap<String, serde_json::Value> = want
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| have.as_ref().map(|h| &h[k.as_str()]) != Some(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let before: Option<BTreeMap<String, serde_json::Value>> = have.map(|h| {
                changed
                    .keys()
                    .map(|k| (k.clone(), h[k.as_str()].clone()))
                    .collect()
            });
            d.push(Field::new("task_definition", before, changed));
        }
        // Only a strategy naming another provider is drift: moto keeps no strategy and
        // reports every service as launch type EC2, which would make every `up` update
        // the service. (A service placed by launch type on AWS is not switched.)
        if o.capacity_provider.is_some()
            && o.capacity_provider.as_deref() != Some(self.capacity_provider.as_str())
        {
            d.push(Field::new(
                "capacity_provider",
                o.capacity_provider.as_ref(),
                &self.capacity_provider,
            ));
        }
        if o.target_group_arn.is_none() || o.target_group_arn != o.wanted_target_group_arn {
            d.push(Field::new(
                "load_balancer",
                o.target_group_arn.as_ref(),
                &self.target_group,
            ));
        }
        if o.circuit_breaker == Some(false) {
            d.push(Field::new("circuit_breaker", Some(false), true));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ServiceObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        let tg = elb::target_group_arn(aws, &self.target_group).await?;
        let load_balancer = LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(&self.container)
            .container_port(self.task.port)
            .build();
        let strategy = strategy(&self.capacity_provider);
        let Some(o) = observed else {
            let task_definition = self.register(aws).await?;
            with_service_linked_role(
                "ecs:CreateService",
                SERVICE_LINKED_ROLE_PROPAGATION,
                || async {
                    aws.ecs
                        .create_service()
                        .cluster(&self.cluster)
                        .service_name(&self.name)
                        .task_definition(&task_definition)
                        .desired_count(self.initial_count)
                        .capacity_provider_strategy(strategy.clone())
                        .load_balancers(load_balancer.clone())
                        .health_check_grace_period_seconds(60)
                        .deployment_configuration(self.deployment_configuration())
                        .placement_constraints(
                            PlacementConstraint::builder()
                                .r#type(PlacementConstraintType::DistinctInstance)
                                .build(),
                        )
                        .enable_ecs_managed_tags(true)
                        .propagate_tags(PropagateTags::Service)
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .send()
                        .await
                        .map_err(error("ecs:CreateService"))
                },
            )
            .await?;
            return self.settled(aws).await;
        };
        let rolls = [
            "task_definition",
            "capacity_provider",
            "load_balancer",
            "circuit_breaker",
        ];
        if rolls.iter().any(|f| changed(f)) {
            let task_definition = if changed("task_definition") {
                self.register(aws).await?
            } else {
                o.task_definition.clone()
            };
            aws.ecs
                .update_service()
                .cluster(&self.cluster)
                .service(&self.name)
                .task_definition(task_definition)
                .capacity_provider_strategy(strategy)
                .load_balancers(load_balancer)
                .deployment_configuration(self.deployment_configuration())
                .send()
                .await
                .map_err(error("ecs:UpdateService"))?;
        }
        if changed("tags") {
            tag(aws, &o.arn, &self.tags).await?;
        }
        if rolls.iter().any(|f| changed(f)) {
            self.settled(aws).await?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &ServiceObserved) -> Result<(), AwsError> {
        aws.ecs
            .update_service()
            .cluster(&self.cluster)
            .service(&self.name)
            .desired_count(0)
            .send()
            .await
            .found(Svc::Ecs, "ecs:UpdateService")?;
        aws.ecs
            .delete_service()
            .cluster(&self.cluster)
            .service(&self.name)
            .force(true)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DeleteService")?;
        wait::until(
            "ecs:DeleteService",
            Duration::from_secs(600),
            Duration::from_secs(5),
            || async {
                let draining = aws
                    .ecs
                    .describe_services()
                    .cluster(&self.cluster)
                    .services(&self.name)
                    .send()
                    .await
                    .found(Svc::Ecs, "ecs:DescribeServices")?
                    .and_then(|o| {
                        o.services()
                            .iter()
                            .find(|s| s.status() == Some("DRAINING"))
                            .map(|s| s.running_count())
                    });
                Ok(match draining {
                    None => Poll::Ready(()),
                    Some(n) => Poll::Pending(format!("service draining, {n} task(s) running")),
                })
            },
        )
        .await?;
        // Every revision of the family goes with the service.
        self.deregister_revisions(aws).await?;
        Ok(())
    }

    fn detail(o: &ServiceObserved) -> String {
        let revision = o.task_definition.rsplit('/').next().unwrap_or_default();
        let digest = o
            .task
            .as_ref()
            .and_then(|t| t.image.split('@').nth(1))
            .unwrap_or("no digest");
        format!(
            "{} of {} task(s) running, deployment {}, {revision}, {digest}",
            o.running,
            o.desired,
            if o.rollout.is_empty() {
                "?"
            } else {
                &o.rollout
            }
        )
    }
}

impl Service {
    pub(super) async fn describe(
        &self,
        aws: &Aws,
    ) -> Result<Option<aws_sdk_ecs::types::Service>, AwsError> {
        let out = aws
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.name)
            .include(ServiceField::Tags)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DescribeServices")?;
        Ok(out.and_then(|o| {
            o.services()
                .iter()
                .find(|s| s.status() == Some("ACTIVE"))
                .cloned()
        }))
    }

    fn deployment_configuration(&self) -> DeploymentConfiguration {
        DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            // One task per instance: a new task needs a new instance, then the old goes.
            // At full scale that instance is the group's spare (`autoscaling::headroom`).
            .maximum_percent(200)
            .minimum_healthy_percent(100)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            image: "r/s-predictor@sha256:aa".into(),
            cpu: 4096,
            memory_mb: 15000,
            port: 8080,
            environment: [("PORT".to_string(), "8080".to_string())].into(),
            execution_role_arn: "arn:exec".into(),
            task_role_arn: "arn:task".into(),
            log_group: "/ecs/s-predictor".into(),
        }
    }

    fn service() -> Service {
        Service {
            name: "s-predictor".into(),
            cluster: "s-cluster".into(),
            family: "s-predictor".into(),
            container: "predictor".into(),
            task: spec(),
            region: "us-east-1".into(),
            capacity_provider: "s-capacity".into(),
            target_group: "s-tg".into(),
            listener: "s-alb:80".into(),
            execution_role: "s-ecs-task-execution".into(),
            task_role: "s-ecs-task".into(),
            initial_count: 1,
            wait: Duration::ZERO,
            image_push: None,
            tags: Tags::new(),
        }
    }

    fn in_sync() -> ServiceObserved {
        ServiceObserved {
            arn: "arn:svc".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/s-predictor:3".into(),
            task: Some(spec()),
            capacity_provider: Some("s-capacity".into()),
            target_group_arn: Some("arn:tg".into()),
            wanted_target_group_arn: Some("arn:tg".into()),
            circuit_breaker: Some(true),
            desired: 2,
            running: 2,
            rollout: "COMPLETED".into(),
            tags: Tags::new(),
        }
    }

    #[test]
    fn in_sync_service_has_no_diff_whatever_its_desired_count() {
        assert_eq!(service().diff(&in_sync()), []);
    }

    #[test]
    fn a_new_digest_shows_only_the_image_change() {
        let mut s = service();
        s.task.image = "r/s-predictor@sha256:bb".into();
        let d = s.diff(&in_sync());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "task_definition");
        assert_eq!(
            d[0].to,
            serde_json::json!({"image": "r/s-predictor@sha256:bb"})
        );
        assert_eq!(
            d[0].from,
            Some(serde_json::json!({"image": "r/s-predictor@sha256:aa"}))
        );
    }

    #[test]
    fn strategy_load_balancer_and_breaker_drift_are_named() {
        let mut o = in_sync();
        o.capacity_provider = Some("other".into());
        o.target_group_arn = Some("arn:other".into());
        o.circuit_breaker = Some(false);
        let names: Vec<&str> = service().diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["capacity_provider", "load_balancer", "circuit_breaker"]
        );
        // No strategy at all (the emulator's answer): no claim of drift.
        o.capacity_provider = None;
        assert_eq!(service().diff(&o)[0].name, "load_balancer");
    }
}
