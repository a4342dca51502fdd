//! `deployer policy`: the IAM policy the principal running `deployer` needs for this
//! manifest: every action `up`, `down`, `status`, `plan`, `check`, `logs`, `bench` and
//! `predict` call, on the stack's own resources (its names, this account, region and
//! partition) wherever AWS lets an action be scoped, and on `*` only where it does not
//! (the Describe and List calls, task definitions, the registry login). Tested against
//! the calls a recorded run against the emulator makes (`tests/preflight.rs`).

use serde_json::{Value, json};

use crate::aws::Aws;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::output::Format;
use crate::stack::{Account, ECS_INSTANCE_POLICY};

/// Prints the policy document (pretty JSON either way: it is the data).
pub async fn run(aws: &Aws, m: &Manifest, _format: Format) -> Result<u8, Error> {
    let account = Account {
        id: aws.account().await?.to_string(),
        partition: aws.partition().to_string(),
        region: m.region.clone(),
    };
    let doc = document(m, &account);
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    let size = size(&doc);
    if size > MANAGED_POLICY_CHARS {
        // Where it fits decides how to apply it: said once, on stderr (stdout is the document).
        eprintln!(
            "note: the policy is {size} characters without whitespace: over a managed policy's \
             {MANAGED_POLICY_CHARS}, {} a role's inline policies' {ROLE_INLINE_CHARS}; attach it \
             to a role with `aws iam put-role-policy` (README, \"On real AWS\")",
            if size > ROLE_INLINE_CHARS {
                "and over"
            } else {
                "within"
            }
        );
    }
    Ok(0)
}

/// IAM's limits, in characters without whitespace (IAM User Guide, IAM and STS quotas).
pub const MANAGED_POLICY_CHARS: usize = 6144;
pub const ROLE_INLINE_CHARS: usize = 10240;

/// A document's size as IAM counts it: its characters, whitespace outside strings not
/// counted (the document's own strings hold none).
pub fn size(doc: &Value) -> usize {
    serde_json::to_string(doc).unwrap_or_default().len()
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources})
}

fn with_condition(mut s: Value, condition: Value) -> Value {
    s["Condition"] = condition;
    s
}

