//! ECS on EC2, one file per resource kind: the cluster (`cluster`), the capacity
//! provider on the Auto Scaling group with managed scaling and managed termination
//! protection (`capacity_provider`), its finder and the waits on its status
//! (`capacity_provider_status`) and its attachment to the cluster
//! (`cluster_capacity_providers`), the service (`service`) with its task definition
//! (`task_definition`), the calls that start its deployments and the waits for them
//! (`rollout`), and the service's own CPU target tracking through Application Auto
//! Scaling (`service_scaling`). What several of them share lives here: retrying while
//! ECS cannot yet assume its service-linked role, tagging, and the capacity provider
//! strategy. The tests that replay `apply`'s calls where moto cannot (a capacity
//! provider's update, a service's rollout and its circuit breaker) are in `replay`.
//!
//! Scaling, in one place: the service tracks its average CPU (tasks 1..5 at 70 %); each
//! task takes a whole instance (host networking on one port, sized to the instance), so
//! the capacity provider's managed scaling adds an instance for each task that cannot be
//! placed and lets idle ones go; the group's own CPU policy (the study's setting) adds
//! capacity early when the instances themselves are busy.

mod capacity_provider;
mod capacity_provider_status;
mod cluster;
mod cluster_capacity_providers;
#[cfg(test)]
mod replay;
mod rollout;
mod service;
mod service_scaling;
mod task_definition;

// The module's paths from before the split (`ecs::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    capacity_provider::{CapacityProvider, ProviderObserved},
    cluster::{Cluster, ClusterObserved},
    rollout::{Rollout, rollout_progress},
    service::{Service, ServiceObserved},
    service_scaling::{ScalingObserved, ServiceScaling},
    task_definition::TaskSpec,
};

use std::time::Duration;

use aws_sdk_ecs::types::CapacityProviderStrategyItem;

use super::tags::to_sdk;
use super::{Tags, iam};
use crate::aws::{Aws, AwsError, error};
use crate::wait;

/// How long ECS may take to assume its service-linked role once it exists (IAM
/// propagation: seconds, usually).
pub const SERVICE_LINKED_ROLE_PROPAGATION: Duration = iam::PROPAGATION;

/// Whether ECS refused a call because it cannot assume its service-linked role yet (an
/// account that never used ECS, or a role created seconds ago). ECS reports it with the
/// generic `InvalidParameterException` ("Unable to assume the service linked role. Please
/// verify that the ECS service linked role exists."), so only the message tells it apart,
/// as terraform-provider-aws does for `CreateCluster`.
fn service_linked_role_not_ready(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterException")
        && e.message
            .contains("Unable to assume the service linked role")
}

/// Repeats an ECS call while ECS cannot assume its service-linked role yet.
async fn with_service_linked_role<T, F, Fut>(
    operation: &'static str,
    limit: Duration,
    call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    wait::retrying(
        operation,
        limit,
        Duration::from_secs(1),
        call,
        service_linked_role_not_ready,
    )
    .await
}

async fn tag(aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
    aws.ecs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(to_sdk(tags)))
        .send()
        .await
        .map_err(error("ecs:TagResource"))?;
    Ok(())
}

/// All tasks on capacity provider `name`.
fn strategy(name: &str) -> CapacityProviderStrategyItem {
    CapacityProviderStrategyItem::builder()
        .capacity_provider(name)
        .weight(1)
        .base(0)
        .build()
        .expect("capacity provider is set")
}
