//! `apply` replayed against a recording endpoint where moto cannot show it: a capacity
//! provider's update (moto reports it complete at once, never in progress or failed, and
//! never refuses a second one) and a service's rollout (moto has no rollout state, no
//! circuit breaker and no rollback).
//! ECS speaks JSON 1.1, so each call is named by its `X-Amz-Target`; Elastic Load
//! Balancing and Auto Scaling by the `Action` of their query form. The answers are
//! shaped as the ECS API reference shows them.

use std::time::Duration;

use serde_json::json;

use super::capacity_provider::Pace;
use super::capacity_provider::tests::provider;
use super::task_definition::tests::spec;
use super::{ProviderObserved, Service, ServiceObserved};
use crate::aws::{Aws, AwsError};
use crate::resources::Resource;
use crate::resources::recording::{Request, amz_json_ok, aws, recording_each, xml_ok};

const ACCOUNT: &str = "arn:aws:ecs:us-east-1:123456789012";

/// Each request's operation, then its body (the query form of Auto Scaling and Elastic
/// Load Balancing, ECS's JSON).
fn operations(seen: &[Request]) -> (Vec<String>, Vec<String>) {
    seen.iter()
        .map(|r| {
            let op = r
                .action()
                .map_or_else(|| format!("{} {}", r.method, r.path()), str::to_string);
            (op, r.body.clone())
        })
        .unzip()
}

/// `apply` of `r` from `o` against `responses` (in order, the last repeating): the
/// operations it called, their bodies, and how it ended. Bounded, so that a wait that
/// does not stop fails the test instead of hanging it.
async fn replay<R: Resource>(
    r: &R,
    o: &R::Observed,
    responses: Vec<String>,
) -> (Vec<String>, Vec<String>, Result<(), String>) {
    let (endpoint, seen) = recording_each(responses);
    let aws = aws(&endpoint).await;
    let result = tokio::time::timeout(Duration::from_secs(20), r.apply(&aws, Some(o), &r.diff(o)))
        .await
        .expect("apply ends within its waits")
        .map_err(|e| e.to_string());
    let (ops, bodies) = operations(&seen.lock().unwrap());
    (ops, bodies, result)
}

/// `call` against `responses` (in order, the last repeating): the operations it called
/// and how it ended; bounded like [`replay`].
async fn replay_call<F, Fut>(responses: Vec<String>, call: F) -> (Vec<String>, Result<(), String>)
where
    F: FnOnce(Aws) -> Fut,
    Fut: std::future::Future<Output = Result<(), AwsError>>,
{
    let (endpoint, seen) = recording_each(responses);
    let result = tokio::time::timeout(Duration::from_secs(20), call(aws(&endpoint).await))
        .await
        .expect("the call ends within its waits")
        .map_err(|e| e.to_string());
    (operations(&seen.lock().unwrap()).0, result)
}

