//! The Application Load Balancer in front of the ECS service, one file per resource
//! kind: the load balancer (`load_balancer`), the target group with its health check on
//! the predictor's readiness path and a short deregistration delay (`target_group`),
//! and the HTTP listener forwarding to it (`listener`). What they share lives here:
//! tagging, and the retry-less config of the creates AWS makes idempotent and the
//! emulator does not.

mod listener;
mod load_balancer;
mod target_group;

// The module's paths from before the split (`elb::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    listener::{Change as ListenerChange, Listener, ListenerObserved, listener_ports},
    load_balancer::{
        BalancerObserved, Change as LoadBalancerChange, LoadBalancer, find_load_balancer,
    },
    target_group::{
        Change as TargetGroupChange, GroupObserved, TargetGroup, TargetSettings, find_target_group,
        target_group_arn,
    },
};

use super::Tags;
use super::tags::{from_sdk, to_sdk};
use crate::aws::{Aws, AwsError, error};

async fn tags_of(aws: &Aws, arn: &str) -> Result<Tags, AwsError> {
    Ok(aws
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeTags"))?
        .tag_descriptions()
        .iter()
        .flat_map(|d| from_sdk(d.tags()))
        .collect())
}

async fn add_tags(aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
    aws.elb
        .add_tags()
        .resource_arns(arn)
        .set_tags(Some(to_sdk(tags)))
        .send()
        .await
        .map_err(error("elasticloadbalancing:AddTags"))?;
    Ok(())
}

/// A call's config without the SDK's retries, for [`crate::aws::create_once`].
fn once() -> aws_sdk_elasticloadbalancingv2::config::Builder {
    aws_sdk_elasticloadbalancingv2::config::Builder::default()
        .retry_config(aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig::disabled())
}
