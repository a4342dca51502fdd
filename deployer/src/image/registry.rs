//! Pushing to a registry with its HTTP API: ECR (Basic auth from
//! `GetAuthorizationToken`) or any registry the manifest names. Each blob is checked
//! with HEAD first and uploaded in one request only when missing (ECR's chunked uploads
//! are unreliable); the manifest is PUT last and its digest checked.

use std::time::Instant;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OciDescriptor,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Serialize;

use super::{Built, MANIFEST_TYPE, Size, UNCOMPRESSED_ANNOTATION};
use crate::aws::{Aws, AwsError, error, is_loopback};

/// The environment variables holding credentials for a registry the manifest names
/// (`image.registry`); without them, it is used anonymously.
pub const USER_VAR: &str = "DEPLOYER_REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "DEPLOYER_REGISTRY_PASSWORD";

pub struct Registry {
    /// Also used by the local runtime to pull what was pushed.
    pub(crate) client: Client,
    pub(crate) auth: RegistryAuth,
    /// `host[:port]`
    pub host: String,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pushed {
    /// `host/repository@sha256:…`: what both targets deploy.
    pub reference: String,
    pub digest: String,
    pub tag: String,
    /// Blobs (layers and config) uploaded; the others were already there.
    pub blobs_uploaded: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
    /// Whether the tag already pointed at this digest (nothing was written).
    pub unchanged: bool,
    pub seconds: f64,
}

/// What an image is built for, by OCI architecture names (`amd64`, `arm64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// An image manifest: one architecture.
    Image(String),
    /// An index (a multi-architecture image): the architectures it lists. Lambda runs
    /// single-architecture images only.
    Index(Vec<String>),
}

/// What went wrong with an image registry: its answer (or its silence) to a call, or an
/// answer this tool cannot read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// ECR's authorization token could not be had: an AWS call, with its own kind.
    #[error(transparent)]
    Token(#[from] AwsError),
    /// The registry refused the call or did not answer.
    #[error("{doing}: {source}")]
    Call {
        /// What was asked, with the reference: ``reading `host/repo:tag` ``.
        doing: String,
        #[source]
        source: Box<OciDistributionError>,
    },
    /// The registry answered something that is not what the distribution spec says.
    #[error("{doing}: {reason}")]
    Unreadable { doing: String, reason: String },
    /// The tag points at another image and the registry refused to move it.
    #[error(
        "`{name}` already points at `{other}` and the registry refused to move it to `{digest}`: {source}"
    )]
    Immovable {
        name: String,
        other: String,
        digest: String,
        #[source]
        source: Box<OciDistributionError>,
    },
    /// The push ended with the tag pointing at another image (or none).
    #[error("`{name}` points at {} after the push, not at `{digest}`", .stored.as_deref().map_or("nothing".into(), |s| format!("`{s}`")))]
    NotStored {
        name: String,
        stored: Option<String>,
        digest: String,
    },
}

impl RegistryError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RegistryError::Immovable { .. } => Some(
                "the repository's tags may be immutable: push under another `image.tag`, or make its tags mutable",
            ),
            _ => None,
        }
    }
}

fn call(doing: impl Into<String>) -> impl FnOnce(OciDistributionError) -> RegistryError {
    move |source| RegistryError::Call {
        doing: doing.into(),
        source: Box::new(source),
    }
}

fn unreadable(doing: impl Into<String>) -> impl FnOnce(serde_json::Error) -> RegistryError {
    move |e| RegistryError::Unreadable {
        doing: doing.into(),
        reason: e.to_string(),
    }
}

/// Whether the registry said the manifest or its repository is not there: by the OCI
/// envelope's codes or the HTTP status, never by text (the messages differ: ECR says
/// `Requested image not found` and `The repository with name 'X' does not exist…`,
/// Debian's registry `manifest unknown`).
fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// The registry host and Basic credentials in an ECR authorization token (base64 of
/// `AWS:<password>`) and its proxy endpoint (`https://<account>.dkr.ecr.<region>.amazonaws.com`).
pub fn ecr_credentials(
    token: &str,
    endpoint: &str,
) -> Result<(String, String, String), RegistryError> {
    let bad_token = |reason: String| RegistryError::Unreadable {
        doing: "ecr:GetAuthorizationToken".into(),
        reason,
    };
    let token = aws_smithy_types::base64::decode(token)
        .map_err(|e| bad_token(format!("the token is not base64: {e}")))?;
    let token = String::from_utf8_lossy(&token);
    let (user, password) = token
        .split_once(':')
        .ok_or_else(|| bad_token("the token is not `user:password`".into()))?;
    let host = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok((host, user.to_string(), password.to_string()))
}

impl Registry {
    /// A registry at `host` with `auth`; plain HTTP on loopback, HTTPS elsewhere.
    pub fn new(host: &str, auth: RegistryAuth) -> Registry {
        let protocol = if is_loopback(host) {
            ClientProtocol::HttpsExcept(vec![host.to_string()])
        } else {
            ClientProtocol::Https
        };
        Registry {
            client: Client::new(ClientConfig {
                protocol,
                use_monolithic_push: true,
                ..Default::default()
            }),
            auth,
            host: host.to_string(),
        }
    }

