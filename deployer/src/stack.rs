//! The stack: every resource a manifest asks for, with its dependencies and the
//! least-privilege policies of its roles. Adding a resource is one line here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::aws::{Aws, AwsError};
use crate::image::Built;
use crate::image::registry::Registry;
use crate::resources::{Id, Kind};

use serde_json::{Value, json};

use crate::manifest::{Manifest, Names, Variant};
use crate::resources::ec2::{Network, Source};
use crate::resources::{
    Node, Tags, apigw, autoscaling, ec2, ecr, ecs, elb, iam, image, lambda, logs, s3,
};

/// Facts about the account that ARNs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub partition: String,
    pub region: String,
}

impl Account {
    /// The account the credentials belong to, in the manifest's region (one STS call).
    pub async fn of(aws: &Aws, m: &Manifest) -> Result<Account, AwsError> {
        Ok(Account {
            id: aws.account().await?.to_string(),
            partition: aws.partition().to_string(),
            region: m.region.clone(),
        })
    }
}

/// What the stack is built from besides the manifest: facts looked up before planning.
pub struct Context {
    pub account: Account,
    pub image: Image,
    /// The serverful target's VPC and subnets (when it is enabled).
    pub network: Option<Network>,
    /// The ECS-optimized AMI the instances run (when the serverful target is enabled):
    /// the one they run already, or the one AWS recommends now.
    pub ami: Option<String>,
    /// What the lookups assumed or noticed, for the user: a newer AMI, an image whose
    /// architecture could not be read.
    pub notes: Vec<String>,
    /// The image push step: when the image is built by this tool (not `image.uri`) and
    /// the command deploys or looks (not `down`).
    pub push: Option<Push>,
}

/// The image built for this run (if any) and the registry client it is pushed with.
pub struct Push {
    pub built: Option<Arc<Built>>,
    pub client: Arc<OnceCell<Registry>>,
}

/// The container image both targets run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `registry/repository@sha256:…` (or a tag, when the manifest names one).
    pub uri: String,
    /// Lambda's name for it: `x86_64` or `arm64`.
    pub architecture: String,
}

/// The container's name in the task definition.
pub const CONTAINER: &str = "predictor";

