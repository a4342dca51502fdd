//! A bucket's settings written whole, each by its own call: the four public access block
//! switches, default encryption, tags.

use aws_sdk_s3::types::{
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tagging,
};
use serde::Serialize;

use super::Bucket;
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::resources::Tags;
use crate::resources::tags::{from_sdk, to_sdk};

/// The four public access block switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// The default encryption this tool sets (S3-managed keys).
pub(super) const ENCRYPTION: &str = "AES256";

/// Whether a bucket's default encryption is one this tool accepts: its own, or KMS keys
/// someone chose.
pub(super) fn encrypted(algorithm: Option<&str>) -> bool {
    matches!(algorithm, Some(ENCRYPTION | "aws:kms"))
}

/// Tags as S3's SDK takes them.
impl Bucket {
    /// The bucket's tags; none when it has no tag set.
    pub(super) async fn find_tags(&self, aws: &Aws) -> Result<Tags, AwsError> {
        Ok(aws
            .s3
            .get_bucket_tagging()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketTagging")?
            .map(|t| from_sdk(t.tag_set()))
            .unwrap_or_default())
    }

    /// The bucket's public access block; `None` when it has none.
    pub(super) async fn find_access_block(
        &self,
        aws: &Aws,
    ) -> Result<Option<AccessBlock>, AwsError> {
        Ok(aws
            .s3
            .get_public_access_block()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:GetPublicAccessBlock")?
            .and_then(|o| o.public_access_block_configuration().cloned())
            .map(|c| AccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }))
    }

    /// The algorithm of the bucket's default encryption, if it has one.
    pub(super) async fn find_encryption(&self, aws: &Aws) -> Result<Option<String>, AwsError> {
        Ok(aws
            .s3
            .get_bucket_encryption()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketEncryption")?
            .and_then(|o| {
                let rule = o
                    .server_side_encryption_configuration()?
                    .rules()
                    .first()?
                    .clone();
                Some(
                    rule.apply_server_side_encryption_by_default()?
                        .sse_algorithm()
                        .as_str()
                        .to_string(),
                )
            }))
    }

    pub(super) fn access_block(&self) -> AccessBlock {
        // A public bucket still refuses ACLs; reads are granted by the bucket policy only.
        AccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: !self.public,
            restrict_public_buckets: !self.public,
        }
    }

    /// Replaces the bucket's whole tag set with `tags` (S3 has no call that adds one).
    pub(super) async fn put_tags(&self, aws: &Aws, tags: &Tags) -> Result<(), AwsError> {
        let tagging = Tagging::builder()
            .set_tag_set(Some(to_sdk(tags)))
            .build()
            .map_err(|e| AwsError::new("s3:PutBucketTagging", e.to_string()))?;
        aws.s3
            .put_bucket_tagging()
            .bucket(&self.name)
            .tagging(tagging)
            .send()
            .await
            .map_err(error("s3:PutBucketTagging"))?;
        Ok(())
    }

    pub(super) async fn put_access_block(&self, aws: &Aws, b: AccessBlock) -> Result<(), AwsError> {
        let config = PublicAccessBlockConfiguration::builder()
            .block_public_acls(b.block_public_acls)
            .ignore_public_acls(b.ignore_public_acls)
            .block_public_policy(b.block_public_policy)
            .restrict_public_buckets(b.restrict_public_buckets)
            .build();
        aws.s3
            .put_public_access_block()
            .bucket(&self.name)
            .public_access_block_configuration(config)
            .send()
            .await
            .map_err(error("s3:PutPublicAccessBlock"))?;
        Ok(())
    }

    pub(super) async fn put_encryption(&self, aws: &Aws) -> Result<(), AwsError> {
        let op = "s3:PutBucketEncryption";
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .map_err(|e| AwsError::new(op, e.to_string()))?;
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .map_err(|e| AwsError::new(op, e.to_string()))?;
        aws.s3
            .put_bucket_encryption()
            .bucket(&self.name)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(error(op))?;
        Ok(())
    }
}
