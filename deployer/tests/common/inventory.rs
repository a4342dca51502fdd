//! What moto holds that a stack could have made, listed without the deployer's own
//! finders: the destroy checks of the integration tests.

use super::Moto;

/// Everything moto holds that a stack could have made, as `kind name`, found by
/// listing (not through the deployer's finders, which stop at the first of a name):
/// the same name twice is a duplicate. Sub-resources are named by their parent
/// (`route <api>/<key>`, `integration <api>`, `listener <lb>/<port>`).
pub async fn held(moto: &Moto) -> Vec<String> {
    let conf = moto.sdk().await;
    let mut all = Vec::new();
    let s3 = moto.s3().await;
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        all.push(format!("bucket {}", b.name().unwrap()));
    }
    let ecr = aws_sdk_ecr::Client::new(&conf);
    for r in ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
    {
        all.push(format!("ecr {}", r.repository_name().unwrap()));
    }
    let iam = aws_sdk_iam::Client::new(&conf);
    for r in iam.list_roles().send().await.unwrap().roles() {
        // The account's service-linked roles are not the stack's.
        if !r.path().starts_with("/aws-service-role/") {
            all.push(format!("role {}", r.role_name()));
        }
    }
    for p in iam
        .list_instance_profiles()
        .send()
        .await
        .unwrap()
        .instance_profiles()
    {
        all.push(format!("profile {}", p.instance_profile_name()));
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    for g in logs
        .describe_log_groups()
        .send()
        .await
        .unwrap()
        .log_groups()
    {
        all.push(format!("log {}", g.log_group_name().unwrap()));
    }
    let lambda = aws_sdk_lambda::Client::new(&conf);
    for f in lambda.list_functions().send().await.unwrap().functions() {
        let name = f.function_name().unwrap();
        all.push(format!("function {name}"));
        let aliases = lambda.list_aliases().function_name(name).send().await;
        for a in aliases.iter().flat_map(|a| a.aliases()) {
            all.push(format!("alias {name}/{}", a.name().unwrap()));
        }
    }
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    for api in apigw.get_apis().send().await.unwrap().items() {
        let (name, id) = (api.name().unwrap(), api.api_id().unwrap());
        all.push(format!("api {name}"));
        let integrations = apigw.get_integrations().api_id(id).send().await.unwrap();
        for _ in integrations.items() {
            all.push(format!("integration {name}"));
        }
        for r in apigw.get_routes().api_id(id).send().await.unwrap().items() {
            all.push(format!("route {name}/{}", r.route_key().unwrap()));
        }
        for s in apigw.get_stages().api_id(id).send().await.unwrap().items() {
            all.push(format!("stage {name}/{}", s.stage_name().unwrap()));
        }
    }
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    for g in ec2
        .describe_security_groups()
        .send()
        .await
        .unwrap()
        .security_groups()
    {
        if g.group_name() != Some("default") {
            all.push(format!("sg {}", g.group_name().unwrap()));
        }
    }
    for t in ec2
        .describe_launch_templates()
        .send()
        .await
        .unwrap()
        .launch_templates()
    {
        all.push(format!("template {}", t.launch_template_name().unwrap()));
    }
    let asg = aws_sdk_autoscaling::Client::new(&conf);
    for g in asg
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()
    {
        all.push(format!("asg {}", g.auto_scaling_group_name().unwrap()));
    }
    let ecs = aws_sdk_ecs::Client::new(&conf);
    let arns = ecs
        .list_clusters()
        .send()
        .await
        .unwrap()
        .cluster_arns()
        .to_vec();
    if !arns.is_empty() {
        let clusters = ecs
            .describe_clusters()
            .set_clusters(Some(arns))
            .send()
            .await
            .unwrap();
        for c in clusters.clusters() {
            if c.status() != Some("ACTIVE") {
                continue;
            }
            let name = c.cluster_name().unwrap();
            all.push(format!("cluster {name}"));
            let services = ecs.list_services().cluster(name).send().await.unwrap();
            for s in services.service_arns() {
                all.push(format!("service {name}/{}", s.rsplit('/').next().unwrap()));
            }
        }
    }
    // moto answers 500 to a describe without names.
    for p in ecs
        .describe_capacity_providers()
        .capacity_providers("yolo-local-capacity")
        .send()
        .await
        .unwrap()
        .capacity_providers()
    {
        let name = p.name().unwrap();
        if p.status().is_none_or(|s| s.as_str() != "INACTIVE") && !name.starts_with("FARGATE") {
            all.push(format!("capacity {name}"));
        }
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    for lb in elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
    {
        let name = lb.load_balancer_name().unwrap();
        all.push(format!("lb {name}"));
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        for l in listeners.listeners() {
            all.push(format!("listener {name}/{}", l.port().unwrap_or_default()));
        }
    }
    for tg in elb
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
    {
        all.push(format!("tg {}", tg.target_group_name().unwrap()));
    }
    all.sort();
    all
}