/// An error as the JSON 1.1 services (ECS) answer it: the code in the body's `__type`.
fn amz_json_error(code: &str, message: &str) -> String {
    let body = json!({"__type": code, "message": message}).to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

// The capacity provider.

fn provider_in_sync() -> ProviderObserved {
    ProviderObserved {
        arn: format!("{ACCOUNT}:capacity-provider/s-capacity"),
        auto_scaling_group_arn: "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:\
                                 1b2c3d4e:autoScalingGroupName/s-instances"
            .into(),
        target_capacity: Some(100),
        termination_protection: true,
        associated: true,
        group_min: Some(1),
        tags: provider().tags,
    }
}

/// The provider as UpdateCapacityProvider and DescribeCapacityProviders return it.
fn capacity_provider(update_status: &str, reason: Option<&str>) -> serde_json::Value {
    let o = provider_in_sync();
    let mut cp = json!({
        "capacityProviderArn": o.arn,
        "name": "s-capacity",
        "status": "ACTIVE",
        "autoScalingGroupProvider": {
            "autoScalingGroupArn": o.auto_scaling_group_arn,
            "managedScaling": {
                "status": "ENABLED",
                "targetCapacity": 100,
                "minimumScalingStepSize": 1,
                "maximumScalingStepSize": 10000,
                "instanceWarmupPeriod": 300
            },
            "managedTerminationProtection": "ENABLED",
            "managedDraining": "ENABLED"
        },
        "updateStatus": update_status,
        "tags": [{"key": "deployer:stack", "value": "s"}]
    });
    if let Some(reason) = reason {
        cp["updateStatusReason"] = json!(reason);
    }
    cp
}

fn update_capacity_provider() -> String {
    amz_json_ok(
        &json!({"capacityProvider": capacity_provider("UPDATE_IN_PROGRESS", None)}).to_string(),
    )
}

fn describe_capacity_providers(update_status: &str, reason: Option<&str>) -> String {
    amz_json_ok(
        &json!({
            "capacityProviders": [capacity_provider(update_status, reason)],
            "failures": []
        })
        .to_string(),
    )
}

fn put_cluster_capacity_providers() -> String {
    amz_json_ok(
        &json!({"cluster": {
            "clusterArn": format!("{ACCOUNT}:cluster/s-cluster"),
            "clusterName": "s-cluster",
            "status": "ACTIVE",
            "capacityProviders": ["s-capacity"],
            "defaultCapacityProviderStrategy": [
                {"capacityProvider": "s-capacity", "weight": 1, "base": 0}
            ],
            "attachmentsStatus": "UPDATE_IN_PROGRESS"
        }})
        .to_string(),
    )
}

fn update_auto_scaling_group() -> String {
    xml_ok(
        r#"<UpdateAutoScalingGroupResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><ResponseMetadata><RequestId>7c6e177f-f082-11e1-ac58-3714bEXAMPLE</RequestId></ResponseMetadata></UpdateAutoScalingGroupResponse>"#,
    )
}

/// Managed scaling at another target is one UpdateCapacityProvider carrying the target
/// and termination protection, then the wait until ECS has made the update: it is
/// asynchronous (UPDATE_IN_PROGRESS, then UPDATE_COMPLETE), as terraform-provider-aws's
/// `waitCapacityProviderUpdated` waits for it.
#[tokio::test]
async fn a_new_target_capacity_is_one_update_capacity_provider() {
    let mut o = provider_in_sync();
    o.target_capacity = Some(80);
    let (ops, bodies, result) = replay(
        &provider(),
        &o,
        vec![
            update_capacity_provider(),
            describe_capacity_providers("UPDATE_COMPLETE", None),
        ],
    )
    .await;
    assert_eq!(ops, ["UpdateCapacityProvider", "DescribeCapacityProviders"]);
    assert_eq!(result, Ok(()));
    let sent: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        sent,
        json!({
            "name": "s-capacity",
            "autoScalingGroupProvider": {
                "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
                "managedTerminationProtection": "ENABLED"
            }
        })
    );
}

/// Every change at once: the update and the wait for it, the tags, then the wait until
/// the provider is ACTIVE, the attachment, and only then the group's minimum (no
/// instance may register before the provider is attached).
#[tokio::test]
async fn an_update_then_the_attachment_then_the_group_minimum() {
    let o = ProviderObserved {
        target_capacity: Some(80),
        associated: false,
        group_min: Some(0),
        tags: Default::default(),
        ..provider_in_sync()
    };
    let (ops, bodies, result) = replay(
        &provider(),
        &o,
        vec![
            update_capacity_provider(),
            describe_capacity_providers("UPDATE_COMPLETE", None),
            amz_json_ok("{}"),
            describe_capacity_providers("UPDATE_COMPLETE", None),
            put_cluster_capacity_providers(),
            update_auto_scaling_group(),
        ],
    )
    .await;
    assert_eq!(
        ops,
        [
            "UpdateCapacityProvider",
            "DescribeCapacityProviders",
            "TagResource",
            "DescribeCapacityProviders",
            "PutClusterCapacityProviders",
            "UpdateAutoScalingGroup",
        ]
    );
    assert_eq!(result, Ok(()));
    assert!(
        bodies[5].contains("AutoScalingGroupName=s-instances") && bodies[5].contains("MinSize=1"),
        "{}",
        bodies[5]
    );
}

