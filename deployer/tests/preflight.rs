//! Before a first run on a real account: the Auto Scaling group's subnets leave out the
//! zones that do not offer the instance type (moto's offerings data, like AWS's, has no
//! t3a in us-east-1e), `deployer check` reads and never writes, and `deployer policy`
//! allows every call a recorded `up`/`status`/`logs`/`down` makes and nothing they do not.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Moto, deployer, fake_digest, mutating, pinned_manifest};

/// The local stack with a prebuilt image: these tests are about the calls, not the build.
fn manifest() -> String {
    pinned_manifest(&fake_digest('a')).display().to_string()
}

/// The zone of every subnet of the emulator's default VPC, by id.
async fn subnet_zones(moto: &Moto) -> BTreeMap<String, String> {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk().await);
    ec2.describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .map(|s| {
            (
                s.subnet_id().unwrap().to_string(),
                s.availability_zone().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_group_leaves_out_zones_without_the_instance_type() {
    let moto = Moto::start();
    let m = manifest();
    deployer(&moto, &["-f", &m, "up", "--yes"]).expect(0);

    let zones = subnet_zones(&moto).await;
    let conf = moto.sdk().await;
    let asg = aws_sdk_autoscaling::Client::new(&conf);
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    let group = &groups.auto_scaling_groups()[0];
    let group_zones: BTreeSet<&str> = group
        .vpc_zone_identifier()
        .unwrap()
        .split(',')
        .map(|s| zones[s].as_str())
        .collect();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let lb_zones: BTreeSet<&str> = lbs.load_balancers()[0]
        .availability_zones()
        .iter()
        .map(|z| z.zone_name().unwrap())
        .collect();

    // The emulator's default VPC has a subnet in us-east-1e, as AWS's does; the load
    // balancer may use it, the instances may not.
    assert!(lb_zones.contains("us-east-1e"), "{lb_zones:?}");
    assert!(!group_zones.contains("us-east-1e"), "{group_zones:?}");
    assert_eq!(
        group_zones,
        lb_zones
            .iter()
            .copied()
            .filter(|z| *z != "us-east-1e")
            .collect(),
        "every other zone keeps its subnet"
    );
}

/// The pinned local stack with `serverful:` lines replaced: `instance_type` and the
/// subnets it runs in.
fn manifest_with(instance_type: &str, subnets: &[&str]) -> String {
    let path = manifest();
    let text = std::fs::read_to_string(&path).unwrap();
    let line = "  instance_type: t3a.xlarge\n";
    assert!(
        text.contains(line),
        "manifests/local.yaml changed its serverful block"
    );
    let text = text.replace(
        line,
        &format!(
            "  instance_type: {instance_type}\n  network:\n    subnets: [{}]\n",
            subnets.join(", ")
        ),
    );
    let file = format!("{path}.{instance_type}.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The findings of `check -o json` with `status`, as `check: message`.
fn findings(out: &serde_json::Value, status: &str) -> Vec<String> {
    out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| {
            format!(
                "{}: {}",
                c["check"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_subnet_in_a_zone_with_the_instance_type_is_refused_before_any_write() {
    let moto = Moto::start();
    // c5d.12xlarge is offered in us-east-1a to c only (moto's offerings data).
    let zones = subnet_zones(&moto).await;
    let pick = |zone: &str| {
        zones
            .iter()
            .find(|(_, z)| *z == zone)
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    let (d, e) = (pick("us-east-1d"), pick("us-east-1e"));
    let m = manifest_with("c5d.12xlarge", &[&d, &e]);

    let plan = deployer(&moto, &["-f", &m, "plan"]).expect(1);
    assert!(
        plan.stderr
            .contains("`c5d.12xlarge` is not offered in any availability zone of the subnets"),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr
            .contains("\nhint: set `serverful.network.subnets`"),
        "{}",
        plan.stderr
    );

    let check = deployer(&moto, &["-f", &m, "check"]).expect(1);
    assert!(
        check.stdout.contains(
            "problem      network: ec2:DescribeInstanceTypeOfferings: `c5d.12xlarge` is not offered"
        ),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("             hint: set `serverful.network.subnets`"),
        "{}",
        check.stdout
    );
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_only_and_says_what_it_found() {
    let moto = Moto::start();
    let m = manifest();

    // A fresh account: everything free, the service-linked roles missing (warnings).
    let fresh = deployer(&moto, &["-f", &m, "check", "-o", "json"]).expect(0);
    assert_eq!(
        mutating(&moto.requests()),
        Vec::<String>::new(),
        "check must only read"
    );
    let out = fresh.json();
    assert_eq!(out["ok"], true, "{out:#}");
    assert_eq!(out["account"], "123456789012");
    let ok = findings(&out, "ok");
    for expected in [
        "credentials: `arn:aws:sts::123456789012:user/moto`",
        "instance type: `t3a.xlarge` is offered in 5 of `us-east-1`'s 6 zones (not in `us-east-1e`: the Auto Scaling group leaves their subnets out)",
        "bucket: `yolo-local-input` is free",
        "bucket: `yolo-local-results` is free",
    ] {
        assert!(
            ok.iter().any(|f| f == expected),
            "{expected} not in {ok:#?}"
        );
    }
    assert!(
        ok.iter().any(|f| f.starts_with("network: VPC `vpc-")
            && f.ends_with("the load balancer in 6 subnet(s), the instances in 5 (left out: the subnets in `us-east-1e`)")),
        "{ok:#?}"
    );
    assert_eq!(findings(&out, "warning").len(), 3, "{out:#}");
    let not_checked = findings(&out, "not_checked");
    assert_eq!(
        not_checked,
        [
            "ec2 vcpu quota: the group may run 6 × `t3a.xlarge` = 24 vCPUs (max 5 and a spare for rollouts); the quota `Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances` (L-1216C47A) is not read by this tool",
            "lambda quotas: the endpoint does not implement `lambda:GetAccountSettings`",
        ]
    );

    // After `up`: the buckets are the stack's, ECS's linked role exists.
    deployer(&moto, &["-f", &m, "up", "--yes"]).expect(0);
    moto.clear_requests();
    let after = deployer(&moto, &["-f", &m, "check", "-o", "json"])
        .expect(0)
        .json();
    let ok = findings(&after, "ok");
    assert!(
        ok.contains(&"bucket: `yolo-local-input` is this stack's".to_string()),
        "{ok:#?}"
    );
    assert!(
        ok.contains(&"service-linked role: `AWSServiceRoleForECS` exists".to_string()),
        "{ok:#?}"
    );
    assert_eq!(
        mutating(&moto.requests()),
        Vec::<String>::new(),
        "check must only read"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_name_held_without_the_stack_tag_is_a_problem_with_a_hint() {
    let moto = Moto::start();
    let m = manifest();
    moto.s3()
        .await
        .create_bucket()
        .bucket("yolo-local-input")
        .send()
        .await
        .unwrap();
    moto.clear_requests();

    let run = deployer(&moto, &["-f", &m, "check"]).expect(1);
    assert!(
        run.stdout.contains(
            "problem      bucket: `yolo-local-input` exists in this account without the tag `deployer:stack = yolo-local`: `up` refuses to touch it\n             hint: if it is this stack's, `up --adopt` claims it; otherwise set `buckets.input.name` to another name\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("1 problem(s), 3 warning(s), 2 not checked\n"),
        "{}",
        run.stdout
    );
    let json = deployer(&moto, &["-f", &m, "check", "-o", "json"])
        .expect(1)
        .json();
    assert_eq!(json["ok"], false);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
}
