//! The stack: every resource a manifest asks for, with its dependencies and the
//! least-privilege policies of its roles. Adding a resource is one line here.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::manifest::Manifest;
use crate::resources::{Node, ecr, iam, logs, s3};

/// Facts about the account that ARNs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub partition: String,
    pub region: String,
}

/// The managed policy the ECS agent on each instance needs; AWS offers no narrower form.
pub const ECS_INSTANCE_POLICY: &str = "policy/service-role/AmazonEC2ContainerServiceforEC2Role";

/// Every resource of the stack, in dependency order.
pub fn desired(m: &Manifest, account: &Account) -> Vec<Box<dyn Node>> {
    let n = m.names();
    let tags = m.resource_tags();
    let p = &account.partition;
    let arn = |service: &str, resource: &str| {
        format!(
            "arn:{p}:{service}:{}:{}:{resource}",
            account.region, account.id
        )
    };
    let log_arn = |group: &str| arn("logs", &format!("log-group:{group}:*"));

    // What the predictor may touch: read inputs (and the model, if it comes from S3),
    // write results and read them back for presigned URLs. Nothing else.
    let mut data = vec![
        json!({"Sid": "ReadInputs", "Effect": "Allow", "Action": "s3:GetObject",
               "Resource": format!("arn:{p}:s3:::{}/*", n.input_bucket)}),
        json!({"Sid": "WriteResults", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
               "Resource": format!("arn:{p}:s3:::{}/*", n.output_bucket)}),
    ];
    if let Some((bucket, key)) = m.model.s3() {
        data.push(
            json!({"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
                         "Resource": format!("arn:{p}:s3:::{bucket}/{key}")}),
        );
    }
    let policy =
        |statements: Vec<Value>| Some(json!({"Version": "2012-10-17", "Statement": statements}));
    let write_logs = |group: &str| {
        json!({"Sid": "WriteLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
               "Resource": log_arn(group)})
    };
    let role =
        |name: &str, service: &str, policy: Option<Value>, managed: &[String]| -> Box<dyn Node> {
            Box::new(iam::Role {
                name: name.to_string(),
                service: service.to_string(),
                policy,
                managed: managed.iter().cloned().collect::<BTreeSet<_>>(),
                tags: tags.clone(),
            })
        };

    let mut nodes: Vec<Box<dyn Node>> = vec![
        Box::new(ecr::Repository {
            name: n.repository.clone(),
            scan_on_push: m.image.scan_on_push,
            keep_last: m.image.keep_last,
            tags: tags.clone(),
        }),
        Box::new(s3::Bucket {
            name: n.input_bucket.clone(),
            region: m.region.clone(),
            public: false,
            expire_after_days: 0,
            tags: tags.clone(),
        }),
        Box::new(s3::Bucket {
            name: n.output_bucket.clone(),
            region: m.region.clone(),
            public: m.buckets.output.public,
            expire_after_days: m.buckets.output.expire_after_days,
            tags: tags.clone(),
        }),
    ];

    if m.serverless.enabled {
        let mut statements = data.clone();
        statements.push(write_logs(&n.lambda_log_group));
        nodes.push(role(
            &n.lambda_role,
            "lambda.amazonaws.com",
            policy(statements),
            &[],
        ));
        nodes.push(Box::new(logs::LogGroup {
            name: n.lambda_log_group.clone(),
            retention_days: m.logs.retention_days,
            tags: tags.clone(),
        }));
    }

    if m.serverful.enabled {
        let repo_arn = arn("ecr", &format!("repository/{}", n.repository));
        let execution = vec![
            // GetAuthorizationToken has no resource-level permissions: `*` is the only form.
            json!({"Sid": "EcrAuth", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
            json!({"Sid": "PullImage", "Effect": "Allow",
                   "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                   "Resource": repo_arn}),
            json!({"Sid": "WriteLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": log_arn(&n.ecs_log_group)}),
        ];
        nodes.push(role(
            &n.task_execution_role,
            "ecs-tasks.amazonaws.com",
            policy(execution),
            &[],
        ));
        nodes.push(role(
            &n.task_role,
            "ecs-tasks.amazonaws.com",
            policy(data.clone()),
            &[],
        ));
        let instance_policy = format!("arn:{p}:iam::aws:{ECS_INSTANCE_POLICY}");
        nodes.push(role(
            &n.instance_role,
            "ec2.amazonaws.com",
            None,
            &[instance_policy],
        ));
        nodes.push(Box::new(iam::InstanceProfile {
            name: n.instance_profile.clone(),
            role: n.instance_role.clone(),
            tags: tags.clone(),
        }));
        nodes.push(Box::new(logs::LogGroup {
            name: n.ecs_log_group.clone(),
            retention_days: m.logs.retention_days,
            tags: tags.clone(),
        }));
    }
    nodes
}
