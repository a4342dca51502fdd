//! The capacity provider as DescribeCapacityProviders reports it: the finder, and the
//! waits on what it reports after a change (`updateStatus` UPDATE_COMPLETE after an
//! update, the provider gone after a delete). The wait for ACTIVE, before the provider is
//! attached, is with the attachment (`cluster_capacity_providers`).

use std::time::Duration;

use aws_sdk_ecs::types::CapacityProviderField;

use super::CapacityProvider;
use super::capacity_provider::Pace;
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc};
use crate::wait::{self, Poll};

/// The capacity provider named `name`; `None` when there is none (or only its INACTIVE
/// remains).
pub(super) async fn find_capacity_provider(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_ecs::types::CapacityProvider>, AwsError> {
    let out = aws
        .ecs
        .describe_capacity_providers()
        .capacity_providers(name)
        .include(CapacityProviderField::Tags)
        .send()
        .await
        .found(Svc::Ecs, "ecs:DescribeCapacityProviders")?;
    // A deleted provider lingers as INACTIVE; every other status (PROVISIONING,
    // ACTIVE, DEPROVISIONING, and any AWS adds) is a provider that exists.
    Ok(out.and_then(|o| {
        o.capacity_providers()
            .iter()
            .find(|c| c.status().is_none_or(|s| s.as_str() != "INACTIVE"))
            .cloned()
    }))
}

/// Where an update of a capacity provider stands, from its `updateStatus`.
fn update_progress(status: Option<&str>, reason: Option<&str>) -> Poll<()> {
    match status {
        Some("UPDATE_COMPLETE") => Poll::Ready(()),
        Some("UPDATE_FAILED") => Poll::Failed(format!(
            "capacity provider UPDATE_FAILED: {}",
            reason.unwrap_or("no reason given")
        )),
        // moto reports UPDATE_COMPLETE at once; a provider reporting no update status at
        // all has none left to wait for.
        None => Poll::Ready(()),
        Some(other) => Poll::Pending(format!("capacity provider {other}")),
    }
}

impl CapacityProvider {
    /// Waits, bounded by `pace`, until ECS has made the update (UPDATE_COMPLETE); fails on
    /// UPDATE_FAILED with ECS's reason.
    pub(super) async fn wait_updated(&self, aws: &Aws, pace: Pace) -> Result<(), AwsError> {
        wait::until(
            "ecs:UpdateCapacityProvider",
            pace.limit,
            pace.first,
            || async {
                let Some(cp) = find_capacity_provider(aws, &self.name).await? else {
                    return Ok(Poll::Failed(format!(
                        "capacity provider `{}` disappeared",
                        self.name
                    )));
                };
                Ok(update_progress(
                    cp.update_status().map(|s| s.as_str()),
                    cp.update_status_reason(),
                ))
            },
        )
        .await
    }

    /// Waits, up to `limit`, until the deleted provider is gone.
    pub(super) async fn wait_deleted(&self, aws: &Aws, limit: Duration) -> Result<(), AwsError> {
        wait::until(
            "ecs:DeleteCapacityProvider",
            limit,
            Duration::from_secs(2),
            || async {
                Ok(match find_capacity_provider(aws, &self.name).await? {
                    None => Poll::Ready(()),
                    Some(cp) => Poll::Pending(format!(
                        "capacity provider {}",
                        cp.update_status().map_or("deleting", |s| s.as_str())
                    )),
                })
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_is_waited_for_until_complete_and_fails_with_its_reason() {
        assert_eq!(
            update_progress(Some("UPDATE_IN_PROGRESS"), None),
            Poll::Pending("capacity provider UPDATE_IN_PROGRESS".into())
        );
        assert_eq!(
            update_progress(Some("UPDATE_COMPLETE"), None),
            Poll::Ready(())
        );
        assert_eq!(
            update_progress(Some("UPDATE_FAILED"), Some("internal error")),
            Poll::Failed("capacity provider UPDATE_FAILED: internal error".into())
        );
    }
}
