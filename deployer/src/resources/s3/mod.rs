//! S3 bucket: public access blocked (unless it is the explicitly public output bucket),
//! default encryption, lifecycle expiry of results, tags. `down` empties it and keeps it
//! (AWS keeps a deleted bucket's name from being re-created for hours, and anyone may
//! take it meanwhile); `down --delete-buckets` deletes it.
//!
//! The bucket is this file; its settings are written by `settings` (access block,
//! encryption, tags), `policy` (the public-read policy) and `lifecycle` (the expiry
//! rule), its objects deleted by `objects`; `name` explains the answers S3 gives about
//! a name that is not ours; `replay` holds the tests that replay `apply`'s requests.

mod lifecycle;
mod name;
mod objects;
mod policy;
#[cfg(test)]
mod replay;
mod settings;

#[allow(unused_imports)]
pub use self::settings::AccessBlock;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use serde_json::Value;

use self::settings::{ENCRYPTION, encrypted};
use super::{Field, Kind, Resource, TagChange, Tags, tag_diff};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::manifest::OWNER_TAG;
use crate::resources::tags::to_sdk;

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub name: String,
    /// The manifest setting that names it (`buckets.input.name`), for hints.
    pub setting: &'static str,
    pub region: String,
    /// The account's partition (`aws`, `aws-cn`, `aws-us-gov`), for the policy's ARNs.
    pub partition: String,
    /// Objects readable by anyone (the output bucket, when the manifest says so).
    pub public: bool,
    /// Objects expire after this many days; 0 keeps them.
    pub expire_after_days: u32,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub access_block: Option<AccessBlock>,
    pub encryption: Option<String>,
    pub expire_after_days: Option<i32>,
    pub policy: Option<Value>,
    pub tags: Tags,
    /// Whether it holds any object.
    pub has_objects: bool,
}

/// What `up` can change on a bucket, in the order `apply` makes them (the public access
/// block before the policy: a public policy is refused while blocked).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    AccessBlock {
        from: Option<AccessBlock>,
        to: AccessBlock,
    },
    /// Default encryption is neither this tool's nor KMS: it becomes this tool's.
    Encryption {
        from: Option<String>,
    },
    /// The days after which this tool's lifecycle rule expires objects; `None`: no rule.
    Expiry {
        from: Option<i32>,
        to: Option<i32>,
    },
    /// The whole bucket policy, this tool's statement put in or taken out; `None`: none.
    Policy {
        from: Option<Value>,
        to: Option<Value>,
    },
    Tags(TagChange),
}

