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
            "ec2 vcpu quota: the group may run 6 × `t3a.xlarge` = 24 vCPUs (max 5 and a spare for rollouts); Service Quotas did not give the `L-1216C47A` quota",
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

/// One call a recorded run made, as IAM sees it: the action, and the resource ARN where
/// the request names it plainly (`None`: the action alone is checked).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    action: String,
    resource: Option<String>,
}

const ACCOUNT: &str = "123456789012";

/// Every request moto recorded (its own recorder, `/moto-api/recorder/`), as IAM calls.
fn recorded_calls(moto: &Moto) -> Vec<Call> {
    let url = format!("{}/moto-api/recorder/download-recording", moto.endpoint);
    let answer = testkit::http("GET", &url, &[], &[]).unwrap();
    assert_eq!(answer.status, 200);
    String::from_utf8_lossy(&answer.body)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| call_of(&v))
        .collect()
}

/// Percent- (and form-) decoding.
fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 (moto's encoding of binary bodies).
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &d)| acc | u32::from(d) << (18 - 6 * i));
            [(n >> 16) as u8, (n >> 8) as u8, n as u8]
                .into_iter()
                .take(c.len().saturating_sub(1))
        })
        .collect()
}

/// The IAM action and resource of one recorded request.
fn call_of(v: &serde_json::Value) -> Option<Call> {
    let headers: BTreeMap<String, String> = v["headers"]
        .as_object()?
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    // The signing name is the service: `Credential=<key>/<date>/<region>/<service>/aws4_request`.
    let scope = headers.get("authorization")?.split("Credential=").nth(1)?;
    // `deployer`'s calls only (the harness signs with other keys).
    if scope.split('/').next()? != "testing" {
        return None;
    }
    let service = scope.split('/').nth(3)?.to_string();
    let prefix = match service.as_str() {
        "monitoring" => "cloudwatch".to_string(),
        // The Resource Groups Tagging API signs as `tagging`; IAM calls its actions `tag:`.
        "tagging" => "tag".to_string(),
        s => s.to_string(),
    };
    let method = v["method"].as_str()?.to_string();
    let url = v["url"].as_str()?;
    let after_host = url.splitn(4, '/').nth(3).unwrap_or_default();
    let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
    let path = format!("/{path}");
    let body = match (v["body"].as_str(), v["body_encoded"].as_bool()) {
        (Some(b), Some(true)) => String::from_utf8_lossy(&base64_decode(b)).into_owned(),
        (Some(b), _) => b.to_string(),
        _ => String::new(),
    };
    let form = |name: &str| {
        body.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| decode(k) == name)
            .map(|(_, v)| decode(v))
    };
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let arn =
        |service: &str, resource: &str| format!("arn:aws:{service}:us-east-1:{ACCOUNT}:{resource}");
    let (operation, resource) = if let Some(target) = headers.get("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        let resource = match prefix.as_str() {
            "logs" => json["logGroupName"]
                .as_str()
                .map(|g| arn("logs", &format!("log-group:{g}")))
                .or_else(|| json["resourceArn"].as_str().map(str::to_string)),
            "ecr" => json["repositoryName"]
                .as_str()
                .or_else(|| json["repositoryNames"][0].as_str())
                .map(|r| arn("ecr", &format!("repository/{r}")))
                .or_else(|| json["resourceArn"].as_str().map(str::to_string)),
            "ssm" => json["Name"]
                .as_str()
                .map(|n| format!("arn:aws:ssm:us-east-1::parameter{n}")),
            _ => None,
        };
        (op, resource)
    } else if let Some(action) = form("Action") {
        let resource = match prefix.as_str() {
            "iam" => form("InstanceProfileName")
                .map(|p| format!("arn:aws:iam::{ACCOUNT}:instance-profile/{p}"))
                .or_else(|| form("RoleName").map(|r| format!("arn:aws:iam::{ACCOUNT}:role/{r}")))
                .or_else(|| {
                    form("AWSServiceName")
                        .map(|s| format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/{s}/linked"))
                }),
            _ => None,
        };
        (action, resource)
    } else {
        match prefix.as_str() {
            "lambda" => lambda_call(&method, &path, query)?,
            "apigateway" => (
                method.clone(),
                Some(format!(
                    "arn:aws:apigateway:us-east-1::{}",
                    path.strip_prefix("/v2").unwrap_or(&path)
                )),
            ),
            "s3" => s3_call(&method, &path, query)?,
            _ => return None,
        }
    };
    Some(Call {
        action: format!("{prefix}:{operation}"),
        resource,
    })
}