/// An update ECS could not make (UPDATE_FAILED) stops `apply` with ECS's reason before
/// the provider is attached or the group raised.
#[tokio::test]
async fn a_failed_update_stops_before_the_attachment() {
    let o = ProviderObserved {
        target_capacity: Some(80),
        associated: false,
        ..provider_in_sync()
    };
    let reason = "The capacity provider could not be updated because the Auto Scaling \
                  group s-instances was not found.";
    let (ops, _, result) = replay(
        &provider(),
        &o,
        vec![
            update_capacity_provider(),
            describe_capacity_providers("UPDATE_FAILED", Some(reason)),
        ],
    )
    .await;
    assert_eq!(ops, ["UpdateCapacityProvider", "DescribeCapacityProviders"]);
    assert_eq!(
        result,
        Err(format!(
            "ecs:UpdateCapacityProvider: capacity provider UPDATE_FAILED: {reason}"
        ))
    );
}

/// A new target alone (the provider attached, the group at its minimum): an update ECS
/// then fails is `apply`'s failure, with ECS's reason, not a success.
#[tokio::test]
async fn a_failed_update_fails_apply_with_its_reason() {
    let mut o = provider_in_sync();
    o.target_capacity = Some(80);
    // As ECS words it (pulumi/pulumi-aws#6018).
    let reason = "The capacity provider cannot be updated due to an internal error. Try again.";
    let (ops, _, result) = replay(
        &provider(),
        &o,
        vec![
            update_capacity_provider(),
            describe_capacity_providers("UPDATE_FAILED", Some(reason)),
        ],
    )
    .await;
    assert_eq!(ops, ["UpdateCapacityProvider", "DescribeCapacityProviders"]);
    assert_eq!(
        result,
        Err(format!(
            "ecs:UpdateCapacityProvider: capacity provider UPDATE_FAILED: {reason}"
        ))
    );
}

/// Fast enough for a test: looks at about 0, 20, 60 ms; gives up at 500 ms.
const FAST: Pace = Pace {
    limit: Duration::from_millis(500),
    first: Duration::from_millis(20),
};

/// ECS refuses an update while the previous one is in progress (UpdateInProgressException):
/// the call is repeated, then the new update waited for until UPDATE_COMPLETE.
#[tokio::test]
async fn an_update_is_repeated_while_another_is_in_progress() {
    let (ops, result) = replay_call(
        vec![
            amz_json_error(
                "UpdateInProgressException",
                "The capacity provider is already being updated.",
            ),
            update_capacity_provider(),
            describe_capacity_providers("UPDATE_IN_PROGRESS", None),
            describe_capacity_providers("UPDATE_COMPLETE", None),
        ],
        |aws| async move { provider().update_managed_scaling(&aws, FAST).await },
    )
    .await;
    assert_eq!(
        ops,
        [
            "UpdateCapacityProvider",
            "UpdateCapacityProvider",
            "DescribeCapacityProviders",
            "DescribeCapacityProviders",
        ]
    );
    assert_eq!(result, Ok(()));
}

/// Still in progress when the limit comes: the call gives up, saying so, and no other
/// error is retried.
#[tokio::test]
async fn an_update_in_progress_past_the_limit_gives_up() {
    let busy = amz_json_error(
        "UpdateInProgressException",
        "The capacity provider is already being updated.",
    );
    let (ops, result) = replay_call(vec![busy], |aws| async move {
        provider().update_managed_scaling(&aws, FAST).await
    })
    .await;
    assert!(
        ops.len() > 1 && ops.iter().all(|op| op == "UpdateCapacityProvider"),
        "{ops:?}"
    );
    let e = result.unwrap_err();
    assert!(
        e.starts_with("ecs:UpdateCapacityProvider: gave up after 0s: "),
        "{e}"
    );
    let other = amz_json_error("ClientException", "The update is already in progress.");
    let (ops, result) = replay_call(vec![other], |aws| async move {
        provider().update_managed_scaling(&aws, FAST).await
    })
    .await;
    assert_eq!(ops, ["UpdateCapacityProvider"]);
    assert_eq!(
        result,
        Err(
            "ecs:UpdateCapacityProvider: ClientException: The update is already in progress."
                .into()
        )
    );
}

