//! A service's deployments: the calls that start one (CreateService, UpdateService) with
//! the placement and deployment configuration they share (one task per instance, the
//! circuit breaker), and the wait for it to finish: its deployments as DescribeServices
//! reports them, whether the one this `up` started has all its tasks running or was rolled
//! back, and, when it failed, why its tasks stopped. Also the wait for a deleted service
//! to drain.

use std::time::Duration;

use aws_sdk_ecs::primitives::DateTime;
use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DesiredStatus, LoadBalancer,
    PlacementConstraint, PlacementConstraintType, PropagateTags,
};

use super::service::find_service;
use super::{SERVICE_LINKED_ROLE_PROPAGATION, Service, strategy, with_service_linked_role};
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::tags::to_sdk;
use crate::wait::{self, Poll};

/// One deployment of a service, as DescribeServices reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub status: String,
    /// The ARN of the revision it deploys.
    pub task_definition: Option<String>,
    pub created_at: Option<DateTime>,
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub failed_tasks: i32,
}

/// The deployment an `up` started: the revision it deployed and, from ECS's answer to
/// CreateService or UpdateService, when ECS created the deployment (`None`: not said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub task_definition: String,
    pub at: Option<DateTime>,
}

impl Started {
    /// Whether `d` is this `up`'s concern: its own deployment or one ECS made after it
    /// (the rollback). A deployment an earlier `up` left FAILED, still listed while it
    /// drains, is not: it must not fail this one.
    fn covers(&self, d: &Rollout) -> bool {
        match (self.at, d.created_at) {
            (Some(at), Some(created)) => created >= at,
            _ => d.task_definition.as_deref() == Some(self.task_definition.as_str()),
        }
    }
}

/// A task definition's `family:revision`, from its ARN.
fn revision(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Whether the deployment `started` has finished, from the service's deployments and the
/// latest service event (which says why tasks cannot be placed or fail health checks).
pub fn rollout_progress(
    deployments: &[Rollout],
    latest_event: Option<&str>,
    started: &Started,
) -> Poll<()> {
    let Some(primary) = deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Poll::Pending("no primary deployment yet".into());
    };
    let event = latest_event.map(|e| format!("; {e}")).unwrap_or_default();
    // A failed deployment stays PRIMARY only without rollback. With it, ECS makes a new
    // PRIMARY of the last completed revision (IN_PROGRESS, then COMPLETED) and keeps the
    // failed one ACTIVE while it drains: a wait on the PRIMARY alone would report the
    // rollback's completion as this deployment's success.
    if let Some(failed) = deployments
        .iter()
        .filter(|d| started.covers(d))
        .find(|d| d.rollout_state.as_deref() == Some("FAILED"))
    {
        let rollback = if failed.status == "PRIMARY" {
            ""
        } else {
            "; the circuit breaker rolls the service back to its last completed deployment"
        };
        return Poll::Failed(format!(
            "deployment failed: {}{rollback}{event}",
            failed
                .rollout_reason
                .as_deref()
                .unwrap_or("no reason given")
        ));
    }
    let elsewhere = primary
        .task_definition
        .as_deref()
        .filter(|t| *t != started.task_definition);
    // A rollback that finished between two looks leaves no FAILED deployment to see: only
    // a completed PRIMARY on another revision than the one deployed.
    if let Some(runs) = elsewhere
        && primary.rollout_state.as_deref() == Some("COMPLETED")
    {
        return Poll::Failed(format!(
            "the service runs `{}`, not `{}` which this `up` deployed: the circuit breaker \
             rolled the deployment back (or another deployment replaced it){event}",
            revision(runs),
            revision(&started.task_definition)
        ));
    }
    let on = elsewhere
        .map(|t| format!(" on `{}`", revision(t)))
        .unwrap_or_default();
    match primary.rollout_state.as_deref() {
        Some("COMPLETED") if deployments.len() == 1 => Poll::Ready(()),
        None if deployments.len() == 1 && primary.running >= primary.desired => Poll::Ready(()),
        _ => Poll::Pending(format!(
            "{} of {} task(s) running{on}, {} failed, {} older deployment(s) draining{event}",
            primary.running,
            primary.desired,
            primary.failed_tasks,
            deployments.len() - 1
        )),
    }
}

impl Service {
    /// How each deployment replaces the tasks: the circuit breaker rolls back one that
    /// fails.
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

