//! Tests of `rollout.rs` (beside it, as terraform-provider keeps `_test.go`).

use super::*;

fn arn(revision: u32) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task-definition/s-predictor:{revision}")
}

fn rollout(status: &str, revision: u32, state: Option<&str>, running: i32) -> Rollout {
    Rollout {
        status: status.into(),
        task_definition: Some(arn(revision)),
        created_at: None,
        rollout_state: state.map(str::to_string),
        rollout_reason: None,
        desired: 1,
        running,
        failed_tasks: 0,
    }
}

/// This `up` deployed `revision`; ECS's answer said nothing of when.
fn deployed(revision: u32) -> Started {
    Started {
        task_definition: arn(revision),
        at: None,
    }
}

#[test]
fn rollout_waits_for_the_old_deployment_to_drain() {
    let ev = Some(
        "(service s-predictor) was unable to place a task because no container instance met all of its requirements.",
    );
    let both = [
        rollout("PRIMARY", 3, Some("IN_PROGRESS"), 0),
        rollout("ACTIVE", 2, Some("COMPLETED"), 1),
    ];
    match rollout_progress(&both, ev, &deployed(3)) {
        Poll::Pending(why) => {
            assert!(why.starts_with("0 of 1 task(s) running"), "{why}");
            assert!(why.contains("unable to place a task"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rollout_progress(
            &[rollout("PRIMARY", 3, Some("COMPLETED"), 1)],
            None,
            &deployed(3)
        ),
        Poll::Ready(())
    );
    assert_eq!(
        rollout_progress(&[], None, &deployed(3)),
        Poll::Pending("no primary deployment yet".into())
    );
}

/// DescribeServices answers shaped as the ECS API reference shows them, each with the
/// revision the `up` deployed.
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
                task_definition: d["taskDefinition"].as_str().map(str::to_string),
                created_at: None,
                rollout_state: d["rolloutState"].as_str().map(str::to_string),
                rollout_reason: d["rolloutStateReason"].as_str().map(str::to_string),
                desired: d["desiredCount"].as_i64().unwrap() as i32,
                running: d["runningCount"].as_i64().unwrap() as i32,
                failed_tasks: d["failedTasks"].as_i64().unwrap() as i32,
            })
            .collect();
        let started = Started {
            task_definition: case["deployed"].as_str().unwrap().into(),
            at: None,
        };
        let event = s["events"][0]["message"].as_str();
        let got = rollout_progress(&deployments, event, &started);
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
    let mut failed = rollout("PRIMARY", 3, Some("FAILED"), 0);
    failed.rollout_reason = Some("ECS deployment circuit breaker: tasks failed to start.".into());
    match rollout_progress(
        &[failed],
        Some("(service s) (task 1) failed ELB health checks"),
        &deployed(3),
    ) {
        Poll::Failed(why) => {
            assert!(why.contains("circuit breaker"), "{why}");
            assert!(why.contains("failed ELB health checks"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

/// The rollback completed before the first look: one COMPLETED PRIMARY, on the old
/// revision. That is this deployment's failure, not its success.
#[test]
fn a_rollback_finished_before_the_first_look_fails_naming_both_revisions() {
    let back = [rollout("PRIMARY", 2, Some("COMPLETED"), 1)];
    assert_eq!(
        rollout_progress(
            &back,
            Some("(service s) has reached a steady state."),
            &deployed(3)
        ),
        Poll::Failed(
            "the service runs `s-predictor:2`, not `s-predictor:3` which this `up` \
             deployed: the circuit breaker rolled the deployment back (or another \
             deployment replaced it); (service s) has reached a steady state."
                .into()
        )
    );
    // Still rolling back, with this deployment already gone from the list: wait for
    // the rollback to settle, then fail as above.
    let rolling = [rollout("PRIMARY", 2, Some("IN_PROGRESS"), 0)];
    assert_eq!(
        rollout_progress(&rolling, None, &deployed(3)),
        Poll::Pending(
            "0 of 1 task(s) running on `s-predictor:2`, 0 failed, 0 older deployment(s) \
             draining"
                .into()
        )
    );
}

/// A FAILED deployment an earlier `up` left draining does not fail this one: told
/// apart by when ECS created it, or, when ECS did not say, by its revision.
#[test]
fn a_failed_deployment_of_an_earlier_up_does_not_fail_this_one() {
    let at = |secs| Some(DateTime::from_secs(secs));
    let mut ours = rollout("PRIMARY", 4, Some("IN_PROGRESS"), 0);
    ours.created_at = at(2_000);
    let mut stale = rollout("ACTIVE", 3, Some("FAILED"), 0);
    stale.created_at = at(1_000);
    let deployments = [ours, stale.clone()];
    let started = Started {
        task_definition: arn(4),
        at: at(2_000),
    };
    assert!(matches!(
        rollout_progress(&deployments, None, &started),
        Poll::Pending(_)
    ));
    assert!(matches!(
        rollout_progress(&deployments, None, &deployed(4)),
        Poll::Pending(_)
    ));
    // Of the revision this `up` deploys too (an `up` that changed no task definition),
    // but from before it: ECS's times tell it apart.
    let mut same = stale.clone();
    same.task_definition = Some(arn(4));
    assert!(matches!(
        rollout_progress(&[deployments[0].clone(), same], None, &started),
        Poll::Pending(_)
    ));
    // Our own revision, FAILED since our UpdateService: that one counts.
    stale.created_at = at(2_000);
    stale.task_definition = Some(arn(4));
    assert!(matches!(
        rollout_progress(&[deployments[0].clone(), stale], None, &started),
        Poll::Failed(_)
    ));
}