/// The predictor's settings as environment variables: the same on both targets but for
/// the bundled model each serves (`variant`).
pub fn predictor_env(m: &Manifest, variant: Variant) -> BTreeMap<String, String> {
    let n = m.names();
    let p = &m.predictor;
    let mut env: BTreeMap<String, String> = [
        (contract::INPUT_BUCKET, n.input_bucket.clone()),
        (contract::OUTPUT_BUCKET, n.output_bucket.clone()),
        (contract::OUTPUT_PUBLIC, m.buckets.output.public.to_string()),
        (
            contract::URL_EXPIRY_S,
            m.buckets.output.url_expiry_s.to_string(),
        ),
        (contract::CONF, p.confidence.to_string()),
        (contract::IOU, p.iou.to_string()),
        (contract::MAX_BODY_BYTES, p.max_body_bytes.to_string()),
        (contract::MAX_PIXELS, p.max_pixels.to_string()),
        (contract::MAX_INFLIGHT, p.max_inflight.to_string()),
        (contract::QUEUE_DEPTH, p.queue_depth.to_string()),
        (contract::DEADLINE_MS, p.deadline_ms.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (var, model) = match m.model.s3() {
        Some(_) => (contract::MODEL_S3_URI, m.model.source.clone()),
        None => (contract::MODEL_PATH, crate::image::model_path(variant)),
    };
    env.insert(var.into(), model);
    env
}

/// The managed policy the ECS agent on each instance needs; AWS offers no narrower form.
pub const ECS_INSTANCE_POLICY: &str = "policy/service-role/AmazonEC2ContainerServiceforEC2Role";

/// Every resource of the stack, in dependency order.
pub fn desired(m: &Manifest, ctx: &Context) -> Vec<Box<dyn Node>> {
    let parts = Parts::new(m, ctx);
    let (mut nodes, image_push) = parts.storage();
    if m.serverless.enabled {
        nodes.extend(parts.serverless(image_push.clone()));
    }
    if m.serverful.enabled {
        nodes.extend(parts.serverful_access());
        if let (Some(net), Some(ami)) = (&ctx.network, &ctx.ami) {
            nodes.extend(serverful(m, ctx, net, ami, image_push));
        }
    }
    nodes
}

/// What every part of the stack is built from: the manifest, the facts looked up, the
/// names derived and the tags.
struct Parts<'a> {
    m: &'a Manifest,
    ctx: &'a Context,
    n: Names,
    tags: Tags,
}

impl<'a> Parts<'a> {
    fn new(m: &'a Manifest, ctx: &'a Context) -> Self {
        Parts {
            m,
            ctx,
            n: m.names(),
            tags: m.resource_tags(),
        }
    }

    /// An ARN of this account and region.
    fn arn(&self, service: &str, resource: &str) -> String {
        let a = &self.ctx.account;
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            a.partition, a.region, a.id
        )
    }

    fn log_arn(&self, group: &str) -> String {
        self.arn("logs", &format!("log-group:{group}:*"))
    }

    fn role(
        &self,
        name: &str,
        service: &str,
        statements: Option<Vec<Value>>,
        managed: &[String],
    ) -> Box<dyn Node> {
        Box::new(iam::Role {
            name: name.to_string(),
            service: service.to_string(),
            policy: statements.map(|s| json!({"Version": "2012-10-17", "Statement": s})),
            managed: managed.iter().cloned().collect::<BTreeSet<_>>(),
            tags: self.tags.clone(),
        })
    }

    /// What the predictor may touch: read inputs (and the model, if it comes from S3),
    /// write results and read them back for presigned URLs. Nothing else.
    fn data_access(&self) -> Vec<Value> {
        let (p, n) = (&self.ctx.account.partition, &self.n);
        let mut data = vec![
            json!({"Sid": "ReadInputs", "Effect": "Allow", "Action": "s3:GetObject",
                   "Resource": format!("arn:{p}:s3:::{}/*", n.input_bucket)}),
            json!({"Sid": "WriteResults", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
                   "Resource": format!("arn:{p}:s3:::{}/*", n.output_bucket)}),
        ];
        if let Some((bucket, key)) = self.m.model.s3() {
            data.push(
                json!({"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
                             "Resource": format!("arn:{p}:s3:::{bucket}/{key}")}),
            );
        }
        data
    }

    fn write_logs(&self, group: &str) -> Value {
        json!({"Sid": "WriteLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
               "Resource": self.log_arn(group)})
    }

    /// The repository, the image pushed to it (its id, which the targets wait for) and
    /// the buckets.
    fn storage(&self) -> (Vec<Box<dyn Node>>, Option<Id>) {
        let (m, n, tags) = (self.m, &self.n, &self.tags);
        let mut nodes: Vec<Box<dyn Node>> = vec![Box::new(ecr::Repository {
            name: n.repository.clone(),
            scan_on_push: m.image.scan_on_push,
            keep_last: m.image.keep_last,
            lambda_pull: m
                .serverless
                .enabled
                .then(|| self.arn("lambda", "function:*")),
            tags: tags.clone(),
        })];
        let image_push = self.ctx.push.as_ref().map(|push| {
            let name = format!("{}:{}", n.repository, m.image.tag);
            nodes.push(Box::new(image::Image {
                name: name.clone(),
                repository: n.repository.clone(),
                tag: m.image.tag.clone(),
                registry: m.image.registry.clone(),
                built: push.built.clone(),
                tags: tags.clone(),
                client: push.client.clone(),
            }));
            Id::new(Kind::Image, name)
        });
        nodes.push(self.bucket(&n.input_bucket, "buckets.input.name", false, 0));
        let out = &m.buckets.output;
        nodes.push(self.bucket(
            &n.output_bucket,
            "buckets.output.name",
            out.public,
            out.expire_after_days,
        ));
        (nodes, image_push)
    }

    fn bucket(
        &self,
        name: &str,
        setting: &'static str,
        public: bool,
        expire_after_days: u32,
    ) -> Box<dyn Node> {
        Box::new(s3::Bucket {
            name: name.to_string(),
            setting,
            region: self.m.region.clone(),
            partition: self.ctx.account.partition.clone(),
            public,
            expire_after_days,
            tags: self.tags.clone(),
        })
    }

    /// Lambda behind an HTTP API: the function's role and log group, the function, the
    /// API.
    fn serverless(&self, image_push: Option<Id>) -> Vec<Box<dyn Node>> {
        let (m, n, tags, account) = (self.m, &self.n, &self.tags, &self.ctx.account);
        let p = &account.partition;
        let l = &m.serverless;
        let mut statements = self.data_access();
        statements.push(self.write_logs(&n.lambda_log_group));
        let mut routes = vec![l.route.clone()];
        if l.route != "GET /healthz" {
            routes.push("GET /healthz".into());
        }
        // With provisioned concurrency the API invokes the alias that has it.
        let qualifier = l.provisioned_concurrency.map(|_| lambda::ALIAS.to_string());
        let function_arn = match &qualifier {
            Some(alias) => self.arn("lambda", &format!("function:{}:{alias}", n.function)),
            None => self.arn("lambda", &format!("function:{}", n.function)),
        };
        vec![
            self.role(
                &n.lambda_role,
                "lambda.amazonaws.com",
                Some(statements),
                &[],
            ),
            Box::new(logs::LogGroup {
                name: n.lambda_log_group.clone(),
                retention_days: m.logs.retention_days,
                tags: tags.clone(),
            }),
            Box::new(lambda::Function {
                name: n.function.clone(),
                role_name: n.lambda_role.clone(),
                role_arn: format!("arn:{p}:iam::{}:role/{}", account.id, n.lambda_role),
                log_group: n.lambda_log_group.clone(),
                image: self.ctx.image.uri.clone(),
                architecture: self.ctx.image.architecture.clone(),
                memory_mb: l.memory_mb,
                timeout_s: l.timeout_s,
                environment: predictor_env(m, m.model.variant.serverless),
                reserved_concurrency: l.reserved_concurrency,
                provisioned_concurrency: l.provisioned_concurrency,
                image_push,
                tags: tags.clone(),
            }),
            Box::new(apigw::HttpApi {
                name: n.http_api.clone(),
                function: n.function.clone(),
                function_arn,
                qualifier,
                routes,
                // The function's own timeout, within API Gateway's 30 s limit.
                timeout_ms: (l.timeout_s * 1000).min(30_000),
                execute_arn_prefix: format!(
                    "arn:{p}:execute-api:{}:{}",
                    account.region, account.id
                ),
                arn_prefix: format!("arn:{p}:apigateway:{}", account.region),
                tags: tags.clone(),
            }),
        ]
    }

    /// The serverful side's roles, instance profile and log group: what its instances and
    /// tasks run as and write to.
    fn serverful_access(&self) -> Vec<Box<dyn Node>> {
        let (n, tags) = (&self.n, &self.tags);
        let repo_arn = self.arn("ecr", &format!("repository/{}", n.repository));
        let execution = vec![
            // GetAuthorizationToken has no resource-level permissions: `*` is the only form.
            json!({"Sid": "EcrAuth", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
            json!({"Sid": "PullImage", "Effect": "Allow",
                   "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                   "Resource": repo_arn}),
            json!({"Sid": "WriteLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": self.log_arn(&n.ecs_log_group)}),
        ];
        let tasks = "ecs-tasks.amazonaws.com";
        let instance_policy = format!(
            "arn:{}:iam::aws:{ECS_INSTANCE_POLICY}",
            self.ctx.account.partition
        );
        vec![
            self.role(&n.task_execution_role, tasks, Some(execution), &[]),
            self.role(&n.task_role, tasks, Some(self.data_access()), &[]),
            self.role(
                &n.instance_role,
                "ec2.amazonaws.com",
                None,
                &[instance_policy],
            ),
            Box::new(iam::InstanceProfile {
                name: n.instance_profile.clone(),
                role: n.instance_role.clone(),
                tags: tags.clone(),
            }),
            Box::new(logs::LogGroup {
                name: n.ecs_log_group.clone(),
                retention_days: self.m.logs.retention_days,
                tags: tags.clone(),
            }),
        ]
    }
}

/// Every resource the stack's names can denote, whatever the manifest enables now:
/// the manifest with both targets on, built without the facts only creating needs (no
/// network, AMI or image looked up). Each is found by name as `up` finds it; this is
/// what `down` deletes and what `up` compares with what it wants.
pub fn shape(m: &Manifest, account: &Account) -> Vec<Box<dyn Node>> {
    let mut all = m.clone();
    all.serverful.enabled = true;
    all.serverless.enabled = true;
    let ctx = Context {
        account: account.clone(),
        image: Image {
            uri: String::new(),
            architecture: String::new(),
        },
        network: Some(Network::default()),
        ami: Some(String::new()),
        notes: Vec::new(),
        push: None,
    };
    desired(&all, &ctx)
}

/// The ECS on EC2 half: security groups, instances, cluster, load balancer, service.
fn serverful(
    m: &Manifest,
    ctx: &Context,
    net: &Network,
    ami: &str,
    image_push: Option<Id>,
) -> Vec<Box<dyn Node>> {
    let n = m.names();
    let s = &m.serverful;
    let tags = m.resource_tags();
    let account = &ctx.account;
    let p = &account.partition;
    let role_arn = |name: &str| format!("arn:{p}:iam::{}:role/{name}", account.id);
    let listener = format!("{}:{}", n.load_balancer, s.load_balancer.port);
    let mut env = predictor_env(m, m.model.variant.serverful);
    env.insert("PORT".into(), s.container.port.to_string());
    vec![
        Box::new(ec2::SecurityGroup {
            name: n.alb_security_group.clone(),
            description: format!("{}: load balancer listener", m.name),
            vpc_id: net.vpc_id.clone(),
            ingress: s
                .load_balancer
                .cidrs
                .iter()
                .map(|c| (s.load_balancer.port, Source::Cidr(c.clone())))
                .collect(),
            tags: tags.clone(),
        }),
        Box::new(ec2::SecurityGroup {
            name: n.instance_security_group.clone(),
            description: format!("{}: container port from the load balancer only", m.name),
            vpc_id: net.vpc_id.clone(),
            ingress: vec![(
                s.container.port,
                Source::Group(n.alb_security_group.clone()),
            )],
            tags: tags.clone(),
        }),
        Box::new(ecs::Cluster {
            name: n.cluster.clone(),
            container_insights: s.container_insights,
            tags: tags.clone(),
        }),
        Box::new(ec2::LaunchTemplate {
            name: n.launch_template.clone(),
            vpc_id: net.vpc_id.clone(),
            image_id: ami.to_string(),
            instance_type: s.instance_type.clone(),
            instance_profile: n.instance_profile.clone(),
            security_group: n.instance_security_group.clone(),
            cluster: n.cluster.clone(),
            tags: tags.clone(),
        }),
        Box::new(autoscaling::Group {
            name: n.auto_scaling_group.clone(),
            launch_template: n.launch_template.clone(),
            subnets: net.instance_subnets.clone(),
            max: autoscaling::headroom(s.max),
            cooldown_s: s.scale_in_cooldown_s,
            tags: tags.clone(),
        }),
        Box::new(ecs::CapacityProvider {
            name: n.capacity_provider.clone(),
            cluster: n.cluster.clone(),
            auto_scaling_group: n.auto_scaling_group.clone(),
            target_capacity: 100,
            group_min: s.min,
            tags: tags.clone(),
        }),
        Box::new(elb::LoadBalancer {
            name: n.load_balancer.clone(),
            vpc_id: net.vpc_id.clone(),
            subnets: net.subnets.clone(),
            security_group: n.alb_security_group.clone(),
            tags: tags.clone(),
        }),
        Box::new(elb::TargetGroup {
            name: n.target_group.clone(),
            vpc_id: net.vpc_id.clone(),
            port: s.container.port,
            health_path: s.load_balancer.health_path.clone(),
            deregistration_delay_s: 30,
            tags: tags.clone(),
        }),
        Box::new(elb::Listener {
            name: listener.clone(),
            load_balancer: n.load_balancer.clone(),
            port: s.load_balancer.port,
            target_group: n.target_group.clone(),
            tags: tags.clone(),
        }),
        Box::new(ecs::Service {
            name: n.service.clone(),
            cluster: n.cluster.clone(),
            family: n.task_family.clone(),
            container: CONTAINER.into(),
            task: ecs::TaskSpec {
                image: ctx.image.uri.clone(),
                cpu: s.container.cpu as i32,
                memory_mb: s.container.memory_mb as i32,
                port: s.container.port.into(),
                environment: env,
                execution_role_arn: role_arn(&n.task_execution_role),
                task_role_arn: role_arn(&n.task_role),
                log_group: n.ecs_log_group.clone(),
            },
            region: account.region.clone(),
            capacity_provider: n.capacity_provider.clone(),
            target_group: n.target_group.clone(),
            listener,
            execution_role: n.task_execution_role.clone(),
            task_role: n.task_role.clone(),
            initial_count: s.min as i32,
            wait: Duration::from_secs(s.wait_s.into()),
            image_push,
            tags: tags.clone(),
        }),
        Box::new(ecs::ServiceScaling {
            name: n.service.clone(),
            cluster: n.cluster.clone(),
            service: n.service.clone(),
            min: s.min as i32,
            max: s.max as i32,
            cpu_target: f64::from(s.cpu_target),
            scale_in_cooldown_s: s.scale_in_cooldown_s as i32,
            scale_out_cooldown_s: 60,
            tags,
        }),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every variable of the contract is set, and nothing else: the predictor reads
    /// exactly these (its own test checks it reads each).
    #[test]
    fn the_predictor_gets_exactly_the_contracts_variables() {
        let m = Manifest::parse("m.yaml".as_ref(), "name: s\nregion: us-east-1\n").unwrap();
        let set: Vec<String> = predictor_env(&m, Variant::Rect).into_keys().collect();
        let mut want: Vec<&str> = contract::SET_BY_DEPLOYER.to_vec();
        want.push(contract::MODEL_PATH);
        want.sort();
        assert_eq!(set, want);
    }

    /// A context as the lookups would give it, for tests that build the stack.
    pub(crate) fn context() -> Context {
        Context {
            account: Account {
                id: "123456789012".into(),
                partition: "aws".into(),
                region: "us-east-1".into(),
            },
            image: Image {
                uri: "r/s-predictor@sha256:aa".into(),
                architecture: "x86_64".into(),
            },
            network: Some(Network {
                vpc_id: "vpc-1".into(),
                subnets: vec!["subnet-a".into(), "subnet-b".into()],
                instance_subnets: vec!["subnet-a".into(), "subnet-b".into()],
                zones_without_type: Vec::new(),
            }),
            ami: Some("ami-1".into()),
            notes: Vec::new(),
            push: None,
        }
    }

    fn nodes() -> Vec<Box<dyn Node>> {
        let m = Manifest::parse(
            std::path::Path::new("t.yaml"),
            "name: s\nregion: us-east-1\n",
        )
        .unwrap();
        desired(&m, &context())
    }

    /// Whether `a` goes before `b` on `down` (`a` depends on `b`, directly or not).
    fn deleted_before(nodes: &[Box<dyn Node>], a: (Kind, &str), b: (Kind, &str)) -> bool {
        let (a, b) = (Id::new(a.0, a.1), Id::new(b.0, b.1));
        let mut todo = vec![a];
        let mut seen = BTreeSet::new();
        while let Some(id) = todo.pop() {
            if id == b {
                return true;
            }
            if seen.insert(id.clone())
                && let Some(n) = nodes.iter().find(|n| n.id() == id)
            {
                todo.extend(n.depends_on());
            }
        }
        false
    }

    #[test]
    fn the_graph_holds_for_every_combination_of_targets() {
        for (serverful, serverless) in [(true, true), (true, false), (false, true), (false, false)]
        {
            let m = Manifest::parse(
                std::path::Path::new("t.yaml"),
                &format!(
                    "name: s\nregion: us-east-1\nserverful: {{enabled: {serverful}}}\n\
                     serverless: {{enabled: {serverless}}}\n"
                ),
            )
            .unwrap();
            let nodes = desired(&m, &context());
            assert_eq!(
                crate::plan::check_graph(&nodes),
                Ok(()),
                "serverful {serverful}, serverless {serverless}"
            );
        }
    }

    #[test]
    fn a_resource_in_the_stack_twice_is_refused() {
        use crate::resources::logs::LogGroup;
        let group = |name: &str| -> Box<dyn Node> {
            Box::new(LogGroup {
                name: name.into(),
                retention_days: 1,
                tags: crate::resources::Tags::new(),
            })
        };
        let mut nodes = nodes();
        nodes.push(group("/extra"));
        nodes.push(group("/extra"));
        assert_eq!(
            crate::plan::check_graph(&nodes),
            Err("log group `/extra` is in the stack twice".into())
        );
    }

    /// The teardown order that works on AWS (clusters with Auto Scaling capacity
    /// providers hang on delete otherwise), as the dependencies produce it.
    #[test]
    fn down_removes_the_serverful_target_in_an_order_aws_accepts() {
        use Kind::*;
        let n = nodes();
        let order = [
            ((ServiceScaling, "s-predictor"), (EcsService, "s-predictor")),
            (
                (EcsService, "s-predictor"),
                (CapacityProvider, "s-capacity"),
            ),
            ((EcsService, "s-predictor"), (Listener, "s-alb:80")),
            (
                (CapacityProvider, "s-capacity"),
                (AutoScalingGroup, "s-instances"),
            ),
            (
                (AutoScalingGroup, "s-instances"),
                (LaunchTemplate, "s-instances"),
            ),
            ((LaunchTemplate, "s-instances"), (EcsCluster, "s-cluster")),
            ((CapacityProvider, "s-capacity"), (EcsCluster, "s-cluster")),
            ((Listener, "s-alb:80"), (LoadBalancer, "s-alb")),
            ((Listener, "s-alb:80"), (TargetGroup, "s-tg")),
            ((LoadBalancer, "s-alb"), (SecurityGroup, "s-alb")),
            (
                (LaunchTemplate, "s-instances"),
                (SecurityGroup, "s-instances"),
            ),
            ((SecurityGroup, "s-instances"), (SecurityGroup, "s-alb")),
            (
                (LaunchTemplate, "s-instances"),
                (IamInstanceProfile, "s-ecs-instance"),
            ),
            ((HttpApi, "s-api"), (LambdaFunction, "s-predictor")),
            ((LambdaFunction, "s-predictor"), (IamRole, "s-lambda")),
        ];
        for (a, b) in order {
            assert!(deleted_before(&n, a, b), "{a:?} must go before {b:?}");
            assert!(
                !deleted_before(&n, b, a),
                "{b:?} and {a:?} depend on each other"
            );
        }
    }

    #[test]
    fn both_targets_get_the_same_settings_and_each_its_bundled_model() {
        let parse = |yaml: &str| Manifest::parse("t.yaml".as_ref(), yaml).unwrap();
        let m = parse("name: s\nregion: us-east-1\n");
        let (serverful, serverless) = env_of_each_target(&m);
        assert_eq!(serverful["INPUT_BUCKET"], "s-input");
        assert_eq!(serverless["OUTPUT_BUCKET"], "s-results");
        assert_eq!(
            serverful["MODEL_PATH"], "/opt/predictor/models/yolo11n-rect.onnx",
            "rect mode is the default on both targets"
        );
        assert_eq!(serverless["MODEL_PATH"], serverful["MODEL_PATH"]);
        assert!(!serverless.contains_key("MODEL_S3_URI"));

        let m = parse(
            "name: s\nregion: us-east-1\nmodel:\n  variant: {serverless: rect-int8, serverful: square}\n",
        );
        let (serverful, serverless) = env_of_each_target(&m);
        assert_eq!(
            serverful["MODEL_PATH"],
            "/opt/predictor/models/yolo11n.onnx"
        );
        assert_eq!(
            serverless["MODEL_PATH"],
            "/opt/predictor/models/yolo11n-rect-int8.onnx"
        );
        assert_eq!(
            serverless["INPUT_BUCKET"], serverful["INPUT_BUCKET"],
            "only the model differs"
        );

        let m = parse("name: s\nregion: us-east-1\nmodel:\n  source: s3://models/yolo11n.onnx\n");
        let (serverful, serverless) = env_of_each_target(&m);
        assert_eq!(serverless["MODEL_S3_URI"], "s3://models/yolo11n.onnx");
        assert_eq!(serverful["MODEL_S3_URI"], "s3://models/yolo11n.onnx");
        assert!(
            !serverful.contains_key("MODEL_PATH"),
            "one model source, not two"
        );
    }

    /// The environment the stack gives the ECS container and the Lambda function.
    fn env_of_each_target(m: &Manifest) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let nodes = desired(m, &context());
        let mut task = None;
        let mut function = None;
        for node in &nodes {
            let any = node.as_any();
            if let Some(s) = any.downcast_ref::<ecs::Service>() {
                task = Some(s.task.environment.clone());
            }
            if let Some(f) = any.downcast_ref::<lambda::Function>() {
                function = Some(f.environment.clone());
            }
        }
        (task.expect("a service"), function.expect("a function"))
    }
}
