//! The deployer against a real moto server: what `up` creates, that a second `up`
//! changes nothing, that drift is repaired, that foreign resources are never touched,
//! that an interrupted `up` converges, that `down` leaves nothing behind but the
//! emptied buckets, and `down --delete-buckets` nothing at all.

mod common;

use common::{Moto, Request, deployer, fake_digest, mutating, pinned_manifest, spawn_deployer};

const STACK: &str = "yolo-local";

/// The local stack with a prebuilt image: these tests are about the engine, not the build.
fn manifest() -> String {
    pinned_manifest(&fake_digest('a')).display().to_string()
}

/// Every resource of the local stack: 10 shared and IAM, 2 serverless, 11 serverful.
const RESOURCES: usize = 23;

/// Every resource in the emulator carrying `deployer:stack = STACK`, as `kind name`.
async fn tagged(moto: &Moto) -> Vec<String> {
    let conf = moto.sdk().await;
    let owned = |k: &str, v: &str| k == "deployer:stack" && v == STACK;
    let mut found = Vec::new();

    let ecr = aws_sdk_ecr::Client::new(&conf);
    for r in ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
    {
        let tags = ecr
            .list_tags_for_resource()
            .resource_arn(r.repository_arn().unwrap())
            .send()
            .await
            .unwrap();
        if tags.tags().iter().any(|t| owned(t.key(), t.value())) {
            found.push(format!("ecr {}", r.repository_name().unwrap()));
        }
    }
    let s3 = moto.s3().await;
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        let name = b.name().unwrap();
        if let Ok(t) = s3.get_bucket_tagging().bucket(name).send().await
            && t.tag_set().iter().any(|t| owned(t.key(), t.value()))
        {
            found.push(format!("s3 {name}"));
        }
    }
    let iam = aws_sdk_iam::Client::new(&conf);
    for r in iam.list_roles().send().await.unwrap().roles() {
        let tags = iam
            .list_role_tags()
            .role_name(r.role_name())
            .send()
            .await
            .unwrap();
        if tags.tags().iter().any(|t| owned(t.key(), t.value())) {
            found.push(format!("role {}", r.role_name()));
        }
    }
    for p in iam
        .list_instance_profiles()
        .send()
        .await
        .unwrap()
        .instance_profiles()
    {
        let full = iam
            .get_instance_profile()
            .instance_profile_name(p.instance_profile_name())
            .send()
            .await
            .unwrap();
        if full
            .instance_profile()
            .unwrap()
            .tags()
            .iter()
            .any(|t| owned(t.key(), t.value()))
        {
            found.push(format!("instance-profile {}", p.instance_profile_name()));
        }
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    for g in logs
        .describe_log_groups()
        .send()
        .await
        .unwrap()
        .log_groups()
    {
        let arn = g.arn().unwrap().trim_end_matches(":*");
        let tags = logs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        if tags
            .tags()
            .is_some_and(|t| t.iter().any(|(k, v)| owned(k, v)))
        {
            found.push(format!("log-group {}", g.log_group_name().unwrap()));
        }
    }
    found.sort();
    found
}

