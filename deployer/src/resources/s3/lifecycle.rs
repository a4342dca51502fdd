//! The lifecycle rule this tool owns on a bucket ([`EXPIRY_RULE`]: objects expire after
//! a number of days). S3 replaces a bucket's whole lifecycle configuration at once, so
//! every other rule is read and written back untouched.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter,
};

use super::Bucket;
use crate::aws::{Aws, AwsError, FoundExt, Service, error};

/// The lifecycle rule this tool owns on a bucket.
const EXPIRY_RULE: &str = "deployer-expire-results";

/// The days after which this tool's rule expires objects, among a bucket's `rules`.
pub(super) fn expiry_of(rules: &[LifecycleRule]) -> Option<i32> {
    let rule = rules.iter().find(|r| r.id() == Some(EXPIRY_RULE))?;
    rule.expiration()?.days()
}

impl Bucket {
    /// The expiry of the rule this tool writes, in days, if the bucket has it.
    pub(super) async fn find_expiry(&self, aws: &Aws) -> Result<Option<i32>, AwsError> {
        Ok(aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketLifecycleConfiguration")?
            .and_then(|o| expiry_of(o.rules())))
    }

    /// The days after which objects expire; `None`: they are kept.
    pub(super) fn expiry(&self) -> Option<i32> {
        (self.expire_after_days > 0).then_some(self.expire_after_days as i32)
    }

    /// Sets this tool's expiry rule to `days` (`None`: removes it) and keeps every other
    /// rule on the bucket.
    pub(super) async fn put_lifecycle(&self, aws: &Aws, days: Option<i32>) -> Result<(), AwsError> {
        let op = "s3:PutBucketLifecycleConfiguration";
        let mut rules: Vec<LifecycleRule> = aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketLifecycleConfiguration")?
            .map(|o| o.rules().to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.id() != Some(EXPIRY_RULE))
            .collect();
        if let Some(days) = days {
            rules.push(
                LifecycleRule::builder()
                    .id(EXPIRY_RULE)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .expiration(LifecycleExpiration::builder().days(days).build())
                    .build()
                    .map_err(|e| AwsError::new(op, e.to_string()))?,
            );
        }
        if rules.is_empty() {
            aws.s3
                .delete_bucket_lifecycle()
                .bucket(&self.name)
                .send()
                .await
                .map_err(error("s3:DeleteBucketLifecycle"))?;
            return Ok(());
        }
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| AwsError::new(op, e.to_string()))?;
        aws.s3
            .put_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(error(op))?;
        Ok(())
    }
}
