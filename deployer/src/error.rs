//! The errors a command ends with, the exit code of each class, and how an error whose
//! cause lies around the tool (credentials, the network, permissions, the local
//! registry, the build) is told: the cause in one line, then the fix.

use std::path::PathBuf;

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::result::ConnectorError;

use crate::aws::{AwsError, Kind};
use crate::image::BuildError;
use crate::image::registry::RegistryError;
use crate::manifest::{Manifest, ManifestError};
use crate::plan::Action;
use crate::resources::Id;

/// What kind of failure ended a command; each has its own exit code, so that a script
/// can tell what to do without reading the message (README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// 1: AWS refused a call, a change failed, or anything not below.
    Failed,
    /// 2: the input is wrong: the manifest, the arguments.
    Input,
    /// 3: something around the tool is missing: credentials, the network, permissions,
    /// ONNX Runtime or cargo, the local runtime.
    Precondition,
    /// 4: a bounded wait for AWS ran out; trying again may succeed.
    Timeout,
    /// 5: the image registry refused, failed or did not answer.
    Registry,
}

impl Class {
    pub fn exit_code(self) -> u8 {
        match self {
            Class::Failed => 1,
            Class::Input => 2,
            Class::Precondition => 3,
            Class::Timeout => 4,
            Class::Registry => 5,
        }
    }

    /// The class of a failed AWS call, by its kind.
    pub fn of_aws(e: &AwsError) -> Class {
        match e.kind {
            Kind::Refused => Class::Failed,
            Kind::Unreachable | Kind::Unsent => Class::Precondition,
            Kind::TimedOut => Class::Timeout,
            Kind::Registry => Class::Registry,
        }
    }

