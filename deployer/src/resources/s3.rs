//! S3 bucket: public access blocked (unless it is the explicitly public output bucket),
//! default encryption, lifecycle expiry of results, tags. `down` empties it first.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Field, Kind, Resource, Tags, tag_diff};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};

/// The lifecycle rule this tool owns on a bucket.
const EXPIRY_RULE: &str = "deployer-expire-results";

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub name: String,
    pub region: String,
    /// Objects readable by anyone (the output bucket, when the manifest says so).
    pub public: bool,
    /// Objects expire after this many days; 0 keeps them.
    pub expire_after_days: u32,
    pub tags: Tags,
}

/// The four public access block switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub access_block: Option<AccessBlock>,
    pub encryption: Option<String>,
    pub expire_after_days: Option<i32>,
    pub policy: Option<Value>,
    pub tags: Tags,
}

impl Bucket {
    fn access_block(&self) -> AccessBlock {
        // A public bucket still refuses ACLs; reads are granted by the bucket policy only.
        AccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: !self.public,
            restrict_public_buckets: !self.public,
        }
    }

    fn policy(&self) -> Option<Value> {
        self.public.then(|| {
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "PublicReadResults",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{}/*", self.name)
            }]})
        })
    }

    fn sdk_tags(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect()
    }

    async fn put_tags(&self, aws: &Aws) -> Result<(), AwsError> {
        let tagging = Tagging::builder()
            .set_tag_set(Some(self.sdk_tags()))
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

    async fn put_access_block(&self, aws: &Aws) -> Result<(), AwsError> {
        let b = self.access_block();
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

    async fn put_encryption(&self, aws: &Aws) -> Result<(), AwsError> {
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

    async fn put_lifecycle(&self, aws: &Aws) -> Result<(), AwsError> {
        let op = "s3:PutBucketLifecycleConfiguration";
        if self.expire_after_days == 0 {
            aws.s3
                .delete_bucket_lifecycle()
                .bucket(&self.name)
                .send()
                .await
                .map_err(error("s3:DeleteBucketLifecycle"))?;
            return Ok(());
        }
        let rule = LifecycleRule::builder()
            .id(EXPIRY_RULE)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(
                LifecycleExpiration::builder()
                    .days(self.expire_after_days as i32)
                    .build(),
            )
            .build()
            .map_err(|e| AwsError::new(op, e.to_string()))?;
        let config = BucketLifecycleConfiguration::builder()
            .rules(rule)
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

    async fn put_policy(&self, aws: &Aws) -> Result<(), AwsError> {
        match self.policy() {
            Some(policy) => {
                aws.s3
                    .put_bucket_policy()
                    .bucket(&self.name)
                    .policy(policy.to_string())
                    .send()
                    .await
                    .map_err(error("s3:PutBucketPolicy"))?;
            }
            None => {
                aws.s3
                    .delete_bucket_policy()
                    .bucket(&self.name)
                    .send()
                    .await
                    .map_err(error("s3:DeleteBucketPolicy"))?;
            }
        }
        Ok(())
    }

    /// Deletes every object, a page (at most 1000) at a time.
    async fn empty(&self, aws: &Aws) -> Result<(), AwsError> {
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

impl Resource for Bucket {
    type Observed = Observed;
    const KIND: Kind = Kind::S3Bucket;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let b = &self.name;
        let exists = aws
            .s3
            .head_bucket()
            .bucket(b)
            .send()
            .await
            .found(Service::S3, "s3:HeadBucket")?;
        if exists.is_none() {
            return Ok(None);
        }
        let tags = aws
            .s3
            .get_bucket_tagging()
            .bucket(b)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketTagging")?
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let access_block = aws
            .s3
            .get_public_access_block()
            .bucket(b)
            .send()
            .await
            .found(Service::S3, "s3:GetPublicAccessBlock")?
            .and_then(|o| o.public_access_block_configuration().cloned())
            .map(|c| AccessBlock {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            });
        let encryption = aws
            .s3
            .get_bucket_encryption()
            .bucket(b)
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
            });
        let expire_after_days = aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(b)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketLifecycleConfiguration")?
            .and_then(|o| {
                let rule = o.rules().iter().find(|r| r.id() == Some(EXPIRY_RULE))?;
                rule.expiration()?.days()
            });
        let policy = aws
            .s3
            .get_bucket_policy()
            .bucket(b)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketPolicy")?
            .and_then(|o| o.policy().and_then(|p| serde_json::from_str(p).ok()));
        Ok(Some(Observed {
            access_block,
            encryption,
            expire_after_days,
            policy,
            tags,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Field> {
        let mut d = Vec::new();
        if o.access_block != Some(self.access_block()) {
            d.push(Field::new(
                "public_access_block",
                o.access_block,
                self.access_block(),
            ));
        }
        if o.encryption.as_deref() != Some("AES256") && o.encryption.as_deref() != Some("aws:kms") {
            d.push(Field::new("encryption", o.encryption.as_ref(), "AES256"));
        }
        let want_days = (self.expire_after_days > 0).then_some(self.expire_after_days as i32);
        if o.expire_after_days != want_days {
            d.push(Field::new(
                "expire_after_days",
                o.expire_after_days,
                want_days,
            ));
        }
        if o.policy != self.policy() {
            d.push(Field::new("policy", o.policy.as_ref(), self.policy()));
        }
        d.extend(tag_diff(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        if observed.is_none() {
            // Tags go in the create call too, so an interrupted `up` never leaves an
            // untagged (and so unowned) bucket behind on AWS.
            let mut config = CreateBucketConfiguration::builder().set_tags(Some(self.sdk_tags()));
            if self.region != "us-east-1" {
                config = config
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()));
            }
            aws.s3
                .create_bucket()
                .bucket(&self.name)
                .create_bucket_configuration(config.build())
                .send()
                .await
                .map_err(error("s3:CreateBucket"))?;
            self.put_tags(aws).await?;
            self.put_access_block(aws).await?;
            self.put_encryption(aws).await?;
            if self.expire_after_days > 0 {
                self.put_lifecycle(aws).await?;
            }
            if self.public {
                self.put_policy(aws).await?;
            }
            return Ok(());
        }
        // Public access block before the policy: a public policy is refused while blocked.
        for field in diff {
            match field.name {
                "tags" => self.put_tags(aws).await?,
                "public_access_block" => self.put_access_block(aws).await?,
                "encryption" => self.put_encryption(aws).await?,
                "expire_after_days" => self.put_lifecycle(aws).await?,
                "policy" => self.put_policy(aws).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &Observed) -> Result<(), AwsError> {
        self.empty(aws).await?;
        aws.s3
            .delete_bucket()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:DeleteBucket")?;
        Ok(())
    }

    fn detail(o: &Observed) -> String {
        let access = match o.access_block {
            Some(b) if b.block_public_policy => "private",
            _ => "public read",
        };
        match o.expire_after_days {
            Some(days) => format!("{access}, objects expire after {days} days"),
            None => access.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(public: bool, days: u32) -> Bucket {
        Bucket {
            name: "s-results".into(),
            region: "us-east-1".into(),
            public,
            expire_after_days: days,
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(b: &Bucket) -> Observed {
        Observed {
            access_block: Some(b.access_block()),
            encryption: Some("AES256".into()),
            expire_after_days: (b.expire_after_days > 0).then_some(b.expire_after_days as i32),
            policy: b.policy(),
            tags: b.tags.clone(),
        }
    }

    #[test]
    fn in_sync_buckets_have_no_diff() {
        for b in [bucket(false, 0), bucket(false, 7), bucket(true, 7)] {
            assert_eq!(b.diff(&in_sync(&b)), [], "{b:?}");
        }
    }

    #[test]
    fn going_public_changes_the_block_and_the_policy_only() {
        let private = bucket(false, 7);
        let public = bucket(true, 7);
        let names: Vec<&str> = public
            .diff(&in_sync(&private))
            .iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["public_access_block", "policy"]);
        assert!(
            private.access_block().block_public_policy
                && !public.access_block().block_public_policy
        );
    }

    #[test]
    fn expiry_and_encryption_drift_are_detected() {
        let b = bucket(false, 7);
        let mut o = in_sync(&b);
        o.expire_after_days = Some(30);
        o.encryption = None;
        let d = b.diff(&o);
        let names: Vec<&str> = d.iter().map(|f| f.name).collect();
        assert_eq!(names, ["encryption", "expire_after_days"]);
        assert_eq!(d[1].to, json!(7));
    }
}
