//! The bucket's test fixtures, and `apply` replayed against a recording endpoint: the
//! requests and their order, and what S3 answers that moto never does.

use super::{Bucket, Observed};
use crate::resources::Resource;
pub(super) use crate::resources::recording::{aws, recording};

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

pub(super) fn bucket(public: bool, days: u32) -> Bucket {
    Bucket {
        name: "s-results".into(),
        setting: "buckets.output.name",
        region: "us-east-1".into(),
        partition: "aws".into(),
        public,
        expire_after_days: days,
        tags: [("deployer:stack".to_string(), "s".to_string())].into(),
    }
}

pub(super) fn in_sync(b: &Bucket) -> Observed {
    Observed {
        access_block: Some(b.access_block()),
        encryption: Some("AES256".into()),
        expire_after_days: b.expiry(),
        policy: b.policy(None),
        tags: b.tags.clone(),
        has_objects: false,
    }
}

/// The requests `apply` makes to bring `o` in line with `b`, each answered `200 OK`.
pub(super) async fn calls(b: &Bucket, o: &Observed) -> Vec<String> {
    let (endpoint, seen) = recording(OK);
    b.apply(&aws(&endpoint).await, Some(o), &b.diff(o))
        .await
        .unwrap();
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.target, r.body))
        .collect()
}

/// A public policy is refused while the access block blocks it.
#[tokio::test]
async fn going_public_unblocks_before_the_policy() {
    let public = bucket(true, 7);
    let calls = calls(&public, &in_sync(&bucket(false, 7))).await;
    let ops: Vec<&str> = calls
        .iter()
        .map(|c| c.split(' ').take(2).collect::<Vec<_>>())
        .map(|w| match w[..] {
            ["PUT", t] if t.contains("publicAccessBlock") => "PutPublicAccessBlock",
            ["PUT", t] if t.contains("policy") => "PutBucketPolicy",
            _ => "other",
        })
        .collect();
    assert_eq!(
        ops,
        ["PutPublicAccessBlock", "PutBucketPolicy"],
        "{calls:#?}"
    );
    assert!(calls[0].contains("<BlockPublicPolicy>false</BlockPublicPolicy>"));
    assert!(calls[1].contains("arn:aws:s3:::s-results/*"));
}

/// S3 replaces a bucket's whole tag set: a changed stack tag must not take the tags
/// others put on the bucket with it.
#[tokio::test]
async fn a_tag_change_keeps_the_tags_others_put_on_it() {
    let mut b = bucket(false, 7);
    b.tags.insert("team".into(), "vision".into());
    let mut o = in_sync(&b);
    o.tags = [
        ("deployer:stack".to_string(), "s".to_string()),
        ("team".to_string(), "ml".to_string()),
        ("cost-center".to_string(), "42".to_string()),
    ]
    .into();
    let calls = calls(&b, &o).await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let put = &calls[0];
    assert!(put.starts_with("PUT /s-results/?tagging"), "{put}");
    for tag in [
        "<Key>cost-center</Key><Value>42</Value>",
        "<Key>team</Key><Value>vision</Value>",
        "<Key>deployer:stack</Key><Value>s</Value>",
    ] {
        assert!(put.contains(tag), "{tag} not in {put}");
    }
    assert!(!put.contains("<Value>ml</Value>"), "{put}");
}