/// Lambda's REST paths as IAM actions, on the function they name.
fn lambda_call(method: &str, path: &str, query: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let function = |name: &str| {
        let name = decode(name);
        let name = name.rsplit(':').next().unwrap_or(&name).to_string();
        format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
    };
    let op = match (method, &parts[1..]) {
        ("GET", ["account-settings"]) => return Some(("GetAccountSettings".into(), None)),
        ("POST", ["functions"]) => {
            return Some(("CreateFunction".into(), None));
        }
        ("POST", ["tags", arn]) => return Some(("TagResource".into(), Some(decode(arn)))),
        ("GET", ["tags", arn]) => return Some(("ListTags".into(), Some(decode(arn)))),
        ("GET", ["functions", _]) => "GetFunction",
        ("DELETE", ["functions", _]) => "DeleteFunction",
        ("GET", ["functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", ["functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", ["functions", _, "code"]) => "UpdateFunctionCode",
        ("GET", ["functions", _, "policy"]) => "GetPolicy",
        ("POST", ["functions", _, "policy"]) => "AddPermission",
        ("DELETE", ["functions", _, "policy", _]) => "RemovePermission",
        ("PUT", ["functions", _, "concurrency"]) => "PutFunctionConcurrency",
        ("DELETE", ["functions", _, "concurrency"]) => "DeleteFunctionConcurrency",
        ("GET", ["functions", _, "concurrency"]) => "GetFunctionConcurrency",
        ("POST", ["functions", _, "versions"]) => "PublishVersion",
        ("GET", ["functions", _, "versions"]) => "ListVersionsByFunction",
        ("GET", ["functions", _, "aliases", _]) => "GetAlias",
        ("GET", ["functions", _, "aliases"]) => "ListAliases",
        ("POST", ["functions", _, "aliases"]) => "CreateAlias",
        ("PUT", ["functions", _, "aliases", _]) => "UpdateAlias",
        ("DELETE", ["functions", _, "aliases", _]) => "DeleteAlias",
        ("GET", ["functions", _, "provisioned-concurrency"]) => "GetProvisionedConcurrencyConfig",
        ("PUT", ["functions", _, "provisioned-concurrency"]) => "PutProvisionedConcurrencyConfig",
        ("DELETE", ["functions", _, "provisioned-concurrency"]) => {
            "DeleteProvisionedConcurrencyConfig"
        }
        _ => panic!("an unmapped Lambda call: {method} {path}?{query}"),
    };
    Some((op.into(), Some(function(parts[2]))))
}

/// S3's REST calls (path style) as IAM actions, on the bucket or object they name.
fn s3_call(method: &str, path: &str, query: &str) -> Option<(String, Option<String>)> {
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let sub = query.split('&').next().unwrap_or_default();
    let sub = sub.split('=').next().unwrap_or_default();
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    if !key.is_empty() {
        let op = match method {
            "PUT" => "PutObject",
            "GET" | "HEAD" => "GetObject",
            "DELETE" => "DeleteObject",
            _ => panic!("an unmapped S3 object call: {method} {path}"),
        };
        return Some((op.into(), Some(format!("{bucket_arn}/{key}"))));
    }
    let op = match (method, sub) {
        ("HEAD", _) | ("GET", "list-type") | ("GET", "") => "ListBucket",
        ("PUT", "") => "CreateBucket",
        ("DELETE", "") => "DeleteBucket",
        ("GET", "tagging") => "GetBucketTagging",
        ("PUT", "tagging") => "PutBucketTagging",
        ("GET", "publicAccessBlock") => "GetBucketPublicAccessBlock",
        ("PUT", "publicAccessBlock") => "PutBucketPublicAccessBlock",
        ("GET", "encryption") => "GetEncryptionConfiguration",
        ("PUT", "encryption") => "PutEncryptionConfiguration",
        ("GET", "lifecycle") => "GetLifecycleConfiguration",
        ("PUT", "lifecycle") | ("DELETE", "lifecycle") => "PutLifecycleConfiguration",
        ("GET", "policy") => "GetBucketPolicy",
        ("PUT", "policy") => "PutBucketPolicy",
        ("DELETE", "policy") => "DeleteBucketPolicy",
        ("GET", "location") => "GetBucketLocation",
        // DeleteObjects is authorised as DeleteObject on each key.
        ("POST", "delete") => {
            return Some(("DeleteObject".into(), Some(format!("{bucket_arn}/*"))));
        }
        _ => panic!("an unmapped S3 bucket call: {method} /{path}?{query}"),
    };
    Some((op.into(), Some(bucket_arn)))
}

/// IAM's wildcard match (`*` any run, `?` one character).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => {
            pattern.len() == text.len()
                && pattern
                    .chars()
                    .zip(text.chars())
                    .all(|(p, t)| p == '?' || p == t)
        }
        Some((head, rest)) => {
            text.len() >= head.len()
                && glob(head, &text[..head.len()])
                && (head.len()..=text.len()).any(|i| glob(rest, &text[i..]))
        }
    }
}

