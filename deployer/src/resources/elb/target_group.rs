//! The target group the ECS service registers its instances in: HTTP on the container's
//! port, health-checked on the predictor's readiness path, with a short deregistration
//! delay. Its port and VPC are fixed at creation (as is its protocol, which the tool
//! does not vary): changing them means replacing the group.

use aws_sdk_elasticloadbalancingv2::types::{
    ProtocolEnum, TargetGroupAttribute, TargetHealthDescription, TargetHealthStateEnum,
    TargetTypeEnum,
};

use super::{add_tags, tags_of};
use crate::aws::{Aws, AwsError, FoundExt, Service, created, error};
use crate::resources::Change as _;
use crate::resources::tags::to_sdk;
use crate::resources::{Field, Kind, Resource, TagChange, Tags, tag_diff};

/// The target group attribute holding the deregistration delay, in seconds.
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// What AWS uses when the attribute is not set.
const DEFAULT_DEREGISTRATION_DELAY_S: u32 = 300;

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    pub name: String,
    pub vpc_id: String,
    pub port: u16,
    pub health_path: String,
    /// Seconds a draining target keeps its connections.
    pub deregistration_delay_s: u32,
    pub tags: Tags,
}

/// The settings of a target group this tool manages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetSettings {
    pub port: u16,
    pub vpc_id: String,
    pub health_path: String,
    pub deregistration_delay_s: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupObserved {
    pub arn: String,
    pub settings: TargetSettings,
    /// Healthy targets out of registered ones.
    pub healthy: usize,
    pub registered: usize,
    pub tags: Tags,
}

/// What `up` can change on a target group. [`Change::Port`] and [`Change::Vpc`] cannot
/// be made in place (their `replaces` is true): the plan replaces the group.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Port { from: u16, to: u16 },
    Vpc { from: String, to: String },
    HealthPath { from: String, to: String },
    DeregistrationDelay { from: u32, to: u32 },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            // One name for both, as the plan has always shown them.
            Change::Port { from, to } => Field::new("port_or_vpc (replace)", Some(from), to),
            Change::Vpc { from, to } => Field::new("port_or_vpc (replace)", Some(from), to),
            Change::HealthPath { from, to } => Field::new("health_path", Some(from), to),
            Change::DeregistrationDelay { from, to } => {
                Field::new("deregistration_delay_s", Some(from), to)
            }
            Change::Tags(t) => t.field(),
        }
    }

    /// A group's port and VPC are fixed at creation: it is deleted and created again
    /// (what forwards to it, or registers in it, follows).
    fn replaces(&self) -> bool {
        matches!(self, Change::Port { .. } | Change::Vpc { .. })
    }
}

impl Resource for TargetGroup {
    type Observed = GroupObserved;
    type Change = Change;
    const KIND: Kind = Kind::TargetGroup;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<GroupObserved>, AwsError> {
        let Some(tg) = find_target_group(aws, &self.name).await? else {
            return Ok(None);
        };
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        let delay = deregistration_delay(aws, &arn).await?;
        let targets = target_health(aws, &arn).await?;
        Ok(Some(GroupObserved {
            settings: TargetSettings {
                port: tg.port().unwrap_or_default() as u16,
                vpc_id: tg.vpc_id().unwrap_or_default().to_string(),
                health_path: tg.health_check_path().unwrap_or_default().to_string(),
                deregistration_delay_s: delay,
            },
            healthy: targets.iter().filter(|t| is_healthy(t)).count(),
            registered: targets.len(),
            tags: tags_of(aws, &arn).await?,
            arn,
        }))
    }

