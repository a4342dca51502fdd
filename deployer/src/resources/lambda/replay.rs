//! The function's test fixtures, and its `apply` replayed against a recording endpoint:
//! the calls an update makes and their order (configuration, wait, code, wait, then
//! reserved and provisioned concurrency, then tags), which moto cannot show (it has no
//! provisioned concurrency and settles at once); and the calls that name the role
//! repeated while Lambda cannot assume it yet, which moto never answers.

use std::time::Duration;

use super::update::RoleRetry;
use super::{Function, Observed};
use crate::resources::Resource;
use crate::resources::recording::{
    Request, aws, json_ok, recording, recording_each, rest_json_error,
};

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
    let seen = seen.lock().unwrap();
    paths(f, o, &seen)
}

/// Each request as `METHOD path`, the function's name as `F` and its ARN as `ARN`.
fn paths(f: &Function, o: &Observed, seen: &[Request]) -> Vec<String> {
    let fun = format!("/functions/{}", f.name);
    seen.iter()
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

/// What Lambda answers a call naming a role IAM has not yet propagated to it.
fn role_not_assumable() -> String {
    rest_json_error(
        400,
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
}

/// Retries short enough for a test: tries at about 0 and 200 ms, then the next pause
/// (400 ms) would end past the limit.
const FAST: RoleRetry = RoleRetry {
    limit: Duration::from_millis(600),
    first: Duration::from_millis(200),
};

/// The calls `call` makes against answers `responses` (in order, the last repeating),
/// and what it returned; bounded so that a retry that never stops fails the test.
async fn replayed<F, Fut>(responses: Vec<String>, call: F) -> (Vec<String>, Result<(), String>)
where
    F: FnOnce(crate::aws::Aws) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::aws::AwsError>>,
{
    let (endpoint, seen) = recording_each(responses);
    let result = tokio::time::timeout(Duration::from_secs(10), call(aws(&endpoint).await))
        .await
        .expect("the retry stops within its limit")
        .map_err(|e| e.to_string());
    let f = desired();
    let seen = seen.lock().unwrap();
    (paths(&f, &in_sync(&f), &seen), result)
}

/// IAM's window: the role was created a moment ago. CreateFunction is repeated, then the
/// function is waited for.
#[tokio::test]
async fn create_is_repeated_while_the_role_cannot_be_assumed() {
    let f = desired();
    let (calls, result) = replayed(
        vec![role_not_assumable(), json_ok(SETTLED)],
        |aws| async move { f.create(&aws, FAST).await },
    )
    .await;
    assert_eq!(result, Ok(()));
    assert_eq!(
        calls,
        [
            "POST /2015-03-31/functions",
            "POST /2015-03-31/functions",
            "GET /2015-03-31/functions/F/configuration",
        ]
    );
}

/// A function moved to a role created a moment ago meets the same window on
/// UpdateFunctionConfiguration.
#[tokio::test]
async fn a_configuration_update_is_repeated_while_the_role_cannot_be_assumed() {
    let f = desired();
    let (calls, result) = replayed(
        vec![role_not_assumable(), json_ok(SETTLED)],
        |aws| async move { f.update_configuration(&aws, FAST).await },
    )
    .await;
    assert_eq!(result, Ok(()));
    assert_eq!(
        calls,
        [
            "PUT /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/configuration",
        ]
    );
}

/// A role that never becomes assumable (a wrong trust policy) ends the retry at its
/// limit, naming Lambda's answer.
#[tokio::test]
async fn the_role_retry_gives_up_at_its_limit() {
    let f = desired();
    let (calls, result) = replayed(vec![role_not_assumable()], |aws| async move {
        f.create(&aws, FAST).await
    })
    .await;
    assert_eq!(
        result,
        Err(
            "lambda:CreateFunction: gave up after 0s: lambda:CreateFunction: \
             InvalidParameterValueException: The role defined for the function cannot be \
             assumed by Lambda."
                .into()
        )
    );
    assert_eq!(
        calls,
        ["POST /2015-03-31/functions", "POST /2015-03-31/functions"]
    );
}

/// Only that answer is IAM's window: the same code for a missing image, or another
/// code, fails at once.
#[tokio::test]
async fn other_errors_are_not_repeated() {
    let f = desired();
    let missing_image = rest_json_error(
        400,
        "InvalidParameterValueException",
        "Source image 123456789012.dkr.ecr.us-east-1.amazonaws.com/s-predictor@sha256:aa \
         does not exist. Provide a valid source image.",
    );
    let (calls, result) = replayed(vec![missing_image, json_ok(SETTLED)], |aws| async move {
        f.create(&aws, FAST).await
    })
    .await;
    assert!(
        result.as_ref().is_err_and(|e| e
            .starts_with("lambda:CreateFunction: InvalidParameterValueException: Source image")),
        "{result:?}"
    );
    assert_eq!(calls, ["POST /2015-03-31/functions"]);

    let f = desired();
    let busy = rest_json_error(
        409,
        "ResourceConflictException",
        "The operation cannot be performed at this time. An update is in progress for \
         resource: arn:aws:lambda:us-east-1:123456789012:function:s-predictor",
    );
    let (calls, result) = replayed(vec![busy, json_ok(SETTLED)], |aws| async move {
        f.update_configuration(&aws, FAST).await
    })
    .await;
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.contains("ResourceConflictException")),
        "{result:?}"
    );
    assert_eq!(calls, ["PUT /2015-03-31/functions/F/configuration"]);
}
