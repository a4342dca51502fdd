//! The bucket policy's one statement this tool owns ([`PUBLIC_READ`]): anyone may read
//! the objects of a public bucket (the output bucket, when the manifest says so). Other
//! statements in the policy are someone else's and kept; the policy is deleted only when
//! nothing else is left in it. The public access block must allow a public policy first.

use serde_json::{Value, json};

use super::Bucket;
use crate::aws::{Aws, AwsError, FoundExt, Service, error};

/// The `Sid` of the statement this tool owns in a bucket policy.
const PUBLIC_READ: &str = "PublicReadResults";

impl Bucket {
    /// The bucket's policy document; `None` when it has none.
    pub(super) async fn find_policy(&self, aws: &Aws) -> Result<Option<Value>, AwsError> {
        Ok(aws
            .s3
            .get_bucket_policy()
            .bucket(&self.name)
            .send()
            .await
            .found(Service::S3, "s3:GetBucketPolicy")?
            .and_then(|o| o.policy().and_then(|p| serde_json::from_str(p).ok())))
    }

    /// The statement that lets anyone read the objects.
    fn public_read(&self) -> Value {
        json!({
            "Sid": PUBLIC_READ,
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:{}:s3:::{}/*", self.partition, self.name)
        })
    }

    /// The policy the bucket should have, given the one it has (`have`): its other
    /// statements as they are, this tool's statement in place when the bucket is public
    /// and gone when it is not; `None`: no policy at all.
    pub(super) fn policy(&self, have: Option<&Value>) -> Option<Value> {
        let mut doc = have
            .filter(|d| d.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"Version": "2012-10-17"}));
        let mut statements = match doc.get("Statement") {
            Some(Value::Array(all)) => all.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let ours = statements.iter().position(|s| s["Sid"] == PUBLIC_READ);
        match (ours, self.public) {
            (Some(i), true) => statements[i] = self.public_read(),
            (None, true) => statements.push(self.public_read()),
            (Some(i), false) => {
                statements.remove(i);
            }
            (None, false) => {}
        }
        if statements.is_empty() {
            return None;
        }
        doc["Statement"] = Value::Array(statements);
        Some(doc)
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
    use super::super::replay::{bucket, in_sync};
    use super::super::{Change, Resource};
    use super::*;

    #[test]
    fn the_public_policy_names_the_accounts_partition() {
        let mut b = bucket(true, 0);
        b.partition = "aws-cn".into();
        assert_eq!(
            b.policy(None).unwrap(),
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "PublicReadResults",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws-cn:s3:::s-results/*"
            }]})
        );
    }

    /// A statement someone else put in the bucket policy (an organisation's TLS rule).
    fn tls_only() -> Value {
        json!({
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::s-results/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        })
    }

    #[test]
    fn someone_elses_statements_are_not_drift_and_are_kept() {
        let private = bucket(false, 7);
        let mut o = in_sync(&private);
        o.policy = Some(json!({"Version": "2012-10-17", "Statement": [tls_only()]}));
        assert_eq!(private.diff(&o), []);

        // Going public adds this tool's statement after theirs.
        let public = bucket(true, 7);
        let d = public.diff(&o);
        let Some(Change::Policy { to: Some(to), .. }) = d.last() else {
            panic!("{d:?}")
        };
        assert_eq!(to["Statement"], json!([tls_only(), public.public_read()]));

        // Going private again removes only this tool's statement.
        let o = in_sync(&public);
        let mut both = o.clone();
        both.policy = Some(to.clone());
        let d = private.diff(&both);
        assert!(
            matches!(&d[..], [Change::AccessBlock { .. }, Change::Policy { to: Some(p), .. }]
                if p["Statement"] == json!([tls_only()])),
            "{d:?}"
        );
        // With nothing else in it, the policy goes.
        let d = private.diff(&o);
        assert!(
            matches!(
                d[..],
                [Change::AccessBlock { .. }, Change::Policy { to: None, .. }]
            ),
            "{d:?}"
        );
    }
}
