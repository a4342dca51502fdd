//! The Auto Scaling group of ECS container instances: created empty, its minimum raised
//! by its capacity provider, its desired capacity driven by nothing but the provider's
//! managed scaling (AWS's ECS guide: a capacity provider's group is scaled by ECS, not by
//! policies of its own). The study's "1 to 5 instances at 70 % CPU" is the service's
//! task scaling (`ecs::ServiceScaling`), one whole-instance task per instance; the group's
//! maximum is one above the task maximum so a rollout at full scale has a spare instance.
//! New instances are protected from scale-in, as ECS managed termination protection
//! requires: the capacity provider lifts the protection from instances with no tasks left.

use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};

use super::{Field, Id, Kind, Resource, Tags, iam, tag_field};
use crate::aws::{Aws, AwsError, error};
use crate::wait::{self, Poll};

/// Whether `CreateAutoScalingGroup` refused the launch template because its instance
/// profile is seconds old and not visible to Auto Scaling yet (terraform-provider-aws
/// PR #5633, eksctl #8039: "Value (…) for parameter iamInstanceProfile.name is invalid.
/// Invalid IAM Instance Profile name"). Auto Scaling answers every invalid request with
/// the one code `ValidationError`, so only the message tells this one apart.
fn profile_not_visible(e: &AwsError) -> bool {
    e.code.as_deref() == Some("ValidationError")
        && e.message.contains("Invalid IAM Instance Profile")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub launch_template: String,
    pub subnets: Vec<String>,
    /// The minimum is not set here: the group is created empty and its capacity
    /// provider raises the minimum once attached (see `ecs::CapacityProvider`).
    /// The task maximum plus the rollout's spare instance (see [`headroom`]).
    pub max: u32,
    /// Seconds between scaling activities.
    pub cooldown_s: u32,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub launch_template: String,
    pub template_version: String,
    pub subnets: Vec<String>,
    pub protect_new_instances: bool,
    pub cooldown_s: u32,
    /// Instance id → protected from scale-in.
    pub instances: Vec<(String, bool)>,
    pub in_service: usize,
    /// The target of a CPU policy of the group's own, left by an earlier version of this
    /// tool (which scaled the group with two policies): removed by `apply`.
    pub cpu_policy: Option<f64>,
    pub tags: Tags,
}

/// The group's maximum for a service of at most `tasks` tasks. One task fills an instance
/// and a rollout keeps every old task until its replacement is healthy (maximum 200 %,
/// minimum healthy 100 %), so at full scale the first new task needs an instance beyond
/// the tasks' maximum; managed scaling launches it for the rollout only and releases it
/// when the old task is gone.
pub fn headroom(tasks: u32) -> u32 {
    tasks + 1
}

impl Group {
    /// The name of the CPU target-tracking policy earlier versions put on the group.
    pub fn policy_name(&self) -> String {
        format!("{}-cpu", self.name)
    }

    fn template(&self) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .launch_template_name(&self.launch_template)
            .version("$Latest")
            .build()
    }

    fn sdk_tags(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .resource_id(&self.name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .value(v)
                    .propagate_at_launch(true)
                    .build()
            })
            .collect()
    }

    async fn describe(
        &self,
        aws: &Aws,
    ) -> Result<Option<aws_sdk_autoscaling::types::AutoScalingGroup>, AwsError> {
        Ok(aws
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.name)
            .send()
            .await
            .map_err(error("autoscaling:DescribeAutoScalingGroups"))?
            .auto_scaling_groups()
            .first()
            .cloned())
    }
}