impl super::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::AccessBlock { from, to } => Field::new("public_access_block", *from, to),
            Change::Encryption { from } => Field::new("encryption", from.as_ref(), ENCRYPTION),
            Change::Expiry { from, to } => Field::new("expire_after_days", *from, to),
            Change::Policy { from, to } => Field::new("policy", from.as_ref(), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Resource for Bucket {
    type Observed = Observed;
    type Change = Change;
    const KIND: Kind = Kind::S3Bucket;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let b = &self.name;
        if !self.head_bucket(aws.s3.head_bucket().bucket(b).send().await)? {
            return Ok(None);
        }
        Ok(Some(Observed {
            tags: self.find_tags(aws).await?,
            access_block: self.find_access_block(aws).await?,
            encryption: self.find_encryption(aws).await?,
            expire_after_days: self.find_expiry(aws).await?,
            policy: self.find_policy(aws).await?,
            has_objects: self.has_objects(aws).await?,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Change> {
        let mut d = Vec::new();
        let access_block = self.access_block();
        if o.access_block != Some(access_block) {
            d.push(Change::AccessBlock {
                from: o.access_block,
                to: access_block,
            });
        }
        if !encrypted(o.encryption.as_deref()) {
            d.push(Change::Encryption {
                from: o.encryption.clone(),
            });
        }
        if o.expire_after_days != self.expiry() {
            d.push(Change::Expiry {
                from: o.expire_after_days,
                to: self.expiry(),
            });
        }
        let policy = self.policy(o.policy.as_ref());
        if o.policy != policy {
            d.push(Change::Policy {
                from: o.policy.clone(),
                to: policy,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            return self.create(aws).await;
        };
        // In `diff`'s order: the public access block before the policy.
        for change in changes {
            match change {
                Change::AccessBlock { to, .. } => self.put_access_block(aws, *to).await?,
                Change::Encryption { .. } => self.put_encryption(aws).await?,
                Change::Expiry { to, .. } => self.put_lifecycle(aws, *to).await?,
                Change::Policy { to, .. } => self.put_policy(aws, to.as_ref()).await?,
                Change::Tags(t) => {
                    // S3 replaces the whole set: the tags others put on it go back too.
                    let mut tags = o.tags.clone();
                    tags.extend(t.to.clone());
                    self.put_tags(aws, &tags).await?
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &Observed) -> Result<(), AwsError> {
        self.delete_objects(aws).await?;
        aws.s3
            .delete_bucket()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:DeleteBucket")?;
        Ok(())
    }

    fn holds_data(o: &Observed) -> bool {
        o.has_objects
    }

    async fn empty(&self, aws: &Aws, _: &Observed) -> Result<(), AwsError> {
        self.delete_objects(aws).await
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

impl Bucket {
    /// Creates the bucket with every setting.
    async fn create(&self, aws: &Aws) -> Result<(), AwsError> {
        // Tags go in the create call too, so an interrupted `up` never leaves an
        // untagged (and so unowned) bucket behind on AWS.
        let mut config = CreateBucketConfiguration::builder().set_tags(Some(to_sdk(&self.tags)));
        if self.region != "us-east-1" {
            config =
                config.location_constraint(BucketLocationConstraint::from(self.region.as_str()));
        }
        aws.s3
            .create_bucket()
            .bucket(&self.name)
            .create_bucket_configuration(config.build())
            .send()
            .await
            .map_err(|e| self.create_error(e))?;
        self.put_tags(aws, &self.tags).await?;
        self.put_access_block(aws, self.access_block()).await?;
        self.put_encryption(aws).await?;
        if let Some(days) = self.expiry() {
            self.put_lifecycle(aws, Some(days)).await?;
        }
        if let Some(policy) = self.policy(None) {
            self.put_policy(aws, Some(&policy)).await?;
        }
        Ok(())
    }
}

/// The names of the buckets in the region that carry `stack`'s ownership tag, for the
/// stack's inventory (a bucket the manifest renamed is still the stack's): one question
/// to the Resource Groups Tagging API rather than every bucket's tags.
pub async fn owned(aws: &Aws, stack: &str) -> Result<Vec<String>, AwsError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let mut names = Vec::new();
    let mut pages = aws
        .tagging
        .get_resources()
        .tag_filters(TagFilter::builder().key(OWNER_TAG).values(stack).build())
        .resource_type_filters("s3:bucket")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(error("tag:GetResources"))?;
        for r in page.resource_tag_mapping_list() {
            // `arn:<partition>:s3:::<name>`
            if let Some((_, name)) = r.resource_arn().and_then(|a| a.split_once(":::")) {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::replay::{bucket, in_sync};
    use super::*;
    use crate::resources::Change as _;

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
        let d = public.diff(&in_sync(&private));
        assert!(
            matches!(
                d[..],
                [
                    Change::AccessBlock { .. },
                    Change::Policy {
                        from: None,
                        to: Some(_)
                    }
                ]
            ),
            "{d:?}"
        );
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
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
        assert_eq!(
            d,
            [
                Change::Encryption { from: None },
                Change::Expiry {
                    from: Some(30),
                    to: Some(7)
                }
            ]
        );
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["encryption", "expire_after_days"]);
        assert_eq!(d[1].field().to, serde_json::json!(7));
        assert_eq!(d[0].field().to_string(), "encryption: (none) → AES256");
        // KMS someone chose is kept.
        o.encryption = Some("aws:kms".into());
        assert!(matches!(b.diff(&o)[..], [Change::Expiry { .. }]));
    }
}
