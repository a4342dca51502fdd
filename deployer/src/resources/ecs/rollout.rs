//! A service's deployments: the calls that start one (CreateService, UpdateService) with
//! the placement and deployment configuration they share (one task per instance, the
//! circuit breaker), and the wait for it to finish: its deployments as DescribeServices
//! reports them, whether the latest has all its tasks running, and, when it failed, why
//! its tasks stopped. Also the wait for a deleted service to drain.

use std::time::Duration;

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
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub failed_tasks: i32,
}

/// Whether a service's deployment has finished, from its deployments and the latest
/// service event (which says why tasks cannot be placed or fail health checks).
pub fn rollout_progress(deployments: &[Rollout], latest_event: Option<&str>) -> Poll<()> {
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
    match primary.rollout_state.as_deref() {
        Some("COMPLETED") if deployments.len() == 1 => Poll::Ready(()),
        None if deployments.len() == 1 && primary.running >= primary.desired => Poll::Ready(()),
        _ => Poll::Pending(format!(
            "{} of {} task(s) running, {} failed, {} older deployment(s) draining{event}",
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
    ) -> Result<(), AwsError> {
        with_service_linked_role(
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
        Ok(())
    }

    /// Moves the service to `task_definition`, the strategy, the target group and the
    /// deployment configuration, all at once: one deployment.
    pub(super) async fn update(
        &self,
        aws: &Aws,
        task_definition: String,
        load_balancer: LoadBalancer,
    ) -> Result<(), AwsError> {
        aws.ecs
            .update_service()
            .cluster(&self.cluster)
            .service(&self.name)
            .task_definition(task_definition)
            .capacity_provider_strategy(strategy(&self.capacity_provider))
            .load_balancers(load_balancer)
            .deployment_configuration(self.deployment_configuration())
            .send()
            .await
            .map_err(error("ecs:UpdateService"))?;
        Ok(())
    }

    /// Waits, bounded, until the latest deployment has all its tasks running.
    pub(super) async fn settled(&self, aws: &Aws) -> Result<(), AwsError> {
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
                        rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                        rollout_reason: d.rollout_state_reason().map(str::to_string),
                        desired: d.desired_count(),
                        running: d.running_count(),
                        failed_tasks: d.failed_tasks(),
                    })
                    .collect();
                let event = s.events().first().and_then(|e| e.message());
                Ok(match rollout_progress(&deployments, event) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(status: &str, state: Option<&str>, running: i32) -> Rollout {
        Rollout {
            status: status.into(),
            rollout_state: state.map(str::to_string),
            rollout_reason: None,
            desired: 1,
            running,
            failed_tasks: 0,
        }
    }

    #[test]
    fn rollout_waits_for_the_old_deployment_to_drain() {
        let ev = Some(
            "(service s-predictor) was unable to place a task because no container instance met all of its requirements.",
        );
        let both = [
            rollout("PRIMARY", Some("IN_PROGRESS"), 0),
            rollout("ACTIVE", Some("COMPLETED"), 1),
        ];
        match rollout_progress(&both, ev) {
            Poll::Pending(why) => {
                assert!(why.starts_with("0 of 1 task(s) running"), "{why}");
                assert!(why.contains("unable to place a task"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            rollout_progress(&[rollout("PRIMARY", Some("COMPLETED"), 1)], None),
            Poll::Ready(())
        );
        assert_eq!(
            rollout_progress(&[], None),
            Poll::Pending("no primary deployment yet".into())
        );
    }

    /// DescribeServices answers shaped as the ECS API reference shows them.
    #[test]
    fn rollout_follows_describe_services_fixtures() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/ecs/describe_services.json"
        ))
        .unwrap();
        for case in fixtures.as_array().unwrap() {
            let s = &case["service"];
            let deployments: Vec<Rollout> = s["deployments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| Rollout {
                    status: d["status"].as_str().unwrap().into(),
                    rollout_state: d["rolloutState"].as_str().map(str::to_string),
                    rollout_reason: d["rolloutStateReason"].as_str().map(str::to_string),
                    desired: d["desiredCount"].as_i64().unwrap() as i32,
                    running: d["runningCount"].as_i64().unwrap() as i32,
                    failed_tasks: d["failedTasks"].as_i64().unwrap() as i32,
                })
                .collect();
            let event = s["events"][0]["message"].as_str();
            let got = rollout_progress(&deployments, event);
            let kind = match &got {
                Poll::Ready(()) => "ready",
                Poll::Pending(_) => "pending",
                Poll::Failed(_) => "failed",
            };
            assert_eq!(
                kind,
                case["expect"].as_str().unwrap(),
                "{}: {got:?}",
                case["case"]
            );
            if let Poll::Pending(why) | Poll::Failed(why) = got {
                // The latest event says why: shown while waiting and in the error.
                assert!(why.contains(event.unwrap()), "{why}");
            }
        }
    }

    #[test]
    fn a_failed_rollout_stops_the_wait_with_its_reason() {
        let mut failed = rollout("PRIMARY", Some("FAILED"), 0);
        failed.rollout_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        match rollout_progress(
            &[failed],
            Some("(service s) (task 1) failed ELB health checks"),
        ) {
            Poll::Failed(why) => {
                assert!(why.contains("circuit breaker"), "{why}");
                assert!(why.contains("failed ELB health checks"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}
