//! The ECS service: one task per instance (distinct instances), on the capacity
//! provider's strategy, behind the target group, rolled out with the deployment circuit
//! breaker. Its task definition is in `task_definition`; the calls that start a
//! deployment (CreateService, UpdateService) and the waits for a rollout and for
//! draining are in `rollout`.

use std::time::Duration;

use aws_sdk_ecs::types::{LoadBalancer, ServiceField};

use super::task_definition::find_task_spec;
use super::{TaskSpec, tag};
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc};
use crate::resources::tags::from_sdk;
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, elb, tag_diff};

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

/// What `up` can change on a service. All but the tags are made by one UpdateService,
/// which starts a deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new task definition revision; `from` is what the service runs (`None`: a task
    /// definition without the container). Boxed: the specs are large.
    TaskDefinition {
        from: Option<Box<TaskSpec>>,
        to: Box<TaskSpec>,
    },
    CapacityProvider {
        from: String,
        to: String,
    },
    /// The target group: the ARN the service has, the name of the one it gets.
    LoadBalancer {
        from: Option<String>,
        to: String,
    },
    /// The deployment circuit breaker (with rollback) is off.
    CircuitBreaker,
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::TaskDefinition { from, to } => {
                // Only what differs, so a new image shows as just that.
                let (before, after) = to.differing(from.as_deref());
                Field::new("task_definition", before, after)
            }
            Change::CapacityProvider { from, to } => {
                Field::new("capacity_provider", Some(from), to)
            }
            Change::LoadBalancer { from, to } => Field::new("load_balancer", from.as_ref(), to),
            Change::CircuitBreaker => Field::new("circuit_breaker", Some(false), true),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Resource for Service {
    type Observed = ServiceObserved;
    type Change = Change;
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
        let Some(s) = find_service(aws, &self.cluster, &self.name).await? else {
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
            tags: from_sdk(s.tags()),
        }))
    }

    fn tags(o: &ServiceObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ServiceObserved) -> Vec<Change> {
        let mut d = Vec::new();
        if o.task.as_ref() != Some(&self.task) {
            d.push(Change::TaskDefinition {
                from: o.task.clone().map(Box::new),
                to: Box::new(self.task.clone()),
            });
        }
        if let Some(from) = self.other_capacity_provider(o) {
            d.push(Change::CapacityProvider {
                from: from.to_string(),
                to: self.capacity_provider.clone(),
            });
        }
        if needs_load_balancer_update(o) {
            d.push(Change::LoadBalancer {
                from: o.target_group_arn.clone(),
                to: self.target_group.clone(),
            });
        }
        if circuit_breaker_off(o) {
            d.push(Change::CircuitBreaker);
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ServiceObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let tg = elb::target_group_arn(aws, &self.target_group).await?;
        let load_balancer = LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(&self.container)
            .container_port(self.task.port)
            .build();
        let Some(o) = observed else {
            let task_definition = self.register(aws).await?;
            let started = self.create(aws, &task_definition, &load_balancer).await?;
            return self.settled(aws, &started).await;
        };
        let (mut register, mut update, mut retag) = (false, false, false);
        for change in changes {
            match change {
                Change::TaskDefinition { .. } => (register, update) = (true, true),
                Change::CapacityProvider { .. }
                | Change::LoadBalancer { .. }
                | Change::CircuitBreaker => update = true,
                Change::Tags(_) => retag = true,
            }
        }
        let mut started = None;
        if update {
            let task_definition = if register {
                self.register(aws).await?
            } else {
                o.task_definition.clone()
            };
            started = Some(self.update(aws, task_definition, load_balancer).await?);
        }
        if retag {
            tag(aws, &o.arn, &self.tags).await?;
        }
        if let Some(started) = started {
            self.settled(aws, &started).await?;
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
        self.wait_drained(aws, aws.timeouts.delete()).await?;
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

/// The ACTIVE service `name` in `cluster`; `None` when there is none (a deleted one
/// lingers as DRAINING, then INACTIVE).
pub(super) async fn find_service(
    aws: &Aws,
    cluster: &str,
    name: &str,
) -> Result<Option<aws_sdk_ecs::types::Service>, AwsError> {
    let out = aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
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

impl Service {
    /// The provider of a strategy that names another one. Only that is drift: moto keeps
    /// no strategy and reports every service as launch type EC2, which would make every
    /// `up` update the service. (A service placed by launch type on AWS is not switched.)
    fn other_capacity_provider<'a>(&self, o: &'a ServiceObserved) -> Option<&'a str> {
        o.capacity_provider
            .as_deref()
            .filter(|p| *p != self.capacity_provider)
    }
}

/// Whether the service is behind no target group, or not the wanted one.
fn needs_load_balancer_update(o: &ServiceObserved) -> bool {
    o.target_group_arn.is_none() || o.target_group_arn != o.wanted_target_group_arn
}

/// Whether AWS says the circuit breaker is off (moto, which never answers with a
/// deployment configuration, says nothing).
fn circuit_breaker_off(o: &ServiceObserved) -> bool {
    o.circuit_breaker == Some(false)
}

#[cfg(test)]
#[path = "service_tests.rs"]
pub(super) mod tests;