/// The policy document for `m` in `account`. It covers both targets whatever the
/// manifest enables: `up` deletes a target switched off, and `down` everything the
/// stack owns, so each needs to read and delete what the other target would create.
pub fn document(m: &Manifest, account: &Account) -> Value {
    let mut shape = m.clone();
    shape.serverful.enabled = true;
    shape.serverless.enabled = true;
    let m = &shape;
    let mut statements = Vec::new();
    statements.extend(reads(m, account));
    statements.extend(inventory(m, account));
    statements.extend(repository(m, account));
    statements.extend(buckets(m, account));
    statements.extend(roles(m, account));
    statements.extend(log_groups(m, account));
    if m.serverless.enabled {
        statements.extend(serverless(m, account));
    }
    if m.serverful.enabled {
        statements.extend(serverful(m, account));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Reads AWS does not scope to a resource (or scopes only to `*`).
fn reads(m: &Manifest, _account: &Account) -> Vec<Value> {
    let any = || vec!["*".to_string()];
    let mut statements = Vec::new();
    let mut reads = vec!["iam:ListRoles"];
    if m.image.registry.is_none() {
        // The registry login: AWS requires `*`.
        reads.push("ecr:GetAuthorizationToken");
    }
    if m.serverless.enabled {
        reads.push("lambda:GetAccountSettings");
    }
    if m.serverful.enabled {
        reads.extend([
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeInstanceTypeOfferings",
            // `check`: the vCPU quota of standard on-demand instances.
            "servicequotas:GetServiceQuota",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribeLaunchTemplateVersions",
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribePolicies",
            "ecs:DescribeCapacityProviders",
            "ecs:DescribeTaskDefinition",
            "ecs:ListTaskDefinitions",
            "ecs:ListTasks",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetHealth",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeTags",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            // `bench` on AWS: the run's CloudWatch figures.
            "cloudwatch:GetMetricData",
        ]);
    } else if m.serverless.enabled {
        reads.push("cloudwatch:GetMetricData");
    }
    statements.push(statement("ReadsAwsScopesToAll", &reads, any()));
    statements
}

/// The stack's inventory: its buckets by tag (one call for the region), and every
/// repository's tags (ECR has no tag filter), for what a renamed setting left behind.
fn inventory(_m: &Manifest, account: &Account) -> Vec<Value> {
    let (p, r, a) = (&account.partition, &account.region, &account.id);
    let any = || vec!["*".to_string()];
    let mut statements = Vec::new();
    statements.push(statement("InventoryByTag", &["tag:GetResources"], any()));
    statements.push(statement(
        "InventoryOfRepositories",
        &["ecr:DescribeRepositories", "ecr:ListTagsForResource"],
        vec![format!("arn:{p}:ecr:{r}:{a}:repository/*")],
    ));
    statements
}

/// The image repository and its registry.
fn repository(m: &Manifest, account: &Account) -> Vec<Value> {
    let n = m.names();
    let (p, r, a) = (&account.partition, &account.region, &account.id);
    let mut statements = Vec::new();
    let repository = format!("arn:{p}:ecr:{r}:{a}:repository/{}", n.repository);
    statements.push(statement(
        "Repository",
        &[
            "ecr:CreateRepository",
            "ecr:DescribeRepositories",
            "ecr:DeleteRepository",
            "ecr:ListTagsForResource",
            "ecr:TagResource",
            "ecr:PutImageScanningConfiguration",
            "ecr:PutImageTagMutability",
            "ecr:GetLifecyclePolicy",
            "ecr:PutLifecyclePolicy",
            "ecr:GetRepositoryPolicy",
            "ecr:SetRepositoryPolicy",
        ],
        vec![repository.clone()],
    ));
    if m.image.registry.is_none() {
        let mut registry = vec![
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        ];
        if m.image.uri.is_none() {
            registry.extend([
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage",
            ]);
        }
        statements.push(statement(
            "RegistryPushAndRead",
            &registry,
            vec![repository],
        ));
    }
    statements
}

/// The buckets, and their objects (`down` empties them; `bench` and `predict` upload
/// photos to the input bucket).
fn buckets(m: &Manifest, account: &Account) -> Vec<Value> {
    let n = m.names();
    let p = &account.partition;
    let mut statements = Vec::new();
    let buckets = [&n.input_bucket, &n.output_bucket];
    statements.push(statement(
        "Buckets",
        &[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:ListBucket",
            "s3:GetBucketTagging",
            "s3:PutBucketTagging",
            "s3:GetBucketPublicAccessBlock",
            "s3:PutBucketPublicAccessBlock",
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:GetBucketPolicy",
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
        ],
        buckets
            .iter()
            .map(|b| format!("arn:{p}:s3:::{b}"))
            .collect(),
    ));
    statements.push(statement(
        "EmptyBuckets",
        &["s3:DeleteObject"],
        buckets
            .iter()
            .map(|b| format!("arn:{p}:s3:::{b}/*"))
            .collect(),
    ));
    statements.push(statement(
        "UploadPhotos",
        &["s3:PutObject", "s3:GetObject"],
        vec![format!("arn:{p}:s3:::{}/*", n.input_bucket)],
    ));
    statements
}

/// The roles and instance profile, and passing them to the services that run as them.
fn roles(m: &Manifest, account: &Account) -> Vec<Value> {
    let n = m.names();
    let (p, a) = (&account.partition, &account.id);
    let mut statements = Vec::new();
    let role = |name: &str| format!("arn:{p}:iam::{a}:role/{name}");
    let mut roles = Vec::new();
    let mut passed_to = Vec::new();
    if m.serverless.enabled {
        roles.push(role(&n.lambda_role));
        passed_to.push("lambda.amazonaws.com");
    }
    if m.serverful.enabled {
        roles.extend([
            role(&n.task_execution_role),
            role(&n.task_role),
            role(&n.instance_role),
        ]);
        passed_to.extend(["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]);
    }
    let mut role_resources = roles.clone();
    if m.serverful.enabled {
        role_resources.push(format!(
            "arn:{p}:iam::{a}:instance-profile/{}",
            n.instance_profile
        ));
    }
    statements.push(statement(
        "Roles",
        &[
            "iam:CreateRole",
            "iam:GetRole",
            "iam:DeleteRole",
            "iam:TagRole",
            "iam:ListRoleTags",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
            "iam:ListInstanceProfilesForRole",
            "iam:CreateInstanceProfile",
            "iam:GetInstanceProfile",
            "iam:DeleteInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
        ],
        role_resources,
    ));
    if m.serverful.enabled {
        statements.push(with_condition(
            statement(
                "AttachOnlyTheEcsAgentPolicy",
                &["iam:AttachRolePolicy"],
                vec![role(&n.instance_role)],
            ),
            json!({"ArnEquals": {"iam:PolicyARN": format!("arn:{p}:iam::aws:{ECS_INSTANCE_POLICY}")}}),
        ));
    }
    statements.push(with_condition(
        statement("PassRoles", &["iam:PassRole"], roles),
        json!({"StringEquals": {"iam:PassedToService": passed_to}}),
    ));
    if m.serverful.enabled {
        // ECS's is created by `up`; AWS creates the others on the first group, load
        // balancer and scalable target, as the caller.
        let linked = [
            "ecs.amazonaws.com",
            "autoscaling.amazonaws.com",
            "elasticloadbalancing.amazonaws.com",
            "ecs.application-autoscaling.amazonaws.com",
        ];
        statements.push(with_condition(
            statement(
                "ServiceLinkedRoles",
                &["iam:CreateServiceLinkedRole"],
                linked
                    .iter()
                    .map(|s| format!("arn:{p}:iam::{a}:role/aws-service-role/{s}/*"))
                    .collect(),
            ),
            json!({"StringEquals": {"iam:AWSServiceName": linked}}),
        ));
    }
    statements
}

/// The log groups (`logs` and `bench` read them).
fn log_groups(m: &Manifest, account: &Account) -> Vec<Value> {
    let n = m.names();
    let (p, r, a) = (&account.partition, &account.region, &account.id);
    let mut statements = Vec::new();
    let mut groups = Vec::new();
    if m.serverless.enabled {
        groups.push(&n.lambda_log_group);
    }
    if m.serverful.enabled {
        groups.push(&n.ecs_log_group);
    }
    statements.push(statement(
        "LogGroups",
        &[
            "logs:DescribeLogGroups",
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:TagResource",
            "logs:ListTagsForResource",
            "logs:FilterLogEvents",
        ],
        groups
            .iter()
            .flat_map(|g| {
                [
                    format!("arn:{p}:logs:{r}:{a}:log-group:{g}"),
                    format!("arn:{p}:logs:{r}:{a}:log-group:{g}:*"),
                ]
            })
            .collect(),
    ));
    statements
}

/// The function and its HTTP API.
fn serverless(m: &Manifest, account: &Account) -> Vec<Value> {
    let n = m.names();
    let (p, r, a) = (&account.partition, &account.region, &account.id);
    let function = format!("arn:{p}:lambda:{r}:{a}:function:{}", n.function);
    let mut actions = vec![
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionConfiguration",
        "lambda:UpdateFunctionCode",
        "lambda:DeleteFunction",
        "lambda:TagResource",
        "lambda:GetPolicy",
        "lambda:AddPermission",
        "lambda:RemovePermission",
        // Removing what an earlier manifest asked for: a reservation, provisioned
        // concurrency (the alias is looked for on every run).
        "lambda:DeleteFunctionConcurrency",
        "lambda:GetAlias",
        "lambda:DeleteAlias",
        "lambda:DeleteProvisionedConcurrencyConfig",
    ];
    if m.serverless.reserved_concurrency.is_some() {
        actions.push("lambda:PutFunctionConcurrency");
    }
    if m.serverless.provisioned_concurrency.is_some() {
        actions.extend([
            "lambda:PublishVersion",
            "lambda:CreateAlias",
            "lambda:UpdateAlias",
            "lambda:GetProvisionedConcurrencyConfig",
            "lambda:PutProvisionedConcurrencyConfig",
        ]);
    }
    // HTTP APIs are named by an id AWS picks: the account's APIs in the region.
    let api = |path: &str| format!("arn:{p}:apigateway:{r}::{path}");
    vec![
        statement(
            "Function",
            &actions,
            vec![function.clone(), format!("{function}:*")],
        ),
        statement(
            "HttpApi",
            &[
                "apigateway:GET",
                "apigateway:POST",
                "apigateway:PATCH",
                "apigateway:DELETE",
            ],
            vec![api("/apis"), api("/apis/*"), api("/tags/*")],
        ),
    ]
}

/// The network, instances, cluster, load balancer and service.
fn serverful(m: &Manifest, account: &Account) -> Vec<Value> {
    let n = m.names();
    let (p, r, a) = (&account.partition, &account.region, &account.id);
    let ec2 = |t: &str| format!("arn:{p}:ec2:{r}:{a}:{t}/*");
    let ecs = |t: &str| format!("arn:{p}:ecs:{r}:{a}:{t}");
    let elb = |t: &str| format!("arn:{p}:elasticloadbalancing:{r}:{a}:{t}");
    vec![
        // Security groups and launch templates are named by ids EC2 picks.
        statement(
            "SecurityGroups",
            &[
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:CreateTags",
            ],
            vec![ec2("security-group"), ec2("vpc")],
        ),
        statement(
            "LaunchTemplate",
            &[
                "ec2:CreateLaunchTemplate",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:ModifyLaunchTemplate",
                "ec2:DeleteLaunchTemplate",
                "ec2:CreateTags",
            ],
            vec![ec2("launch-template")],
        ),
        // An Auto Scaling group launches from a template as its creator: the creator
        // must be allowed to run what the template describes.
        statement(
            "LaunchFromTheTemplate",
            &["ec2:RunInstances"],
            vec![
                format!("arn:{p}:ec2:{r}:{a}:*"),
                format!("arn:{p}:ec2:{r}::image/*"),
            ],
        ),
        statement(
            "EcsAmiParameter",
            &["ssm:GetParameter"],
            vec![format!(
                "arn:{p}:ssm:{r}::parameter/aws/service/ecs/optimized-ami/*"
            )],
        ),
        statement(
            "AutoScalingGroup",
            &[
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:SetInstanceProtection",
                "autoscaling:DeletePolicy",
            ],
            vec![format!(
                "arn:{p}:autoscaling:{r}:{a}:autoScalingGroup:*:autoScalingGroupName/{}",
                n.auto_scaling_group
            )],
        ),
        statement(
            "Cluster",
            &[
                "ecs:CreateCluster",
                "ecs:DescribeClusters",
                "ecs:UpdateCluster",
                "ecs:DeleteCluster",
                "ecs:PutClusterCapacityProviders",
                "ecs:CreateCapacityProvider",
                "ecs:UpdateCapacityProvider",
                "ecs:DeleteCapacityProvider",
                "ecs:CreateService",
                "ecs:DescribeServices",
                "ecs:UpdateService",
                "ecs:DeleteService",
                "ecs:DescribeTasks",
                "ecs:TagResource",
            ],
            vec![
                ecs(&format!("cluster/{}", n.cluster)),
                ecs(&format!("capacity-provider/{}", n.capacity_provider)),
                ecs(&format!("service/{}/{}", n.cluster, n.service)),
                ecs(&format!("task/{}/*", n.cluster)),
            ],
        ),
        // Task definitions: each revision's number is AWS's to pick, and `*` is what ECS's
        // guide grants registering and deregistering.
        statement(
            "TaskDefinitions",
            &["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"],
            vec!["*".to_string()],
        ),
        statement(
            "LoadBalancer",
            &[
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:AddTags",
            ],
            vec![
                elb(&format!("loadbalancer/app/{}/*", n.load_balancer)),
                elb(&format!("listener/app/{}/*", n.load_balancer)),
                elb(&format!("targetgroup/{}/*", n.target_group)),
            ],
        ),
        statement(
            "ServiceScaling",
            &[
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
            ],
            vec![format!(
                "arn:{p}:application-autoscaling:{r}:{a}:scalable-target/*"
            )],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "123456789012".into(),
            partition: "aws-cn".into(),
            region: "cn-north-1".into(),
        }
    }

    fn actions(doc: &Value) -> Vec<String> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().clone())
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_studys_policy_fits_a_roles_inline_policies() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/aws.yaml");
        let m = Manifest::load(&file).unwrap();
        let doc = document(&m, &account());
        assert!(size(&doc) <= ROLE_INLINE_CHARS, "{} characters", size(&doc));
        assert!(
            !serde_json::to_string(&doc)
                .unwrap()
                .contains(char::is_whitespace)
        );
    }

    #[test]
    fn a_disabled_target_keeps_its_permissions_so_up_can_delete_what_it_left() {
        let m = Manifest::parse(
            std::path::Path::new("t.yaml"),
            "name: s\nregion: cn-north-1\nserverful: {enabled: false}\n",
        )
        .unwrap();
        let doc = document(&m, &account());
        let all = actions(&doc);
        assert!(all.iter().any(|a| a == "lambda:CreateFunction"));
        // The serverful target is off, and `up` deletes what it left running.
        for action in [
            "ecs:DeleteService",
            "elasticloadbalancing:DeleteLoadBalancer",
            "autoscaling:DeleteAutoScalingGroup",
            "ec2:DeleteSecurityGroup",
            "tag:GetResources",
        ] {
            assert!(all.iter().any(|a| a == action), "{action}");
        }
        // Every ARN is in the stack's partition and account.
        for s in doc["Statement"].as_array().unwrap() {
            for r in s["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(r == "*" || r.starts_with("arn:aws-cn:"), "{r}");
                assert!(!r.contains(":us-east-1:"), "{r}");
            }
        }
    }
}
