//! The AWS clients of one run, and the one place where each service's "not found"
//! answers are classified: finders turn those into `Ok(None)`; anything else is an error.

use std::fmt;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use tokio::sync::OnceCell;

use crate::image::registry::RegistryError;
use crate::manifest::{Manifest, Timeouts};

/// An AWS call that failed: which operation, AWS's error code, its message, what to do
/// about it when that is known, and the SDK's error it came from (the `-v` log shows
/// its chain).
#[derive(Debug, Clone)]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
    /// Printed on its own line, `hint: …`.
    pub hint: Option<String>,
    /// How the call failed, which decides the exit code.
    pub kind: Kind,
    /// The SDK's (or the registry client's) error, kept whole.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// How a call failed: told by the SDK's error kinds and by the waits, never by text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// AWS answered with an error, or this tool found its answer wanting.
    Refused,
    /// The request never reached an endpoint (connection refused, no route, DNS): the
    /// SDK's own dispatch-failure kind, not anything AWS said.
    Unreachable,
    /// The request was never sent for another reason (no credentials to sign it with,
    /// a request that could not be built): the SDK's construction or dispatch failure.
    Unsent,
    /// A bounded wait ran out before AWS got there ([`crate::wait::until`]).
    TimedOut,
    /// The image registry refused or failed (a push, a manifest read).
    Registry,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{}: {code}: {}", self.operation, self.message),
            None => write!(f, "{}: {}", self.operation, self.message),
        }
    }
}

/// The source is the SDK's error itself (not the `Arc` around it), so that it can be
/// downcast.
impl std::error::Error for AwsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl AwsError {
    pub fn new(operation: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            operation,
            code: None,
            message: message.into(),
            hint: None,
            kind: Kind::Refused,
            source: None,
        }
    }

    /// A bounded wait for `operation` that ran out.
    pub fn timed_out(operation: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            kind: Kind::TimedOut,
            ..AwsError::new(operation, message)
        }
    }

    /// A registry call that failed, as a step of a plan; a failure of ECR's token keeps
    /// its own kind (the registry was never reached).
    pub fn registry(operation: &'static str, e: RegistryError) -> Self {
        match e {
            RegistryError::Token(aws) => aws,
            e => AwsError {
                kind: Kind::Registry,
                hint: e.hint().map(str::to_string),
                source: Some(Arc::new(e)),
                ..AwsError::new(operation, "")
            }
            .with_source_message(),
        }
    }

    /// The message of the source, when there is no other.
    fn with_source_message(mut self) -> Self {
        if let Some(source) = &self.source {
            self.message = source.to_string();
        }
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_unreachable(&self) -> bool {
        self.kind == Kind::Unreachable
    }
}

/// The id or ARN a create call answered with. AWS always sends one; an answer without it
/// is an error naming the call, never an empty id that a later call trips over.
pub fn created<T>(operation: &'static str, field: &str, value: Option<T>) -> Result<T, AwsError> {
    value.ok_or_else(|| AwsError::new(operation, format!("the answer has no `{field}`")))
}

/// The services this tool calls, for not-found classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ecr,
    S3,
    Iam,
    Logs,
    Lambda,
    ApiGateway,
    Ec2,
    Ecs,
    Elb,
    AppScaling,
}