    /// Creates the service on `task_definition`, one task per instance, all of them on the
    /// capacity provider: its first deployment.
    pub(super) async fn create(
        &self,
        aws: &Aws,
        task_definition: &str,
        load_balancer: &LoadBalancer,
    ) -> Result<Started, AwsError> {
        let out = with_service_linked_role(
            "ecs:CreateService",
            SERVICE_LINKED_ROLE_PROPAGATION,
            || async {
                aws.ecs
                    .create_service()
                    .cluster(&self.cluster)
                    .service_name(&self.name)
                    .task_definition(task_definition)
                    .desired_count(self.initial_count)
                    .capacity_provider_strategy(strategy(&self.capacity_provider))
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
                    .set_tags(Some(to_sdk(&self.tags)))
                    .send()
                    .await
                    .map_err(error("ecs:CreateService"))
            },
        )
        .await?;
        Ok(started(task_definition, out.service()))
    }

    /// Moves the service to `task_definition`, the strategy, the target group and the
    /// deployment configuration, all at once: one deployment.
    pub(super) async fn update(
        &self,
        aws: &Aws,
        task_definition: String,
        load_balancer: LoadBalancer,
    ) -> Result<Started, AwsError> {
        let out = aws
            .ecs
            .update_service()
            .cluster(&self.cluster)
            .service(&self.name)
            .task_definition(&task_definition)
            .capacity_provider_strategy(strategy(&self.capacity_provider))
            .load_balancers(load_balancer)
            .deployment_configuration(self.deployment_configuration())
            .send()
            .await
            .map_err(error("ecs:UpdateService"))?;
        Ok(started(&task_definition, out.service()))
    }

    /// Waits, bounded, until the deployment `started` has all its tasks running; fails
    /// when it failed or was rolled back.
    pub(super) async fn settled(&self, aws: &Aws, started: &Started) -> Result<(), AwsError> {
        if self.wait.is_zero() {
            return Ok(());
        }
        wait::until(
            "ecs:DescribeServices",
            self.wait,
            Duration::from_secs(5),
            || async {
                let Some(s) = find_service(aws, &self.cluster, &self.name).await? else {
                    return Ok(Poll::Failed(format!("service `{}` disappeared", self.name)));
                };
                let deployments: Vec<Rollout> = s
                    .deployments()
                    .iter()
                    .map(|d| Rollout {
                        status: d.status().unwrap_or_default().to_string(),
                        task_definition: d.task_definition().map(str::to_string),
                        created_at: d.created_at().copied(),
                        rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                        rollout_reason: d.rollout_state_reason().map(str::to_string),
                        desired: d.desired_count(),
                        running: d.running_count(),
                        failed_tasks: d.failed_tasks(),
                    })
                    .collect();
                let event = s.events().first().and_then(|e| e.message());
                Ok(match rollout_progress(&deployments, event, started) {
                    Poll::Failed(why) => {
                        Poll::Failed(format!("{why}{}", self.stopped_reasons(aws).await?))
                    }
                    other => other,
                })
            },
        )
        .await
    }

    /// Waits, up to `limit`, until the deleted service has stopped draining.
    pub(super) async fn wait_drained(&self, aws: &Aws, limit: Duration) -> Result<(), AwsError> {
        wait::until(
            "ecs:DeleteService",
            limit,
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
        .await
    }

    /// Why the service's most recent tasks stopped, for an error message.
    async fn stopped_reasons(&self, aws: &Aws) -> Result<String, AwsError> {
        let arns = aws
            .ecs
            .list_tasks()
            .cluster(&self.cluster)
            .service_name(&self.name)
            .desired_status(DesiredStatus::Stopped)
            .max_results(5)
            .send()
            .await
            .map_err(error("ecs:ListTasks"))?
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Ok(String::new());
        }
        let tasks = aws
            .ecs
            .describe_tasks()
            .cluster(&self.cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .map_err(error("ecs:DescribeTasks"))?;
        let reasons: Vec<&str> = tasks
            .tasks()
            .iter()
            .filter_map(|t| t.stopped_reason())
            .collect();
        Ok(format!("; stopped tasks: {}", reasons.join(" | ")))
    }
}

/// The deployment ECS answered a CreateService or UpdateService for `task_definition`
/// with: its PRIMARY, the one the call started.
fn started(task_definition: &str, service: Option<&aws_sdk_ecs::types::Service>) -> Started {
    Started {
        task_definition: task_definition.to_string(),
        at: service
            .and_then(|s| {
                s.deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
            })
            .and_then(|d| d.created_at())
            .copied(),
    }
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
