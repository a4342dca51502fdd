//! The function's test fixtures, and its `apply` replayed against a recording endpoint:
//! the calls an update makes and their order (configuration, wait, code, wait, then
//! reserved and provisioned concurrency, then tags), which moto cannot show (it has no
//! provisioned concurrency and settles at once).

use super::{Function, Observed};
use crate::resources::Resource;
use crate::resources::recording::{aws, json_ok, recording};

pub(super) fn desired() -> Function {
    Function {
        name: "s-predictor".into(),
        role_name: "s-lambda".into(),
        role_arn: "arn:aws:iam::123456789012:role/s-lambda".into(),
        log_group: "/aws/lambda/s-predictor".into(),
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/s-predictor@sha256:aa".into(),
        architecture: "x86_64".into(),
        memory_mb: 3000,
        timeout_s: 30,
        environment: [("CONF".to_string(), "0.25".to_string())].into(),
        reserved_concurrency: None,
        provisioned_concurrency: None,
        image_push: None,
        tags: [("deployer:stack".to_string(), "s".to_string())].into(),
    }
}

pub(super) fn in_sync(f: &Function) -> Observed {
    Observed {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:s-predictor".into(),
        image: Some(f.image.clone()),
        architecture: f.architecture.clone(),
        memory_mb: f.memory_mb,
        timeout_s: f.timeout_s,
        role_arn: f.role_arn.clone(),
        environment: f.environment.clone(),
        reserved_concurrency: None,
        alias_version: None,
        provisioned_concurrency: None,
        state: "Active".into(),
        last_update: "Successful".into(),
        tags: f.tags.clone(),
        last_init_ms: None,
    }
}

/// Every call of an update, answered as a settled function with a published version
/// and ready provisioned concurrency.
const SETTLED: &str =
    r#"{"State": "Active", "LastUpdateStatus": "Successful", "Version": "7", "Status": "READY"}"#;

async fn calls(f: &Function, o: &Observed) -> Vec<String> {
    let (endpoint, seen) = recording(json_ok(SETTLED));
    f.apply(&aws(&endpoint).await, Some(o), &f.diff(o))
        .await
        .unwrap();
    let fun = format!("/functions/{}", f.name);
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| {
            format!("{} {}", r.method, r.path())
                .replace(&fun, "/functions/F")
                .replace(&o.arn.replace(':', "%3A"), "ARN")
        })
        .collect()
}

#[tokio::test]
async fn configuration_then_code_each_waited_for() {
    let f = desired();
    let mut o = in_sync(&f);
    o.image = Some(f.image.replace("sha256:aa", "sha256:bb"));
    o.memory_mb = 1024;
    o.reserved_concurrency = Some(5);
    o.tags.clear();
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/configuration",
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/code",
            "GET /2015-03-31/functions/F/configuration",
            "DELETE /2017-10-31/functions/F/concurrency",
            "POST /2017-03-31/tags/ARN",
        ]
    );
}

#[tokio::test]
async fn new_code_reaches_the_alias_as_a_new_version() {
    let mut f = desired();
    f.provisioned_concurrency = Some(2);
    let mut o = in_sync(&f);
    o.alias_version = Some("6".into());
    o.provisioned_concurrency = Some(2);
    o.image = Some(f.image.replace("sha256:aa", "sha256:bb"));
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/code",
            "GET /2015-03-31/functions/F/configuration",
            "POST /2015-03-31/functions/F/versions",
            "PUT /2015-03-31/functions/F/aliases/live",
            "PUT /2019-09-30/functions/F/provisioned-concurrency",
            "GET /2019-09-30/functions/F/provisioned-concurrency",
        ]
    );
    // Only the number changed: no new version.
    o.image = Some(f.image.clone());
    o.provisioned_concurrency = Some(1);
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2019-09-30/functions/F/provisioned-concurrency",
            "GET /2019-09-30/functions/F/provisioned-concurrency",
        ]
    );
    // None wanted: the configuration and the alias go.
    f.provisioned_concurrency = None;
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "DELETE /2019-09-30/functions/F/provisioned-concurrency",
            "DELETE /2015-03-31/functions/F/aliases/live",
        ]
    );
}
