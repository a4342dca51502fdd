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
            | Error::Local(_) => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::Aws(AwsError { hint: Some(h), .. }) => Some(h.clone()),
            Error::Aws(e) if e.code.as_deref().is_some_and(|c| c.contains("Credential") || c == "InvalidClientTokenId") => {
                Some("check the AWS credentials in the environment or profile (`aws sts get-caller-identity`)".into())
            }
            Error::Aws(e) if e.code.is_none() && e.message.contains("dispatch failure") => {
                Some("could not reach the AWS endpoint: check the network, or AWS_ENDPOINT_URL / `endpoint`".into())
            }
            Error::Foreign { .. } => Some(
                "if they are this stack's (an `up` interrupted on an endpoint that ignores tags at creation), \
                 claim them with `deployer up --adopt`; otherwise rename the stack"
                    .into(),
            ),
            _ => None,
        }
    }
}