// The service.

/// How long the service's rollout is waited for: under the first pause (5 s), so a
/// rollout still in progress gives up after one look.
const WAIT: Duration = Duration::from_secs(1);

const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/s-tg/73e2d6bc24d8a067";

fn service() -> Service {
    Service {
        wait: WAIT,
        ..super::service::tests::service()
    }
}

fn service_in_sync() -> ServiceObserved {
    ServiceObserved {
        arn: format!("{ACCOUNT}:service/s-cluster/s-predictor"),
        task_definition: revision(2),
        task: Some(spec()),
        capacity_provider: Some("s-capacity".into()),
        target_group_arn: Some(TARGET_GROUP.into()),
        wanted_target_group_arn: Some(TARGET_GROUP.into()),
        circuit_breaker: Some(true),
        desired: 1,
        running: 1,
        rollout: "COMPLETED".into(),
        tags: Default::default(),
    }
}

fn revision(n: u32) -> String {
    format!("{ACCOUNT}:task-definition/s-predictor:{n}")
}

fn describe_target_groups() -> String {
    xml_ok(&format!(
        r#"<DescribeTargetGroupsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTargetGroupsResult><TargetGroups><member><TargetGroupArn>{TARGET_GROUP}</TargetGroupArn><TargetGroupName>s-tg</TargetGroupName><Protocol>HTTP</Protocol><Port>8080</Port><TargetType>instance</TargetType></member></TargetGroups></DescribeTargetGroupsResult><ResponseMetadata><RequestId>6b5f4a3e-0000-4000-8000-000000000001</RequestId></ResponseMetadata></DescribeTargetGroupsResponse>"#
    ))
}

/// RegisterTaskDefinition's answer: revision `n`.
fn register_task_definition(n: u32) -> String {
    amz_json_ok(
        &json!({
            "taskDefinition": {
                "taskDefinitionArn": revision(n),
                "family": "s-predictor",
                "revision": n,
                "status": "ACTIVE",
                "networkMode": "host"
            },
            "tags": []
        })
        .to_string(),
    )
}

/// Deployment `ecs-svc/n` (ECS created them in that order) of revision `revision_n`.
fn deployment(
    id: &str,
    status: &str,
    revision_n: u32,
    state: &str,
    reason: &str,
) -> serde_json::Value {
    let n: f64 = id.trim_start_matches("ecs-svc/").parse().unwrap();
    let created = 1.7e9 + 60.0 * n;
    json!({
        "id": id,
        "status": status,
        "taskDefinition": revision(revision_n),
        "desiredCount": 1,
        "pendingCount": 0,
        "runningCount": if state == "FAILED" { 0 } else { 1 },
        "failedTasks": if state == "FAILED" { 3 } else { 0 },
        "createdAt": created,
        "updatedAt": created,
        "rolloutState": state,
        "rolloutStateReason": reason
    })
}

/// The service as UpdateService and DescribeServices return it.
fn service_answer(deployments: Vec<serde_json::Value>, event: &str) -> serde_json::Value {
    json!({
        "serviceArn": service_in_sync().arn,
        "serviceName": "s-predictor",
        "clusterArn": format!("{ACCOUNT}:cluster/s-cluster"),
        "status": "ACTIVE",
        "taskDefinition": revision(3),
        "desiredCount": 1,
        "runningCount": 1,
        "pendingCount": 0,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100
        },
        "deployments": deployments,
        "events": [{"id": "e1", "createdAt": 1.7e9, "message": event}]
    })
}