impl Resource for Group {
    type Observed = Observed;
    type Change = Field;
    const KIND: Kind = Kind::AutoScalingGroup;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::LaunchTemplate, &self.launch_template)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        // An empty answer is "not found"; a group being deleted is as good as gone.
        let Some(g) = self.describe(aws).await? else {
            return Ok(None);
        };
        if g.status().is_some_and(|s| s.starts_with("Delete")) {
            return Ok(None);
        }
        let policies = aws
            .autoscaling
            .describe_policies()
            .auto_scaling_group_name(&self.name)
            .policy_names(self.policy_name())
            .send()
            .await
            .map_err(error("autoscaling:DescribePolicies"))?;
        let cpu_policy = policies.scaling_policies().first().map(|p| {
            p.target_tracking_configuration()
                .and_then(|t| t.target_value())
                .unwrap_or_default()
        });
        let mut subnets: Vec<String> = g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        subnets.sort();
        Ok(Some(Observed {
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
            tags: g
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect(),
        }))
    }

    fn tags(o: &Observed) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Field> {
        let mut d = Vec::new();
        if o.max != self.max {
            d.push(Field::new("max", Some(o.max), self.max));
        }
        if o.launch_template != self.launch_template || o.template_version != "$Latest" {
            d.push(Field::new(
                "launch_template",
                Some(format!("{}:{}", o.launch_template, o.template_version)),
                format!("{}:$Latest", self.launch_template),
            ));
        }
        let mut want = self.subnets.clone();
        want.sort();
        if o.subnets != want {
            d.push(Field::new("subnets", Some(&o.subnets), want));
        }
        if !o.protect_new_instances {
            d.push(Field::new("scale_in_protection", Some(false), true));
        }
        if o.cooldown_s != self.cooldown_s {
            d.push(Field::new(
                "cooldown_s",
                Some(o.cooldown_s),
                self.cooldown_s,
            ));
        }
        if let Some(target) = o.cpu_policy {
            d.push(Field::new(
                "cpu_policy",
                Some(format!("{target:.0} %")),
                "none: ECS managed scaling drives the group",
            ));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        if observed.is_none() {
            // Empty: an instance that registers before the capacity provider is attached
            // may never be associated with it (ECS guide, Auto Scaling group capacity
            // providers); the provider raises the minimum once attached.
            wait::retrying(
                "autoscaling:CreateAutoScalingGroup",
                iam::PROPAGATION,
                Duration::from_secs(1),
                || async {
                    aws.autoscaling
                        .create_auto_scaling_group()
                        .auto_scaling_group_name(&self.name)
                        .launch_template(self.template())
                        .min_size(0)
                        .max_size(self.max as i32)
                        .desired_capacity(0)
                        .vpc_zone_identifier(self.subnets.join(","))
                        .new_instances_protected_from_scale_in(true)
                        .default_cooldown(self.cooldown_s as i32)
                        .set_tags(Some(self.sdk_tags()))
                        .send()
                        .await
                        .map_err(error("autoscaling:CreateAutoScalingGroup"))
                },
                profile_not_visible,
            )
            .await?;
        } else if [
            "max",
            "launch_template",
            "subnets",
            "scale_in_protection",
            "cooldown_s",
        ]
        .iter()
        .any(|f| changed(f))
        {
            // The desired count belongs to the scaling policies and the minimum to the
            // capacity provider; only the maximum is set.
            aws.autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(&self.name)
                .launch_template(self.template())
                .max_size(self.max as i32)
                // AWS refuses a maximum under the current minimum: lowered together.
                .set_min_size(
                    observed
                        .filter(|o| o.min > self.max)
                        .map(|_| self.max as i32),
                )
                .vpc_zone_identifier(self.subnets.join(","))
                .new_instances_protected_from_scale_in(true)
                .default_cooldown(self.cooldown_s as i32)
                .send()
                .await
                .map_err(error("autoscaling:UpdateAutoScalingGroup"))?;
        }
        if observed.is_some() && changed("cpu_policy") {
            aws.autoscaling
                .delete_policy()
                .auto_scaling_group_name(&self.name)
                .policy_name(self.policy_name())
                .send()
                .await
                .map_err(error("autoscaling:DeletePolicy"))?;
        }
        if observed.is_some() && changed("tags") {
            aws.autoscaling
                .create_or_update_tags()
                .set_tags(Some(self.sdk_tags()))
                .send()
                .await
                .map_err(error("autoscaling:CreateOrUpdateTags"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &Observed) -> Result<(), AwsError> {
        // Scale-in protection would keep instances alive: lift it, drop to zero, then
        // delete with force (terminates whatever is left) and wait until it is gone.
        let protected: Vec<String> = o
            .instances
            .iter()
            .filter(|(_, p)| *p)
            .map(|(id, _)| id.clone())
            .collect();
        if !protected.is_empty() {
            aws.autoscaling
                .set_instance_protection()
                .auto_scaling_group_name(&self.name)
                .set_instance_ids(Some(protected))
                .protected_from_scale_in(false)
                .send()
                .await
                .map_err(error("autoscaling:SetInstanceProtection"))?;
        }
        aws.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&self.name)
            .min_size(0)
            .max_size(0)
            .desired_capacity(0)
            .send()
            .await
            .map_err(error("autoscaling:UpdateAutoScalingGroup"))?;
        let deleted = aws
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&self.name)
            .force_delete(true)
            .send()
            .await;
        // A group that is not there is a `ValidationError` to Auto Scaling, no code of its
        // own (as when the SDK retries a delete whose answer was lost): look rather than
        // read the message.
        if let Err(e) = deleted
            && self.describe(aws).await?.is_some()
        {
            return Err(error("autoscaling:DeleteAutoScalingGroup")(e));
        }
        wait::until(
            "autoscaling:DeleteAutoScalingGroup",
            Duration::from_secs(900),
            Duration::from_secs(5),
            || async {
                Ok(match self.describe(aws).await? {
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

    fn detail(o: &Observed) -> String {
        format!(
            "{} in service / {} desired ({}..{}), scaled by the capacity provider",
            o.in_service, o.desired, o.min, o.max,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Group {
        Group {
            name: "s-instances".into(),
            launch_template: "s-instances".into(),
            subnets: vec!["subnet-b".into(), "subnet-a".into()],
            max: 6,
            cooldown_s: 60,
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(g: &Group) -> Observed {
        Observed {
            arn: "arn".into(),
            min: 1,
            max: 6,
            desired: 3,
            launch_template: g.launch_template.clone(),
            template_version: "$Latest".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            protect_new_instances: true,
            cooldown_s: 60,
            instances: vec![],
            in_service: 3,
            cpu_policy: None,
            tags: g.tags.clone(),
        }
    }

    #[test]
    fn the_desired_count_belongs_to_scaling_not_to_the_diff() {
        let g = group();
        let mut o = in_sync(&g);
        o.desired = 5;
        assert_eq!(g.diff(&o), []);
        // Nor the minimum: the capacity provider raises it once attached.
        o.min = 0;
        assert_eq!(g.diff(&o), []);
    }

    #[test]
    fn only_an_instance_profile_not_yet_visible_is_waited_for() {
        let e = |message: &str| AwsError {
            operation: "autoscaling:CreateAutoScalingGroup",
            code: Some("ValidationError".into()),
            message: message.into(),
            hint: None,
            unreachable: false,
            unsent: false,
        };
        assert!(profile_not_visible(&e(
            "You must use a valid fully-formed launch template. Value (p) for parameter \
             iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
        )));
        assert!(!profile_not_visible(&e(
            "Max bound, 10, must be greater than or equal to min bound, 20"
        )));
    }

    #[test]
    fn sizes_policy_and_template_drift_are_named() {
        let g = group();
        let mut o = in_sync(&g);
        o.max = 10;
        o.template_version = "3".into();
        o.protect_new_instances = false;
        o.cpu_policy = Some(70.0);
        let d = g.diff(&o);
        let names: Vec<&str> = d.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "max",
                "launch_template",
                "scale_in_protection",
                "cpu_policy"
            ]
        );
        assert_eq!(d[0].to, serde_json::json!(6));
    }

    #[test]
    fn a_full_scale_rollout_has_a_spare_instance() {
        // Five whole-instance tasks, each replaced only once its successor is healthy:
        // the first successor needs a sixth instance.
        assert_eq!(headroom(5), 6);
        assert_eq!(headroom(1), 2);
    }
}