impl Service {
    /// Error codes meaning "the thing you asked about does not exist" (as AWS and the
    /// moto emulator answer them).
    fn not_found_codes(self) -> &'static [&'static str] {
        match self {
            Service::Ecr => &[
                "RepositoryNotFoundException",
                "LifecyclePolicyNotFoundException",
                "RepositoryPolicyNotFoundException",
            ],
            Service::S3 => &[
                "NoSuchBucket",
                "NotFound",
                "NoSuchKey",
                "NoSuchTagSet",
                "NoSuchLifecycleConfiguration",
                "NoSuchPublicAccessBlockConfiguration",
                "ServerSideEncryptionConfigurationNotFoundError",
                "NoSuchBucketPolicy",
            ],
            Service::Iam => &["NoSuchEntity"],
            Service::Logs => &["ResourceNotFoundException"],
            Service::Lambda => &[
                "ResourceNotFoundException",
                "ProvisionedConcurrencyConfigNotFoundException",
            ],
            Service::ApiGateway => &["NotFoundException"],
            Service::Ec2 => &[
                "InvalidGroup.NotFound",
                "InvalidLaunchTemplateName.NotFoundException",
                "InvalidLaunchTemplateId.NotFound",
                "InvalidVpcID.NotFound",
                "InvalidSubnetID.NotFound",
            ],
            Service::Ecs => &["ClusterNotFoundException", "ServiceNotFoundException"],
            Service::Elb => &[
                "LoadBalancerNotFound",
                "TargetGroupNotFound",
                "ListenerNotFound",
            ],
            Service::AppScaling => &["ObjectNotFoundException"],
        }
    }
}

/// Converts an SDK error into an [`AwsError`] naming `operation`.
pub fn error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    move |e| {
        let (code, message) = match &e {
            SdkError::ServiceError(s) => (
                s.err().code().map(str::to_string),
                s.err().message().unwrap_or("no message").to_string(),
            ),
            other => (None, chain(other)),
        };
        AwsError {
            operation,
            code,
            message,
            hint: None,
            kind: kind_of(&e),
            source: Some(Arc::new(e)),
        }
    }
}

/// How an SDK call failed, by the SDK's error kinds.
fn kind_of<E, R>(e: &SdkError<E, R>) -> Kind {
    match e {
        // A connect timeout (packets silently dropped by a firewall) is as unreachable
        // as a refused connection.
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Kind::Unreachable,
        SdkError::ConstructionFailure(_) | SdkError::DispatchFailure(_) => Kind::Unsent,
        _ => Kind::Refused,
    }
}

/// An error and its sources as one line of their messages (never their `Debug` form),
/// each once.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// `Ok(None)` for a not-found answer of `service`, the error otherwise.
pub trait FoundExt<T> {
    fn found(self, service: Service, operation: &'static str) -> Result<Option<T>, AwsError>;
}

impl<T, E, R> FoundExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + HttpStatus + Send + Sync + 'static,
{
    fn found(self, service: Service, operation: &'static str) -> Result<Option<T>, AwsError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_not_found(&e, service) => Ok(None),
            Err(e) => Err(error(operation)(e)),
        }
    }
}

/// The HTTP status of a raw response, for services (S3's HEAD) that answer 404 with no body.
pub trait HttpStatus {
    fn status(&self) -> Option<u16>;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

fn is_not_found<E, R>(e: &SdkError<E, R>, service: Service) -> bool
where
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    match e {
        SdkError::ServiceError(s) => {
            let coded = s
                .err()
                .code()
                .is_some_and(|c| service.not_found_codes().contains(&c));
            coded
                || (service == Service::S3
                    && s.err().code().is_none()
                    && s.raw().status() == Some(404))
        }
        _ => false,
    }
}

/// How many times a call is tried: the SDK's standard 3 lose a call when `observe`
/// reads ~80 resources at once and a share of them is throttled (each throttled read has
/// two more chances, then fails the whole run), and at the 20 % of throttling, 500 and
/// 503 the fault tests inject, one call in ~125 fails three times. With 8, one in ~400 000.
pub const MAX_ATTEMPTS: u32 = 8;

/// Standard retries (exponential backoff with full jitter, the SDK's retry quota) with
/// [`MAX_ATTEMPTS`]; the first backoff is 200 ms (the SDK's is 1 s) so that a rare 500
/// costs little, and the doubling reaches the 20 s cap by the last attempts, which
/// spreads a throttled burst over half a minute.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(std::time::Duration::from_millis(200))
        .with_max_backoff(std::time::Duration::from_secs(20))
}

