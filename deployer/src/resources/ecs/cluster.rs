//! The ECS cluster: Container Insights on or off, and the stack's tags. Creating the
//! first one makes sure ECS's service-linked role exists.

use std::time::Duration;

use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName};

use super::{SERVICE_LINKED_ROLE_PROPAGATION, tag, with_service_linked_role};
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::tags::{from_sdk, to_sdk};
use crate::resources::{Field, Kind, Resource, TagChange, Tags, iam, tag_diff};
use crate::wait;

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub container_insights: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterObserved {
    pub arn: String,
    pub container_insights: bool,
    pub instances: i32,
    pub running_tasks: i32,
    pub tags: Tags,
}

/// What `up` can change on a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    ContainerInsights { from: bool, to: bool },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::ContainerInsights { from, to } => {
                Field::new("container_insights", Some(from), to)
            }
            Change::Tags(t) => t.field(),
        }
    }
}

impl Cluster {
    fn setting(&self) -> ClusterSetting {
        ClusterSetting::builder()
            .name(ClusterSettingName::ContainerInsights)
            .value(if self.container_insights {
                "enabled"
            } else {
                "disabled"
            })
            .build()
    }
}

impl Resource for Cluster {
    type Observed = ClusterObserved;
    type Change = Change;
    const KIND: Kind = Kind::EcsCluster;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ClusterObserved>, AwsError> {
        let Some(c) = find_cluster(aws, &self.name).await? else {
            return Ok(None);
        };
        Ok(Some(ClusterObserved {
            arn: c.cluster_arn().unwrap_or_default().to_string(),
            container_insights: c.settings().iter().any(|s| {
                s.name() == Some(&ClusterSettingName::ContainerInsights)
                    && s.value().is_some_and(|v| v != "disabled")
            }),
            instances: c.registered_container_instances_count(),
            running_tasks: c.running_tasks_count(),
            tags: from_sdk(c.tags()),
        }))
    }

    fn tags(o: &ClusterObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ClusterObserved) -> Vec<Change> {
        let mut d = Vec::new();
        if o.container_insights != self.container_insights {
            d.push(Change::ContainerInsights {
                from: o.container_insights,
                to: self.container_insights,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ClusterObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            // An account that never used ECS has no service-linked role, and every
            // cluster, capacity provider and service call fails until it exists: the
            // first cluster of a stack makes sure it does.
            iam::ECS_SERVICE_LINKED_ROLE.ensure(aws).await?;
            // CreateCluster on an existing name replaces it: only ever called after
            // `find` saw none.
            with_service_linked_role(
                "ecs:CreateCluster",
                SERVICE_LINKED_ROLE_PROPAGATION,
                || async {
                    aws.ecs
                        .create_cluster()
                        .cluster_name(&self.name)
                        .settings(self.setting())
                        .set_tags(Some(to_sdk(&self.tags)))
                        .send()
                        .await
                        .map_err(error("ecs:CreateCluster"))
                },
            )
            .await?;
            return Ok(());
        };
        for change in changes {
            match change {
                Change::ContainerInsights { .. } => {
                    aws.ecs
                        .update_cluster()
                        .cluster(&self.name)
                        .settings(self.setting())
                        .send()
                        .await
                        .map_err(error("ecs:UpdateCluster"))?;
                }
                Change::Tags(_) => tag(aws, &o.arn, &self.tags).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &ClusterObserved) -> Result<(), AwsError> {
        // Instances of a just-deleted Auto Scaling group deregister within minutes.
        wait::retrying(
            "ecs:DeleteCluster",
            aws.timeouts.delete(),
            Duration::from_secs(5),
            || async {
                aws.ecs
                    .delete_cluster()
                    .cluster(&self.name)
                    .send()
                    .await
                    .found(Svc::Ecs, "ecs:DeleteCluster")
            },
            is_still_in_use,
        )
        .await?;
        Ok(())
    }

    fn detail(o: &ClusterObserved) -> String {
        format!(
            "{} container instance(s), {} running task(s)",
            o.instances, o.running_tasks
        )
    }
}

/// The ACTIVE cluster named `name`; `None` when there is none.
pub(super) async fn find_cluster(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_ecs::types::Cluster>, AwsError> {
    let out = aws
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .found(Svc::Ecs, "ecs:DescribeClusters")?;
    // A deleted cluster lingers as INACTIVE; a missing one is a "failure".
    Ok(out.and_then(|o| {
        o.clusters()
            .iter()
            .find(|c| c.status() == Some("ACTIVE"))
            .cloned()
    }))
}

/// Whether the cluster cannot be deleted yet because something still runs in it.
fn is_still_in_use(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some(
            "ClusterContainsContainerInstancesException"
                | "ClusterContainsServicesException"
                | "ClusterContainsTasksException"
                | "ResourceInUseException"
                | "UpdateInProgressException"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn tags(stack: &str) -> Tags {
        [("deployer:stack".to_string(), stack.to_string())].into()
    }

    #[test]
    fn container_insights_and_tag_drift_are_named() {
        let c = Cluster {
            name: "s-cluster".into(),
            container_insights: true,
            tags: tags("s"),
        };
        let mut o = ClusterObserved {
            arn: "arn:cluster".into(),
            container_insights: true,
            instances: 1,
            running_tasks: 1,
            tags: tags("s"),
        };
        assert_eq!(c.diff(&o), []);
        o.container_insights = false;
        o.tags = Tags::new();
        let d = c.diff(&o);
        assert!(
            matches!(
                d[..],
                [
                    Change::ContainerInsights {
                        from: false,
                        to: true
                    },
                    Change::Tags(_)
                ]
            ),
            "{d:?}"
        );
        assert_eq!(d[0].field().to_string(), "container_insights: false → true");
    }
}