/// UpdateService's answer: the deployment it started, `ecs-svc/{id}` of revision `to`,
/// in progress; the one before it, on revision 2, still serving.
fn update_service(id: u32, to: u32) -> String {
    let started = deployment(
        &format!("ecs-svc/{id}"),
        "PRIMARY",
        to,
        "IN_PROGRESS",
        &format!("ECS deployment ecs-svc/{id} in progress."),
    );
    let old = deployment(
        &format!("ecs-svc/{}", id - 1),
        "ACTIVE",
        2,
        "COMPLETED",
        &format!("ECS deployment ecs-svc/{} completed.", id - 1),
    );
    amz_json_ok(
        &json!({"service": service_answer(vec![started, old], "(service s-predictor) has reached a steady state.")})
            .to_string(),
    )
}

fn describe_services(deployments: Vec<serde_json::Value>, event: &str) -> String {
    amz_json_ok(
        &json!({"services": [service_answer(deployments, event)], "failures": []}).to_string(),
    )
}

/// A new image: a new revision, one UpdateService with the circuit breaker on, then the
/// rollout waited for until its deployment is the only one and COMPLETED.
#[tokio::test]
async fn a_new_revision_is_rolled_out_and_waited_for() {
    let mut s = service();
    s.task.image = "r/s-predictor@sha256:bb".into();
    let done = deployment(
        "ecs-svc/3",
        "PRIMARY",
        3,
        "COMPLETED",
        "ECS deployment ecs-svc/3 completed.",
    );
    let (ops, bodies, result) = replay(
        &s,
        &service_in_sync(),
        vec![
            describe_target_groups(),
            register_task_definition(3),
            update_service(3, 3),
            describe_services(
                vec![done],
                "(service s-predictor) has reached a steady state.",
            ),
        ],
    )
    .await;
    assert_eq!(
        ops,
        [
            "DescribeTargetGroups",
            "RegisterTaskDefinition",
            "UpdateService",
            "DescribeServices",
        ]
    );
    assert_eq!(result, Ok(()));
    let update: serde_json::Value = serde_json::from_str(&bodies[2]).unwrap();
    assert_eq!(update["taskDefinition"], json!(revision(3)));
    assert_eq!(
        update["deploymentConfiguration"]["deploymentCircuitBreaker"],
        json!({"enable": true, "rollback": true})
    );
    assert_eq!(
        update["loadBalancers"][0]["targetGroupArn"],
        json!(TARGET_GROUP)
    );
}

const STOPPED_TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/s-cluster/1a2b3c4d5e6f";

/// ListTasks's answer: one stopped task.
fn list_stopped_tasks() -> String {
    amz_json_ok(&json!({"taskArns": [STOPPED_TASK]}).to_string())
}

/// DescribeTasks's answer: the stopped task and why.
fn describe_stopped_tasks() -> String {
    amz_json_ok(
        &json!({
            "tasks": [{
                "taskArn": STOPPED_TASK,
                "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED",
                "stopCode": "ServiceSchedulerInitiated",
                "stoppedReason": "Task failed ELB health checks in (target-group \
                                  arn:aws:elasticloadbalancing:us-east-1:123456789012:\
                                  targetgroup/s-tg/73e2d6bc24d8a067)"
            }],
            "failures": []
        })
        .to_string(),
    )
}

