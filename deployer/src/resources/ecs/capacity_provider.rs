//! The capacity provider on the Auto Scaling group: managed scaling at the manifest's
//! target capacity and managed termination protection, attached to the cluster as its
//! default strategy (`cluster_capacity_providers`). The group is created empty; its
//! minimum is set only once the provider is attached.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, AutoScalingGroupProviderUpdate, ManagedScaling, ManagedScalingStatus,
    ManagedTerminationProtection,
};

use super::capacity_provider_status::find_capacity_provider;
use super::cluster::find_cluster;
use super::tag;
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::tags::{from_sdk, to_sdk};
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, tag_diff};
use crate::wait;

#[derive(Debug, Clone, PartialEq)]
pub struct CapacityProvider {
    pub name: String,
    pub cluster: String,
    pub auto_scaling_group: String,
    /// Percent of instance capacity managed scaling keeps in use.
    pub target_capacity: i32,
    /// The group's minimum, set once the provider is attached: the group is created
    /// empty so that no instance registers before (ECS guide, Auto Scaling group
    /// capacity providers).
    pub group_min: u32,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderObserved {
    pub arn: String,
    pub auto_scaling_group_arn: String,
    pub target_capacity: Option<i32>,
    pub termination_protection: bool,
    pub associated: bool,
    /// The group's minimum; `None` when the group does not exist.
    pub group_min: Option<u32>,
    pub tags: Tags,
}

/// Managed scaling as a capacity provider has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaling {
    /// Percent of instance capacity kept in use; `None` when managed scaling is off.
    pub target_capacity: Option<i32>,
    pub termination_protection: bool,
}