    /// The class shared by all of `classes`, else [`Class::Failed`].
    fn common(classes: impl IntoIterator<Item = Class>) -> Class {
        let mut classes = classes.into_iter();
        let first = classes.next().unwrap_or(Class::Failed);
        if classes.all(|c| c == first) {
            first
        } else {
            Class::Failed
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("{0}")]
    Aws(#[from] AwsError),
    /// The image registry refused or failed: a push, a manifest read.
    #[error("image: {0}")]
    Registry(#[from] RegistryError),
    /// Building the image's inputs: the predictor binary, ONNX Runtime.
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error("{} exist without the tag `deployer:stack = {stack}`; refusing to modify them", list(.ids))]
    Foreign { stack: String, ids: Vec<Id> },
    /// Changes of `up` or `down` failed: their root causes, each told last (the changes
    /// skipped because of them are not causes).
    #[error("{}", failed_message(.command, *.total, *.skipped, .causes))]
    Failed {
        command: &'static str,
        total: usize,
        skipped: usize,
        causes: Vec<Cause>,
    },
    #[error("cancelled: nothing was changed")]
    Cancelled,
    /// The local runtime could not start or serve.
    #[error("local runtime: {0}")]
    Local(String),
    /// Nothing answered at the endpoint the calls go to.
    #[error("{}", unreachable_message(.endpoint.as_deref(), .origin, .host, .proxy.as_deref()))]
    Unreachable {
        /// The endpoint `AWS_ENDPOINT_URL` or the manifest names; `None` for AWS itself.
        endpoint: Option<String>,
        /// Where the endpoint came from: `AWS_ENDPOINT_URL` or the manifest.
        origin: &'static str,
        /// AWS's host for the call that failed (when no endpoint is named).
        host: String,
        /// The proxy the calls went through (`HTTPS_PROXY`).
        proxy: Option<String>,
        loopback: bool,
    },
    /// Every source of the credential chain was tried and none had credentials.
    #[error("no AWS credentials found (tried {})", .tried.join(", "))]
    NoCredentials { tried: Vec<String> },
    /// The credentials were found but have expired (an SSO session, session keys).
    #[error("{}", expired_message(.from, .sso_profile.as_deref()))]
    CredentialsExpired {
        /// Where the credentials came from.
        from: String,
        /// The SSO profile whose session it is, when it is one.
        sso_profile: Option<String>,
    },
    /// AWS did not accept the credentials: an unknown key, a wrong secret.
    #[error("AWS rejected the access key `{key}` from {from} (`{code}`)")]
    CredentialsRejected {
        key: String,
        from: String,
        code: String,
    },
    /// The credential chain failed for another reason (its configuration, a provider).
    #[error("the AWS credentials could not be loaded: {0}")]
    Credentials(String),
    /// A call AWS refused for lack of permission.
    #[error("{} may not `{action}`{} (`{code}`)", principal_text(.principal.as_deref()), resource_text(.resource.as_deref()))]
    Denied {
        principal: Option<String>,
        action: String,
        resource: Option<String>,
        code: String,
    },
    /// Nothing answers at the manifest's `image.registry`.
    #[error("nothing answers at `{host}` (the manifest's `image.registry`)")]
    RegistryDown { host: String, loopback: bool },
}

fn unreachable_message(
    endpoint: Option<&str>,
    origin: &str,
    host: &str,
    proxy: Option<&str>,
) -> String {
    match (endpoint, proxy) {
        (Some(e), _) => format!("nothing answers at `{e}` ({origin})"),
        (None, Some(p)) => format!("could not reach `{host}` through the proxy `{p}`"),
        (None, None) => format!("could not reach `{host}`"),
    }
}

fn expired_message(from: &str, sso_profile: Option<&str>) -> String {
    match sso_profile {
        Some(p) => format!("the SSO session of profile `{p}` has expired (or was never signed in)"),
        None => format!("the AWS credentials from {from} have expired"),
    }
}

fn principal_text(principal: Option<&str>) -> String {
    principal.map_or_else(
        || "the credentials in use".to_string(),
        |p| format!("`{p}`"),
    )
}

fn resource_text(resource: Option<&str>) -> String {
    resource.map_or_else(String::new, |r| format!(" on `{r}`"))
}

/// One root cause of a failed `up` or `down`: the change and AWS's answer to it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cause {
    #[serde(flatten)]
    pub id: Id,
    pub action: Action,
    /// The operation, AWS's error code and its message.
    pub error: String,
    pub code: Option<String>,
    pub hint: Option<String>,
    /// What kind of failure it was (`timeout`, `registry`, …).
    pub class: Class,
}

/// The summary, then each cause in its own paragraph, its hint on its own line: the
/// last lines a user reads are what went wrong and what to do.
fn failed_message(command: &str, total: usize, skipped: usize, causes: &[Cause]) -> String {
    let mut out = format!("`{command}` failed: {} of {total} changes", causes.len());
    if skipped > 0 {
        out.push_str(&format!(
            " failed and {skipped} were skipped because of them"
        ));
    } else {
        out.push_str(" failed");
    }
    for c in causes {
        let doing = match c.action {
            Action::Create => "creating",
            Action::Update => "updating",
            Action::Replace => "replacing",
            Action::Delete => "deleting",
            Action::Empty => "emptying",
        };
        out.push_str(&format!("\n\n{doing} {}: {}", c.id, c.error));
        if let Some(h) = &c.hint {
            out.push_str(&format!("\n\nhint: {h}"));
        }
    }
    out
}

fn list(ids: &[Id]) -> String {
    ids.iter().map(Id::to_string).collect::<Vec<_>>().join(", ")
}

/// AWS's codes for credentials it does not accept (STS and query services, JSON
/// services, S3, EC2).
const REJECTED: &[&str] = &[
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "InvalidAccessKeyId",
    "AuthFailure",
];

/// AWS's codes for session credentials past their expiry.
const EXPIRED: &[&str] = &["ExpiredToken", "ExpiredTokenException"];

/// AWS's codes for a call the principal has no permission for (query and XML services,
/// JSON services, EC2).
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];

impl Error {
    /// The error as the user should read it: when its cause lies around the tool, that
    /// cause, found from the SDK's typed errors and codes and, only now that a command
    /// has failed, by asking the credential chain, STS or the registry's port. The same
    /// for every command. The error as it was goes to the `-v` log.
    pub async fn explain(self, m: &Manifest) -> Error {
        // ECR's token is an AWS call like any other.
        let this = match self {
            Error::Registry(RegistryError::Token(e)) => Error::Aws(e),
            other => other,
        };
        this.explain_aws(m).await
    }

