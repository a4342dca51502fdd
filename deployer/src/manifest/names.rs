//! Every AWS resource name of a stack, derived from the manifest in one place, so that
//! `up`, `down` and `status` always agree and validation can check the lengths.

use super::Manifest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub repository: String,
    pub input_bucket: String,
    pub output_bucket: String,
    pub lambda_role: String,
    pub task_execution_role: String,
    pub task_role: String,
    pub instance_role: String,
    pub instance_profile: String,
    pub function: String,
    pub lambda_log_group: String,
    pub ecs_log_group: String,
    pub cluster: String,
    pub load_balancer: String,
    pub target_group: String,
    pub http_api: String,
    pub alb_security_group: String,
    pub instance_security_group: String,
    pub launch_template: String,
    pub auto_scaling_group: String,
    pub capacity_provider: String,
    pub service: String,
    pub task_family: String,
}

impl Names {
    pub fn of(m: &Manifest) -> Names {
        let n = &m.name;
        let function = format!("{n}-predictor");
        Names {
            repository: m
                .image
                .repository
                .clone()
                .unwrap_or_else(|| format!("{n}-predictor")),
            input_bucket: m
                .buckets
                .input
                .name
                .clone()
                .unwrap_or_else(|| format!("{n}-input")),
            output_bucket: m
                .buckets
                .output
                .name
                .clone()
                .unwrap_or_else(|| format!("{n}-results")),
            lambda_role: format!("{n}-lambda"),
            task_execution_role: format!("{n}-ecs-task-execution"),
            task_role: format!("{n}-ecs-task"),
            instance_role: format!("{n}-ecs-instance"),
            instance_profile: format!("{n}-ecs-instance"),
            lambda_log_group: format!("/aws/lambda/{function}"),
            ecs_log_group: format!("/ecs/{n}-predictor"),
            function,
            cluster: format!("{n}-cluster"),
            load_balancer: format!("{n}-alb"),
            target_group: format!("{n}-tg"),
            http_api: format!("{n}-api"),
            alb_security_group: format!("{n}-alb"),
            instance_security_group: format!("{n}-instances"),
            launch_template: format!("{n}-instances"),
            auto_scaling_group: format!("{n}-instances"),
            capacity_provider: format!("{n}-capacity"),
            service: format!("{n}-predictor"),
            task_family: format!("{n}-predictor"),
        }
    }
}
