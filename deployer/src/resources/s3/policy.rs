//! The bucket policy of a public bucket: anyone may read its objects (the output bucket,
//! when the manifest says so). The public access block must allow it first.

use serde_json::{Value, json};

use super::Bucket;
use crate::aws::{Aws, AwsError, error};

impl Bucket {
    /// The policy the bucket should have; `None`: none.
    pub(super) fn policy(&self) -> Option<Value> {
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

    /// Puts `policy` as the bucket policy, or deletes the bucket policy.
    pub(super) async fn put_policy(
        &self,
        aws: &Aws,
        policy: Option<&Value>,
    ) -> Result<(), AwsError> {
        match policy {
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
}

#[cfg(test)]
mod tests {
    use super::super::replay::bucket;

    #[test]
    fn the_public_policy_names_the_accounts_partition() {
        let mut b = bucket(true, 0);
        b.partition = "aws-cn".into();
        assert_eq!(
            b.policy().unwrap()["Statement"][0]["Resource"],
            "arn:aws-cn:s3:::s-results/*"
        );
    }
}
