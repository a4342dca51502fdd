//! Tests of what every resource shares: the tag diff, how a change reads, ownership.

use super::*;

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn tag_diff_names_only_missing_or_changed_tags() {
    let have = tags(&[("deployer:stack", "s"), ("team", "ml"), ("extra", "kept")]);
    assert_eq!(
        tag_diff(&have, &tags(&[("deployer:stack", "s"), ("team", "ml")])),
        None
    );
    let c = tag_diff(&have, &tags(&[("team", "vision"), ("cost", "1")])).unwrap();
    assert_eq!(c.from, tags(&[("team", "ml")]));
    assert_eq!(c.to, tags(&[("team", "vision"), ("cost", "1")]));
    let f = c.field();
    assert_eq!(f.from, Some(serde_json::json!({"team": "ml"})));
    assert_eq!(f.to, serde_json::json!({"team": "vision", "cost": "1"}));
}

#[test]
fn a_field_reads_as_values_not_as_rust() {
    let f = Field::new("target_cpu", Some(Some(70)), 60);
    assert_eq!(f.to_string(), "target_cpu: 70 → 60");
    let f = Field::new("role", None::<String>, "arn:aws:iam::1:role/r");
    assert_eq!(f.to_string(), "role: (none) → arn:aws:iam::1:role/r");
    let f = Field::new("retention_days", Some(None::<i32>), 14);
    assert_eq!(f.to_string(), "retention_days: (none) → 14");
}

#[test]
fn ownership_needs_the_exact_stack_name() {
    assert!(owned_by(&tags(&[("deployer:stack", "s")]), "s"));
    assert!(!owned_by(&tags(&[("deployer:stack", "other")]), "s"));
    assert!(!owned_by(&Tags::new(), "s"));
}