/// Whether an Allow statement of `policy` covers `call` (conditions are not evaluated).
fn allowed(policy: &serde_json::Value, call: &Call) -> bool {
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        let list = |k: &str| -> Vec<String> {
            s[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        list("Action").iter().any(|a| glob(a, &call.action))
            && call
                .resource
                .as_ref()
                .is_none_or(|r| list("Resource").iter().any(|p| glob(p, r)))
    })
}

/// Actions in the policy that the recorded runs never make, each with why.
const NOT_SEEN_BY_MOTO: &[(&str, &str)] = &[
    // Authorisations without a call of their own.
    (
        "iam:PassRole",
        "CreateFunction, RegisterTaskDefinition and CreateLaunchTemplate pass the stack's roles",
    ),
    (
        "ec2:RunInstances",
        "CreateAutoScalingGroup with a launch template runs instances as its caller",
    ),
    ("ecr:TagResource", "CreateRepository with tags"),
    ("iam:TagRole", "CreateRole with tags"),
    ("iam:TagInstanceProfile", "CreateInstanceProfile with tags"),
    ("logs:TagResource", "CreateLogGroup with tags"),
    ("lambda:TagResource", "CreateFunction with tags"),
    (
        "ec2:CreateTags",
        "CreateSecurityGroup and CreateLaunchTemplate with tags",
    ),
    (
        "autoscaling:CreateOrUpdateTags",
        "CreateAutoScalingGroup with tags",
    ),
    (
        "ecs:TagResource",
        "CreateCluster, CreateCapacityProvider, CreateService with tags",
    ),
    (
        "elasticloadbalancing:AddTags",
        "CreateLoadBalancer and CreateTargetGroup with tags",
    ),
    // The image registry is not moto's (the tests' registry is Debian's, and this
    // manifest deploys a prebuilt image).
    (
        "ecr:BatchGetImage",
        "the registry API: reading an image's manifest",
    ),
    (
        "ecr:GetDownloadUrlForLayer",
        "the registry API: reading an image's config",
    ),
    (
        "ecr:BatchCheckLayerAvailability",
        "the registry API: the push's blob checks",
    ),
    // Calls moto does not answer or this run cannot reach.
    (
        "lambda:GetAccountSettings",
        "`check`: moto does not implement it",
    ),
    ("cloudwatch:GetMetricData", "`bench` on AWS"),
    (
        "s3:GetObject",
        "`bench` and `predict` check an uploaded photo",
    ),
    ("s3:PutObject", "`bench` and `predict` upload photos"),
    (
        "ecs:ListTasks",
        "the rollout wait (`wait_s: 0` here: moto runs no task)",
    ),
    ("ecs:DescribeTasks", "the rollout wait's stopped tasks"),
    // Repairs of drift made outside the tool, and removals of what earlier versions made.
    (
        "iam:UpdateAssumeRolePolicy",
        "a role's trust policy changed outside",
    ),
    (
        "ecr:PutImageTagMutability",
        "the repository's tag mutability changed outside",
    ),
    (
        "elasticloadbalancing:SetSecurityGroups",
        "the load balancer's groups changed outside",
    ),
    (
        "elasticloadbalancing:ModifyListener",
        "the listener's target changed outside",
    ),
    (
        "ecs:UpdateCapacityProvider",
        "the provider's managed scaling changed outside",
    ),
    (
        "autoscaling:DeletePolicy",
        "the CPU policy earlier versions put on the group",
    ),
    (
        "lambda:DeleteAlias",
        "provisioned concurrency an earlier manifest set",
    ),
    (
        "lambda:DeleteProvisionedConcurrencyConfig",
        "provisioned concurrency an earlier manifest set",
    ),
];