    async fn explain_aws(self, m: &Manifest) -> Error {
        let explained = match &self {
            Error::Aws(e) if e.is_unreachable() => Some(unreachable(m, e.operation)),
            Error::Aws(e) => match e.code.as_deref() {
                Some(code) if REJECTED.contains(&code) => Some(rejected(m, code).await),
                Some(code) if EXPIRED.contains(&code) => Some(expired(m).await),
                Some(code) if DENIED.contains(&code) => Some(denied(m, e).await),
                // A request that was never sent, for no network reason: the credentials.
                None if e.kind == Kind::Unsent => match credentials_failure(m).await {
                    Some(problem) => Some(problem),
                    None => registry_down(m),
                },
                None => None,
                Some(_) => None,
            },
            // Flattened to text on the way up (a registry's or the local runtime's
            // error): what around the tool could have caused it, asked directly.
            Error::Registry(_) | Error::Local(_) | Error::Failed { .. } => {
                match credentials_failure(m).await {
                    Some(problem) => Some(problem),
                    None => registry_down(m),
                }
            }
            _ => None,
        };
        match explained {
            Some(e) => {
                tracing::info!(error = %crate::aws::chain(&self), "explained as: {e}");
                e
            }
            None => self,
        }
    }

    /// What kind of failure this is; changes that failed are of their causes' class
    /// when they share one.
    pub fn class(&self) -> Class {
        match self {
            Error::Manifest(_) | Error::Usage { .. } => Class::Input,
            Error::Aws(e) => Class::of_aws(e),
            Error::Registry(RegistryError::Token(e)) => Class::of_aws(e),
            Error::Registry(_) | Error::RegistryDown { .. } => Class::Registry,
            Error::Build(e) => e.class(),
            Error::Failed { causes, .. } => Class::common(causes.iter().map(|c| c.class)),
            Error::Local(_)
            | Error::Unreachable { .. }
            | Error::NoCredentials { .. }
            | Error::CredentialsExpired { .. }
            | Error::CredentialsRejected { .. }
            | Error::Credentials(_)
            | Error::Denied { .. } => Class::Precondition,
            Error::Foreign { .. } | Error::Cancelled => Class::Failed,
        }
    }

    /// The exit code of the error's class (README, "Exit codes").
    pub fn exit_code(&self) -> u8 {
        self.class().exit_code()
    }

    /// The exit code under `plan --detailed-exitcode`, where 2 means "changes": the
    /// input's errors exit 1 there (terraform's convention), the other classes keep theirs.
    pub fn detailed_exit_code(&self) -> u8 {
        match self.class() {
            Class::Input => 1,
            class => class.exit_code(),
        }
    }

