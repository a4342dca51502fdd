//! What `up` provisioned, read back from the emulator's control plane: the local
//! runtime runs exactly this, so a wrong setting in the deployer shows up locally as it
//! would on AWS.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_ecs::types::ContainerDefinition;
use aws_sdk_elasticloadbalancingv2::types::TargetGroup;

use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::manifest::Names;
use crate::resources::{apigw, elb};

/// The function behind the HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub image: String,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub env: BTreeMap<String, String>,
    /// Reserved concurrency, when set: the environment limit.
    pub reserved: Option<u32>,
    pub log_group: String,
    /// The HTTP API's route keys (`POST /predict`, `$default`).
    pub routes: Vec<String>,
}

/// The ECS service behind the load balancer, with its scaling and health check.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub port: u16,
    /// CPU units of the task (1024 per vCPU).
    pub cpu_units: u32,
    pub log_group: String,
    pub min: u32,
    pub max: u32,
    /// Target average CPU, percent.
    pub cpu_target: f64,
    pub health: Health,
    pub deregistration_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy: u32,
    pub unhealthy: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provisioned {
    pub function: Option<Function>,
    pub fleet: Option<Fleet>,
}

/// Reads both targets; a target that is not (fully) provisioned is `None`.
pub async fn read(aws: &Aws, n: &Names) -> Result<Provisioned, AwsError> {
    let (function, fleet) = tokio::try_join!(function(aws, n), fleet(aws, n))?;
    Ok(Provisioned { function, fleet })
}

async fn function(aws: &Aws, n: &Names) -> Result<Option<Function>, AwsError> {
    let Some(f) = aws
        .lambda
        .get_function()
        .function_name(&n.function)
        .send()
        .await
        .found(Service::Lambda, "lambda:GetFunction")?
    else {
        return Ok(None);
    };
    let (Some(config), Some(image)) = (f.configuration(), f.code().and_then(|c| c.image_uri()))
    else {
        return Ok(None);
    };
    let Some(api) = apigw::find_api(aws, &n.http_api).await? else {
        return Ok(None);
    };
    let routes = aws
        .apigw
        .get_routes()
        .api_id(api.api_id().unwrap_or_default())
        .send()
        .await
        .map_err(error("apigateway:GetRoutes"))?
        .items()
        .iter()
        .filter_map(|r| r.route_key().map(str::to_string))
        .collect();
    Ok(Some(Function {
        name: n.function.clone(),
        image: image.to_string(),
        memory_mb: config.memory_size().unwrap_or(128).max(128) as u32,
        timeout: Duration::from_secs(config.timeout().unwrap_or(3).max(1) as u64),
        env: config
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        reserved: f
            .concurrency()
            .and_then(|c| c.reserved_concurrent_executions())
            .map(|r| r.max(0) as u32),
        log_group: config
            .logging_config()
            .and_then(|l| l.log_group())
            .map_or_else(|| n.lambda_log_group.clone(), str::to_string),
        routes,
    }))
}

async fn fleet(aws: &Aws, n: &Names) -> Result<Option<Fleet>, AwsError> {
    let Some(container) = container(aws, n).await? else {
        return Ok(None);
    };
    let Some(scaling) = scaling(aws, n).await? else {
        return Ok(None);
    };
    let Some(tg) = elb::find_target_group(aws, &n.target_group).await? else {
        return Ok(None);
    };
    let delay = deregistration_delay(aws, &tg).await?;
    Ok(Some(Fleet {
        image: container.image().unwrap_or_default().to_string(),
        env: container
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
            .collect(),
        port: container
            .port_mappings()
            .first()
            .and_then(|p| p.container_port())
            .unwrap_or(8080) as u16,
        cpu_units: container.cpu().max(0) as u32,
        log_group: container
            .log_configuration()
            .and_then(|l| l.options())
            .and_then(|o| o.get("awslogs-group").cloned())
            .unwrap_or_else(|| n.ecs_log_group.clone()),
        min: scaling.min,
        max: scaling.max,
        cpu_target: scaling.cpu_target,
        health: Health::of(&tg),
        deregistration_delay: Duration::from_secs(delay),
    }))
}

/// The container of the service's task definition; none while the service is not
/// (or no longer) there.
async fn container(aws: &Aws, n: &Names) -> Result<Option<ContainerDefinition>, AwsError> {
    let services = aws
        .ecs
        .describe_services()
        .cluster(&n.cluster)
        .services(&n.service)
        .send()
        .await
        .found(Service::Ecs, "ecs:DescribeServices")?;
    let Some(task_definition) = services
        .as_ref()
        .and_then(|s| s.services().first())
        .filter(|s| s.status() != Some("INACTIVE"))
        .and_then(|s| s.task_definition())
    else {
        return Ok(None);
    };
    let td = aws
        .ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .map_err(error("ecs:DescribeTaskDefinition"))?;
    Ok(td
        .task_definition()
        .and_then(|t| t.container_definitions().first())
        .cloned())
}

/// The service's task bounds and CPU target.
struct Scaling {
    min: u32,
    max: u32,
    cpu_target: f64,
}

/// The instances follow the tasks one to one (each task fills an instance), so the
/// runtime scales by the service's scaling: its task bounds and its CPU target. The
/// group's own maximum holds one spare instance for rollouts, which the runtime's
/// rollouts do not need.
async fn scaling(aws: &Aws, n: &Names) -> Result<Option<Scaling>, AwsError> {
    let resource = format!("service/{}/{}", n.cluster, n.service);
    let targets = aws
        .appscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(error("application-autoscaling:DescribeScalableTargets"))?;
    let Some(bounds) = targets.scalable_targets().first() else {
        return Ok(None);
    };
    let policies = aws
        .appscaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource)
        .send()
        .await
        .map_err(error("application-autoscaling:DescribeScalingPolicies"))?;
    let cpu_target = policies
        .scaling_policies()
        .iter()
        .find_map(|p| {
            Some(
                p.target_tracking_scaling_policy_configuration()?
                    .target_value(),
            )
        })
        .unwrap_or(70.0);
    Ok(Some(Scaling {
        min: bounds.min_capacity().max(0) as u32,
        max: bounds.max_capacity().max(1) as u32,
        cpu_target,
    }))
}

/// How long the target group lets a deregistered target drain, seconds.
async fn deregistration_delay(aws: &Aws, tg: &TargetGroup) -> Result<u64, AwsError> {
    let attributes = aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tg.target_group_arn().unwrap_or_default())
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeTargetGroupAttributes"))?;
    Ok(attributes
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value()?.parse().ok())
        .unwrap_or(300))
}

impl Health {
    /// The target group's health check.
    fn of(tg: &TargetGroup) -> Health {
        let secs = |v: Option<i32>, default: u64| {
            Duration::from_secs(v.map_or(default, |v| v.max(1) as u64))
        };
        Health {
            path: tg.health_check_path().unwrap_or("/").to_string(),
            interval: secs(tg.health_check_interval_seconds(), 30),
            timeout: secs(tg.health_check_timeout_seconds(), 5),
            healthy: tg.healthy_threshold_count().unwrap_or(5).max(1) as u32,
            unhealthy: tg.unhealthy_threshold_count().unwrap_or(2).max(1) as u32,
        }
    }
}
