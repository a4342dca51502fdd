//! What a bucket holds: its objects, deleted a page at a time when `down` empties or
//! deletes it.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::Bucket;
use crate::aws::{Aws, AwsError, error};

impl Bucket {
    /// Whether the bucket holds any object.
    pub(super) async fn has_objects(&self, aws: &Aws) -> Result<bool, AwsError> {
        Ok(!aws
            .s3
            .list_objects_v2()
            .bucket(&self.name)
            .max_keys(1)
            .send()
            .await
            .map_err(error("s3:ListObjectsV2"))?
            .contents()
            .is_empty())
    }

    /// Deletes every object, a page (at most 1000) at a time.
    pub(super) async fn delete_objects(&self, aws: &Aws) -> Result<(), AwsError> {
        loop {
            let page = aws
                .s3
                .list_objects_v2()
                .bucket(&self.name)
                .send()
                .await
                .map_err(error("s3:ListObjectsV2"))?;
            let ids: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            if ids.is_empty() {
                return Ok(());
            }
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| AwsError::new("s3:DeleteObjects", e.to_string()))?;
            aws.s3
                .delete_objects()
                .bucket(&self.name)
                .delete(delete)
                .send()
                .await
                .map_err(error("s3:DeleteObjects"))?;
        }
    }
}
