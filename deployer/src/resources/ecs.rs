//! ECS on EC2: the cluster, the capacity provider on the Auto Scaling group (managed
//! scaling and managed termination protection), the service with its task definition,
//! and the service's own CPU target tracking (Application Auto Scaling).
//!
//! Scaling, in one place: the service tracks its average CPU (tasks 1..5 at 70 %); each
//! task takes a whole instance (host networking on one port, sized to the instance), so
//! the capacity provider's managed scaling adds an instance for each task that cannot be
//! placed and lets idle ones go; the group's own CPU policy (the study's setting) adds
//! capacity early when the instances themselves are busy.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{
    MetricType as AppMetric, PolicyType, PredefinedMetricSpecification as AppMetricSpec,
    ScalableDimension, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, CapacityProviderField, CapacityProviderStrategyItem, ClusterField,
    ClusterSetting, ClusterSettingName, ContainerDefinition, DeploymentCircuitBreaker,
    DeploymentConfiguration, DesiredStatus, KeyValuePair, LoadBalancer, LogConfiguration,
    LogDriver, ManagedScaling, ManagedScalingStatus, ManagedTerminationProtection, NetworkMode,
    PlacementConstraint, PlacementConstraintType, PortMapping, PropagateTags, ServiceField, Tag,
    TransportProtocol,
};
use serde::Serialize;

use super::{Field, Id, Kind, Resource, Tags, iam, tag_diff};
use crate::aws::{Aws, AwsError, FoundExt, Service as Svc, error};
use crate::resources::elb;
use crate::wait::{self, Poll};

/// How long ECS may take to assume its service-linked role once it exists (IAM
/// propagation: seconds, usually).
pub const SERVICE_LINKED_ROLE_PROPAGATION: Duration = iam::PROPAGATION;
/// How long a new capacity provider may take to become ACTIVE.
pub const PROVIDER_ACTIVE: Duration = Duration::from_secs(300);

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

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

async fn tag(aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
    aws.ecs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(error("ecs:TagResource"))?;
    Ok(())
}

