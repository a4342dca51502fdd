//! Both targets against a real moto server: what `up` configures for the serverless
//! half (Lambda from the image, HTTP API) and the serverful half (launch template,
//! Auto Scaling, ECS on EC2, ALB), that a second `up` changes nothing, that a new image
//! digest updates exactly the function's code and the service's task definition, and
//! that `down` removes everything but the (emptied) buckets. Also `up` building and pushing the image itself to a
//! real registry and deploying it by digest.
//!
//! moto runs no tasks and no functions (no Docker), so these tests check what AWS was
//! told, never traffic.

mod common;

use common::{
    Moto, deployer, fake_digest, local_manifest_with_image, mutating, pinned_manifest,
    predictor_bin,
};
use testkit::Registry;

const URI: &str = "127.0.0.1:5000/yolo-local-predictor";

/// The latest version of the stack's launch template, as EC2 holds it.
async fn latest_template(
    ec2: &aws_sdk_ec2::Client,
) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
    ec2.describe_launch_template_versions()
        .launch_template_name("yolo-local-instances")
        .versions("$Latest")
        .send()
        .await
        .unwrap()
        .launch_template_versions()[0]
        .launch_template_data()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn both_targets_round_trip() {
    let moto = Moto::start();
    let conf = moto.sdk().await;
    let m = pinned_manifest(&fake_digest('a'));
    let m = m.to_str().unwrap();

    let up = deployer(&moto, &["-f", m, "up"]).expect(0);
    let image = format!("{URI}@{}", fake_digest('a'));

    // Serverless: the function runs the image by digest, 3000 MB, 30 s.
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let f = lambda
        .get_function()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    let c = f.configuration().unwrap();
    assert_eq!(c.package_type().unwrap().as_str(), "Image");
    assert_eq!(f.code().unwrap().image_uri(), Some(image.as_str()));
    assert_eq!(c.memory_size(), Some(3000));
    assert_eq!(c.timeout(), Some(30));
    assert!(c.role().unwrap().ends_with(":role/yolo-local-lambda"));
    assert_eq!(c.architectures()[0].as_str(), "x86_64");
    let env = c.environment().unwrap().variables().unwrap();
    assert_eq!(env["INPUT_BUCKET"], "yolo-local-input");
    assert_eq!(env["OUTPUT_BUCKET"], "yolo-local-results");

    // The HTTP API: POST /predict and GET /healthz to one AWS_PROXY integration
    // (payload 2.0, 30 s), $default stage with auto-deploy, permission for this API only.
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    let apis = apigw.get_apis().send().await.unwrap();
    let api = apis
        .items()
        .iter()
        .find(|a| a.name() == Some("yolo-local-api"))
        .unwrap();
    let api_id = api.api_id().unwrap();
    let integrations = apigw
        .get_integrations()
        .api_id(api_id)
        .send()
        .await
        .unwrap();
    let i = &integrations.items()[0];
    assert_eq!(i.integration_type().unwrap().as_str(), "AWS_PROXY");
    assert_eq!(i.payload_format_version(), Some("2.0"));
    assert_eq!(i.timeout_in_millis(), Some(30_000));
    assert!(
        i.integration_uri()
            .unwrap()
            .ends_with(":function:yolo-local-predictor")
    );
    let routes = apigw.get_routes().api_id(api_id).send().await.unwrap();
    let mut keys: Vec<&str> = routes
        .items()
        .iter()
        .filter_map(|r| r.route_key())
        .collect();
    keys.sort();
    assert_eq!(keys, ["GET /healthz", "POST /predict"]);
    for r in routes.items() {
        assert_eq!(
            r.target(),
            Some(format!("integrations/{}", i.integration_id().unwrap()).as_str())
        );
    }
    let stages = apigw.get_stages().api_id(api_id).send().await.unwrap();
    assert_eq!(stages.items()[0].stage_name(), Some("$default"));
    assert_eq!(stages.items()[0].auto_deploy(), Some(true));
    let policy = lambda
        .get_policy()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert!(
        policy.policy().unwrap().contains(&format!(":{api_id}/*")),
        "{}",
        policy.policy().unwrap()
    );

    // Serverful: security groups, launch template, Auto Scaling, ECS, ALB.
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let groups = ec2.describe_security_groups().send().await.unwrap();
    let group = |name: &str| {
        groups
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name))
            .unwrap_or_else(|| panic!("no security group {name}"))
            .clone()
    };
    let alb_sg = group("yolo-local-alb");
    let inst_sg = group("yolo-local-instances");
    let rule = &inst_sg.ip_permissions()[0];
    assert_eq!((rule.from_port(), rule.to_port()), (Some(8080), Some(8080)));
    assert_eq!(rule.user_id_group_pairs()[0].group_id(), alb_sg.group_id());
    assert!(
        rule.ip_ranges().is_empty(),
        "instances must not be open to any CIDR"
    );
    assert_eq!(alb_sg.ip_permissions()[0].from_port(), Some(80));

    let data = latest_template(&ec2).await;
    assert_eq!(data.instance_type().unwrap().as_str(), "t3a.xlarge");
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let ami = ssm
        .get_parameter()
        .name("/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")
        .send()
        .await
        .unwrap();
    assert_eq!(data.image_id(), ami.parameter().unwrap().value());
    assert_eq!(
        data.metadata_options()
            .unwrap()
            .http_tokens()
            .unwrap()
            .as_str(),
        "required"
    );
    assert_eq!(
        data.iam_instance_profile().unwrap().name(),
        Some("yolo-local-ecs-instance")
    );
    let user_data =
        String::from_utf8(aws_smithy_types::base64::decode(data.user_data().unwrap()).unwrap())
            .unwrap();
    assert!(
        user_data.contains("ECS_CLUSTER=yolo-local-cluster"),
        "{user_data}"
    );

    let asg = aws_sdk_autoscaling::Client::new(&conf);
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("yolo-local-instances")
        .send()
        .await
        .unwrap();
    let g = &groups.auto_scaling_groups()[0];
    // One above the service's 5 tasks: the spare instance of a rollout at full scale.
    assert_eq!((g.min_size(), g.max_size()), (Some(1), Some(6)));
    assert_eq!(g.new_instances_protected_from_scale_in(), Some(true));
    assert!(
        g.vpc_zone_identifier().unwrap().contains(','),
        "one subnet only"
    );
    // No policy of the group's own: ECS managed scaling drives it (and on AWS puts its
    // own target-tracking policy there, which moto does not).
    let policies = asg
        .describe_policies()
        .auto_scaling_group_name("yolo-local-instances")
        .send()
        .await
        .unwrap();
    assert_eq!(policies.scaling_policies(), []);

    let ecs = aws_sdk_ecs::Client::new(&conf);
    let services = ecs
        .describe_services()
        .cluster("yolo-local-cluster")
        .services("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    let s = &services.services()[0];
    assert_eq!(s.desired_count(), 1);
    // moto stores no capacity provider strategy on services (AWS does): it is checked by
    // the cluster's default strategy below and by the service's unit tests.
    // moto keeps no deployment configuration (circuit breaker): unit-tested instead.
    let tg_arn = s.load_balancers()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let td = ecs
        .describe_task_definition()
        .task_definition(s.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.network_mode().unwrap().as_str(), "host");
    let container = &td.container_definitions()[0];
    assert_eq!(container.image(), Some(image.as_str()));
    assert_eq!(container.port_mappings()[0].container_port(), Some(8080));
    assert_eq!(
        container.log_configuration().unwrap().options().unwrap()["awslogs-group"],
        "/ecs/yolo-local-predictor"
    );
    let cps = ecs
        .describe_capacity_providers()
        .capacity_providers("yolo-local-capacity")
        .send()
        .await
        .unwrap();
    let managed = cps.capacity_providers()[0]
        .auto_scaling_group_provider()
        .unwrap();
    assert_eq!(
        managed.managed_scaling().unwrap().target_capacity(),
        Some(100)
    );
    let clusters = ecs
        .describe_clusters()
        .clusters("yolo-local-cluster")
        .send()
        .await
        .unwrap();
    let cluster = &clusters.clusters()[0];
    assert_eq!(cluster.capacity_providers(), ["yolo-local-capacity"]);
    assert_eq!(
        cluster.default_capacity_provider_strategy()[0].capacity_provider(),
        "yolo-local-capacity"
    );

    let appscaling = aws_sdk_applicationautoscaling::Client::new(&conf);
    let targets = appscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    let t = &targets.scalable_targets()[0];
    assert_eq!(
        t.resource_id(),
        "service/yolo-local-cluster/yolo-local-predictor"
    );
    assert_eq!((t.min_capacity(), t.max_capacity()), (1, 5));

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let lbs = elb
        .describe_load_balancers()
        .names("yolo-local-alb")
        .send()
        .await
        .unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(
        lb.security_groups(),
        [alb_sg.group_id().unwrap().to_string()]
    );
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let l = &listeners.listeners()[0];
    assert_eq!(l.port(), Some(80));
    assert_eq!(
        l.default_actions()[0].target_group_arn(),
        Some(tg_arn.as_str())
    );
    let tgs = elb
        .describe_target_groups()
        .target_group_arns(&tg_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tgs.target_groups()[0].health_check_path(), Some("/readyz"));

    // `up` ends with the two URLs to call.
    assert!(up.stdout.contains("/predict"), "{}", up.stdout);
    assert!(up.stdout.contains(lb.dns_name().unwrap()), "{}", up.stdout);
    assert!(
        up.stdout.contains(api.api_endpoint().unwrap()),
        "{}",
        up.stdout
    );

    // A cold start in the function's logs shows in `status` (moto cannot invoke an image
    // function, so the REPORT line Lambda writes is put there directly).
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    logs.create_log_stream()
        .log_group_name("/aws/lambda/yolo-local-predictor")
        .log_stream_name("2026/11/22/[$LATEST]0123")
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let line = |text: &str, at: i64| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(at)
            .message(text)
            .build()
            .unwrap()
    };
    logs.put_log_events()
        .log_group_name("/aws/lambda/yolo-local-predictor")
        .log_stream_name("2026/11/22/[$LATEST]0123")
        .log_events(line("REPORT RequestId: 1 Duration: 412.31 ms Billed Duration: 1420 ms Memory Size: 3000 MB Max Memory Used: 312 MB Init Duration: 1007.42 ms", now - 2000))
        .log_events(line("REPORT RequestId: 2 Duration: 98.10 ms Billed Duration: 99 ms Memory Size: 3000 MB Max Memory Used: 312 MB", now - 1000))
        .send()
        .await
        .unwrap();
    let status = deployer(&moto, &["-f", m, "status"]).expect(0);
    assert!(
        status.stdout.contains("last cold start 1007 ms"),
        "{}",
        status.stdout
    );

    // Nothing changed: nothing written.
    moto.clear_requests();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
    deployer(&moto, &["-f", m, "plan", "--detailed-exitcode"]).expect(0);

    // A CPU policy of the group's own (earlier versions scaled the group with it, beside
    // ECS managed scaling) is removed, and nothing else is touched.
    asg.put_scaling_policy()
        .auto_scaling_group_name("yolo-local-instances")
        .policy_name("yolo-local-instances-cpu")
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(
            aws_sdk_autoscaling::types::TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    aws_sdk_autoscaling::types::PredefinedMetricSpecification::builder()
                        .predefined_metric_type(
                            aws_sdk_autoscaling::types::MetricType::AsgAverageCpuUtilization,
                        )
                        .build(),
                )
                .target_value(70.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    moto.clear_requests();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), ["DeletePolicy"]);

    // Provisioned concurrency moves the API to the alias that carries it. (moto has no
    // provisioned concurrency API: this is the plan only; the apply is unit-tested.)
    let provisioned = std::fs::read_to_string(m).unwrap().replace(
        "serverless:\n",
        "serverless:\n  provisioned_concurrency: 2\n",
    );
    let mp = std::env::temp_dir().join(format!("deployer-provisioned-{}.yaml", std::process::id()));
    std::fs::write(&mp, provisioned).unwrap();
    let plan = deployer(&moto, &["-f", mp.to_str().unwrap(), "plan", "-o", "json"])
        .expect(0)
        .json();
    let fields = |kind: &str| -> Vec<String> {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == kind)
            .flat_map(|c| c["fields"].as_array().unwrap().iter())
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        fields("lambda_function"),
        ["provisioned_concurrency"],
        "{plan:#}"
    );
    assert_eq!(
        fields("http_api"),
        ["integration", "permission"],
        "{plan:#}"
    );
    let integration = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "http_api")
        .unwrap()["fields"][0]["to"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        integration.contains(":function:yolo-local-predictor:live"),
        "{integration}"
    );

    // A new digest: the function's code and a new task definition revision, nothing else.
    let m2 = pinned_manifest(&fake_digest('b'));
    let m2 = m2.to_str().unwrap();
    let plan = deployer(&moto, &["-f", m2, "plan", "-o", "json"])
        .expect(0)
        .json();
    let changed: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["lambda_function", "ecs_service"], "{plan:#}");
    moto.clear_requests();
    deployer(&moto, &["-f", m2, "up"]).expect(0);
    let mut writes = mutating(&moto.requests());
    writes.sort();
    assert_eq!(
        writes,
        [
            "PUT /2015-03-31/functions/yolo-local-predictor/code",
            "RegisterTaskDefinition",
            "UpdateService"
        ]
    );
    let f = lambda
        .get_function()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.code().unwrap().image_uri(),
        Some(format!("{URI}@{}", fake_digest('b')).as_str())
    );
    let s = ecs
        .describe_services()
        .cluster("yolo-local-cluster")
        .services("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert!(s.services()[0].task_definition().unwrap().ends_with(":2"));

    let status = deployer(&moto, &["-f", m2, "status", "-o", "json"])
        .expect(0)
        .json();
    let detail = |kind: &str| {
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == kind)
            .map(|r| r["detail"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        detail("lambda_function").contains("3000 MB, 30 s"),
        "{status:#}"
    );
    assert!(
        detail("ecs_service").contains("yolo-local-predictor:2"),
        "{status:#}"
    );
    // The study's "1 to 5 instances at 70 % CPU": tasks scale on CPU, instances follow.
    assert!(
        detail("service_scaling").contains("tasks 1..5 at CPU 70 %"),
        "{status:#}"
    );
    assert!(
        detail("auto_scaling_group").contains("(1..6), scaled by the capacity provider"),
        "{status:#}"
    );

    deployer(&moto, &["-f", m2, "down"]).expect(0);
    assert!(
        lambda
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions()
            .is_empty()
    );
    assert!(
        !apigw
            .get_apis()
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .any(|a| a.name() == Some("yolo-local-api"))
    );
    assert!(
        asg.describe_auto_scaling_groups()
            .send()
            .await
            .unwrap()
            .auto_scaling_groups()
            .is_empty()
    );
    assert!(
        elb.describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
            .is_empty()
    );
    assert!(
        elb.describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .is_empty()
    );
    assert!(
        ec2.describe_launch_templates()
            .send()
            .await
            .unwrap()
            .launch_templates()
            .is_empty()
    );
    let left: Vec<String> = ec2
        .describe_security_groups()
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .filter_map(|g| g.group_name().map(str::to_string))
        .filter(|n| n.starts_with("yolo-local"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let active: Vec<String> = ecs
        .describe_clusters()
        .clusters("yolo-local-cluster")
        .send()
        .await
        .unwrap()
        .clusters()
        .iter()
        .filter(|c| c.status() == Some("ACTIVE"))
        .filter_map(|c| c.cluster_name().map(str::to_string))
        .collect();
    assert!(active.is_empty(), "{active:?}");
    assert!(
        appscaling
            .describe_scalable_targets()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .send()
            .await
            .unwrap()
            .scalable_targets()
            .is_empty()
    );
    let families = ecs
        .list_task_definitions()
        .family_prefix("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert!(families.task_definition_arns().is_empty(), "{families:?}");
}

/// `up` builds the image, pushes it to the registry the manifest names, and deploys it
/// to both targets by digest; a second `up` pushes nothing and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn up_builds_pushes_and_deploys_the_image_by_digest() {
    let moto = Moto::start();
    let registry = Registry::start(false);
    let m = local_manifest_with_image(&format!("  registry: {}\n", registry.host));
    let m = m.to_str().unwrap();
    let bin = predictor_bin();
    let bin = bin.to_str().unwrap();

    let up = deployer(
        &moto,
        &["-f", m, "up", "-o", "json", "--predictor-bin", bin],
    )
    .expect(0);
    let built = up
        .stderr
        .lines()
        .find_map(|l| l.split("built image ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}", up.stderr))
        .to_string();
    let reference = format!("{}/yolo-local-predictor@{built}", registry.host);
    let conf = moto.sdk().await;
    let f = aws_sdk_lambda::Client::new(&conf)
        .get_function()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert_eq!(f.code().unwrap().image_uri(), Some(reference.as_str()));
    let ecs = aws_sdk_ecs::Client::new(&conf);
    let s = ecs
        .describe_services()
        .cluster("yolo-local-cluster")
        .services("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    let td = ecs
        .describe_task_definition()
        .task_definition(s.services()[0].task_definition().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        td.task_definition().unwrap().container_definitions()[0].image(),
        Some(reference.as_str())
    );
    let uploads = registry.blob_uploads();
    assert_eq!(uploads, 4, "{}", registry.log());

    // The same source again: the same digest, so no push and no AWS write.
    moto.clear_requests();
    let again = deployer(&moto, &["-f", m, "up", "--predictor-bin", bin]).expect(0);
    assert!(
        again.stderr.contains(&format!("built image {built}")),
        "{}",
        again.stderr
    );
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
    assert_eq!(registry.blob_uploads(), uploads);

    // A source change: a new digest, pushed (only the binary's layer and the config)
    // and deployed to the function.
    let changed = std::env::temp_dir().join(format!("deployer-changed-{}", std::process::id()));
    let mut bytes = std::fs::read(bin).unwrap();
    bytes.extend_from_slice(b"\0changed");
    std::fs::write(&changed, bytes).unwrap();
    let rebuilt = deployer(
        &moto,
        &["-f", m, "up", "--predictor-bin", changed.to_str().unwrap()],
    )
    .expect(0);
    let digest = rebuilt
        .stderr
        .lines()
        .find_map(|l| l.split("built image ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_ne!(digest, built);
    assert_eq!(registry.blob_uploads(), uploads + 2, "{}", registry.log());
    let f = aws_sdk_lambda::Client::new(&conf)
        .get_function()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert_eq!(
        f.code().unwrap().image_uri(),
        Some(format!("{}/yolo-local-predictor@{digest}", registry.host).as_str())
    );
    let _ = std::fs::remove_file(&changed);
    // Back to the original, for what follows.
    deployer(&moto, &["-f", m, "up", "--predictor-bin", bin]).expect(0);

    // `status` reports the image and its size.
    let status = deployer(&moto, &["-f", m, "status"]).expect(0);
    assert!(status.stdout.contains(&built), "{}", status.stdout);
    assert!(status.stdout.contains("MB compressed"), "{}", status.stdout);

    deployer(&moto, &["-f", m, "down"]).expect(0);
}

/// Subnets in one availability zone cannot hold an ALB: a clear error, before any write.
#[tokio::test(flavor = "multi_thread")]
async fn subnets_in_one_zone_are_refused_before_any_change() {
    let moto = Moto::start();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk().await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let mut subnets = Vec::new();
    for cidr in ["10.9.1.0/24", "10.9.2.0/24"] {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone("us-east-1a")
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet.unwrap().subnet_id.unwrap());
    }
    let text = std::fs::read_to_string(pinned_manifest(&fake_digest('a')))
        .unwrap()
        .replace(
            "serverful:\n",
            &format!(
                "serverful:\n  network:\n    vpc_id: {vpc}\n    subnets: [{}, {}]\n",
                subnets[0], subnets[1]
            ),
        );
    let m = std::env::temp_dir().join(format!("deployer-one-zone-{}.yaml", std::process::id()));
    std::fs::write(&m, text).unwrap();
    moto.clear_requests();
    let up = deployer(&moto, &["-f", m.to_str().unwrap(), "up"]).expect(1);
    assert!(
        up.stderr.contains("span 1 availability zone(s)"),
        "{}",
        up.stderr
    );
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
}

/// Lambda pulls a same-account image through the repository policy, which it would
/// otherwise edit itself (needing `ecr:SetRepositoryPolicy` from whoever deploys): `up`
/// sets it, for this account's functions only, and a second `up` leaves it alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_repository_lets_this_accounts_functions_pull() {
    let moto = Moto::start();
    let m = pinned_manifest(&fake_digest('a'));
    let m = m.to_str().unwrap();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk().await);
    let policy = ecr
        .get_repository_policy()
        .repository_name("yolo-local-predictor")
        .send()
        .await
        .expect("a repository policy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy_text().unwrap()).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "lambda.amazonaws.com");
    assert_eq!(
        statement["Action"],
        serde_json::json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
    );
    let source = statement["Condition"]["StringLike"]["aws:sourceArn"]
        .as_str()
        .unwrap();
    assert!(
        source.starts_with("arn:aws:lambda:us-east-1:") && source.ends_with(":function:*"),
        "{source}"
    );
    moto.clear_requests();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
}

/// `sha256:<hex>` of `bytes`, by coreutils (the tests need no hashing crate of their own).
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", hex.split_whitespace().next().unwrap())
}

/// Puts `body` in `repository` of `registry` as a blob (one monolithic upload).
fn put_blob(registry: &Registry, repository: &str, body: &[u8]) -> String {
    let digest = sha256(body);
    let started = testkit::http(
        "POST",
        &format!("http://{}/v2/{repository}/blobs/uploads/", registry.host),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(started.status, 202);
    let location = started.header("location").unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{}{location}", registry.host)
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = testkit::http(
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        body,
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    digest
}

/// Puts a manifest of `media_type` as `repository:tag`; its digest.
fn put_manifest(
    registry: &Registry,
    repository: &str,
    tag: &str,
    media_type: &str,
    body: &[u8],
) -> String {
    let put = testkit::http(
        "PUT",
        &format!("http://{}/v2/{repository}/manifests/{tag}", registry.host),
        &[("Content-Type", media_type)],
        body,
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    sha256(body)
}

/// An image of no layers whose config says `architecture`: what is read, not what runs.
fn push_image(registry: &Registry, repository: &str, tag: &str, architecture: &str) -> String {
    let config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
    .to_string();
    let config_digest = put_blob(registry, repository, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [],
    })
    .to_string();
    put_manifest(
        registry,
        repository,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    )
}

/// #12 item 12: what the image is built for is read from its config, never taken from the
/// machine running `deployer`. An arm64 image is refused for x86_64 instances before any
/// write; on arm64 instances Lambda is told arm64 and the instances get the arm64
/// ECS-optimized AMI; a multi-architecture index is refused for Lambda.
#[tokio::test(flavor = "multi_thread")]
async fn the_architecture_comes_from_the_image_and_must_match_the_instances() {
    let moto = Moto::start();
    let conf = moto.sdk().await;
    let registry = Registry::start(false);
    let repository = "yolo-local-predictor";
    let arm = push_image(&registry, repository, "arm", "arm64");
    let uri = format!("{}/{repository}@{arm}", registry.host);
    let m = local_manifest_with_image(&format!("  uri: {uri}\n"));
    let m = m.to_str().unwrap();

    moto.clear_requests();
    let refused = deployer(&moto, &["-f", m, "up"]).expect(2);
    assert!(
        refused
            .stderr
            .contains("the image is built for `arm64` but `t3a.xlarge` runs `x86_64`"),
        "{}",
        refused.stderr
    );
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());

    let text = std::fs::read_to_string(m)
        .unwrap()
        .replace("instance_type: t3a.xlarge", "instance_type: t4g.xlarge");
    std::fs::write(m, text).unwrap();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let c = lambda
        .get_function_configuration()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert_eq!(c.architectures()[0].as_str(), "arm64");
    let arm_ami = aws_sdk_ssm::Client::new(&conf)
        .get_parameter()
        .name("/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let data = latest_template(&ec2).await;
    assert_eq!(data.image_id(), Some(arm_ami.as_str()));

    // An index of two images: ECS would pick the instance's, Lambda cannot.
    let amd = push_image(&registry, repository, "amd", "amd64");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm,
             "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd,
             "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    })
    .to_string();
    let index = put_manifest(
        &registry,
        repository,
        "multi",
        "application/vnd.oci.image.index.v1+json",
        index.as_bytes(),
    );
    let text = std::fs::read_to_string(m).unwrap().replace(&arm, &index);
    std::fs::write(m, text).unwrap();
    let refused = deployer(&moto, &["-f", m, "plan"]).expect(2);
    assert!(
        refused
            .stderr
            .contains("is a multi-architecture index (arm64, amd64)"),
        "{}",
        refused.stderr
    );
    // Without Lambda the index is fine: ECS pulls the entry of the instances' own
    // architecture, whichever comes first in the index.
    let text = std::fs::read_to_string(m)
        .unwrap()
        .replace("serverless:\n", "serverless:\n  enabled: false\n")
        .replace("instance_type: t4g.xlarge", "instance_type: t3a.xlarge");
    std::fs::write(m, text).unwrap();
    let plan = deployer(&moto, &["-f", m, "plan"]).expect(0);
    assert!(!plan.stderr.contains("built for"), "{}", plan.stderr);
}

/// #12 item 14: the instances keep the AMI they run when AWS publishes a newer one, so a
/// plan does not change by itself every few weeks; `--refresh-ami` moves them.
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_ami_is_noted_and_taken_only_with_refresh_ami() {
    let moto = Moto::start();
    let conf = moto.sdk().await;
    let m = pinned_manifest(&fake_digest('a'));
    let m = m.to_str().unwrap();
    deployer(&moto, &["-f", m, "up"]).expect(0);

    // The instances run an older AMI than the one AWS recommends now: the same
    // template but its AMI (moto copies nothing from a source version, so all of it).
    use aws_sdk_ec2::types as t;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let d = latest_template(&ec2).await;
    ec2.create_launch_template_version()
        .launch_template_name("yolo-local-instances")
        .launch_template_data(
            t::RequestLaunchTemplateData::builder()
                .image_id("ami-0123456789abcdef0")
                .set_instance_type(d.instance_type().cloned())
                .iam_instance_profile(
                    t::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                        .set_name(
                            d.iam_instance_profile()
                                .and_then(|p| p.name())
                                .map(Into::into),
                        )
                        .build(),
                )
                .set_security_group_ids(Some(d.security_group_ids().to_vec()))
                .set_user_data(d.user_data().map(Into::into))
                .metadata_options(
                    t::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                        .http_tokens(t::LaunchTemplateHttpTokensState::Required)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let plan = deployer(&moto, &["-f", m, "plan", "--detailed-exitcode"]).expect(0);
    assert!(
        plan.stderr
            .contains("the instances keep `ami-0123456789abcdef0` until `--refresh-ami`"),
        "{}",
        plan.stderr
    );
    let plan = deployer(&moto, &["-f", m, "plan", "--refresh-ami", "-o", "json"])
        .expect(0)
        .json();
    let fields: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["fields"].as_array().unwrap())
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["image_id"], "{plan:#}");
}

/// #12 item 14: an HTTP API deleted out of band leaves its invoke permission on the
/// function under the statement id the new API's permission uses; AWS refuses to add a
/// second statement with that id (moto does not), so `up` replaces it: one statement,
/// for the new API.
#[tokio::test(flavor = "multi_thread")]
async fn a_permission_left_by_a_deleted_api_is_replaced_not_duplicated() {
    let moto = Moto::start();
    let conf = moto.sdk().await;
    let m = pinned_manifest(&fake_digest('a'));
    let m = m.to_str().unwrap();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    let old = apigw.get_apis().send().await.unwrap().items()[0]
        .api_id()
        .unwrap()
        .to_string();
    apigw.delete_api().api_id(&old).send().await.unwrap();

    moto.clear_requests();
    deployer(&moto, &["-f", m, "up"]).expect(0);
    let writes = mutating(&moto.requests());
    let removed = writes.iter().position(|w| w.contains("/policy/")).unwrap();
    let added = writes
        .iter()
        .position(|w| w.starts_with("POST") && w.ends_with("/policy"))
        .unwrap();
    assert!(removed < added, "{writes:?}");
    let apis = apigw.get_apis().send().await.unwrap();
    let new = apis.items()[0].api_id().unwrap();
    let policy = aws_sdk_lambda::Client::new(&conf)
        .get_policy()
        .function_name("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy:#}");
    assert!(
        statements[0]["Condition"]
            .to_string()
            .contains(&format!("{new}/")),
        "{policy:#}"
    );
}

/// #12 item 11: a binary body reaches Lambda base64-encoded inside a 6 MB event, so the
/// serverless target takes at most 4 706 304 bytes; a larger photo is refused before any
/// request, naming the limit and the way around it (by S3 key).
#[test]
fn a_body_over_the_serverless_event_limit_is_refused_before_sending() {
    let dir = std::env::temp_dir().join(format!("deployer-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 4 706 305 bytes: 6 275 076 once base64-encoded, over the event's room.
    std::fs::write(dir.join("big.jpg"), vec![0xff; 4_706_305]).unwrap();
    let manifest = common::local_manifest();
    // Nothing listens on the discard port: a request sent would fail differently.
    let out = common::deployer_command(&[
        "-f",
        manifest.to_str().unwrap(),
        "bench",
        "--url",
        "serverless=http://127.0.0.1:9",
        "--targets",
        "serverless",
        "--by",
        "body",
        "--images",
        dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: `big.jpg` is 4706305 bytes; the serverless target takes a body of at most \
         4706304 bytes (the HTTP API base64-encodes it into Lambda's 6 MB event)\n\
         hint: send it by S3 key instead: without `--body` (predict), `--by key` (bench)\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
