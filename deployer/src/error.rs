//! The errors a command ends with, and the exit code of each class.

use crate::aws::AwsError;
use crate::manifest::ManifestError;
use crate::resources::Id;

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
    /// Building or pushing the image.
    #[error("image: {0}")]
    Image(String),
    #[error("{} exist without the tag `deployer:stack = {stack}`; refusing to modify them", list(.ids))]
    Foreign { stack: String, ids: Vec<Id> },
    #[error("{failed} of {total} changes failed")]
    Failed { failed: usize, total: usize },
    #[error("cancelled: nothing was changed")]
    Cancelled,
    /// The local runtime could not start or serve.
    #[error("local runtime: {0}")]
    Local(String),
    /// Nothing answered at the endpoint the calls go to.
    #[error("{}", unreachable_message(.endpoint.as_deref(), .origin, .region))]
    Unreachable {
        endpoint: Option<String>,
        /// Where the endpoint came from: `AWS_ENDPOINT_URL` or the manifest.
        origin: &'static str,
        region: String,
        loopback: bool,
    },
}

fn unreachable_message(endpoint: Option<&str>, origin: &str, region: &str) -> String {
    match endpoint {
        Some(e) => format!("nothing answers at `{e}` ({origin})"),
        None => format!("could not reach AWS in `{region}`"),
    }
}

impl Error {
    /// An AWS error that never reached an endpoint, told as that (the endpoint and
    /// where it came from), whatever call met it first.
    pub fn explained(self, m: &crate::manifest::Manifest) -> Error {
        match self {
            Error::Aws(e) if e.unreachable => {
                let from_env = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty());
                let endpoint = crate::local::endpoint(m);
                Error::Unreachable {
                    loopback: endpoint.as_deref().is_some_and(crate::aws::is_loopback),
                    endpoint,
                    origin: if from_env {
                        "`AWS_ENDPOINT_URL`"
                    } else {
                        "the manifest's `endpoint`"
                    },
                    region: m.region.clone(),
                }
            }
            other => other,
        }
    }
}

fn list(ids: &[Id]) -> String {
    ids.iter().map(Id::to_string).collect::<Vec<_>>().join(", ")
}

impl Error {
    /// 2: the input is wrong (manifest, arguments); 1: anything that happened in AWS.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Manifest(_) | Error::Usage { .. } => 2,
            Error::Aws(_)
            | Error::Image(_)
            | Error::Foreign { .. }
            | Error::Failed { .. }
            | Error::Cancelled
            | Error::Local(_)
            | Error::Unreachable { .. } => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::Aws(AwsError { hint: Some(h), .. }) => Some(h.clone()),
            Error::Aws(e) if e.code.as_deref().is_some_and(|c| c.contains("Credential") || c == "InvalidClientTokenId") => {
                Some("check the AWS credentials in the environment or profile (`aws sts get-caller-identity`)".into())
            }
            Error::Unreachable { loopback: true, .. } => Some(
                "start the local emulator and registry: `scripts/local-stack.sh start`".into(),
            ),
            Error::Unreachable { .. } => Some(
                "check the network and any proxy (`HTTPS_PROXY`), or the endpoint in `AWS_ENDPOINT_URL` / `endpoint`"
                    .into(),
            ),
            Error::Foreign { .. } => Some(
                "if they are this stack's (an `up` interrupted on an endpoint that ignores tags at creation), \
                 claim them with `deployer up --adopt`; otherwise rename the stack"
                    .into(),
            ),
            _ => None,
        }
    }
}
