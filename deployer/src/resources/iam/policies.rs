//! A role's policies: the one inline policy this tool owns ([`INLINE_POLICY`]), the
//! managed policies it attaches, and policy documents as IAM returns them. Writes that
//! name a role created moments ago are retried while IAM propagates.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::{FIRST_RETRY, Role, not_yet_visible};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::wait;

/// The name of the one inline policy this tool manages on each role.
pub const INLINE_POLICY: &str = "deployer";

impl Role {
    /// Puts `policy` as the inline policy (or removes it); a role created moments ago is
    /// waited for up to `propagation`.
    pub(super) async fn put_policy(
        &self,
        aws: &Aws,
        policy: Option<&Value>,
        propagation: Duration,
    ) -> Result<(), AwsError> {
        match policy {
            Some(p) => {
                wait::retrying(
                    "iam:PutRolePolicy",
                    propagation,
                    FIRST_RETRY,
                    || async {
                        aws.iam
                            .put_role_policy()
                            .role_name(&self.name)
                            .policy_name(INLINE_POLICY)
                            .policy_document(p.to_string())
                            .send()
                            .await
                            .map_err(error("iam:PutRolePolicy"))
                    },
                    not_yet_visible,
                )
                .await?;
            }
            None => {
                aws.iam
                    .delete_role_policy()
                    .role_name(&self.name)
                    .policy_name(INLINE_POLICY)
                    .send()
                    .await
                    .found(Service::Iam, "iam:DeleteRolePolicy")?;
            }
        }
        Ok(())
    }

    /// Attaches what `want` has and `have` lacks, detaches the reverse; a role created
    /// moments ago is waited for up to `propagation`. (Only AWS's own policies are
    /// attached, which exist: a `NoSuchEntity` here is the role.)
    pub(super) async fn sync_managed(
        &self,
        aws: &Aws,
        have: &BTreeSet<String>,
        want: &BTreeSet<String>,
        propagation: Duration,
    ) -> Result<(), AwsError> {
        for arn in want.difference(have) {
            wait::retrying(
                "iam:AttachRolePolicy",
                propagation,
                FIRST_RETRY,
                || async {
                    aws.iam
                        .attach_role_policy()
                        .role_name(&self.name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(error("iam:AttachRolePolicy"))
                },
                not_yet_visible,
            )
            .await?;
        }
        for arn in have.difference(want) {
            aws.iam
                .detach_role_policy()
                .role_name(&self.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(error("iam:DetachRolePolicy"))?;
        }
        Ok(())
    }

    /// Detaches every managed policy in `have` (already detached = success).
    pub(super) async fn detach_all(
        &self,
        aws: &Aws,
        have: &BTreeSet<String>,
    ) -> Result<(), AwsError> {
        for arn in have {
            aws.iam
                .detach_role_policy()
                .role_name(&self.name)
                .policy_arn(arn)
                .send()
                .await
                .found(Service::Iam, "iam:DetachRolePolicy")?;
        }
        Ok(())
    }
}

/// IAM returns policy documents URL-encoded.
pub(super) fn decode_policy(raw: &str) -> Value {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex: Vec<u8> = it.by_ref().take(2).collect();
            match std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => bytes.push(v),
                None => bytes.extend(std::iter::once(b'%').chain(hex)),
            }
        } else {
            bytes.push(b);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(raw))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_url_encoded_policy_documents() {
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode_policy(raw),
            json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(decode_policy("{\"a\": 1}"), json!({"a": 1}));
    }
}
