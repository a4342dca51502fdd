//! The cluster's capacity providers and default strategy: the capacity provider is
//! attached once it is ACTIVE, and detached before it is deleted. (terraform-provider-aws
//! keeps this as a resource of its own, `aws_ecs_cluster_capacity_providers`; here the
//! capacity provider plans it as its `cluster` change.)

use std::time::Duration;

use super::capacity_provider_status::find_capacity_provider;
use super::{
    CapacityProvider, SERVICE_LINKED_ROLE_PROPAGATION, strategy, with_service_linked_role,
};
use crate::aws::{Aws, AwsError, error};
use crate::wait::{self, Poll};

impl CapacityProvider {
    /// Makes `providers` (this provider, or none) the cluster's, with all tasks on them.
    pub(super) async fn associate(
        &self,
        aws: &Aws,
        providers: Vec<String>,
        limit: Duration,
    ) -> Result<(), AwsError> {
        let strategy = if providers.is_empty() {
            Vec::new()
        } else {
            // ECS refuses a provider that is not ACTIVE yet.
            self.wait_active(aws, limit).await?;
            vec![strategy(&self.name)]
        };
        with_service_linked_role(
            "ecs:PutClusterCapacityProviders",
            SERVICE_LINKED_ROLE_PROPAGATION,
            || async {
                aws.ecs
                    .put_cluster_capacity_providers()
                    .cluster(&self.cluster)
                    .set_capacity_providers(Some(providers.clone()))
                    .set_default_capacity_provider_strategy(Some(strategy.clone()))
                    .send()
                    .await
                    .map_err(error("ecs:PutClusterCapacityProviders"))
            },
        )
        .await?;
        Ok(())
    }

    /// Waits, up to `limit`, until the provider is ACTIVE (a new one is PROVISIONING
    /// for a while: terraform-provider-aws #42943, PR #45567).
    pub async fn wait_active(&self, aws: &Aws, limit: Duration) -> Result<(), AwsError> {
        wait::until(
            "ecs:DescribeCapacityProviders",
            limit,
            Duration::from_secs(1),
            || async {
                let Some(cp) = find_capacity_provider(aws, &self.name).await? else {
                    return Ok(Poll::Failed(format!(
                        "capacity provider `{}` disappeared",
                        self.name
                    )));
                };
                Ok(activity(
                    cp.status().map(|s| s.as_str()),
                    cp.update_status().map(|s| s.as_str()),
                    cp.update_status_reason(),
                ))
            },
        )
        .await
    }
}

/// Whether a capacity provider with this status can be attached to a cluster.
fn activity(status: Option<&str>, update: Option<&str>, reason: Option<&str>) -> Poll<()> {
    match (status, update) {
        (_, Some(failed @ ("CREATE_FAILED" | "UPDATE_FAILED"))) => Poll::Failed(format!(
            "capacity provider {failed}: {}",
            reason.unwrap_or("no reason given")
        )),
        (Some("ACTIVE"), _) => Poll::Ready(()),
        (status, _) => Poll::Pending(format!(
            "capacity provider {}",
            status.unwrap_or("without a status")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_provider_stops_the_wait_with_its_reason() {
        assert_eq!(activity(Some("ACTIVE"), None, None), Poll::Ready(()));
        assert_eq!(
            activity(Some("PROVISIONING"), None, None),
            Poll::Pending("capacity provider PROVISIONING".into())
        );
        assert_eq!(
            activity(Some("ACTIVE"), Some("UPDATE_FAILED"), Some("no group")),
            Poll::Failed("capacity provider UPDATE_FAILED: no group".into())
        );
    }
}