/// The circuit breaker tripped: ECS rolls back with a new PRIMARY on the last completed
/// revision and keeps the failed deployment ACTIVE and FAILED. `apply` stops at once
/// with the failure, the rollback and why the tasks stopped, instead of waiting for the
/// rollback to complete and calling that a success.
#[tokio::test]
async fn a_tripped_circuit_breaker_fails_the_rollout_with_its_reasons() {
    let mut s = service();
    s.task.image = "r/s-predictor@sha256:bb".into();
    let rollback = deployment(
        "ecs-svc/4",
        "PRIMARY",
        2,
        "IN_PROGRESS",
        "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/2.",
    );
    let failed = deployment(
        "ecs-svc/3",
        "ACTIVE",
        3,
        "FAILED",
        "ECS deployment circuit breaker: tasks failed to start.",
    );
    let (ops, _, result) = replay(
        &s,
        &service_in_sync(),
        vec![
            describe_target_groups(),
            register_task_definition(3),
            update_service(3, 3),
            describe_services(
                vec![rollback, failed],
                "(service s-predictor) rolling back to deployment ecs-svc/2.",
            ),
            list_stopped_tasks(),
            describe_stopped_tasks(),
        ],
    )
    .await;
    assert_eq!(
        ops,
        [
            "DescribeTargetGroups",
            "RegisterTaskDefinition",
            "UpdateService",
            "DescribeServices",
            "ListTasks",
            "DescribeTasks",
        ]
    );
    assert_eq!(
        result,
        Err(
            "ecs:DescribeServices: deployment failed: ECS deployment circuit breaker: tasks \
             failed to start.; the circuit breaker rolls the service back to its last \
             completed deployment; (service s-predictor) rolling back to deployment \
             ecs-svc/2.; stopped tasks: Task failed ELB health checks in (target-group \
             arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/s-tg/\
             73e2d6bc24d8a067)"
                .into()
        )
    );
}

/// A rollout that does not finish within the service's wait gives up, saying where it
/// stood; the breaker turned on is an UpdateService of its own (no new revision).
#[tokio::test]
async fn a_rollout_still_in_progress_gives_up_after_the_wait() {
    let o = ServiceObserved {
        circuit_breaker: Some(false),
        ..service_in_sync()
    };
    let started = deployment(
        "ecs-svc/3",
        "PRIMARY",
        2,
        "IN_PROGRESS",
        "ECS deployment ecs-svc/3 in progress.",
    );
    let old = deployment(
        "ecs-svc/2",
        "ACTIVE",
        2,
        "COMPLETED",
        "ECS deployment ecs-svc/2 completed.",
    );
    let (ops, bodies, result) = replay(
        &service(),
        &o,
        vec![
            describe_target_groups(),
            update_service(3, 2),
            describe_services(
                vec![started, old],
                "(service s-predictor) has started 1 tasks: (task 9c5f).",
            ),
        ],
    )
    .await;
    assert_eq!(
        ops,
        ["DescribeTargetGroups", "UpdateService", "DescribeServices"]
    );
    let update: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(update["taskDefinition"], json!(revision(2)));
    assert_eq!(
        result,
        Err(
            "ecs:DescribeServices: gave up after 1s: 1 of 1 task(s) running, 0 failed, 1 \
             older deployment(s) draining; (service s-predictor) has started 1 tasks: (task \
             9c5f)."
                .into()
        )
    );
}

/// The circuit breaker tripped and the rollback completed before the first look: the
/// service shows one COMPLETED PRIMARY, on the old revision, and no FAILED deployment.
/// That is this `up`'s failure, naming both revisions, the latest event and why the tasks
/// stopped, not a success.
#[tokio::test]
async fn a_rollback_finished_before_the_first_look_fails_the_rollout() {
    let mut s = service();
    s.task.image = "r/s-predictor@sha256:bb".into();
    let rolled_back = deployment(
        "ecs-svc/4",
        "PRIMARY",
        2,
        "COMPLETED",
        "ECS deployment ecs-svc/4 completed.",
    );
    let (ops, _, result) = replay(
        &s,
        &service_in_sync(),
        vec![
            describe_target_groups(),
            register_task_definition(3),
            update_service(3, 3),
            describe_services(
                vec![rolled_back],
                "(service s-predictor) has reached a steady state.",
            ),
            list_stopped_tasks(),
            describe_stopped_tasks(),
        ],
    )
    .await;
    assert_eq!(
        ops,
        [
            "DescribeTargetGroups",
            "RegisterTaskDefinition",
            "UpdateService",
            "DescribeServices",
            "ListTasks",
            "DescribeTasks",
        ]
    );
    assert_eq!(
        result,
        Err(
            "ecs:DescribeServices: the service runs `s-predictor:2`, not `s-predictor:3` \
             which this `up` deployed: the circuit breaker rolled the deployment back (or \
             another deployment replaced it); (service s-predictor) has reached a steady \
             state.; stopped tasks: Task failed ELB health checks in (target-group \
             arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/s-tg/\
             73e2d6bc24d8a067)"
                .into()
        )
    );
}