    /// The manifest's registry (`image.registry`, credentials from the environment), or
    /// the account's ECR registry with a token from `GetAuthorizationToken`.
    pub async fn connect(aws: &Aws, registry: Option<&str>) -> Result<Registry, RegistryError> {
        if let Some(host) = registry {
            let auth = match (std::env::var(USER_VAR), std::env::var(PASSWORD_VAR)) {
                (Ok(u), Ok(p)) => RegistryAuth::Basic(u, p),
                _ => RegistryAuth::Anonymous,
            };
            return Ok(Registry::new(host, auth));
        }
        let out = aws
            .ecr
            .get_authorization_token()
            .send()
            .await
            .map_err(error("ecr:GetAuthorizationToken"))?;
        let data = crate::aws::created(
            "ecr:GetAuthorizationToken",
            "authorizationData",
            out.authorization_data().first(),
        )?;
        let (host, user, password) = ecr_credentials(
            data.authorization_token().unwrap_or_default(),
            data.proxy_endpoint().unwrap_or_default(),
        )?;
        Ok(Registry::new(&host, RegistryAuth::Basic(user, password)))
    }

    fn tagged(&self, repository: &str, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), repository.to_string(), tag.to_string())
    }

    /// `host/repository@digest`
    pub fn pinned(&self, repository: &str, digest: &str) -> String {
        format!("{}/{repository}@{digest}", self.host)
    }

    /// The digest `tag` points at, if it exists.
    pub async fn digest_of(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<String>, RegistryError> {
        match self
            .client
            .fetch_manifest_digest(&self.tagged(repository, tag), &self.auth)
            .await
        {
            Ok(d) => Ok(Some(d)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(call(format!("reading `{}/{repository}:{tag}`", self.host))(
                e,
            )),
        }
    }

    /// The digest and the compressed and uncompressed size of the image `tag` points at,
    /// from one read of its manifest.
    pub async fn describe(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<(String, Size)>, RegistryError> {
        let pulled = self
            .client
            .pull_manifest_raw(&self.tagged(repository, tag), &self.auth, &[MANIFEST_TYPE])
            .await;
        let doing = format!("reading `{}/{repository}:{tag}`", self.host);
        let (body, digest) = match pulled {
            Ok(found) => found,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(call(doing)(e)),
        };
        let m: serde_json::Value = serde_json::from_slice(&body).map_err(unreadable(doing))?;
        let compressed = m["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain([&m["config"]])
            .filter_map(|d| d["size"].as_u64())
            .sum();
        let uncompressed = m["annotations"][UNCOMPRESSED_ANNOTATION]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(Some((
            digest,
            Size {
                compressed,
                uncompressed,
            },
        )))
    }

    /// What `reference` (`host/repository@sha256:…` or `:tag`) is built for: an image
    /// manifest's config names one architecture, an index lists several. `None` when the
    /// registry has no such image.
    pub async fn platform(&self, reference: &Reference) -> Result<Option<Platform>, RegistryError> {
        let name = reference.whole();
        let pulled = self
            .client
            .pull_manifest_raw(
                reference,
                &self.auth,
                &[
                    MANIFEST_TYPE,
                    IMAGE_MANIFEST_MEDIA_TYPE,
                    OCI_IMAGE_INDEX_MEDIA_TYPE,
                    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
                ],
            )
            .await;
        let body = match pulled {
            Ok((body, _)) => body,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(call(format!("reading `{name}`"))(e)),
        };
        let m: serde_json::Value = serde_json::from_slice(&body).map_err(unreadable(format!(
            "reading the image manifest of `{name}`"
        )))?;
        if let Some(list) = m["manifests"].as_array() {
            return Ok(Some(Platform::Index(
                list.iter()
                    .filter_map(|d| d["platform"]["architecture"].as_str())
                    .map(str::to_string)
                    .collect(),
            )));
        }
        let config = OciDescriptor {
            media_type: m["config"]["mediaType"].as_str().unwrap_or_default().into(),
            digest: m["config"]["digest"].as_str().unwrap_or_default().into(),
            size: m["config"]["size"].as_i64().unwrap_or_default(),
            ..Default::default()
        };
        let mut bytes = Vec::new();
        self.client
            .pull_blob(reference, &config, &mut bytes)
            .await
            .map_err(call(format!("reading the config of `{name}`")))?;
        let config: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(unreadable(format!("reading the image config of `{name}`")))?;
        Ok(Some(Platform::Image(
            config["architecture"]
                .as_str()
                .unwrap_or("amd64")
                .to_string(),
        )))
    }

    /// Pushes `image` as `repository:tag`: missing blobs, then the manifest.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        image: &Built,
    ) -> Result<Pushed, RegistryError> {
        let started = Instant::now();
        let reference = self.tagged(repository, tag);
        let existing = self.digest_of(repository, tag).await?;
        let mut pushed = Pushed {
            reference: self.pinned(repository, &image.digest),
            digest: image.digest.clone(),
            tag: tag.to_string(),
            blobs_uploaded: 0,
            blobs_skipped: 0,
            bytes_uploaded: 0,
            unchanged: existing.as_deref() == Some(image.digest.as_str()),
            seconds: 0.0,
        };
        if pushed.unchanged {
            pushed.blobs_skipped = image.layers.len() + 1;
        } else {
            self.upload_blobs(&reference, image, &mut pushed).await?;
            self.put_manifest(repository, tag, image, existing).await?;
        }
        pushed.seconds = started.elapsed().as_secs_f64();
        Ok(pushed)
    }

    /// Uploads the layers and the config the registry does not have yet.
    async fn upload_blobs(
        &self,
        reference: &Reference,
        image: &Built,
        pushed: &mut Pushed,
    ) -> Result<(), RegistryError> {
        let name = reference.whole();
        let config_digest = super::layer::sha256(&image.config);
        let blobs = image
            .layers
            .iter()
            .map(|l| (l.digest.as_str(), l.gzip.as_slice()))
            .chain([(config_digest.as_str(), image.config.as_slice())]);
        for (digest, bytes) in blobs {
            let exists = self
                .client
                .blob_exists(reference, digest)
                .await
                .map_err(call(format!("checking blob `{digest}` in `{name}`")))?;
            if exists {
                pushed.blobs_skipped += 1;
                continue;
            }
            self.client
                .push_blob(reference, bytes.to_vec(), digest)
                .await
                .map_err(call(format!("uploading blob `{digest}` to `{name}`")))?;
            pushed.blobs_uploaded += 1;
            pushed.bytes_uploaded += bytes.len() as u64;
        }
        Ok(())
    }

    /// Points the tag at the image's manifest, then checks that the registry stored
    /// that digest. `existing` is what the tag pointed at before.
    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        image: &Built,
        existing: Option<String>,
    ) -> Result<(), RegistryError> {
        let reference = self.tagged(repository, tag);
        let name = reference.whole();
        let sent = self
            .client
            .push_manifest_raw(
                &reference,
                image.manifest.clone(),
                http::HeaderValue::from_static(MANIFEST_TYPE),
            )
            .await;
        if let Err(source) = sent {
            return Err(match existing {
                Some(other) => RegistryError::Immovable {
                    name,
                    other,
                    digest: image.digest.clone(),
                    source: Box::new(source),
                },
                None => call(format!("pushing the manifest of `{name}`"))(source),
            });
        }
        let stored = self.digest_of(repository, tag).await?;
        if stored.as_deref() != Some(image.digest.as_str()) {
            return Err(RegistryError::NotStored {
                name,
                stored,
                digest: image.digest.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_tokens_become_basic_credentials_for_the_proxy_host() {
        // base64("AWS:eyJwYXlsb2FkIjoi") as GetAuthorizationToken returns it.
        let token = aws_smithy_types::base64::encode("AWS:eyJwYXlsb2FkIjoi");
        let (host, user, password) = ecr_credentials(
            &token,
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
        )
        .unwrap();
        assert_eq!(host, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(
            (user.as_str(), password.as_str()),
            ("AWS", "eyJwYXlsb2FkIjoi")
        );
        assert!(ecr_credentials("not base64!", "x").is_err());
        assert!(ecr_credentials(&aws_smithy_types::base64::encode("nocolon"), "x").is_err());
    }

    fn registry_error(body: &str) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: serde_json::from_str(body).unwrap(),
            url: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/s-predictor/manifests/latest".into(),
        }
    }

    #[test]
    fn not_found_is_read_from_the_envelope_codes_and_the_status_not_the_text() {
        // ECR's answers: neither message says "unknown" or "404".
        assert!(not_found(&registry_error(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"Requested image not found"}]}"#
        )));
        assert!(not_found(&registry_error(
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 's-predictor' does not exist in the registry with id '123456789012'"}]}"#
        )));
        assert!(not_found(&registry_error(
            r#"{"errors":[{"code":"NOT_FOUND","message":"x"}]}"#
        )));
        assert!(not_found(&OciDistributionError::ServerError {
            code: 404,
            url: "u".into(),
            message: String::new(),
        }));
        // A refusal is an error even when its text mentions what a not-found would.
        assert!(!not_found(&registry_error(
            r#"{"errors":[{"code":"DENIED","message":"manifest unknown: 404"}]}"#
        )));
        assert!(!not_found(&OciDistributionError::GenericError(Some(
            "manifest unknown".into()
        ))));
        assert!(!not_found(&OciDistributionError::ServerError {
            code: 500,
            url: "u".into(),
            message: "name unknown 404".into(),
        }));
    }

    #[test]
    fn only_loopback_registries_are_spoken_to_in_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("123456789012.dkr.ecr.us-east-1.amazonaws.com"));
    }
}
