//! The Auto Scaling group of ECS container instances: created empty, its minimum raised
//! by its capacity provider, its desired capacity driven by nothing but the provider's
//! managed scaling (AWS's ECS guide: a capacity provider's group is scaled by ECS, not by
//! policies of its own). The study's "1 to 5 instances at 70 % CPU" is the service's
//! task scaling (`ecs::ServiceScaling`), one whole-instance task per instance; the group's
//! maximum is one above the task maximum so a rollout at full scale has a spare instance.
//! New instances are protected from scale-in, as ECS managed termination protection
//! requires: the capacity provider lifts the protection from instances with no tasks left.

use std::time::Duration;

use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification, Tag};

use super::{Field, Id, Kind, Resource, TagChange, Tags, iam, tag_diff};
use crate::aws::{Aws, AwsError, error};
use crate::wait::{self, Poll};

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

impl super::Change for Change {
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
            return Ok(());
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
        wait_group_deleted(aws, &self.name, DELETE_TIMEOUT).await
    }

    fn detail(o: &Observed) -> String {
        format!(
            "{} in service / {} desired ({}..{}), scaled by the capacity provider",
            o.in_service, o.desired, o.min, o.max,
        )
    }
}

/// The group `name` as Auto Scaling describes it; `None` when there is none (Auto
/// Scaling answers an unknown name with an empty list).
async fn find_group(aws: &Aws, name: &str) -> Result<Option<AutoScalingGroup>, AwsError> {
    Ok(aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(error("autoscaling:DescribeAutoScalingGroups"))?
        .auto_scaling_groups()
        .first()
        .cloned())
}

/// The target of the group's target-tracking policy `policy`, if it has one.
async fn find_policy_target(aws: &Aws, group: &str, policy: &str) -> Result<Option<f64>, AwsError> {
    let policies = aws
        .autoscaling
        .describe_policies()
        .auto_scaling_group_name(group)
        .policy_names(policy)
        .send()
        .await
        .map_err(error("autoscaling:DescribePolicies"))?;
    Ok(policies.scaling_policies().first().map(|p| {
        p.target_tracking_configuration()
            .and_then(|t| t.target_value())
            .unwrap_or_default()
    }))
}

/// What `find` reports of the group `g`, with the target of its legacy CPU policy.
fn observed(g: &AutoScalingGroup, cpu_policy: Option<f64>) -> Observed {
    let mut subnets: Vec<String> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    subnets.sort();
    Observed {
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
    }
}

/// How long a forced delete may take to terminate the instances.
const DELETE_TIMEOUT: Duration = Duration::from_secs(900);

/// Waits until the group `name` is gone, its instances terminated.
async fn wait_group_deleted(aws: &Aws, name: &str, timeout: Duration) -> Result<(), AwsError> {
    wait::until(
        "autoscaling:DeleteAutoScalingGroup",
        timeout,
        Duration::from_secs(5),
        || async {
            Ok(match find_group(aws, name).await? {
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

/// Whether `CreateAutoScalingGroup` refused the launch template because its instance
/// profile is seconds old and not visible to Auto Scaling yet (terraform-provider-aws
/// PR #5633, eksctl #8039: "Value (…) for parameter iamInstanceProfile.name is invalid.
/// Invalid IAM Instance Profile name"). Auto Scaling answers every invalid request with
/// the one code `ValidationError`, so only the message tells this one apart.
fn profile_not_visible(e: &AwsError) -> bool {
    e.code.as_deref() == Some("ValidationError")
        && e.message.contains("Invalid IAM Instance Profile")
}

/// The group's maximum for a service of at most `tasks` tasks. One task fills an instance
/// and a rollout keeps every old task until its replacement is healthy (maximum 200 %,
/// minimum healthy 100 %), so at full scale the first new task needs an instance beyond
/// the tasks' maximum; managed scaling launches it for the rollout only and releases it
/// when the old task is gone.
pub fn headroom(tasks: u32) -> u32 {
    tasks + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

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
            code: Some("ValidationError".into()),
            ..AwsError::new("autoscaling:CreateAutoScalingGroup", message)
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
        assert_eq!(
            d,
            [
                Change::Max { from: 10, to: 6 },
                Change::LaunchTemplate {
                    from: "s-instances:3".into(),
                    to: "s-instances:$Latest".into()
                },
                Change::ScaleInProtection,
                Change::CpuPolicy { target: 70.0 },
            ]
        );
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "max",
                "launch_template",
                "scale_in_protection",
                "cpu_policy"
            ]
        );
    }

    #[test]
    fn the_plan_shows_values_not_rust() {
        let shown = |c: Change| c.field().to_string();
        assert_eq!(shown(Change::Max { from: 10, to: 6 }), "max: 10 → 6");
        assert_eq!(
            shown(Change::CpuPolicy { target: 70.0 }),
            "cpu_policy: 70 % → none: ECS managed scaling drives the group"
        );
        assert_eq!(
            shown(Change::ScaleInProtection),
            "scale_in_protection: false → true"
        );
        let f = Change::Subnets {
            from: vec!["subnet-a".into()],
            to: vec!["subnet-a".into(), "subnet-b".into()],
        }
        .field();
        assert_eq!(f.to, serde_json::json!(["subnet-a", "subnet-b"]));
    }

    /// A group as `apply` writes it (subnets in the manifest's order, the template's
    /// `$Latest`) reads back in sync: nothing it writes is drift on the next plan.
    #[test]
    fn a_group_as_written_reads_back_in_sync() {
        use aws_sdk_autoscaling::types::{Instance, LifecycleState, TagDescription};
        let g = group();
        let instance = |id: &str, state| {
            Instance::builder()
                .instance_id(id)
                .lifecycle_state(state)
                .protected_from_scale_in(true)
                .build()
        };
        let sdk = AutoScalingGroup::builder()
            .min_size(1)
            .max_size(g.max as i32)
            .desired_capacity(2)
            .launch_template(g.template())
            .vpc_zone_identifier(g.subnets.join(","))
            .new_instances_protected_from_scale_in(true)
            .default_cooldown(g.cooldown_s as i32)
            .instances(instance("i-1", LifecycleState::InService))
            .instances(instance("i-2", LifecycleState::Pending))
            .tags(
                TagDescription::builder()
                    .key("deployer:stack")
                    .value("s")
                    .build(),
            )
            .build();
        let o = observed(&sdk, None);
        assert_eq!(o.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!((o.in_service, o.instances.len()), (1, 2));
        assert_eq!(g.diff(&o), []);
    }

    #[test]
    fn a_full_scale_rollout_has_a_spare_instance() {
        // Five whole-instance tasks, each replaced only once its successor is healthy:
        // the first successor needs a sixth instance.
        assert_eq!(headroom(5), 6);
        assert_eq!(headroom(1), 2);
    }
}