async fn describe_cluster(
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
    const KIND: Kind = Kind::EcsCluster;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ClusterObserved>, AwsError> {
        let Some(c) = describe_cluster(aws, &self.name).await? else {
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
            tags: tags_of(c.tags()),
        }))
    }

    fn tags(o: &ClusterObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ClusterObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if o.container_insights != self.container_insights {
            d.push(Field::new(
                "container_insights",
                Some(o.container_insights),
                self.container_insights,
            ));
        }
        d.extend(tag_diff(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ClusterObserved>,
        diff: &[Field],
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
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .send()
                        .await
                        .map_err(error("ecs:CreateCluster"))
                },
            )
            .await?;
            return Ok(());
        };
        for f in diff {
            match f.name {
                "container_insights" => {
                    aws.ecs
                        .update_cluster()
                        .cluster(&self.name)
                        .settings(self.setting())
                        .send()
                        .await
                        .map_err(error("ecs:UpdateCluster"))?;
                }
                "tags" => tag(aws, &o.arn, &self.tags).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &ClusterObserved) -> Result<(), AwsError> {
        // Instances of a just-deleted Auto Scaling group deregister within minutes.
        wait::retrying(
            "ecs:DeleteCluster",
            Duration::from_secs(600),
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

/// All tasks on capacity provider `name`.
fn strategy(name: &str) -> CapacityProviderStrategyItem {
    CapacityProviderStrategyItem::builder()
        .capacity_provider(name)
        .weight(1)
        .base(0)
        .build()
        .expect("capacity provider is set")
}

impl CapacityProvider {
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

impl Resource for CapacityProvider {
    type Observed = ProviderObserved;
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
        d.extend(tag_diff(&o.tags, &self.tags));
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

/// The task definition settings this tool manages, comparable across revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    pub image: String,
    pub cpu: i32,
    pub memory_mb: i32,
    pub port: i32,
    pub environment: BTreeMap<String, String>,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub log_group: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub cluster: String,
    pub family: String,
    pub container: String,
    pub task: TaskSpec,
    pub region: String,
    pub capacity_provider: String,
    pub target_group: String,
    pub listener: String,
    pub execution_role: String,
    pub task_role: String,
    /// Tasks at creation; afterwards the desired count belongs to service scaling.
    pub initial_count: i32,
    /// How long `up` waits for the deployment to finish (0: not at all).
    pub wait: Duration,
    /// The image push of this run, when there is one: it must finish first.
    pub image_push: Option<Id>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObserved {
    pub arn: String,
    pub task_definition: String,
    pub task: Option<TaskSpec>,
    pub capacity_provider: Option<String>,
    pub target_group_arn: Option<String>,
    pub wanted_target_group_arn: Option<String>,
    /// `None` when the answer has no deployment configuration at all.
    pub circuit_breaker: Option<bool>,
    pub desired: i32,
    pub running: i32,
    pub rollout: String,
    pub tags: Tags,
}

/// One deployment of a service, as DescribeServices reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub status: String,
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub failed_tasks: i32,
}

/// Whether a service's deployment has finished, from its deployments and the latest
/// service event (which says why tasks cannot be placed or fail health checks).
pub fn rollout_progress(deployments: &[Rollout], latest_event: Option<&str>) -> Poll<()> {
    let Some(primary) = deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Poll::Pending("no primary deployment yet".into());
    };
    let event = latest_event.map(|e| format!("; {e}")).unwrap_or_default();
    match primary.rollout_state.as_deref() {
        Some("FAILED") => Poll::Failed(format!(
            "deployment failed: {}{event}",
            primary
                .rollout_reason
                .as_deref()
                .unwrap_or("no reason given")
        )),
        Some("COMPLETED") if deployments.len() == 1 => Poll::Ready(()),
        None if deployments.len() == 1 && primary.running >= primary.desired => Poll::Ready(()),
        _ => Poll::Pending(format!(
            "{} of {} task(s) running, {} failed, {} older deployment(s) draining{event}",
            primary.running,
            primary.desired,
            primary.failed_tasks,
            deployments.len() - 1
        )),
    }
}

impl Service {
    fn container_definition(&self) -> ContainerDefinition {
        let t = &self.task;
        ContainerDefinition::builder()
            .name(&self.container)
            .image(&t.image)
            .cpu(t.cpu)
            .memory(t.memory_mb)
            .essential(true)
            .port_mappings(
                PortMapping::builder()
                    .container_port(t.port)
                    .host_port(t.port)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .set_environment(Some(
                t.environment
                    .iter()
                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                    .collect(),
            ))
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", &t.log_group)
                    .options("awslogs-region", &self.region)
                    .options("awslogs-stream-prefix", "predictor")
                    .build()
                    .expect("log driver is set"),
            )
            .build()
    }

    async fn register(&self, aws: &Aws) -> Result<String, AwsError> {
        let out = aws
            .ecs
            .register_task_definition()
            .family(&self.family)
            .network_mode(NetworkMode::Host)
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Ec2)
            .execution_role_arn(&self.task.execution_role_arn)
            .task_role_arn(&self.task.task_role_arn)
            .container_definitions(self.container_definition())
            .set_tags(Some(sdk_tags(&self.tags)))
            .send()
            .await
            .map_err(error("ecs:RegisterTaskDefinition"))?;
        out.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| AwsError::new("ecs:RegisterTaskDefinition", "no ARN in the answer"))
    }

    fn deployment_configuration(&self) -> DeploymentConfiguration {
        DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            // One task per instance: a new task needs a new instance, then the old goes.
            // At full scale that instance is the group's spare (`autoscaling::headroom`).
            .maximum_percent(200)
            .minimum_healthy_percent(100)
            .build()
    }

    async fn describe(&self, aws: &Aws) -> Result<Option<aws_sdk_ecs::types::Service>, AwsError> {
        let out = aws
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.name)
            .include(ServiceField::Tags)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DescribeServices")?;
        Ok(out.and_then(|o| {
            o.services()
                .iter()
                .find(|s| s.status() == Some("ACTIVE"))
                .cloned()
        }))
    }

    /// Waits, bounded, until the latest deployment has all its tasks running.
    async fn settled(&self, aws: &Aws) -> Result<(), AwsError> {
        if self.wait.is_zero() {
            return Ok(());
        }
        wait::until(
            "ecs:DescribeServices",
            self.wait,
            Duration::from_secs(5),
            || async {
                let Some(s) = self.describe(aws).await? else {
                    return Ok(Poll::Failed(format!("service `{}` disappeared", self.name)));
                };
                let deployments: Vec<Rollout> = s
                    .deployments()
                    .iter()
                    .map(|d| Rollout {
                        status: d.status().unwrap_or_default().to_string(),
                        rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                        rollout_reason: d.rollout_state_reason().map(str::to_string),
                        desired: d.desired_count(),
                        running: d.running_count(),
                        failed_tasks: d.failed_tasks(),
                    })
                    .collect();
                let event = s.events().first().and_then(|e| e.message());
                Ok(match rollout_progress(&deployments, event) {
                    Poll::Failed(why) => {
                        Poll::Failed(format!("{why}{}", self.stopped_reasons(aws).await?))
                    }
                    other => other,
                })
            },
        )
        .await
    }

    /// Why the service's most recent tasks stopped, for an error message.
    async fn stopped_reasons(&self, aws: &Aws) -> Result<String, AwsError> {
        let arns = aws
            .ecs
            .list_tasks()
            .cluster(&self.cluster)
            .service_name(&self.name)
            .desired_status(DesiredStatus::Stopped)
            .max_results(5)
            .send()
            .await
            .map_err(error("ecs:ListTasks"))?
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Ok(String::new());
        }
        let tasks = aws
            .ecs
            .describe_tasks()
            .cluster(&self.cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .map_err(error("ecs:DescribeTasks"))?;
        let reasons: Vec<&str> = tasks
            .tasks()
            .iter()
            .filter_map(|t| t.stopped_reason())
            .collect();
        Ok(format!("; stopped tasks: {}", reasons.join(" | ")))
    }
}