    fn tags(o: &GroupObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &GroupObserved) -> Vec<Change> {
        let have = &o.settings;
        // What cannot change in place comes first.
        let mut d = Vec::new();
        if have.port != self.port {
            d.push(Change::Port {
                from: have.port,
                to: self.port,
            });
        }
        if have.vpc_id != self.vpc_id {
            d.push(Change::Vpc {
                from: have.vpc_id.clone(),
                to: self.vpc_id.clone(),
            });
        }
        if have.health_path != self.health_path {
            d.push(Change::HealthPath {
                from: have.health_path.clone(),
                to: self.health_path.clone(),
            });
        }
        if have.deregistration_delay_s != self.deregistration_delay_s {
            d.push(Change::DeregistrationDelay {
                from: have.deregistration_delay_s,
                to: self.deregistration_delay_s,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&GroupObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            let out = aws
                .elb
                .create_target_group()
                .name(&self.name)
                .protocol(ProtocolEnum::Http)
                .port(self.port.into())
                .vpc_id(&self.vpc_id)
                // Host networking: one task per instance, registered by instance id.
                .target_type(TargetTypeEnum::Instance)
                .health_check_path(&self.health_path)
                .health_check_interval_seconds(10)
                .healthy_threshold_count(2)
                .unhealthy_threshold_count(3)
                .set_tags(Some(to_sdk(&self.tags)))
                .send()
                .await
                .map_err(error("elasticloadbalancing:CreateTargetGroup"))?;
            let arn = created(
                "elasticloadbalancing:CreateTargetGroup",
                "TargetGroupArn",
                out.target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn()),
            )?;
            return self.put_attributes(aws, arn).await;
        };
        // The plan replaces the group instead; should such a change reach here, it is
        // refused before anything else is changed.
        let (replacing, in_place): (Vec<&Change>, Vec<&Change>) =
            changes.iter().partition(|c| c.replaces());
        for change in replacing.into_iter().chain(in_place) {
            match change {
                Change::Port { from, to } => {
                    return Err(self.not_in_place("port", &from.to_string(), &to.to_string()));
                }
                Change::Vpc { from, to } => return Err(self.not_in_place("VPC", from, to)),
                Change::HealthPath { to, .. } => {
                    aws.elb
                        .modify_target_group()
                        .target_group_arn(&o.arn)
                        .health_check_path(to)
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:ModifyTargetGroup"))?;
                }
                Change::DeregistrationDelay { .. } => self.put_attributes(aws, &o.arn).await?,
                Change::Tags(_) => add_tags(aws, &o.arn, &self.tags).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &GroupObserved) -> Result<(), AwsError> {
        aws.elb
            .delete_target_group()
            .target_group_arn(&o.arn)
            .send()
            .await
            .found(Service::Elb, "elasticloadbalancing:DeleteTargetGroup")?;
        Ok(())
    }

    fn detail(o: &GroupObserved) -> String {
        format!(
            "{} healthy of {} registered, health check {}",
            o.healthy, o.registered, o.settings.health_path
        )
    }
}

impl TargetGroup {
    async fn put_attributes(&self, aws: &Aws, arn: &str) -> Result<(), AwsError> {
        aws.elb
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key(DEREGISTRATION_DELAY)
                    .value(self.deregistration_delay_s.to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(error("elasticloadbalancing:ModifyTargetGroupAttributes"))?;
        Ok(())
    }

    /// The error for a `setting` AWS fixes at creation.
    fn not_in_place(&self, setting: &str, from: &str, to: &str) -> AwsError {
        AwsError::new(
            "elasticloadbalancing:ModifyTargetGroup",
            format!(
                "the target group's {setting} cannot change in place ({from} → {to}); \
                 it must be replaced"
            ),
        )
        .with_hint(format!(
            "delete target group `{}` (`deployer down`), then run `up` again",
            self.name
        ))
    }
}

/// The target group called `name`, if it exists.
pub async fn find_target_group(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup>, AwsError> {
    Ok(aws
        .elb
        .describe_target_groups()
        .names(name)
        .send()
        .await
        .found(Service::Elb, "elasticloadbalancing:DescribeTargetGroups")?
        .and_then(|o| o.target_groups().first().cloned()))
}

/// The ARN of the target group called `name`, which must exist (what forwards to it or
/// registers in it is made after it).
pub async fn target_group_arn(aws: &Aws, name: &str) -> Result<String, AwsError> {
    find_target_group(aws, name)
        .await?
        .and_then(|t| t.target_group_arn)
        .ok_or_else(|| {
            AwsError::new(
                "elasticloadbalancing:DescribeTargetGroups",
                format!("target group `{name}` does not exist"),
            )
        })
}

/// The group's deregistration delay in seconds (AWS's default when it is not set).
async fn deregistration_delay(aws: &Aws, arn: &str) -> Result<u32, AwsError> {
    Ok(aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeTargetGroupAttributes"))?
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value()?.parse().ok())
        .unwrap_or(DEFAULT_DEREGISTRATION_DELAY_S))
}

/// The targets registered in the group, with their health.
async fn target_health(aws: &Aws, arn: &str) -> Result<Vec<TargetHealthDescription>, AwsError> {
    Ok(aws
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeTargetHealth"))?
        .target_health_descriptions
        .unwrap_or_default())
}

fn is_healthy(target: &TargetHealthDescription) -> bool {
    target
        .target_health()
        .and_then(|h| h.state())
        .is_some_and(|s| *s == TargetHealthStateEnum::Healthy)
}

#[cfg(test)]
#[path = "target_group_tests.rs"]
mod tests;
