//! Tests of `capacity_provider.rs` (beside it, as terraform-provider keeps `_test.go`).

use super::*;
use crate::resources::Change as _;

/// The provider every ECS test starts from (the replays too).
pub(in crate::resources::ecs) fn provider() -> CapacityProvider {
    CapacityProvider {
        name: "s-capacity".into(),
        cluster: "s-cluster".into(),
        auto_scaling_group: "s-instances".into(),
        target_capacity: 100,
        group_min: 1,
        tags: [("deployer:stack".to_string(), "s".to_string())].into(),
    }
}

fn in_sync() -> ProviderObserved {
    ProviderObserved {
        arn: "arn:cp".into(),
        auto_scaling_group_arn: "arn:asg/s-instances".into(),
        target_capacity: Some(100),
        termination_protection: true,
        associated: true,
        group_min: Some(1),
        tags: provider().tags,
    }
}

#[test]
fn in_sync_provider_has_no_diff() {
    assert_eq!(provider().diff(&in_sync()), []);
}

#[test]
fn each_drift_is_named_and_reads_as_text() {
    let mut o = in_sync();
    o.target_capacity = None;
    o.termination_protection = false;
    o.associated = false;
    o.group_min = Some(0);
    o.tags = Tags::new();
    let d = provider().diff(&o);
    let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["managed_scaling", "cluster", "group_min", "tags"]);
    assert_eq!(
        d[0].field().to_string(),
        "managed_scaling: target off, termination protection off → target 100 %, \
         termination protection on"
    );
    assert_eq!(d[1].field().to_string(), "cluster: (none) → s-cluster");
    assert_eq!(d[2].field().to_string(), "group_min: 0 → 1");
    // Termination protection alone is drift too: `up` turns it on.
    let mut o = in_sync();
    o.termination_protection = false;
    assert!(matches!(
        provider().diff(&o)[..],
        [Change::ManagedScaling { to: 100, .. }]
    ));
}
