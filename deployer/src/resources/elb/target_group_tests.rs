//! Tests of `target_group.rs` (beside it, as terraform-provider keeps `_test.go`).

use super::*;

fn tg() -> TargetGroup {
    TargetGroup {
        name: "s-tg".into(),
        vpc_id: "vpc-1".into(),
        port: 8080,
        health_path: "/readyz".into(),
        deregistration_delay_s: 30,
        tags: Tags::new(),
    }
}

fn in_sync(t: &TargetGroup) -> GroupObserved {
    GroupObserved {
        arn: "arn".into(),
        settings: TargetSettings {
            port: t.port,
            vpc_id: t.vpc_id.clone(),
            health_path: t.health_path.clone(),
            deregistration_delay_s: t.deregistration_delay_s,
        },
        healthy: 0,
        registered: 0,
        tags: t.tags.clone(),
    }
}

#[test]
fn target_group_drift_is_named() {
    let t = tg();
    let mut o = in_sync(&t);
    assert_eq!(t.diff(&o), []);
    o.settings.deregistration_delay_s = 300;
    o.settings.health_path = "/".into();
    let d = t.diff(&o);
    assert_eq!(
        d,
        [
            Change::HealthPath {
                from: "/".into(),
                to: "/readyz".into()
            },
            Change::DeregistrationDelay { from: 300, to: 30 },
        ]
    );
    assert_eq!(d[1].field().to_string(), "deregistration_delay_s: 300 → 30");
    assert!(!d.iter().any(Change::replaces));
}

#[test]
fn a_new_port_or_vpc_is_a_replacement() {
    let t = tg();
    let mut o = in_sync(&t);
    o.settings.port = 80;
    let d = t.diff(&o);
    assert_eq!(d, [Change::Port { from: 80, to: 8080 }]);
    assert!(d[0].replaces());
    assert_eq!(d[0].field().to_string(), "port_or_vpc (replace): 80 → 8080");

    o.settings.vpc_id = "vpc-old".into();
    o.settings.health_path = "/".into();
    let d = t.diff(&o);
    assert!(
        matches!(
            &d[..],
            [Change::Port { .. }, Change::Vpc { from, to }, Change::HealthPath { .. }]
                if from == "vpc-old" && to == "vpc-1"
        ),
        "{d:?}"
    );
    let replacing: Vec<bool> = d.iter().map(Change::replaces).collect();
    assert_eq!(replacing, [true, true, false]);
    assert_eq!(
        d[1].field().to_string(),
        "port_or_vpc (replace): vpc-old → vpc-1"
    );
}

/// Nothing listens on the endpoint: a call made before the refusal would fail as
/// unreachable instead.
async fn unreachable_aws() -> Aws {
    let manifest = crate::manifest::Manifest::parse(
        "t.yaml".as_ref(),
        "name: t\nregion: us-east-1\nendpoint: http://127.0.0.1:9\n",
    )
    .unwrap();
    Aws::connect(&manifest).await
}

#[tokio::test]
async fn a_replacement_is_refused_before_any_in_place_change() {
    let t = tg();
    let o = in_sync(&t);
    let aws = unreachable_aws().await;
    // Listed after a change that would call AWS: still refused first.
    let changes = [
        Change::HealthPath {
            from: "/".into(),
            to: "/readyz".into(),
        },
        Change::Port { from: 80, to: 8080 },
    ];
    let e = t.apply(&aws, Some(&o), &changes).await.unwrap_err();
    assert!(!e.is_unreachable(), "{e:?}");
    assert_eq!(e.operation, "elasticloadbalancing:ModifyTargetGroup");
    assert_eq!(
        e.message,
        "the target group's port cannot change in place (80 → 8080); it must be replaced"
    );
    assert!(e.hint.as_deref().unwrap().contains("`s-tg`"), "{e:?}");

    let vpc = [Change::Vpc {
        from: "vpc-old".into(),
        to: "vpc-1".into(),
    }];
    let e = t.apply(&aws, Some(&o), &vpc).await.unwrap_err();
    assert_eq!(
        e.message,
        "the target group's VPC cannot change in place (vpc-old → vpc-1); it must be replaced"
    );
}
