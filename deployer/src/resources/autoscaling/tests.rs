//! The group's diff, its read-back and its sizes.

use super::find::{observed, profile_not_visible};
use super::*;
use crate::aws::AwsError;
use crate::resources::Change as _;
use aws_sdk_autoscaling::types::AutoScalingGroup;

use crate::resources::Resource;

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