/// Creates something the SDK must not retry blindly: a create whose answer was lost (AWS
/// answers a call that committed with a 500 now and then) is retried by the SDK into a
/// second one where names are not unique (HTTP APIs, their integrations) or the emulator
/// does not make the call idempotent as AWS does (load balancers, listeners). `create`
/// must send with retries disabled; after a failure that may have happened anyway
/// (throttled, 5xx, no whole answer), `find` looks for what it made before trying again,
/// up to [`MAX_ATTEMPTS`] in all.
pub async fn create_once<T, E, C, CF, F, FF>(
    operation: &'static str,
    mut create: C,
    mut find: F,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<Option<T>, AwsError>>,
{
    let mut backoff = std::time::Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let e = match create().await {
            Ok(made) => return Ok(made),
            Err(e) if attempt < MAX_ATTEMPTS && may_have_happened(&e) => e,
            Err(e) => return Err(error(operation)(e)),
        };
        tracing::info!(
            "{}; looking for it before trying again",
            error(operation)(e)
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        attempt += 1;
        if let Some(made) = find().await? {
            return Ok(made);
        }
    }
}

/// Whether a failed call may be tried again, and may have happened nonetheless: a
/// throttle, a server error, an answer that never came whole.
fn may_have_happened<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let throttled = s
                .err()
                .code()
                .is_some_and(|c| c.starts_with("Throttling") || c == "RequestLimitExceeded");
            status == 429 || status >= 500 || throttled
        }
        _ => false,
    }
}

/// Clients for every service the stack uses, built from the standard credential chain.
pub struct Aws {
    pub region: String,
    pub ecr: aws_sdk_ecr::Client,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub appscaling: aws_sdk_applicationautoscaling::Client,
    /// Service Quotas: read by `check` only.
    pub quotas: aws_sdk_servicequotas::Client,
    /// Metrics, for `bench` on AWS.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The Resource Groups Tagging API: what carries the stack's tag (its inventory).
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    /// How long the resources' waits may take (the manifest's `timeouts`).
    pub timeouts: Timeouts,
    account: OnceCell<String>,
}

impl Aws {
    /// Region from the manifest; endpoint from `AWS_ENDPOINT_URL`, else the manifest's.
    /// Against a loopback emulator with no credentials configured, fixed test
    /// credentials are used so nothing waits on the instance metadata service.
    pub async fn connect(manifest: &Manifest) -> Aws {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty())
            .or_else(|| manifest.endpoint.clone());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(manifest.region.clone()));
        // The user's own retry settings win over the tool's.
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
            && std::env::var_os("AWS_RETRY_MODE").is_none()
        {
            loader = loader.retry_config(retry_config());
        }
        if let Some(endpoint) = &endpoint {
            loader = loader.endpoint_url(endpoint);
            if is_loopback(endpoint) && !has_configured_credentials() {
                loader = loader.test_credentials();
            }
        }
        let config = loader.load().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(endpoint.is_some())
            .build();
        Aws {
            region: manifest.region.clone(),
            ecr: aws_sdk_ecr::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            iam: aws_sdk_iam::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigw: aws_sdk_apigatewayv2::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            autoscaling: aws_sdk_autoscaling::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            appscaling: aws_sdk_applicationautoscaling::Client::new(&config),
            quotas: aws_sdk_servicequotas::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            tagging: aws_sdk_resourcegroupstagging::Client::new(&config),
            timeouts: manifest.timeouts,
            account: OnceCell::new(),
        }
    }

    /// The account the credentials belong to (one STS call, cached).
    pub async fn account(&self) -> Result<&str, AwsError> {
        self.account
            .get_or_try_init(|| async {
                // The first call of most commands, so the one that meets a wrong
                // endpoint, missing credentials or no network: told in a second, not
                // after the many patient retries the other calls get (`retry_config`).
                let first_contact = aws_sdk_sts::config::Builder::default().retry_config(
                    aws_config::retry::RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(std::time::Duration::from_millis(200)),
                );
                let me = self
                    .sts
                    .get_caller_identity()
                    .customize()
                    .config_override(first_contact)
                    .send()
                    .await
                    .map_err(error("sts:GetCallerIdentity"))?;
                me.account.ok_or_else(|| {
                    AwsError::new("sts:GetCallerIdentity", "no account in the answer")
                })
            })
            .await
            .map(String::as_str)
    }

    /// The ARN partition of the region.
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }
}

