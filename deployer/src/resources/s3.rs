//! S3 bucket: public access blocked (unless it is the explicitly public output bucket),
//! default encryption, lifecycle expiry of results, tags. `down` empties it and keeps it
//! (AWS keeps a deleted bucket's name from being re-created for hours, and anyone may
//! take it meanwhile); `down --delete-buckets` deletes it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::head_bucket::{HeadBucketError, HeadBucketOutput};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Field, Kind, Resource, Tags, tag_field};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::manifest::OWNER_TAG;

/// The lifecycle rule this tool owns on a bucket.
const EXPIRY_RULE: &str = "deployer-expire-results";

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
    /// Whether it holds any object.
    pub has_objects: bool,
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
                "Resource": format!("arn:{}:s3:::{}/*", self.partition, self.name)
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

    /// Sets this tool's expiry rule and keeps every other rule on the bucket: S3 replaces
    /// a bucket's whole lifecycle configuration at once, so the others are read first.
    async fn put_lifecycle(&self, aws: &Aws) -> Result<(), AwsError> {
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
        if self.expire_after_days > 0 {
            rules.push(
                LifecycleRule::builder()
                    .id(EXPIRY_RULE)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .expiration(
                        LifecycleExpiration::builder()
                            .days(self.expire_after_days as i32)
                            .build(),
                    )
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

    /// The hint for a name that is not ours to use.
    fn rename_hint(&self) -> String {
        format!(
            "bucket names are global across all AWS accounts: set `{}` to another name, or change the stack's `name`",
            self.setting
        )
    }

    /// What `HeadBucket` answered. It has no body, so only its 404 carries a code
    /// (`NotFound`); a 403 (the name is another account's) and a 301 (the bucket is in
    /// another region) arrive as bare statuses, read here.
    fn head_bucket(
        &self,
        answer: Result<HeadBucketOutput, SdkError<HeadBucketError, HttpResponse>>,
    ) -> Result<bool, AwsError> {
        const OP: &str = "s3:HeadBucket";
        let bare = match &answer {
            Err(SdkError::ServiceError(s)) if s.err().code().is_none() => Some(s.raw()),
            _ => None,
        };
        let b = &self.name;
        match bare.map(|r| (r.status().as_u16(), r)) {
            Some((403, _)) => Err(AwsError::new(
                OP,
                format!(
                    "bucket `{b}` exists and belongs to another account (or these credentials may not read it)"
                ),
            )
            .with_hint(self.rename_hint())),
            Some((301, raw)) => {
                let region = raw
                    .headers()
                    .get("x-amz-bucket-region")
                    .unwrap_or("another region");
                Err(AwsError::new(
                    OP,
                    format!(
                        "bucket `{b}` exists in `{region}`, not in the stack's region `{}`",
                        self.region
                    ),
                )
                .with_hint(format!(
                    "{}; if it is this stack's, set `region: {region}`",
                    self.rename_hint()
                )))
            }
            _ => Ok(answer.found(Service::S3, OP)?.is_some()),
        }
    }

    /// `CreateBucket`'s refusals that need explaining.
    fn create_error(&self, e: SdkError<CreateBucketError, HttpResponse>) -> AwsError {
        let b = &self.name;
        let e = error("s3:CreateBucket")(e);
        match e.code.as_deref() {
            Some("OperationAborted") => AwsError {
                message: format!(
                    "bucket `{b}` was deleted recently: AWS keeps a deleted bucket's name from \
                     being re-created for a while (it advises waiting up to 48-72 hours), and \
                     any account may take the name meanwhile ({})",
                    e.message
                ),
                hint: Some(format!(
                    "run `up` again later, or set `{}` to another name; \
                     `down` keeps the buckets (emptied) to avoid this unless given `--delete-buckets`",
                    self.setting
                )),
                ..e
            },
            Some("BucketAlreadyExists") => AwsError {
                message: format!("bucket `{b}` belongs to another account"),
                hint: Some(self.rename_hint()),
                ..e
            },
            _ => e,
        }
    }

    /// Deletes every object, a page (at most 1000) at a time.
    async fn delete_objects(&self, aws: &Aws) -> Result<(), AwsError> {
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

impl Resource for Bucket {
    type Observed = Observed;
    type Change = Field;
    const KIND: Kind = Kind::S3Bucket;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let b = &self.name;
        if !self.head_bucket(aws.s3.head_bucket().bucket(b).send().await)? {
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
        let has_objects = !aws
            .s3
            .list_objects_v2()
            .bucket(b)
            .max_keys(1)
            .send()
            .await
            .map_err(error("s3:ListObjectsV2"))?
            .contents()
            .is_empty();
        Ok(Some(Observed {
            access_block,
            encryption,
            expire_after_days,
            policy,
            tags,
            has_objects,
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
        d.extend(tag_field(&o.tags, &self.tags));
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
                .map_err(|e| self.create_error(e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(public: bool, days: u32) -> Bucket {
        Bucket {
            name: "s-results".into(),
            setting: "buckets.output.name",
            region: "us-east-1".into(),
            partition: "aws".into(),
            public,
            expire_after_days: days,
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    #[test]
    fn the_public_policy_names_the_accounts_partition() {
        let mut b = bucket(true, 0);
        b.partition = "aws-cn".into();
        assert_eq!(
            b.policy().unwrap()["Statement"][0]["Resource"],
            "arn:aws-cn:s3:::s-results/*"
        );
    }

    fn in_sync(b: &Bucket) -> Observed {
        Observed {
            access_block: Some(b.access_block()),
            encryption: Some("AES256".into()),
            expire_after_days: (b.expire_after_days > 0).then_some(b.expire_after_days as i32),
            policy: b.policy(),
            tags: b.tags.clone(),
            has_objects: false,
        }
    }

    /// A loopback endpoint answering every request with `response`: what AWS says and
    /// moto never does, parsed by the SDK itself.
    fn canned(response: &'static str) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = reader.get_mut().write_all(response.as_bytes());
            }
        });
        endpoint
    }

    async fn aws(endpoint: &str) -> Aws {
        let manifest = crate::manifest::Manifest::parse(
            "t.yaml".as_ref(),
            &format!("name: t\nregion: us-east-1\nendpoint: {endpoint}\n"),
        )
        .unwrap();
        Aws::connect(&manifest).await
    }

    #[tokio::test]
    async fn head_bucket_403_and_301_name_the_bucket_and_what_to_do() {
        let b = bucket(false, 0);
        let taken = aws(&canned(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ))
        .await;
        let e = b.find(&taken).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "s3:HeadBucket: bucket `s-results` exists and belongs to another account \
             (or these credentials may not read it)"
        );
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("set `buckets.output.name`"),
            "{e:?}"
        );

        let elsewhere = aws(&canned(
            "HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: eu-west-1\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
        ))
        .await;
        let e = b.find(&elsewhere).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "s3:HeadBucket: bucket `s-results` exists in `eu-west-1`, not in the stack's region `us-east-1`"
        );
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("set `region: eu-west-1`"),
            "{e:?}"
        );

        // 404 is still "absent", not an error.
        let absent = aws(&canned(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ))
        .await;
        assert_eq!(b.find(&absent).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_recently_deleted_bucket_name_is_explained() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>OperationAborted</Code>\
            <Message>A conflicting conditional operation is currently in progress against this resource. \
            Please try again.</Message><BucketName>s-results</BucketName><RequestId>R</RequestId>\
            <HostId>H</HostId></Error>";
        let response = format!(
            "HTTP/1.1 409 Conflict\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let aws = aws(&canned(response.leak())).await;
        let e = bucket(false, 0).apply(&aws, None, &[]).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("OperationAborted"));
        assert!(
            e.message
                .starts_with("bucket `s-results` was deleted recently")
                && e.message.contains("48-72 hours")
                && e.message.contains("any account may take the name"),
            "{e}"
        );
        assert!(
            e.hint.as_deref().unwrap().contains("--delete-buckets"),
            "{e:?}"
        );
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
