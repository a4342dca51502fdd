//! The capacity provider on the Auto Scaling group: managed scaling at the manifest's
//! target capacity and managed termination protection, attached to the cluster as its
//! default strategy. The group is created empty; its minimum is set only once the
//! provider is attached.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, CapacityProviderField, ManagedScaling, ManagedScalingStatus,
    ManagedTerminationProtection,
};

use super::cluster::describe_cluster;
use super::{
    SERVICE_LINKED_ROLE_PROPAGATION, sdk_tags, strategy, tag, tags_of, with_service_linked_role,
};
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::{Field, Id, Kind, Resource, Tags, tag_field};
use crate::wait::{self, Poll};

/// How long a new capacity provider may take to become ACTIVE.
pub const PROVIDER_ACTIVE: Duration = Duration::from_secs(300);

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

impl Resource for CapacityProvider {
    type Observed = ProviderObserved;
    type Change = Field;
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
        let Some(cp) = self.describe(aws).await? else {
            return Ok(None);
        };
        let asg = cp.auto_scaling_group_provider();
        let associated = describe_cluster(aws, &self.cluster)
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
            tags: tags_of(cp.tags()),
        }))
    }

    fn tags(o: &ProviderObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ProviderObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if o.target_capacity != Some(self.target_capacity) || !o.termination_protection {
            let protection = |on: bool| if on { "on" } else { "off" };
            d.push(Field::new(
                "managed_scaling",
                Some(format!(
                    "target {}, termination protection {}",
                    o.target_capacity
                        .map_or("off".to_string(), |t| format!("{t} %")),
                    protection(o.termination_protection)
                )),
                format!(
                    "target {} %, termination protection on",
                    self.target_capacity
                ),
            ));
        }
        if !o.associated {
            d.push(Field::new("cluster", None::<String>, &self.cluster));
        }
        if o.group_min != Some(self.group_min) {
            d.push(Field::new("group_min", o.group_min, self.group_min));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ProviderObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        match observed {
            None => {
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
                            .map_err(|e| {
                                AwsError::new("ecs:CreateCapacityProvider", e.to_string())
                            })?,
                    )
                    .set_tags(Some(sdk_tags(&self.tags)))
                    .send()
                    .await
                    .map_err(error("ecs:CreateCapacityProvider"))?;
            }
            Some(o) => {
                if changed("managed_scaling") {
                    aws.ecs
                        .update_capacity_provider()
                        .name(&self.name)
                        .auto_scaling_group_provider(
                            aws_sdk_ecs::types::AutoScalingGroupProviderUpdate::builder()
                                .managed_scaling(self.managed_scaling())
                                .managed_termination_protection(
                                    ManagedTerminationProtection::Enabled,
                                )
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(error("ecs:UpdateCapacityProvider"))?;
                }
                if changed("tags") {
                    tag(aws, &o.arn, &self.tags).await?;
                }
            }
        }
        if changed("cluster") {
            self.associate(aws, vec![self.name.clone()]).await?;
        }
        // Only now that the provider is attached may instances come.
        if changed("group_min") {
            self.set_group_min(aws).await?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &ProviderObserved) -> Result<(), AwsError> {
        if o.associated {
            self.associate(aws, Vec::new()).await?;
        }
        aws.ecs
            .delete_capacity_provider()
            .capacity_provider(&self.name)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DeleteCapacityProvider")?;
        wait::until(
            "ecs:DeleteCapacityProvider",
            Duration::from_secs(300),
            Duration::from_secs(2),
            || async {
                Ok(match self.describe(aws).await? {
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

impl CapacityProvider {
    async fn describe(
        &self,
        aws: &Aws,
    ) -> Result<Option<aws_sdk_ecs::types::CapacityProvider>, AwsError> {
        let out = aws
            .ecs
            .describe_capacity_providers()
            .capacity_providers(&self.name)
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

impl CapacityProvider {
    /// Waits, up to `limit`, until the provider is ACTIVE (a new one is PROVISIONING
    /// for a while: terraform-provider-aws #42943, PR #45567).
    pub async fn wait_active(&self, aws: &Aws, limit: Duration) -> Result<(), AwsError> {
        wait::until(
            "ecs:DescribeCapacityProviders",
            limit,
            Duration::from_secs(1),
            || async {
                let Some(cp) = self.describe(aws).await? else {
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

    fn managed_scaling(&self) -> ManagedScaling {
        ManagedScaling::builder()
            .status(ManagedScalingStatus::Enabled)
            .target_capacity(self.target_capacity)
            .build()
    }

    async fn associate(&self, aws: &Aws, providers: Vec<String>) -> Result<(), AwsError> {
        let strategy = if providers.is_empty() {
            Vec::new()
        } else {
            // ECS refuses a provider that is not ACTIVE yet.
            self.wait_active(aws, PROVIDER_ACTIVE).await?;
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
