//! The group as a resource: what is asked for, what differs, and the calls that make it so.

use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};

use super::find::{
    find_group, find_policy_target, observed, profile_not_visible, wait_group_deleted,
};
use crate::aws::{Aws, AwsError, error};
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, iam, tag_diff};
use crate::wait;

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

/// What `up` can change on the group. The desired count and the minimum are not
/// among them: scaling and the capacity provider own those.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Max {
        from: u32,
        to: u32,
    },
    /// `name:version`; the group follows its template's `$Latest`.
    LaunchTemplate {
        from: String,
        to: String,
    },
    /// Sorted subnet ids.
    Subnets {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// New instances were not protected from scale-in, as managed termination protection
    /// requires.
    ScaleInProtection,
    Cooldown {
        from: u32,
        to: u32,
    },
    /// A CPU policy of the group's own, at this target, left by an earlier version.
    CpuPolicy {
        target: f64,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Max { from, to } => Field::new("max", Some(from), to),
            Change::LaunchTemplate { from, to } => Field::new("launch_template", Some(from), to),
            Change::Subnets { from, to } => Field::new("subnets", Some(from), to),
            Change::ScaleInProtection => Field::new("scale_in_protection", Some(false), true),
            Change::Cooldown { from, to } => Field::new("cooldown_s", Some(from), to),
            Change::CpuPolicy { target } => Field::new(
                "cpu_policy",
                Some(format!("{target:.0} %")),
                "none: ECS managed scaling drives the group",
            ),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Group {
    /// The name of the CPU target-tracking policy earlier versions put on the group.
    pub fn policy_name(&self) -> String {
        format!("{}-cpu", self.name)
    }

    /// Creates the group empty: an instance that registers before the capacity provider
    /// is attached may never be associated with it (ECS guide, Auto Scaling group
    /// capacity providers); the provider raises the minimum once attached.
    async fn create(&self, aws: &Aws) -> Result<(), AwsError> {
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
        Ok(())
    }

    pub(super) fn template(&self) -> LaunchTemplateSpecification {
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
}

impl Resource for Group {
    type Observed = Observed;
    type Change = Change;
    const KIND: Kind = Kind::AutoScalingGroup;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::LaunchTemplate, &self.launch_template)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        // An empty answer is "not found"; a group being deleted is as good as gone.
        let Some(g) = find_group(aws, &self.name).await? else {
            return Ok(None);
        };
        if g.status().is_some_and(|s| s.starts_with("Delete")) {
            return Ok(None);
        }
        let cpu_policy = find_policy_target(aws, &self.name, &self.policy_name()).await?;
        Ok(Some(observed(&g, cpu_policy)))
    }

    fn tags(o: &Observed) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Change> {
        let mut d = Vec::new();
        if o.max != self.max {
            d.push(Change::Max {
                from: o.max,
                to: self.max,
            });
        }
        if o.launch_template != self.launch_template || o.template_version != "$Latest" {
            d.push(Change::LaunchTemplate {
                from: format!("{}:{}", o.launch_template, o.template_version),
                to: format!("{}:$Latest", self.launch_template),
            });
        }
        let mut want = self.subnets.clone();
        want.sort();
        if o.subnets != want {
            d.push(Change::Subnets {
                from: o.subnets.clone(),
                to: want,
            });
        }
        if !o.protect_new_instances {
            d.push(Change::ScaleInProtection);
        }
        if o.cooldown_s != self.cooldown_s {
            d.push(Change::Cooldown {
                from: o.cooldown_s,
                to: self.cooldown_s,
            });
        }
        if let Some(target) = o.cpu_policy {
            d.push(Change::CpuPolicy { target });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            return self.create(aws).await;
        };
        // The group's own settings go in one update, whichever changed.
        let (mut update, mut policy, mut tags) = (false, false, false);
        for change in changes {
            match change {
                Change::Max { .. }
                | Change::LaunchTemplate { .. }
                | Change::Subnets { .. }
                | Change::ScaleInProtection
                | Change::Cooldown { .. } => update = true,
                Change::CpuPolicy { .. } => policy = true,
                Change::Tags(_) => tags = true,
            }
        }
        if update {
            // The desired count belongs to the scaling policies and the minimum to the
            // capacity provider; only the maximum is set.
            aws.autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(&self.name)
                .launch_template(self.template())
                .max_size(self.max as i32)
                // AWS refuses a maximum under the current minimum: lowered together.
                .set_min_size((o.min > self.max).then_some(self.max as i32))
                .vpc_zone_identifier(self.subnets.join(","))
                .new_instances_protected_from_scale_in(true)
                .default_cooldown(self.cooldown_s as i32)
                .send()
                .await
                .map_err(error("autoscaling:UpdateAutoScalingGroup"))?;
        }
        if policy {
            aws.autoscaling
                .delete_policy()
                .auto_scaling_group_name(&self.name)
                .policy_name(self.policy_name())
                .send()
                .await
                .map_err(error("autoscaling:DeletePolicy"))?;
        }
        if tags {
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
            && find_group(aws, &self.name).await?.is_some()
        {
            return Err(error("autoscaling:DeleteAutoScalingGroup")(e));
        }
        wait_group_deleted(aws, &self.name, aws.timeouts.delete()).await
    }

    fn detail(o: &Observed) -> String {
        format!(
            "{} in service / {} desired ({}..{}), scaled by the capacity provider",
            o.in_service, o.desired, o.min, o.max,
        )
    }
}
