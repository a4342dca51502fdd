//! What the stack owns and its manifest no longer asks for: a target switched off, a
//! bucket renamed, the load balancer moved to another port. `plan` shows each as a
//! deletion, `status` names it, `up` deletes it (a bucket with objects only when told);
//! and `down` deletes everything the stack owns without looking up the network, so a
//! stack whose VPC and subnets are gone can still be torn down.

mod common;

use common::inventory::held;
use common::{Moto, deployer, edited, fake_digest, mutating, pinned_manifest, remaining};

/// `(kind, name)` of the plan's changes with `action`, and whether each is unwanted.
fn changes(plan: &serde_json::Value, action: &str) -> Vec<(String, String, bool)> {
    let mut all: Vec<_> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == action)
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
                c["unwanted"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    all.sort();
    all
}

fn has(held: &[String], what: &str) -> bool {
    held.iter().any(|h| h == what)
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_manifest_no_longer_asks_for_is_planned_deleted_and_down_needs_no_network() {
    let moto = Moto::start();
    let base = pinned_manifest(&fake_digest('a'));
    let m0 = base.to_str().unwrap();
    deployer(&moto, &["-f", m0, "up"]).expect(0);

    // Serverless off, the results bucket renamed, the listener on another port.
    let m1 = edited(
        &base,
        "changed",
        &[
            ("serverless:\n", "serverless:\n  enabled: false\n"),
            (
                "    expire_after_days: 1\n",
                "    expire_after_days: 1\n    name: yolo-local-results-2\n",
            ),
            (
                "  wait_s: 0",
                "  load_balancer: {port: 8080, health_path: /healthz, cidrs: [0.0.0.0/0]}\n  wait_s: 0",
            ),
        ],
    );
    // The old results bucket holds a result: kept unless told otherwise.
    moto.s3()
        .await
        .put_object()
        .bucket("yolo-local-results")
        .key("result.jpg")
        .body(b"jpeg".to_vec().into())
        .send()
        .await
        .unwrap();

    let plan = deployer(&moto, &["-f", &m1, "-o", "json", "plan"])
        .expect(0)
        .json();
    let unwanted = |kind: &str, name: &str| (kind.to_string(), name.to_string(), true);
    assert_eq!(
        changes(&plan, "delete"),
        [
            unwanted("http_api", "yolo-local-api"),
            unwanted("iam_role", "yolo-local-lambda"),
            unwanted("lambda_function", "yolo-local-predictor"),
            unwanted("listener", "yolo-local-alb:80"),
            unwanted("log_group", "/aws/lambda/yolo-local-predictor"),
        ],
        "{plan:#}"
    );
    let created: Vec<String> = changes(&plan, "create")
        .into_iter()
        .map(|(k, n, _)| format!("{k} {n}"))
        .collect();
    assert_eq!(
        created,
        [
            "listener yolo-local-alb:8080",
            "s3_bucket yolo-local-results-2"
        ]
    );
    assert_eq!(plan["kept"][0]["name"], "yolo-local-results", "{plan:#}");
    let text = deployer(&moto, &["-f", &m1, "plan"]).expect(0).stdout;
    assert!(
        text.contains("- lambda function `yolo-local-predictor` (no longer in the manifest)"),
        "{text}"
    );
    assert!(
        text.contains(
            "s3 bucket `yolo-local-results` is no longer in the manifest and holds objects: kept"
        ),
        "{text}"
    );
    let status = deployer(&moto, &["-f", &m1, "-o", "json", "status"])
        .expect(0)
        .json();
    let state = |name: &str, kind: &str| {
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name && r["kind"] == kind)
            .map(|r| r["state"].as_str().unwrap().to_string())
    };
    assert_eq!(
        state("yolo-local-predictor", "lambda_function").as_deref(),
        Some("unwanted")
    );

    deployer(&moto, &["-f", &m1, "up", "--yes"]).expect(0);
    let now = held(&moto).await;
    for gone in [
        "function yolo-local-predictor",
        "api yolo-local-api",
        "role yolo-local-lambda",
        "log /aws/lambda/yolo-local-predictor",
        "listener yolo-local-alb/80",
    ] {
        assert!(!has(&now, gone), "{gone} left: {now:#?}");
    }
    for kept in [
        "listener yolo-local-alb/8080",
        "bucket yolo-local-results",
        "bucket yolo-local-results-2",
        "service yolo-local-cluster/yolo-local-predictor",
    ] {
        assert!(has(&now, kept), "{kept} missing: {now:#?}");
    }

    // Told to, `up` deletes the renamed bucket with its objects; then nothing is left
    // to do.
    deployer(&moto, &["-f", &m1, "up", "--yes", "--delete-buckets"]).expect(0);
    assert!(!has(&held(&moto).await, "bucket yolo-local-results"));
    moto.clear_requests();
    deployer(&moto, &["-f", &m1, "up", "--yes"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());

    // The network the manifest names is gone: planning an `up` needs it and fails,
    // `down` does not and removes everything the stack owns (the serverless half
    // switched on again in the manifest, and off in AWS, changes nothing).
    let gone = edited(
        &base,
        "gone",
        &[
            (
                "    expire_after_days: 1\n",
                "    expire_after_days: 1\n    name: yolo-local-results-2\n",
            ),
            (
                "  wait_s: 0",
                "  network: {vpc_id: vpc-0123456789abcdef0, subnets: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]}\n  wait_s: 0",
            ),
        ],
    );
    let plan = deployer(&moto, &["-f", &gone, "plan"]);
    assert_ne!(plan.code, Some(0), "{}", plan.stderr);
    deployer(&moto, &["-f", &gone, "down", "--yes", "--delete-buckets"]).expect(0);
    assert_eq!(held(&moto).await, Vec::<String>::new());
    assert_eq!(remaining(&moto, &gone).await, Vec::<String>::new());
}
