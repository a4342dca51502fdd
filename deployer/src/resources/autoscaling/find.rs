//! The group as Auto Scaling describes it: the finders, what `find` reports, the wait
//! for a deleted group, and the one eventual-consistency answer creating it meets.

use std::time::Duration;

use aws_sdk_autoscaling::types::AutoScalingGroup;

use super::Observed;
use crate::aws::{Aws, AwsError, error};
use crate::resources::tags::from_sdk;
use crate::wait::{self, Poll};

/// The group `name` as Auto Scaling describes it; `None` when there is none (Auto
/// Scaling answers an unknown name with an empty list).
pub(super) async fn find_group(
    aws: &Aws,
    name: &str,
) -> Result<Option<AutoScalingGroup>, AwsError> {
    Ok(aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(error("autoscaling:DescribeAutoScalingGroups"))?
        .auto_scaling_groups()
        .first()
        .cloned())
}

/// The target of the group's target-tracking policy `policy`, if it has one.
pub(super) async fn find_policy_target(
    aws: &Aws,
    group: &str,
    policy: &str,
) -> Result<Option<f64>, AwsError> {
    let policies = aws
        .autoscaling
        .describe_policies()
        .auto_scaling_group_name(group)
        .policy_names(policy)
        .send()
        .await
        .map_err(error("autoscaling:DescribePolicies"))?;
    Ok(policies.scaling_policies().first().map(|p| {
        p.target_tracking_configuration()
            .and_then(|t| t.target_value())
            .unwrap_or_default()
    }))
}

/// What `find` reports of the group `g`, with the target of its legacy CPU policy.
pub(super) fn observed(g: &AutoScalingGroup, cpu_policy: Option<f64>) -> Observed {
    let mut subnets: Vec<String> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    subnets.sort();
    Observed {
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        min: g.min_size().unwrap_or_default() as u32,
        max: g.max_size().unwrap_or_default() as u32,
        desired: g.desired_capacity().unwrap_or_default() as u32,
        launch_template: g
            .launch_template()
            .and_then(|t| t.launch_template_name())
            .unwrap_or_default()
            .to_string(),
        template_version: g
            .launch_template()
            .and_then(|t| t.version())
            .unwrap_or_default()
            .to_string(),
        subnets,
        protect_new_instances: g.new_instances_protected_from_scale_in().unwrap_or(false),
        cooldown_s: g.default_cooldown().unwrap_or_default() as u32,
        instances: g
            .instances()
            .iter()
            .map(|i| {
                (
                    i.instance_id().unwrap_or_default().to_string(),
                    i.protected_from_scale_in().unwrap_or(false),
                )
            })
            .collect(),
        in_service: g
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state()
                    .is_some_and(|s| s.as_str() == "InService")
            })
            .count(),
        cpu_policy,
        tags: from_sdk(g.tags()),
    }
}

/// Waits until the group `name` is gone, its instances terminated.
pub(super) async fn wait_group_deleted(
    aws: &Aws,
    name: &str,
    timeout: Duration,
) -> Result<(), AwsError> {
    wait::until(
        "autoscaling:DeleteAutoScalingGroup",
        timeout,
        Duration::from_secs(5),
        || async {
            Ok(match find_group(aws, name).await? {
                None => Poll::Ready(()),
                Some(g) => Poll::Pending(format!(
                    "{} instance(s) terminating, status {}",
                    g.instances().len(),
                    g.status().unwrap_or("deleting")
                )),
            })
        },
    )
    .await
}

/// Whether `CreateAutoScalingGroup` refused the launch template because its instance
/// profile is seconds old and not visible to Auto Scaling yet (terraform-provider-aws
/// PR #5633, eksctl #8039: "Value (…) for parameter iamInstanceProfile.name is invalid.
/// Invalid IAM Instance Profile name"). Auto Scaling answers every invalid request with
/// the one code `ValidationError`, so only the message tells this one apart.
pub(super) fn profile_not_visible(e: &AwsError) -> bool {
    e.code.as_deref() == Some("ValidationError")
        && e.message.contains("Invalid IAM Instance Profile")
}