/// `manifest()` with every setting `up` can change changed: the image, the function's
/// memory, timeout and reservation, the instance type, container insights, the load
/// balancer's health path and CIDRs, the subnets, a public results bucket, scanning.
fn changed_manifest(subnets: &[String]) -> String {
    let path = pinned_manifest(&fake_digest('b')).display().to_string();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        (
            "  memory_mb: 3000\n  timeout_s: 30\n",
            "  memory_mb: 2048\n  timeout_s: 29\n  reserved_concurrency: 5\n".to_string(),
        ),
        (
            "  instance_type: t3a.xlarge\n",
            format!(
                "  instance_type: t3.xlarge\n  container_insights: true\n  load_balancer: {{port: 80, health_path: /healthz, cidrs: [10.0.0.0/8]}}\n  network:\n    subnets: [{}]\n",
                subnets.join(", ")
            ),
        ),
        (
            "    expire_after_days: 1\n",
            "    expire_after_days: 1\n    public: true\n".to_string(),
        ),
    ] {
        assert!(
            text.contains(from),
            "manifests/local.yaml changed: no {from:?}"
        );
        text = text.replacen(from, &to, 1);
    }
    let image = text.find("  uri: ").unwrap();
    text.insert_str(image, "  scan_on_push: false\n  keep_last: 3\n");
    let file = format!("{path}.changed.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_allows_every_call_of_a_recorded_run_and_no_other() {
    let moto = Moto::start();
    let m = manifest();
    let zones = subnet_zones(&moto).await;
    let three: Vec<String> = zones
        .iter()
        .filter(|(_, z)| ["us-east-1a", "us-east-1b", "us-east-1c"].contains(&z.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    let changed = changed_manifest(&three);
    // The changed manifest asks for more (a reservation): its policy covers both.
    let printed = deployer(&moto, &["-f", &changed, "policy"]).expect(0);
    let policy: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
    moto.clear_requests();

    let input = "yolo-local-input";
    for (file, args) in [
        (&m, &["check"][..]),
        (&m, &["plan"]),
        (&m, &["up", "--yes"]),
        (&m, &["status"]),
        (&changed, &["up", "--yes"]),
        (&m, &["up", "--yes"]),
        (&m, &["logs", "--since", "1h"]),
        (&m, &["down", "--yes", "--delete-buckets"]),
    ] {
        if args == ["down", "--yes", "--delete-buckets"] {
            // Something for `down` to empty (the harness's own key: not recorded as ours).
            moto.s3()
                .await
                .put_object()
                .bucket(input)
                .key("photo.jpg")
                .body(b"jpeg".to_vec().into())
                .send()
                .await
                .unwrap();
        }
        let mut all = vec!["-f", file.as_str()];
        all.extend(args);
        deployer(&moto, &all).expect(0);
    }
    let calls = recorded_calls(&moto);
    assert!(calls.len() > 100, "{} calls", calls.len());
    let denied: BTreeSet<&Call> = calls
        .iter()
        // Needs no permission (STS: "no permissions are required").
        .filter(|c| c.action != "sts:GetCallerIdentity")
        .filter(|c| !allowed(&policy, c))
        .collect();
    assert!(denied.is_empty(), "not allowed by the policy: {denied:#?}");

    let used: BTreeSet<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    let in_policy: BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let unused: Vec<&String> = in_policy
        .iter()
        .filter(|a| !used.contains(a.as_str()))
        .filter(|a| !NOT_SEEN_BY_MOTO.iter().any(|(n, _)| n == a))
        .collect();
    assert!(
        unused.is_empty(),
        "in the policy but never called: {unused:#?}"
    );
    eprintln!(
        "{} calls recorded, {} distinct actions; the policy: {} actions, {} not seen by moto",
        calls.len(),
        used.len(),
        in_policy.len(),
        NOT_SEEN_BY_MOTO.len()
    );
}

#[test]
fn without_an_answering_endpoint_check_stops_at_the_credentials_and_fails() {
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    let output = common::deployer_command(&["-f", &manifest(), "check", "-o", "json"])
        .env("AWS_ENDPOINT_URL", &closed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["ok"], false);
    let checks = out["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{out:#}");
    assert_eq!(checks[0]["check"], "credentials");
    assert_eq!(checks[0]["status"], "problem");
    assert_eq!(
        checks[0]["message"],
        format!("nothing answers at `{closed}` (`AWS_ENDPOINT_URL`)")
    );
    assert!(checks[0]["hint"].as_str().is_some(), "{out:#}");
    assert_eq!(checks[1]["status"], "not_checked");
}

/// The account's vCPU quota for standard on-demand instances, read from Service Quotas
/// (moto knows only VPC quotas: the proxy answers `GetServiceQuota` as AWS does), against
/// what the group may run: 6 × t3a.xlarge = 24 vCPUs for the study's 1..5 and its spare.
#[test]
fn the_vcpu_quota_is_read_and_compared_with_what_the_group_may_run() {
    use testkit::proxy::{Behaviour, Proxy};
    let moto = Moto::start();
    let proxy = Proxy::start(common::moto_host(&moto));
    let m = manifest();
    let check = |quota: u32| {
        proxy.set(Behaviour {
            ec2_vcpu_quota: Some(quota),
            ..Behaviour::default()
        });
        let run = common::via(&proxy, &["-f", &m, "check", "-o", "json"]);
        (run.code, run.json())
    };
    // A new account's 16 vCPUs: not enough.
    let (code, out) = check(16);
    assert_eq!(code, Some(1), "{out:#}");
    let problems = findings(&out, "problem");
    assert_eq!(
        problems,
        [
            "ec2 vcpu quota: the group may run 6 × `t3a.xlarge` = 24 vCPUs (max 5 and a spare for \
          rollouts), but the account's `Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) \
          instances` quota is 16 vCPUs"
        ],
        "{out:#}"
    );
    let hint = out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "problem")
        .unwrap()["hint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(hint.contains("--desired-value 24"), "{hint}");
    // Exactly enough.
    let (code, out) = check(24);
    assert_eq!(code, Some(0), "{out:#}");
    assert!(
        findings(&out, "ok").contains(
            &"ec2 vcpu quota: the group may run 6 × `t3a.xlarge` = 24 vCPUs (max 5 and a spare \
              for rollouts); the quota is 24 vCPUs"
                .to_string()
        ),
        "{out:#}"
    );
}