fn summary(requests: &[Request]) -> String {
    let m = mutating(requests).len();
    format!(
        "{} requests ({m} mutating, {} reads)",
        requests.len(),
        requests.len() - m
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn up_status_noop_down_round_trip() {
    let moto = Moto::start();
    let m = manifest();

    let plan = deployer(
        &moto,
        &["-f", &m, "plan", "--detailed-exitcode", "-o", "json"],
    )
    .expect(2);
    let planned = plan.json();
    assert_eq!(planned["summary"]["create"], RESOURCES, "{planned:#}");
    assert_eq!(
        mutating(&moto.requests()),
        Vec::<String>::new(),
        "plan must only read"
    );

    moto.clear_requests();
    let up = deployer(&moto, &["up", "-f", &m]).expect(0);
    let fresh = moto.requests();
    eprintln!("fresh up: {} in {:.2?}", summary(&fresh), up.elapsed);
    assert!(
        up.stdout
            .contains(&format!("up complete: {RESOURCES} changes")),
        "{}",
        up.stdout
    );

    // What AWS now holds, checked with the SDK, not with the deployer.
    let conf = moto.sdk().await;
    let ecr = aws_sdk_ecr::Client::new(&conf);
    let repo = ecr
        .describe_repositories()
        .repository_names("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert!(
        repo.repositories()[0]
            .image_scanning_configuration()
            .unwrap()
            .scan_on_push()
    );
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert!(
        lifecycle
            .lifecycle_policy_text()
            .unwrap()
            .contains("\"countNumber\":10")
    );
    let s3 = moto.s3().await;
    let enc = s3
        .get_bucket_encryption()
        .bucket("yolo-local-results")
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let block = s3
        .get_public_access_block()
        .bucket("yolo-local-input")
        .send()
        .await
        .unwrap();
    assert_eq!(
        block
            .public_access_block_configuration()
            .unwrap()
            .block_public_policy(),
        Some(true)
    );
    let iam = aws_sdk_iam::Client::new(&conf);
    let policy = iam
        .get_role_policy()
        .role_name("yolo-local-ecs-task")
        .policy_name("deployer")
        .send()
        .await
        .unwrap();
    let doc = policy.policy_document();
    assert!(
        doc.contains("yolo-local-input")
            && doc.contains("yolo-local-results")
            && !doc.contains("%22*%22")
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("yolo-local-ecs-instance")
        .send()
        .await
        .unwrap();
    assert!(
        attached.attached_policies()[0]
            .policy_arn()
            .unwrap()
            .ends_with("AmazonEC2ContainerServiceforEC2Role")
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/yolo-local")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));
    assert_eq!(tagged(&moto).await.len(), 10);

    let status = deployer(&moto, &["-f", &m, "status", "-o", "json"])
        .expect(0)
        .json();
    let states: Vec<&str> = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ok"; RESOURCES], "{status:#}");

    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);

    moto.clear_requests();
    let again = deployer(&moto, &["-f", &m, "up"]).expect(0);
    let noop = moto.requests();
    eprintln!("no-change up: {} in {:.2?}", summary(&noop), again.elapsed);
    assert_eq!(
        mutating(&noop),
        Vec::<String>::new(),
        "a second up must not change anything"
    );
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);

    // Objects in the buckets do not stop `down`.
    s3.put_object()
        .bucket("yolo-local-results")
        .key("r/1.jpg")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let down = deployer(&moto, &["-f", &m, "down", "--delete-buckets", "-o", "json"]).expect(0);
    assert_eq!(down.json()["ok"], true);
    assert_eq!(
        tagged(&moto).await,
        Vec::<String>::new(),
        "down --delete-buckets must leave nothing tagged"
    );
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());

    moto.clear_requests();
    deployer(&moto, &["-f", &m, "down", "--delete-buckets"]).expect(0);
    assert_eq!(
        mutating(&moto.requests()),
        Vec::<String>::new(),
        "a second down is a no-op"
    );
}

/// AWS keeps a deleted bucket's name from being re-created for hours (and anyone may
/// take it), so `down` empties the buckets and keeps them; `down --delete-buckets`
/// deletes them. Either way, the next `up` converges.
#[tokio::test(flavor = "multi_thread")]
async fn down_empties_and_keeps_the_buckets_unless_told_to_delete_them() {
    let moto = Moto::start();
    let m = manifest();
    let buckets = ["s3 yolo-local-input", "s3 yolo-local-results"];
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    let s3 = moto.s3().await;
    for key in ["r/1.jpg", "r/2.jpg"] {
        s3.put_object()
            .bucket("yolo-local-results")
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap();
    }

    let plan = deployer(&moto, &["-f", &m, "plan", "--destroy", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(plan["summary"]["empty"], 1, "{plan:#}");
    assert_eq!(plan["summary"]["delete"], RESOURCES - 2, "{plan:#}");
    let plan = deployer(
        &moto,
        &[
            "-f",
            &m,
            "plan",
            "--destroy",
            "--delete-buckets",
            "-o",
            "json",
        ],
    )
    .expect(0)
    .json();
    assert_eq!(plan["summary"]["empty"], 0, "{plan:#}");
    assert_eq!(plan["summary"]["delete"], RESOURCES, "{plan:#}");

    deployer(&moto, &["-f", &m, "down"]).expect(0);
    assert_eq!(tagged(&moto).await, buckets, "down keeps the buckets only");
    let left = s3
        .list_objects_v2()
        .bucket("yolo-local-results")
        .send()
        .await
        .unwrap();
    assert!(left.contents().is_empty(), "{left:?}");
    let repositories = aws_sdk_ecr::Client::new(&moto.sdk().await)
        .describe_repositories()
        .send()
        .await
        .unwrap();
    assert!(repositories.repositories().is_empty());

    // Kept and empty: nothing more to do.
    moto.clear_requests();
    deployer(&moto, &["-f", &m, "down"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());

    // The stack comes back on its own buckets.
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(tagged(&moto).await.len(), 10);

    deployer(&moto, &["-f", &m, "down", "--delete-buckets"]).expect(0);
    assert_eq!(tagged(&moto).await, Vec::<String>::new());
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());

    deployer(&moto, &["-f", &m, "up"]).expect(0);
    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(tagged(&moto).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_planned_field_by_field_and_repaired_with_only_those_calls() {
    let moto = Moto::start();
    let m = manifest();
    deployer(&moto, &["-f", &m, "up"]).expect(0);

    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk().await);
    logs.put_retention_policy()
        .log_group_name("/ecs/yolo-local-predictor")
        .retention_in_days(30)
        .send()
        .await
        .unwrap();

    let plan = deployer(
        &moto,
        &["-f", &m, "plan", "--detailed-exitcode", "-o", "json"],
    )
    .expect(2)
    .json();
    assert_eq!(plan["summary"]["update"], 1, "{plan:#}");
    let change = &plan["changes"][0];
    assert_eq!(change["name"], "/ecs/yolo-local-predictor");
    assert_eq!(change["fields"][0]["name"], "retention_days");
    assert_eq!(change["fields"][0]["from"], 30);
    assert_eq!(change["fields"][0]["to"], 14);

    moto.clear_requests();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), ["PutRetentionPolicy"]);
    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);
}

/// Settings the tool does not write (a port range, a UDP rule) are someone else's: never
/// drift, never revoked. A plan reads as text people write, never Rust's `Debug` (#15).
#[tokio::test(flavor = "multi_thread")]
async fn unmanaged_rules_are_left_alone_and_plans_read_as_text() {
    use aws_sdk_ec2::types as t;
    let moto = Moto::start();
    let conf = moto.sdk().await;
    let m = manifest();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let groups = ec2
        .describe_security_groups()
        .filters(
            t::Filter::builder()
                .name("group-name")
                .values("yolo-local-instances")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = groups.security_groups()[0].group_id().unwrap().to_string();
    let range = |protocol: &str, from: i32, to: i32| {
        t::IpPermission::builder()
            .ip_protocol(protocol)
            .from_port(from)
            .to_port(to)
            .ip_ranges(t::IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build()
    };
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(range("udp", 53, 53))
        .ip_permissions(range("tcp", 1000, 2000))
        .send()
        .await
        .unwrap();
    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);

    let ecs = aws_sdk_ecs::Client::new(&conf);
    ecs.update_capacity_provider()
        .name("yolo-local-capacity")
        .auto_scaling_group_provider(
            aws_sdk_ecs::types::AutoScalingGroupProviderUpdate::builder()
                .managed_scaling(
                    aws_sdk_ecs::types::ManagedScaling::builder()
                        .status(aws_sdk_ecs::types::ManagedScalingStatus::Enabled)
                        .target_capacity(90)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let plan = deployer(&moto, &["-f", &m, "plan"]).expect(0);
    assert!(
        plan.stdout.contains(
            "managed_scaling: target 90 %, termination protection on → target 100 %, \
             termination protection on"
        ),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("Some("), "{}", plan.stdout);
    moto.clear_requests();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), ["UpdateCapacityProvider"]);
    let groups = ec2
        .describe_security_groups()
        .group_ids(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups()[0].ip_permissions().len(), 3);
}

/// S3 replaces a bucket's whole lifecycle configuration at once: repairing this tool's
/// expiry rule keeps a rule someone else put on the bucket (#15).
#[tokio::test(flavor = "multi_thread")]
async fn repairing_the_expiry_rule_keeps_other_lifecycle_rules() {
    use aws_sdk_s3::types as t;
    let moto = Moto::start();
    let m = manifest();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    let s3 = aws_sdk_s3::Client::new(&moto.sdk().await);
    let bucket = "yolo-local-results";
    let rule = |id: &str, days: i32, prefix: &str| {
        t::LifecycleRule::builder()
            .id(id)
            .status(t::ExpirationStatus::Enabled)
            .filter(t::LifecycleRuleFilter::builder().prefix(prefix).build())
            .expiration(t::LifecycleExpiration::builder().days(days).build())
            .build()
            .unwrap()
    };
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            t::BucketLifecycleConfiguration::builder()
                .rules(rule("deployer-expire-results", 30, ""))
                .rules(rule("team-scratch", 2, "scratch/"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    deployer(&moto, &["-f", &m, "up"]).expect(0);
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut rules: Vec<(String, i32)> = rules
        .rules()
        .iter()
        .map(|r| {
            (
                r.id().unwrap().to_string(),
                r.expiration().unwrap().days().unwrap(),
            )
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            ("deployer-expire-results".to_string(), 1),
            ("team-scratch".to_string(), 2)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_without_the_stack_tag_are_never_modified_or_deleted() {
    let moto = Moto::start();
    let m = manifest();
    let s3 = moto.s3().await;
    s3.create_bucket()
        .bucket("yolo-local-input")
        .send()
        .await
        .unwrap();

    moto.clear_requests();
    let up = deployer(&moto, &["-f", &m, "up"]).expect(1);
    assert!(
        up.stderr.contains(
            "s3 bucket `yolo-local-input` exist without the tag `deployer:stack = yolo-local`"
        ),
        "{}",
        up.stderr
    );
    assert_eq!(
        mutating(&moto.requests()),
        Vec::<String>::new(),
        "a refused up changes nothing"
    );

    let plan = deployer(&moto, &["-f", &m, "plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("! s3 bucket `yolo-local-input` exists but is not tagged"),
        "{}",
        plan.stdout
    );

    moto.clear_requests();
    let down = deployer(&moto, &["-f", &m, "down"]).expect(0);
    assert!(down.stderr.contains("left alone"), "{}", down.stderr);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
    s3.head_bucket()
        .bucket("yolo-local-input")
        .send()
        .await
        .expect("the foreign bucket is still there");

    // Claimed explicitly, it becomes the stack's: tagged, configured, and deleted by
    // `down --delete-buckets`.
    deployer(&moto, &["-f", &m, "up", "--adopt"]).expect(0);
    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);
    let tags = s3
        .get_bucket_tagging()
        .bucket("yolo-local-input")
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "deployer:stack" && t.value() == STACK)
    );
    deployer(&moto, &["-f", &m, "down", "--delete-buckets"]).expect(0);
    assert!(
        s3.head_bucket()
            .bucket("yolo-local-input")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_up_converges_without_duplicates() {
    let moto = Moto::start();
    let m = manifest();
    // Kill `up` at several points of its run; each rerun must finish the job.
    for delay_ms in [30u64, 80, 150, 300, 400] {
        let mut child = spawn_deployer(&moto, &["-f", &m, "up"]);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no cleanup of any kind
        let _ = child.wait();
        let rerun = deployer(&moto, &["-f", &m, "up"]);
        if rerun.code == Some(1) {
            // The one window moto leaves open: it ignores the tags CreateBucket carries
            // (AWS applies them atomically), so a kill between CreateBucket and
            // PutBucketTagging leaves untagged buckets, which `up` refuses to touch
            // until the user claims them.
            let refusal = rerun.stderr.lines().next().unwrap_or_default().to_string();
            assert!(
                refusal.contains("exist without the tag")
                    && !refusal.contains("iam")
                    && !refusal.contains("ecr"),
                "{}",
                rerun.stderr
            );
            deployer(&moto, &["-f", &m, "up", "--adopt"]).expect(0);
        } else {
            rerun.expect(0);
        }
        deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);
        assert_eq!(
            tagged(&moto).await.len(),
            10,
            "after a kill at {delay_ms} ms"
        );
        // Buckets deleted too, so each kill can fall between CreateBucket and its tags.
        deployer(&moto, &["-f", &m, "down", "--delete-buckets"]).expect(0);
    }
    let conf = moto.sdk().await;
    let ecr = aws_sdk_ecr::Client::new(&conf);
    assert!(
        ecr.describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty()
    );
    let iam = aws_sdk_iam::Client::new(&conf);
    assert!(
        iam.list_instance_profiles()
            .send()
            .await
            .unwrap()
            .instance_profiles()
            .is_empty()
    );
}