impl Resource for Service {
    type Observed = ServiceObserved;
    const KIND: Kind = Kind::EcsService;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        let mut deps = vec![
            Id::new(Kind::EcsCluster, &self.cluster),
            Id::new(Kind::CapacityProvider, &self.capacity_provider),
            // ECS refuses a target group that is not yet attached to a load balancer.
            Id::new(Kind::Listener, &self.listener),
            Id::new(Kind::TargetGroup, &self.target_group),
            Id::new(Kind::IamRole, &self.execution_role),
            Id::new(Kind::IamRole, &self.task_role),
            Id::new(Kind::LogGroup, &self.task.log_group),
        ];
        deps.extend(self.image_push.clone());
        deps
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ServiceObserved>, AwsError> {
        let Some(s) = self.describe(aws).await? else {
            return Ok(None);
        };
        let task_definition = s.task_definition().unwrap_or_default().to_string();
        let task = if task_definition.is_empty() {
            None
        } else {
            let td = aws
                .ecs
                .describe_task_definition()
                .task_definition(&task_definition)
                .send()
                .await
                .map_err(error("ecs:DescribeTaskDefinition"))?;
            td.task_definition().and_then(|td| {
                let c = td
                    .container_definitions()
                    .iter()
                    .find(|c| c.name() == Some(&self.container))?;
                Some(TaskSpec {
                    image: c.image().unwrap_or_default().to_string(),
                    cpu: c.cpu(),
                    memory_mb: c.memory().unwrap_or_default(),
                    port: c
                        .port_mappings()
                        .first()
                        .and_then(|p| p.container_port())
                        .unwrap_or_default(),
                    environment: c
                        .environment()
                        .iter()
                        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                        .collect(),
                    execution_role_arn: td.execution_role_arn().unwrap_or_default().to_string(),
                    task_role_arn: td.task_role_arn().unwrap_or_default().to_string(),
                    log_group: c
                        .log_configuration()
                        .and_then(|l| l.options())
                        .and_then(|o| o.get("awslogs-group"))
                        .cloned()
                        .unwrap_or_default(),
                })
            })
        };
        let primary = s
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        Ok(Some(ServiceObserved {
            arn: s.service_arn().unwrap_or_default().to_string(),
            task_definition,
            task,
            capacity_provider: s
                .capacity_provider_strategy()
                .first()
                .map(|c| c.capacity_provider().to_string()),
            target_group_arn: s
                .load_balancers()
                .first()
                .and_then(|l| l.target_group_arn())
                .map(str::to_string),
            wanted_target_group_arn: elb::find_target_group(aws, &self.target_group)
                .await?
                .and_then(|t| t.target_group_arn),
            // AWS always answers with the deployment configuration; moto never does.
            circuit_breaker: s.deployment_configuration().map(|d| {
                d.deployment_circuit_breaker()
                    .is_some_and(|c| c.enable() && c.rollback())
            }),
            desired: s.desired_count(),
            running: s.running_count(),
            rollout: primary
                .and_then(|d| d.rollout_state())
                .map_or("", |r| r.as_str())
                .to_string(),
            tags: tags_of(s.tags()),
        }))
    }

