//! The predictor image in the stack's repository, as a resource: observed by asking
//! the registry what the tag points at, "created" or "updated" by pushing the image
//! built for this run. Pushing is a step of the plan, after the repository exists and
//! before the targets that run the image, so a rebuild with no source change is no
//! change at all. It is deleted with its repository.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::{Field, Id, Kind, Resource, Tags};
use crate::aws::{Aws, AwsError};
use crate::image::registry::Registry;
use crate::image::{Built, Size};

pub struct Image {
    /// `repository:tag`
    pub name: String,
    pub repository: String,
    pub tag: String,
    /// A registry that is not the account's ECR (`image.registry`).
    pub registry: Option<String>,
    /// The image built for this run; `None` when only looking (`plan`, `status`).
    pub built: Option<Arc<Built>>,
    /// The stack's tags: an image in the stack's repository is the stack's.
    pub tags: Tags,
    pub client: Arc<OnceCell<Registry>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub digest: String,
    pub size: Size,
    pub tags: Tags,
}

impl Image {
    async fn registry(&self, aws: &Aws) -> Result<&Registry, AwsError> {
        self.client
            .get_or_try_init(|| Registry::connect(aws, self.registry.as_deref()))
            .await
            .map_err(|e| AwsError::registry("registry:Connect", e))
    }
}

/// What `up` can change on the image: the digest the tag points at (by pushing).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Digest { from: String, to: String },
}

impl super::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Digest { from, to } => Field::new("digest", Some(from), to),
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Resource for Image {
    type Observed = Observed;
    type Change = Change;
    const KIND: Kind = Kind::Image;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        if self.registry.is_some() {
            Vec::new()
        } else {
            vec![Id::new(Kind::EcrRepository, &self.repository)]
        }
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let found = self
            .registry(aws)
            .await?
            .describe(&self.repository, &self.tag)
            .await
            .map_err(|e| AwsError::registry("registry:GetManifest", e))?;
        Ok(found.map(|(digest, size)| Observed {
            digest,
            size,
            tags: self.tags.clone(),
        }))
    }

    fn tags(o: &Observed) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Change> {
        match &self.built {
            Some(b) if b.digest != o.digest => vec![Change::Digest {
                from: o.digest.clone(),
                to: b.digest.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// Creating and changing the digest are one thing: pushing the image built.
    async fn apply(&self, aws: &Aws, _: Option<&Observed>, _: &[Change]) -> Result<(), AwsError> {
        let Some(built) = &self.built else {
            return Err(AwsError::new(
                "registry:Push",
                "no image was built in this run",
            ));
        };
        let pushed = self
            .registry(aws)
            .await?
            .push(&self.repository, &self.tag, built)
            .await
            .map_err(|e| AwsError::registry("registry:Push", e))?;
        tracing::info!(
            reference = pushed.reference,
            uploaded = pushed.blobs_uploaded,
            skipped = pushed.blobs_skipped,
            "pushed"
        );
        Ok(())
    }

    async fn delete(&self, _: &Aws, _: &Observed) -> Result<(), AwsError> {
        // The repository's deletion takes its images (and a registry of one's own is not
        // the stack's to clean).
        Ok(())
    }

    fn detail(o: &Observed) -> String {
        let s = o.size;
        if s.uncompressed > 0 {
            format!(
                "{}, {} compressed, {} uncompressed",
                o.digest,
                megabytes(s.compressed),
                megabytes(s.uncompressed)
            )
        } else {
            // An image another tool pushed carries no uncompressed-size annotation.
            format!("{}, {} compressed", o.digest, megabytes(s.compressed))
        }
    }
}