/// The ARN partition of a region, by its prefix as the SDK's partition data has them.
pub fn partition_of(region: &str) -> &'static str {
    [
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("eusc-", "aws-eusc"),
        ("us-isob-", "aws-iso-b"),
        ("us-iso-", "aws-iso"),
    ]
    .iter()
    .find(|(prefix, _)| region.starts_with(prefix))
    .map_or("aws", |(_, p)| p)
}

/// Whether an endpoint (`http://127.0.0.1:4566`) or a host (`127.0.0.1:5000`) is on
/// this machine.
pub fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

pub(crate) fn has_configured_credentials() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

#[cfg(test)]
mod tests {
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::*;
    use crate::resources::Resource;
    use crate::resources::recording::{self, json_ok, recording};

    type StsError = SdkError<GetCallerIdentityError, aws_smithy_runtime_api::http::Response>;

    #[test]
    fn a_failed_call_keeps_the_sdks_error_and_is_classified_by_its_kind() {
        let refused: StsError = SdkError::dispatch_failure(ConnectorError::io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        ));
        let e = error("sts:GetCallerIdentity")(refused);
        assert_eq!(e.kind, Kind::Unreachable);
        let source = std::error::Error::source(&e).expect("the SDK's error is kept");
        assert!(source.downcast_ref::<StsError>().is_some(), "{source:?}");
        assert!(chain(&e).contains("refused"), "{}", chain(&e));

        let unsigned: StsError = SdkError::construction_failure("no credentials to sign with");
        assert_eq!(error("sts:GetCallerIdentity")(unsigned).kind, Kind::Unsent);
    }

    #[tokio::test]
    async fn an_api_created_without_an_id_is_an_error_naming_the_call() {
        let (endpoint, seen) = recording(json_ok("{}"));
        let aws = recording::aws(&endpoint).await;
        let api = crate::resources::apigw::HttpApi {
            name: "t-api".into(),
            function: "t-fn".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:t-fn".into(),
            qualifier: None,
            routes: vec!["POST /predict".into()],
            timeout_ms: 29_000,
            execute_arn_prefix: "arn:aws:execute-api:us-east-1:123456789012".into(),
            arn_prefix: "arn:aws:apigateway:us-east-1".into(),
            tags: Default::default(),
        };
        let e = api.apply(&aws, None, &[]).await.unwrap_err();
        assert_eq!(e.operation, "apigateway:CreateApi", "{e}");
        assert!(e.message.contains("`ApiId`"), "{e}");
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "nothing is called with an empty id"
        );
    }

    #[tokio::test]
    async fn a_security_group_created_without_an_id_is_an_error_naming_the_call() {
        let body = r#"<CreateSecurityGroupResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId></CreateSecurityGroupResponse>"#;
        let (endpoint, _) = recording(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ));
        let aws = recording::aws(&endpoint).await;
        let group = crate::resources::ec2::SecurityGroup {
            name: "t-sg".into(),
            description: "t".into(),
            vpc_id: "vpc-1".into(),
            ingress: Vec::new(),
            tags: Default::default(),
        };
        let e = group.apply(&aws, None, &[]).await.unwrap_err();
        assert_eq!(e.operation, "ec2:CreateSecurityGroup", "{e}");
        assert!(e.message.contains("`GroupId`"), "{e}");
    }

    #[test]
    fn a_missing_id_is_an_error_and_a_present_one_is_taken() {
        assert_eq!(
            created("ecr:CreateRepository", "repositoryArn", Some(1)).unwrap(),
            1
        );
        let e = created::<u8>("ecr:CreateRepository", "repositoryArn", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ecr:CreateRepository: the answer has no `repositoryArn`"
        );
    }
}