    /// The class of the error, for `-o json` (`{"error": {"code", "message", "hint"}}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Manifest(_) => "manifest",
            Error::Usage { .. } => "usage",
            Error::Aws(AwsError {
                kind: Kind::TimedOut,
                ..
            }) => "timeout",
            Error::Aws(_) => "aws",
            Error::Registry(_) => "image",
            Error::Build(BuildError::OrtMissing { .. }) => "onnx_runtime_missing",
            Error::Build(BuildError::NoCargo { .. }) => "cargo_missing",
            Error::Build(BuildError::MissingLibrary { .. }) => "library_missing",
            Error::Build(BuildError::NoBinary { .. }) => "predictor_binary_missing",
            Error::Build(_) => "build_failed",
            Error::Foreign { .. } => "foreign",
            Error::Failed { .. } => "changes_failed",
            Error::Cancelled => "cancelled",
            Error::Local(_) => "local_runtime",
            Error::Unreachable { .. } => "unreachable",
            Error::NoCredentials { .. } => "no_credentials",
            Error::CredentialsExpired { .. } => "credentials_expired",
            Error::CredentialsRejected { .. } => "credentials_rejected",
            Error::Credentials(_) => "credentials",
            Error::Denied { .. } => "access_denied",
            Error::RegistryDown { .. } => "registry_unreachable",
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Usage { hint, .. } => return hint.clone(),
            Error::Manifest(e) => return e.hint().map(str::to_string),
            Error::Aws(AwsError { hint, .. }) => return hint.clone(),
            Error::Registry(e) => return e.hint().map(str::to_string),
            Error::Unreachable { loopback: true, .. } | Error::RegistryDown { loopback: true, .. } => {
                "start the local emulator and registry: `scripts/local-stack.sh start`".into()
            }
            Error::Unreachable { .. } => {
                "check the network and any proxy (`HTTPS_PROXY`), or set `AWS_ENDPOINT_URL` to an endpoint that answers"
                    .into()
            }
            Error::RegistryDown { .. } => {
                "check the network, or the address in the manifest's `image.registry`".into()
            }
            Error::NoCredentials { .. } => {
                "sign in with `aws configure sso` and select the profile with `AWS_PROFILE=<profile>`, \
                 or set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`"
                    .into()
            }
            Error::CredentialsExpired {
                sso_profile: Some(p),
                ..
            } => format!("`aws sso login --profile {p}`"),
            Error::CredentialsExpired { .. } => {
                "get new session credentials (`AWS_SESSION_TOKEN` and its keys), or use a profile: `AWS_PROFILE=<profile>`"
                    .into()
            }
            Error::CredentialsRejected { .. } => {
                "check the key and its secret (`aws configure list` shows which are used), or choose another profile with `AWS_PROFILE=<profile>`; a region the account has not opted in to answers the same"
                    .into()
            }
            Error::Credentials(_) => {
                "check the profile in `~/.aws/config` (`aws configure list` shows what is used)".into()
            }
            Error::Denied { .. } => "`deployer policy` prints the permissions deployer needs".into(),
            Error::Build(BuildError::OrtMissing { .. }) => {
                "run `scripts/setup-ort.sh`, or set `ORT_DYLIB_PATH` to a `libonnxruntime.so`".into()
            }
            Error::Build(BuildError::NoCargo { .. } | BuildError::Failed { .. }) => {
                "build the predictor yourself and pass it with `--predictor-bin <path>`, or deploy a prebuilt image with the manifest's `image.uri`"
                    .into()
            }
            Error::Foreign { .. } => "if they are this stack's (an `up` interrupted on an endpoint that ignores tags at creation), \
                 claim them with `deployer up --adopt`; otherwise rename the stack"
                .into(),
            _ => return None,
        })
    }
}

/// The endpoint that did not answer, and where it came from; AWS's host for the
/// service of `operation` when no endpoint is named.
fn unreachable(m: &Manifest, operation: &str) -> Error {
    let from_env = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
    let endpoint = crate::local::endpoint(m);
    let proxy = ["HTTPS_PROXY", "https_proxy"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()));
    Error::Unreachable {
        loopback: endpoint.as_deref().is_some_and(crate::aws::is_loopback),
        proxy: proxy.filter(|_| endpoint.is_none()),
        endpoint,
        origin: if from_env {
            "`AWS_ENDPOINT_URL`"
        } else {
            "the manifest's `endpoint`"
        },
        host: aws_host(operation, &m.region),
    }
}

/// The regional host of the service an operation (`sts:GetCallerIdentity`) belongs to.
fn aws_host(operation: &str, region: &str) -> String {
    let service = operation.split(':').next().unwrap_or(operation);
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    // IAM is global; the others' endpoint prefixes differ from their IAM names here.
    match service {
        "iam" => format!("iam.{suffix}"),
        "ecr" => format!("api.ecr.{region}.{suffix}"),
        "cloudwatch" => format!("monitoring.{region}.{suffix}"),
        other => format!("{other}.{region}.{suffix}"),
    }
}

/// The profile the SDK reads (`AWS_PROFILE`, else `default`).
fn profile() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".into())
}