/// What `up` can change on a capacity provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Managed scaling at target `to` %, with managed termination protection on.
    ManagedScaling {
        from: Scaling,
        to: i32,
    },
    /// The provider is not attached to cluster `to`.
    Cluster {
        to: String,
    },
    /// The Auto Scaling group's minimum (`from`: `None` when the group is missing).
    GroupMin {
        from: Option<u32>,
        to: u32,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::ManagedScaling { from, to } => {
                let protection = if from.termination_protection {
                    "on"
                } else {
                    "off"
                };
                Field::new(
                    "managed_scaling",
                    Some(format!(
                        "target {}, termination protection {protection}",
                        from.target_capacity
                            .map_or("off".to_string(), |t| format!("{t} %")),
                    )),
                    format!("target {to} %, termination protection on"),
                )
            }
            Change::Cluster { to } => Field::new("cluster", None::<String>, to),
            Change::GroupMin { from, to } => Field::new("group_min", *from, to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl CapacityProvider {
    /// Creates the provider on the (existing) Auto Scaling group.
    async fn create(&self, aws: &Aws) -> Result<(), AwsError> {
        let asg = aws
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.auto_scaling_group)
            .send()
            .await
            .map_err(error("autoscaling:DescribeAutoScalingGroups"))?
            .auto_scaling_groups()
            .first()
            .and_then(|g| g.auto_scaling_group_arn())
            .map(str::to_string)
            .ok_or_else(|| {
                AwsError::new(
                    "ecs:CreateCapacityProvider",
                    format!(
                        "auto scaling group `{}` does not exist",
                        self.auto_scaling_group
                    ),
                )
            })?;
        aws.ecs
            .create_capacity_provider()
            .name(&self.name)
            .auto_scaling_group_provider(
                AutoScalingGroupProvider::builder()
                    .auto_scaling_group_arn(asg)
                    .managed_scaling(self.managed_scaling())
                    .managed_termination_protection(ManagedTerminationProtection::Enabled)
                    .build()
                    .map_err(|e| AwsError::new("ecs:CreateCapacityProvider", e.to_string()))?,
            )
            .set_tags(Some(to_sdk(&self.tags)))
            .send()
            .await
            .map_err(error("ecs:CreateCapacityProvider"))?;
        Ok(())
    }

    /// Sets managed scaling, repeating the call while an earlier update is still in
    /// progress, then waits until ECS has made the update: both bounded by `pace`.
    pub(super) async fn update_managed_scaling(
        &self,
        aws: &Aws,
        pace: Pace,
    ) -> Result<(), AwsError> {
        wait::retrying(
            "ecs:UpdateCapacityProvider",
            pace.limit,
            pace.first,
            || async {
                aws.ecs
                    .update_capacity_provider()
                    .name(&self.name)
                    .auto_scaling_group_provider(
                        AutoScalingGroupProviderUpdate::builder()
                            .managed_scaling(self.managed_scaling())
                            .managed_termination_protection(ManagedTerminationProtection::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(error("ecs:UpdateCapacityProvider"))
            },
            update_in_progress,
        )
        .await?;
        self.wait_updated(aws, pace).await
    }

    fn managed_scaling(&self) -> ManagedScaling {
        ManagedScaling::builder()
            .status(ManagedScalingStatus::Enabled)
            .target_capacity(self.target_capacity)
            .build()
    }

    /// Raises (or lowers) the group's minimum to the manifest's.
    async fn set_group_min(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&self.auto_scaling_group)
            .min_size(self.group_min as i32)
            .send()
            .await
            .map_err(error("autoscaling:UpdateAutoScalingGroup"))?;
        Ok(())
    }
}

impl Resource for CapacityProvider {
    type Observed = ProviderObserved;
    type Change = Change;
    const KIND: Kind = Kind::CapacityProvider;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![
            Id::new(Kind::EcsCluster, &self.cluster),
            Id::new(Kind::AutoScalingGroup, &self.auto_scaling_group),
        ]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ProviderObserved>, AwsError> {
        let Some(cp) = find_capacity_provider(aws, &self.name).await? else {
            return Ok(None);
        };
        let asg = cp.auto_scaling_group_provider();
        let associated = find_cluster(aws, &self.cluster)
            .await?
            .is_some_and(|c| c.capacity_providers().contains(&self.name));
        let group_min = aws
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.auto_scaling_group)
            .send()
            .await
            .map_err(error("autoscaling:DescribeAutoScalingGroups"))?
            .auto_scaling_groups()
            .first()
            .and_then(|g| g.min_size())
            .map(|m| m as u32);
        Ok(Some(ProviderObserved {
            arn: cp.capacity_provider_arn().unwrap_or_default().to_string(),
            auto_scaling_group_arn: asg
                .map(|a| a.auto_scaling_group_arn().to_string())
                .unwrap_or_default(),
            target_capacity: asg
                .and_then(|a| a.managed_scaling())
                .filter(|m| m.status() == Some(&ManagedScalingStatus::Enabled))
                .and_then(|m| m.target_capacity()),
            termination_protection: asg
                .and_then(|a| a.managed_termination_protection())
                .is_some_and(|p| *p == ManagedTerminationProtection::Enabled),
            associated,
            group_min,
            tags: from_sdk(cp.tags()),
        }))
    }

    fn tags(o: &ProviderObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ProviderObserved) -> Vec<Change> {
        let mut d = Vec::new();
        if self.needs_managed_scaling_update(o) {
            d.push(Change::ManagedScaling {
                from: Scaling {
                    target_capacity: o.target_capacity,
                    termination_protection: o.termination_protection,
                },
                to: self.target_capacity,
            });
        }
        if !o.associated {
            d.push(Change::Cluster {
                to: self.cluster.clone(),
            });
        }
        if o.group_min != Some(self.group_min) {
            d.push(Change::GroupMin {
                from: o.group_min,
                to: self.group_min,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ProviderObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        // A new provider is attached and the group's minimum set, as for those changes.
        let (mut scaling, mut attach, mut group_min, mut retag) =
            (false, observed.is_none(), observed.is_none(), false);
        for change in changes {
            match change {
                Change::ManagedScaling { .. } => scaling = true,
                Change::Cluster { .. } => attach = true,
                Change::GroupMin { .. } => group_min = true,
                Change::Tags(_) => retag = true,
            }
        }
        match observed {
            None => self.create(aws).await?,
            Some(o) => {
                if scaling {
                    let pace = Pace {
                        limit: aws.timeouts.update(),
                        first: UPDATE_FIRST_PAUSE,
                    };
                    self.update_managed_scaling(aws, pace).await?;
                }
                if retag {
                    tag(aws, &o.arn, &self.tags).await?;
                }
            }
        }
        if attach {
            let limit = match observed {
                None => aws.timeouts.create(),
                Some(_) => aws.timeouts.update(),
            };
            self.associate(aws, vec![self.name.clone()], limit).await?;
        }
        // Only now that the provider is attached may instances come.
        if group_min {
            self.set_group_min(aws).await?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &ProviderObserved) -> Result<(), AwsError> {
        if o.associated {
            self.associate(aws, Vec::new(), aws.timeouts.delete())
                .await?;
        }
        aws.ecs
            .delete_capacity_provider()
            .capacity_provider(&self.name)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DeleteCapacityProvider")?;
        self.wait_deleted(aws, aws.timeouts.delete()).await
    }

    fn detail(o: &ProviderObserved) -> String {
        format!(
            "managed scaling target {} %, on {}",
            o.target_capacity.map_or("off".into(), |t| t.to_string()),
            o.auto_scaling_group_arn
                .rsplit('/')
                .next()
                .unwrap_or_default()
        )
    }
}

/// How long, and how often, an update is repeated while another is in progress, and then
/// waited for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    pub limit: Duration,
    /// The first pause between two looks (it doubles).
    pub first: Duration,
}

/// The first pause of an update's retries and of the wait for it (the limit is the
/// manifest's `timeouts.update_s`): ECS usually makes an update within seconds.
const UPDATE_FIRST_PAUSE: Duration = Duration::from_secs(2);

/// Whether ECS refused an update because the previous one has not finished: an update is
/// asynchronous (`updateStatus` UPDATE_IN_PROGRESS until UPDATE_COMPLETE or
/// UPDATE_FAILED), and ECS refuses another meanwhile with this code, which
/// terraform-provider-aws retries (`RetryWhenIsA[*UpdateInProgressException]`). The SDK's
/// model does not list it for UpdateCapacityProvider, so only the code tells it.
fn update_in_progress(e: &AwsError) -> bool {
    e.code.as_deref() == Some("UpdateInProgressException")
}

impl CapacityProvider {
    /// Whether managed scaling is off, at another target, or without termination
    /// protection.
    fn needs_managed_scaling_update(&self, o: &ProviderObserved) -> bool {
        o.target_capacity != Some(self.target_capacity) || !o.termination_protection
    }
}

#[cfg(test)]
#[path = "capacity_provider_tests.rs"]
pub(super) mod tests;
