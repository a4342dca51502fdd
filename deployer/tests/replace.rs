//! What AWS cannot change in place is replaced: a new container port means a new target
//! group (a target group's port is fixed at creation). `plan` shows the replacement and
//! what goes with it, `up` deletes the listener and the old group, creates both again
//! and points the service at the new group, and the next `plan` has nothing to do.

mod common;

use common::{Moto, deployer, edited, fake_digest, mutating, pinned_manifest};

#[tokio::test(flavor = "multi_thread")]
async fn a_new_container_port_replaces_the_target_group_and_its_listener() {
    let moto = Moto::start();
    let base = pinned_manifest(&fake_digest('a'));
    deployer(&moto, &["-f", base.to_str().unwrap(), "up"]).expect(0);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&moto.sdk().await);
    let group = |elb: aws_sdk_elasticloadbalancingv2::Client| async move {
        let out = elb
            .describe_target_groups()
            .names("yolo-local-tg")
            .send()
            .await
            .unwrap();
        let tg = &out.target_groups()[0];
        (
            tg.target_group_arn().unwrap().to_string(),
            tg.port().unwrap(),
        )
    };
    let (old_arn, old_port) = group(elb.clone()).await;
    assert_eq!(old_port, 8080);

    let m = edited(
        &base,
        "port",
        &[("  wait_s: 0", "  container: {port: 9090}\n  wait_s: 0")],
    );
    let plan = deployer(&moto, &["-f", &m, "plan", "-o", "json"])
        .expect(0)
        .json();
    let planned: Vec<(String, String, Option<String>)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["follows"]["kind"].as_str().map(str::to_string),
            )
        })
        .filter(|(kind, _, _)| kind != "launch_template" && kind != "lambda_function")
        .collect();
    assert!(
        planned.contains(&("target_group".into(), "replace".into(), None))
            && planned.contains(&(
                "listener".into(),
                "replace".into(),
                Some("target_group".into())
            ))
            && planned
                .iter()
                .any(|(k, a, f)| k == "ecs_service" && a == "update" && f.is_some()),
        "{planned:#?}"
    );
    assert_eq!(plan["summary"]["replace"], 2, "{plan:#}");
    let text = deployer(&moto, &["-f", &m, "plan"]).expect(0).stdout;
    assert!(
        text.contains("-/+ target group `yolo-local-tg` (cannot change in place)")
            && text.contains(
                "-/+ listener `yolo-local-alb:80` (goes with target group `yolo-local-tg`)"
            ),
        "{text}"
    );

    moto.clear_requests();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    let writes = mutating(&moto.requests());
    let at = |call: &str| {
        writes
            .iter()
            .position(|w| w.contains(call))
            .unwrap_or_else(|| panic!("no {call} in {writes:#?}"))
    };
    assert!(
        at("DeleteListener") < at("DeleteTargetGroup"),
        "{writes:#?}"
    );
    assert!(
        at("DeleteTargetGroup") < at("CreateTargetGroup"),
        "{writes:#?}"
    );
    assert!(
        at("CreateTargetGroup") < at("CreateListener"),
        "{writes:#?}"
    );

    let (new_arn, new_port) = group(elb.clone()).await;
    assert_eq!(new_port, 9090);
    assert_ne!(new_arn, old_arn);
    let lb = elb
        .describe_load_balancers()
        .names("yolo-local-alb")
        .send()
        .await
        .unwrap();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    assert_eq!(
        listeners.listeners()[0].default_actions()[0].target_group_arn(),
        Some(new_arn.as_str())
    );
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk().await);
    let services = ecs
        .describe_services()
        .cluster("yolo-local-cluster")
        .services("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert_eq!(
        services.services()[0].load_balancers()[0].target_group_arn(),
        Some(new_arn.as_str())
    );

    let again = deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]);
    assert_eq!(again.code, Some(0), "{}", again.stdout);
}