fn home_file(var: &str, under_home: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(under_home),
    }
}

/// Whether `profile` in the AWS config file signs in with SSO (`sso_session` or the
/// older `sso_start_url`): its expired or missing token is fixed by `aws sso login`.
fn is_sso_profile(profile: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(home_file("AWS_CONFIG_FILE", ".aws/config")) else {
        return false;
    };
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = section.trim();
            inside = name.strip_prefix("profile ").map(str::trim) == Some(profile)
                || (profile == "default" && name == "default");
        } else if inside
            && let Some((key, _)) = line.split_once('=')
            && matches!(key.trim(), "sso_session" | "sso_start_url")
        {
            return true;
        }
    }
    false
}

/// The credential chain this run uses, as `Aws::connect` builds it; `None` when a
/// loopback emulator is used with the fixed test credentials (nothing to load).
async fn credential_chain(
    m: &Manifest,
) -> Option<aws_credential_types::provider::SharedCredentialsProvider> {
    if crate::local::endpoint(m).is_some_and(|e| crate::aws::is_loopback(&e))
        && !crate::aws::has_configured_credentials()
    {
        return None;
    }
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(m.region.clone()))
        .load()
        .await
        .credentials_provider()
}

/// When the credentials cannot be loaded, what is wrong with them.
async fn credentials_failure(m: &Manifest) -> Option<Error> {
    let chain = credential_chain(m).await?;
    let e = chain.provide_credentials().await.err()?;
    Some(from_credentials_error(
        &e,
        &profile(),
        is_sso_profile(&profile()),
    ))
}

/// What a credential chain's error means, by its variant (never its text).
fn from_credentials_error(e: &CredentialsError, profile: &str, sso: bool) -> Error {
    match e {
        CredentialsError::CredentialsNotLoaded(_) => {
            let attempts = std::error::Error::source(e).and_then(|s| {
                s.downcast_ref::<aws_config::meta::ProviderChainError<CredentialsError>>()
            });
            let tried = attempts
                .map(|a| {
                    a.attempts()
                        .iter()
                        .map(|a| source_name(a.name(), profile))
                        .collect()
                })
                .unwrap_or_default();
            Error::NoCredentials { tried }
        }
        CredentialsError::ProviderError(_) if sso && !network_failure(e) => {
            Error::CredentialsExpired {
                from: format!("profile `{profile}`"),
                sso_profile: Some(profile.to_string()),
            }
        }
        other => Error::Credentials(crate::aws::chain(other)),
    }
}

/// Whether a connection failed somewhere under `e` (the SSO portal or STS unreachable).
fn network_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err
            .downcast_ref::<ConnectorError>()
            .is_some_and(|c| c.is_io() || c.is_timeout())
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// The chain's names for its providers (aws-config's default chain), as a user knows them.
fn source_name(provider: &str, profile: &str) -> String {
    match provider {
        "Environment" => "`AWS_ACCESS_KEY_ID`".into(),
        "Profile" => format!(
            "profile `{profile}` in `{}` and `{}`",
            tilde(&home_file("AWS_CONFIG_FILE", ".aws/config")),
            tilde(&home_file(
                "AWS_SHARED_CREDENTIALS_FILE",
                ".aws/credentials"
            ))
        ),
        "WebIdentityToken" => "`AWS_WEB_IDENTITY_TOKEN_FILE`".into(),
        "EcsContainer" => "the ECS container endpoint".into(),
        "Ec2InstanceMetadata" => "EC2 instance metadata".into(),
        other => other.to_string(),
    }
}