    fn tags(o: &ServiceObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ServiceObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if o.task.as_ref() != Some(&self.task) {
            // Only what differs, so a new image shows as just that.
            let have = o
                .task
                .as_ref()
                .map(|t| serde_json::to_value(t).unwrap_or_default());
            let want = serde_json::to_value(&self.task).unwrap_or_default();
            let changed: BTreeMap<String, serde_json::Value> = want
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| have.as_ref().map(|h| &h[k.as_str()]) != Some(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let before: Option<BTreeMap<String, serde_json::Value>> = have.map(|h| {
                changed
                    .keys()
                    .map(|k| (k.clone(), h[k.as_str()].clone()))
                    .collect()
            });
            d.push(Field::new("task_definition", before, changed));
        }
        // Only a strategy naming another provider is drift: moto keeps no strategy and
        // reports every service as launch type EC2, which would make every `up` update
        // the service. (A service placed by launch type on AWS is not switched.)
        if o.capacity_provider.is_some()
            && o.capacity_provider.as_deref() != Some(self.capacity_provider.as_str())
        {
            d.push(Field::new(
                "capacity_provider",
                o.capacity_provider.as_ref(),
                &self.capacity_provider,
            ));
        }
        if o.target_group_arn.is_none() || o.target_group_arn != o.wanted_target_group_arn {
            d.push(Field::new(
                "load_balancer",
                o.target_group_arn.as_ref(),
                &self.target_group,
            ));
        }
        if o.circuit_breaker == Some(false) {
            d.push(Field::new("circuit_breaker", Some(false), true));
        }
        d.extend(tag_diff(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ServiceObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        let tg = elb::target_group_arn(aws, &self.target_group).await?;
        let load_balancer = LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(&self.container)
            .container_port(self.task.port)
            .build();
        let strategy = strategy(&self.capacity_provider);
        let Some(o) = observed else {
            let task_definition = self.register(aws).await?;
            with_service_linked_role(
                "ecs:CreateService",
                SERVICE_LINKED_ROLE_PROPAGATION,
                || async {
                    aws.ecs
                        .create_service()
                        .cluster(&self.cluster)
                        .service_name(&self.name)
                        .task_definition(&task_definition)
                        .desired_count(self.initial_count)
                        .capacity_provider_strategy(strategy.clone())
                        .load_balancers(load_balancer.clone())
                        .health_check_grace_period_seconds(60)
                        .deployment_configuration(self.deployment_configuration())
                        .placement_constraints(
                            PlacementConstraint::builder()
                                .r#type(PlacementConstraintType::DistinctInstance)
                                .build(),
                        )
                        .enable_ecs_managed_tags(true)
                        .propagate_tags(PropagateTags::Service)
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .send()
                        .await
                        .map_err(error("ecs:CreateService"))
                },
            )
            .await?;
            return self.settled(aws).await;
        };
        let rolls = [
            "task_definition",
            "capacity_provider",
            "load_balancer",
            "circuit_breaker",
        ];
        if rolls.iter().any(|f| changed(f)) {
            let task_definition = if changed("task_definition") {
                self.register(aws).await?
            } else {
                o.task_definition.clone()
            };
            aws.ecs
                .update_service()
                .cluster(&self.cluster)
                .service(&self.name)
                .task_definition(task_definition)
                .capacity_provider_strategy(strategy)
                .load_balancers(load_balancer)
                .deployment_configuration(self.deployment_configuration())
                .send()
                .await
                .map_err(error("ecs:UpdateService"))?;
        }
        if changed("tags") {
            tag(aws, &o.arn, &self.tags).await?;
        }
        if rolls.iter().any(|f| changed(f)) {
            self.settled(aws).await?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &ServiceObserved) -> Result<(), AwsError> {
        aws.ecs
            .update_service()
            .cluster(&self.cluster)
            .service(&self.name)
            .desired_count(0)
            .send()
            .await
            .found(Svc::Ecs, "ecs:UpdateService")?;
        aws.ecs
            .delete_service()
            .cluster(&self.cluster)
            .service(&self.name)
            .force(true)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DeleteService")?;
        wait::until(
            "ecs:DeleteService",
            Duration::from_secs(600),
            Duration::from_secs(5),
            || async {
                let draining = aws
                    .ecs
                    .describe_services()
                    .cluster(&self.cluster)
                    .services(&self.name)
                    .send()
                    .await
                    .found(Svc::Ecs, "ecs:DescribeServices")?
                    .and_then(|o| {
                        o.services()
                            .iter()
                            .find(|s| s.status() == Some("DRAINING"))
                            .map(|s| s.running_count())
                    });
                Ok(match draining {
                    None => Poll::Ready(()),
                    Some(n) => Poll::Pending(format!("service draining, {n} task(s) running")),
                })
            },
        )
        .await?;
        // Every revision of the family goes with the service.
        let revisions = aws
            .ecs
            .list_task_definitions()
            .family_prefix(&self.family)
            .send()
            .await
            .map_err(error("ecs:ListTaskDefinitions"))?;
        for arn in revisions.task_definition_arns() {
            // The prefix matches other families too (`x-predictor` and `x-predictor-2`).
            if arn
                .rsplit('/')
                .next()
                .and_then(|f| f.rsplit_once(':'))
                .is_some_and(|(family, _)| family == self.family)
            {
                aws.ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(error("ecs:DeregisterTaskDefinition"))?;
            }
        }
        Ok(())
    }

    fn detail(o: &ServiceObserved) -> String {
        let revision = o.task_definition.rsplit('/').next().unwrap_or_default();
        let digest = o
            .task
            .as_ref()
            .and_then(|t| t.image.split('@').nth(1))
            .unwrap_or("no digest");
        format!(
            "{} of {} task(s) running, deployment {}, {revision}, {digest}",
            o.running,
            o.desired,
            if o.rollout.is_empty() {
                "?"
            } else {
                &o.rollout
            }
        )
    }
}

/// Application Auto Scaling of the service's desired count on its average CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceScaling {
    pub name: String,
    pub cluster: String,
    pub service: String,
    pub min: i32,
    pub max: i32,
    pub cpu_target: f64,
    pub scale_in_cooldown_s: i32,
    pub scale_out_cooldown_s: i32,
    /// Application Auto Scaling targets carry no tags of their own here: the scaled
    /// service's tags decide ownership.
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScalingObserved {
    pub min: i32,
    pub max: i32,
    pub cpu_target: Option<f64>,
    pub scale_in_cooldown_s: Option<i32>,
    pub tags: Tags,
}

impl ServiceScaling {
    pub fn resource_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.service)
    }

    fn policy_name(&self) -> String {
        format!("{}-cpu", self.service)
    }
}

impl Resource for ServiceScaling {
    type Observed = ScalingObserved;
    const KIND: Kind = Kind::ServiceScaling;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::EcsService, &self.service)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ScalingObserved>, AwsError> {
        let targets = aws
            .appscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(self.resource_id())
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(error("application-autoscaling:DescribeScalableTargets"))?;
        let Some(t) = targets.scalable_targets().first() else {
            return Ok(None);
        };
        let policies = aws
            .appscaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(self.resource_id())
            .policy_names(self.policy_name())
            .send()
            .await
            .map_err(error("application-autoscaling:DescribeScalingPolicies"))?;
        let tt = policies
            .scaling_policies()
            .first()
            .and_then(|p| p.target_tracking_scaling_policy_configuration());
        let tags = aws
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .include(ServiceField::Tags)
            .send()
            .await
            .found(Svc::Ecs, "ecs:DescribeServices")?
            .and_then(|o| o.services().first().map(|s| tags_of(s.tags())))
            .unwrap_or_default();
        Ok(Some(ScalingObserved {
            min: t.min_capacity(),
            max: t.max_capacity(),
            cpu_target: tt.map(|c| c.target_value()),
            scale_in_cooldown_s: tt.and_then(|c| c.scale_in_cooldown()),
            tags,
        }))
    }

    fn tags(o: &ScalingObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ScalingObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if (o.min, o.max) != (self.min, self.max) {
            d.push(Field::new(
                "tasks",
                Some(format!("{}..{}", o.min, o.max)),
                format!("{}..{}", self.min, self.max),
            ));
        }
        if o.cpu_target != Some(self.cpu_target)
            || o.scale_in_cooldown_s != Some(self.scale_in_cooldown_s)
        {
            d.push(Field::new(
                "policy",
                Some(match (o.cpu_target, o.scale_in_cooldown_s) {
                    (Some(cpu), Some(cooldown)) => {
                        format!("CPU {cpu} %, scale-in cooldown {cooldown} s")
                    }
                    (Some(cpu), None) => format!("CPU {cpu} %"),
                    (None, _) => "none".to_string(),
                }),
                format!(
                    "CPU {} %, scale-in cooldown {} s",
                    self.cpu_target, self.scale_in_cooldown_s
                ),
            ));
        }
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ScalingObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        if changed("tasks") {
            aws.appscaling
                .register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(self.resource_id())
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(self.min)
                .max_capacity(self.max)
                .send()
                .await
                .map_err(error("application-autoscaling:RegisterScalableTarget"))?;
        }
        if changed("policy") {
            let metric = AppMetricSpec::builder()
                .predefined_metric_type(AppMetric::EcsServiceAverageCpuUtilization)
                .build()
                .map_err(|e| {
                    AwsError::new("application-autoscaling:PutScalingPolicy", e.to_string())
                })?;
            let config = TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(self.cpu_target)
                .predefined_metric_specification(metric)
                .scale_in_cooldown(self.scale_in_cooldown_s)
                .scale_out_cooldown(self.scale_out_cooldown_s)
                .build()
                .map_err(|e| {
                    AwsError::new("application-autoscaling:PutScalingPolicy", e.to_string())
                })?;
            aws.appscaling
                .put_scaling_policy()
                .policy_name(self.policy_name())
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(self.resource_id())
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(config)
                .send()
                .await
                .map_err(error("application-autoscaling:PutScalingPolicy"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &ScalingObserved) -> Result<(), AwsError> {
        // Deregistering the target deletes its policies and their alarms.
        aws.appscaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(self.resource_id())
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .found(
                Svc::AppScaling,
                "application-autoscaling:DeregisterScalableTarget",
            )?;
        Ok(())
    }

    fn detail(o: &ScalingObserved) -> String {
        format!(
            "tasks {}..{} at CPU {} %",
            o.min,
            o.max,
            o.cpu_target.map_or("?".into(), |t| format!("{t:.0}"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            image: "r/s-predictor@sha256:aa".into(),
            cpu: 4096,
            memory_mb: 15000,
            port: 8080,
            environment: [("PORT".to_string(), "8080".to_string())].into(),
            execution_role_arn: "arn:exec".into(),
            task_role_arn: "arn:task".into(),
            log_group: "/ecs/s-predictor".into(),
        }
    }

    fn service() -> Service {
        Service {
            name: "s-predictor".into(),
            cluster: "s-cluster".into(),
            family: "s-predictor".into(),
            container: "predictor".into(),
            task: spec(),
            region: "us-east-1".into(),
            capacity_provider: "s-capacity".into(),
            target_group: "s-tg".into(),
            listener: "s-alb:80".into(),
            execution_role: "s-ecs-task-execution".into(),
            task_role: "s-ecs-task".into(),
            initial_count: 1,
            wait: Duration::ZERO,
            image_push: None,
            tags: Tags::new(),
        }
    }

    fn in_sync() -> ServiceObserved {
        ServiceObserved {
            arn: "arn:svc".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/s-predictor:3".into(),
            task: Some(spec()),
            capacity_provider: Some("s-capacity".into()),
            target_group_arn: Some("arn:tg".into()),
            wanted_target_group_arn: Some("arn:tg".into()),
            circuit_breaker: Some(true),
            desired: 2,
            running: 2,
            rollout: "COMPLETED".into(),
            tags: Tags::new(),
        }
    }

    #[test]
    fn in_sync_service_has_no_diff_whatever_its_desired_count() {
        assert_eq!(service().diff(&in_sync()), []);
    }

    #[test]
    fn a_new_digest_shows_only_the_image_change() {
        let mut s = service();
        s.task.image = "r/s-predictor@sha256:bb".into();
        let d = s.diff(&in_sync());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "task_definition");
        assert_eq!(
            d[0].to,
            serde_json::json!({"image": "r/s-predictor@sha256:bb"})
        );
        assert_eq!(
            d[0].from,
            Some(serde_json::json!({"image": "r/s-predictor@sha256:aa"}))
        );
    }

    #[test]
    fn strategy_load_balancer_and_breaker_drift_are_named() {
        let mut o = in_sync();
        o.capacity_provider = Some("other".into());
        o.target_group_arn = Some("arn:other".into());
        o.circuit_breaker = Some(false);
        let names: Vec<&str> = service().diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["capacity_provider", "load_balancer", "circuit_breaker"]
        );
        // No strategy at all (the emulator's answer): no claim of drift.
        o.capacity_provider = None;
        assert_eq!(service().diff(&o)[0].name, "load_balancer");
    }

    fn rollout(status: &str, state: Option<&str>, running: i32) -> Rollout {
        Rollout {
            status: status.into(),
            rollout_state: state.map(str::to_string),
            rollout_reason: None,
            desired: 1,
            running,
            failed_tasks: 0,
        }
    }

    #[test]
    fn rollout_waits_for_the_old_deployment_to_drain() {
        let ev = Some(
            "(service s-predictor) was unable to place a task because no container instance met all of its requirements.",
        );
        let both = [
            rollout("PRIMARY", Some("IN_PROGRESS"), 0),
            rollout("ACTIVE", Some("COMPLETED"), 1),
        ];
        match rollout_progress(&both, ev) {
            Poll::Pending(why) => {
                assert!(why.starts_with("0 of 1 task(s) running"), "{why}");
                assert!(why.contains("unable to place a task"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            rollout_progress(&[rollout("PRIMARY", Some("COMPLETED"), 1)], None),
            Poll::Ready(())
        );
        assert_eq!(
            rollout_progress(&[], None),
            Poll::Pending("no primary deployment yet".into())
        );
    }

    /// DescribeServices answers shaped as the ECS API reference shows them.
    #[test]
    fn rollout_follows_describe_services_fixtures() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/ecs/describe_services.json"
        ))
        .unwrap();
        for case in fixtures.as_array().unwrap() {
            let s = &case["service"];
            let deployments: Vec<Rollout> = s["deployments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| Rollout {
                    status: d["status"].as_str().unwrap().into(),
                    rollout_state: d["rolloutState"].as_str().map(str::to_string),
                    rollout_reason: d["rolloutStateReason"].as_str().map(str::to_string),
                    desired: d["desiredCount"].as_i64().unwrap() as i32,
                    running: d["runningCount"].as_i64().unwrap() as i32,
                    failed_tasks: d["failedTasks"].as_i64().unwrap() as i32,
                })
                .collect();
            let event = s["events"][0]["message"].as_str();
            let got = rollout_progress(&deployments, event);
            let kind = match &got {
                Poll::Ready(()) => "ready",
                Poll::Pending(_) => "pending",
                Poll::Failed(_) => "failed",
            };
            assert_eq!(
                kind,
                case["expect"].as_str().unwrap(),
                "{}: {got:?}",
                case["case"]
            );
            if let Poll::Pending(why) | Poll::Failed(why) = got {
                // The latest event says why: shown while waiting and in the error.
                assert!(why.contains(event.unwrap()), "{why}");
            }
        }
    }

    #[test]
    fn a_failed_rollout_stops_the_wait_with_its_reason() {
        let mut failed = rollout("PRIMARY", Some("FAILED"), 0);
        failed.rollout_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        match rollout_progress(
            &[failed],
            Some("(service s) (task 1) failed ELB health checks"),
        ) {
            Poll::Failed(why) => {
                assert!(why.contains("circuit breaker"), "{why}");
                assert!(why.contains("failed ELB health checks"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn service_scaling_drift_is_named() {
        let s = ServiceScaling {
            name: "s-predictor".into(),
            cluster: "s-cluster".into(),
            service: "s-predictor".into(),
            min: 1,
            max: 5,
            cpu_target: 70.0,
            scale_in_cooldown_s: 60,
            scale_out_cooldown_s: 60,
            tags: Tags::new(),
        };
        assert_eq!(s.resource_id(), "service/s-cluster/s-predictor");
        let mut o = ScalingObserved {
            min: 1,
            max: 5,
            cpu_target: Some(70.0),
            scale_in_cooldown_s: Some(60),
            tags: Tags::new(),
        };
        assert_eq!(s.diff(&o), []);
        o.max = 3;
        o.cpu_target = Some(50.0);
        let names: Vec<&str> = s.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(names, ["tasks", "policy"]);
    }
}
