//! Tests of `service.rs` (beside it, as terraform-provider keeps `_test.go`).

use super::super::task_definition::tests::spec;
use super::*;
use crate::resources::Change as _;

/// The service every ECS test starts from (the replays too).
pub(in crate::resources::ecs) fn service() -> Service {
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
    assert!(matches!(d[..], [Change::TaskDefinition { .. }]), "{d:?}");
    assert_eq!(
        d[0].field().to_string(),
        r#"task_definition: {"image":"r/s-predictor@sha256:aa"} → {"image":"r/s-predictor@sha256:bb"}"#
    );
}

#[test]
fn strategy_load_balancer_and_breaker_drift_are_named() {
    let mut o = in_sync();
    o.capacity_provider = Some("other".into());
    o.target_group_arn = Some("arn:other".into());
    o.circuit_breaker = Some(false);
    let texts: Vec<String> = service()
        .diff(&o)
        .iter()
        .map(|c| c.field().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "capacity_provider: other → s-capacity",
            "load_balancer: arn:other → s-tg",
            "circuit_breaker: false → true"
        ]
    );
    // No strategy at all (the emulator's answer) and no deployment configuration:
    // no claim of drift.
    o.capacity_provider = None;
    o.circuit_breaker = None;
    assert!(matches!(
        service().diff(&o)[..],
        [Change::LoadBalancer { .. }]
    ));
}