/// `path` with the home directory written `~`.
fn tilde(path: &std::path::Path) -> String {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// Where the credentials in use came from, by the features their provider recorded.
fn credentials_origin(c: &aws_credential_types::Credentials, profile: &str) -> String {
    use aws_credential_types::credential_feature::AwsCredentialFeature as F;
    let features = c.get_property::<Vec<F>>().cloned().unwrap_or_default();
    if features.contains(&F::CredentialsEnvVars) {
        "`AWS_ACCESS_KEY_ID`".into()
    } else if features.contains(&F::CredentialsProfile) {
        format!("profile `{profile}`")
    } else if features.contains(&F::CredentialsImds) {
        "EC2 instance metadata".into()
    } else if features.contains(&F::CredentialsHttp) {
        "the ECS container endpoint".into()
    } else {
        "the credential chain".into()
    }
}

/// An access key ID as `aws configure list` shows it: enough to tell keys apart.
fn masked(key: &str) -> String {
    if key.len() > 8 && key.is_ascii() {
        format!("{}…{}", &key[..4], &key[key.len() - 4..])
    } else {
        key.to_string()
    }
}

async fn rejected(m: &Manifest, code: &str) -> Error {
    let profile = profile();
    let loaded = match credential_chain(m).await {
        Some(chain) => chain.provide_credentials().await.ok(),
        None => None,
    };
    match loaded {
        Some(c) => Error::CredentialsRejected {
            key: masked(c.access_key_id()),
            from: credentials_origin(&c, &profile),
            code: code.to_string(),
        },
        None => Error::CredentialsRejected {
            key: "test".into(),
            from: "the fixed test credentials".into(),
            code: code.to_string(),
        },
    }
}

async fn expired(m: &Manifest) -> Error {
    let profile = profile();
    let loaded = match credential_chain(m).await {
        Some(chain) => chain.provide_credentials().await.ok(),
        None => None,
    };
    let from = loaded.map_or_else(
        || "the credential chain".to_string(),
        |c| credentials_origin(&c, &profile),
    );
    let sso = is_sso_profile(&profile) && std::env::var_os("AWS_ACCESS_KEY_ID").is_none();
    Error::CredentialsExpired {
        from,
        sso_profile: sso.then_some(profile),
    }
}

/// Who was refused what: the principal from STS (a call every principal may make), the
/// action from the call, the resource from AWS's message.
async fn denied(m: &Manifest, e: &AwsError) -> Error {
    let aws = crate::aws::Aws::connect(m).await;
    let principal = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .ok()
        .and_then(|me| me.arn);
    Error::Denied {
        principal,
        action: e.operation.to_string(),
        resource: denied_resource(&e.message),
        code: e.code.clone().unwrap_or_default(),
    }
}

/// The resource AWS names in an access-denied message (`… is not authorized to perform:
/// ecs:CreateCluster on resource: arn:aws:ecs:… because …`). Read from the text because
/// no field carries it; the code already said what happened, this only adds the name.
fn denied_resource(message: &str) -> Option<String> {
    let (_, rest) = message.split_once(" on resource: ")?;
    let resource = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    (!resource.is_empty()).then(|| resource.to_string())
}

/// The manifest's registry, when it is in use and nothing accepts a connection there.
fn registry_down(m: &Manifest) -> Option<Error> {
    use std::net::{TcpStream, ToSocketAddrs};
    let host = m
        .image
        .registry
        .as_deref()
        .filter(|_| m.image.uri.is_none())?;
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:443")
    };
    let answers = with_port.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok())
    });
    (!answers).then(|| Error::RegistryDown {
        host: host.to_string(),
        loopback: crate::aws::is_loopback(host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(kind: Kind) -> Error {
        Error::Aws(AwsError {
            kind,
            ..AwsError::new("ecs:DescribeServices", "m")
        })
    }

    fn failed(classes: &[Class]) -> Error {
        Error::Failed {
            command: "up",
            total: classes.len(),
            skipped: 0,
            causes: classes
                .iter()
                .map(|&class| Cause {
                    id: Id::new(crate::resources::Kind::LogGroup, "/s"),
                    action: Action::Create,
                    error: "logs:CreateLogGroup: m".into(),
                    code: None,
                    hint: None,
                    class,
                })
                .collect(),
        }
    }

    #[test]
    fn each_class_of_error_has_its_exit_code_and_json_code() {
        let usage = Error::Usage {
            message: "m".into(),
            hint: None,
        };
        let not_stored = RegistryError::NotStored {
            name: "r/p:latest".into(),
            stored: None,
            digest: "sha256:a".into(),
        };
        let token = RegistryError::Token(AwsError {
            kind: Kind::Unreachable,
            ..AwsError::new("ecr:GetAuthorizationToken", "m")
        });
        let ort = BuildError::OrtMissing {
            path: "/x".into(),
            origin: "`ORT_DYLIB_PATH`",
        };
        let cases = [
            (usage, 2, "usage"),
            (aws(Kind::Refused), 1, "aws"),
            (aws(Kind::Unreachable), 3, "aws"),
            (aws(Kind::Unsent), 3, "aws"),
            (aws(Kind::TimedOut), 4, "timeout"),
            (aws(Kind::Registry), 5, "aws"),
            (Error::Registry(not_stored), 5, "image"),
            (Error::Registry(token), 3, "image"),
            (Error::Build(ort), 3, "onnx_runtime_missing"),
            (
                Error::Build(BuildError::NoBinary { path: "/x".into() }),
                2,
                "predictor_binary_missing",
            ),
            (
                Error::NoCredentials { tried: Vec::new() },
                3,
                "no_credentials",
            ),
            (Error::Local("m".into()), 3, "local_runtime"),
            (
                Error::RegistryDown {
                    host: "127.0.0.1:5000".into(),
                    loopback: true,
                },
                5,
                "registry_unreachable",
            ),
            (Error::Cancelled, 1, "cancelled"),
        ];
        for (e, exit, code) in cases {
            assert_eq!((e.exit_code(), e.code()), (exit, code), "{e:?}");
        }
    }

    #[test]
    fn failed_changes_exit_with_the_class_their_causes_share() {
        assert_eq!(failed(&[Class::Timeout, Class::Timeout]).exit_code(), 4);
        assert_eq!(failed(&[Class::Registry]).exit_code(), 5);
        assert_eq!(failed(&[Class::Timeout, Class::Registry]).exit_code(), 1);
        assert_eq!(failed(&[Class::Failed, Class::Timeout]).exit_code(), 1);
    }

    #[test]
    fn with_detailed_exitcode_only_the_input_leaves_2_to_the_changes() {
        let usage = Error::Usage {
            message: "m".into(),
            hint: None,
        };
        assert_eq!(usage.detailed_exit_code(), 1);
        assert_eq!(aws(Kind::TimedOut).detailed_exit_code(), 4);
        assert_eq!(aws(Kind::Refused).detailed_exit_code(), 1);
    }

    #[test]
    fn hosts_of_the_services_called() {
        assert_eq!(
            aws_host("sts:GetCallerIdentity", "us-east-1"),
            "sts.us-east-1.amazonaws.com"
        );
        assert_eq!(
            aws_host("ecr:GetAuthorizationToken", "eu-west-1"),
            "api.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(aws_host("iam:GetRole", "eu-west-1"), "iam.amazonaws.com");
        assert_eq!(
            aws_host("s3:HeadBucket", "cn-north-1"),
            "s3.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn the_denied_resource_is_the_one_aws_names() {
        assert_eq!(
            denied_resource(
                "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: \
                 ecs:CreateCluster on resource: arn:aws:ecs:us-east-1:123456789012:cluster/s \
                 because no identity-based policy allows the ecs:CreateCluster action"
            )
            .as_deref(),
            Some("arn:aws:ecs:us-east-1:123456789012:cluster/s")
        );
        assert_eq!(denied_resource("Access Denied"), None);
    }

    #[test]
    fn a_chain_with_nothing_names_every_source_it_tried() {
        let e = CredentialsError::not_loaded("no providers in chain provided credentials");
        assert!(matches!(
            from_credentials_error(&e, "default", false),
            Error::NoCredentials { .. }
        ));
        let e = CredentialsError::provider_error("the SSO token has expired");
        assert!(matches!(
            from_credentials_error(&e, "dev", true),
            Error::CredentialsExpired { sso_profile: Some(p), .. } if p == "dev"
        ));
        assert!(matches!(
            from_credentials_error(&e, "dev", false),
            Error::Credentials(_)
        ));
    }
}