/// An earlier `up`'s deployment of revision 3 failed and was rolled back to revision 2;
/// it is still listed, FAILED, while it drains. This `up` deploys revision 4: that stale
/// failure does not fail it. The wait goes on (here it gives up after its one look,
/// saying where the rollout stood) instead of stopping at once with the old failure.
#[tokio::test]
async fn a_failed_deployment_of_an_earlier_up_does_not_fail_the_new_rollout() {
    let mut s = service();
    s.task.image = "r/s-predictor@sha256:cc".into();
    let ours = deployment(
        "ecs-svc/5",
        "PRIMARY",
        4,
        "IN_PROGRESS",
        "ECS deployment ecs-svc/5 in progress.",
    );
    let rolled_back = deployment(
        "ecs-svc/4",
        "ACTIVE",
        2,
        "COMPLETED",
        "ECS deployment ecs-svc/4 completed.",
    );
    let stale = deployment(
        "ecs-svc/3",
        "ACTIVE",
        3,
        "FAILED",
        "ECS deployment circuit breaker: tasks failed to start.",
    );
    let (ops, _, result) = replay(
        &s,
        &service_in_sync(),
        vec![
            describe_target_groups(),
            register_task_definition(4),
            update_service(5, 4),
            describe_services(
                vec![ours, rolled_back, stale],
                "(service s-predictor) has started 1 tasks: (task 7d1e).",
            ),
        ],
    )
    .await;
    assert_eq!(
        ops,
        [
            "DescribeTargetGroups",
            "RegisterTaskDefinition",
            "UpdateService",
            "DescribeServices",
        ]
    );
    assert_eq!(
        result,
        Err(
            "ecs:DescribeServices: gave up after 1s: 1 of 1 task(s) running, 0 failed, 2 \
             older deployment(s) draining; (service s-predictor) has started 1 tasks: (task \
             7d1e)."
                .into()
        )
    );
}

/// The same, for an `up` that deploys the revision the service runs (here: the breaker
/// turned back on), after an earlier deployment of that revision failed: the revision
/// does not tell the stale FAILED deployment from this one; the time ECS created each
/// does (this one's from UpdateService's answer).
#[tokio::test]
async fn a_failed_deployment_of_the_same_revision_from_before_does_not_fail_the_new_rollout() {
    let o = ServiceObserved {
        circuit_breaker: Some(false),
        ..service_in_sync()
    };
    let ours = deployment(
        "ecs-svc/5",
        "PRIMARY",
        2,
        "IN_PROGRESS",
        "ECS deployment ecs-svc/5 in progress.",
    );
    let stale = deployment(
        "ecs-svc/3",
        "ACTIVE",
        2,
        "FAILED",
        "ECS deployment circuit breaker: tasks failed to start.",
    );
    let (ops, _, result) = replay(
        &service(),
        &o,
        vec![
            describe_target_groups(),
            update_service(5, 2),
            describe_services(
                vec![ours, stale],
                "(service s-predictor) has started 1 tasks: (task 7d1e).",
            ),
        ],
    )
    .await;
    assert_eq!(
        ops,
        ["DescribeTargetGroups", "UpdateService", "DescribeServices"]
    );
    assert_eq!(
        result,
        Err(
            "ecs:DescribeServices: gave up after 1s: 1 of 1 task(s) running, 0 failed, 1 \
             older deployment(s) draining; (service s-predictor) has started 1 tasks: (task \
             7d1e)."
                .into()
        )
    );
}
