//! An IAM role: its trust policy (the one service that assumes it), the one inline
//! least-privilege policy [`INLINE_POLICY`] this tool manages, the managed policies AWS
//! requires for some services, and the stack's tags. A role is emptied (policies,
//! instance profiles) before it is deleted.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::PROPAGATION;
use super::policies::{INLINE_POLICY, decode_policy};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::resources::tags::from_sdk;
use crate::resources::tags::to_sdk;
use crate::resources::{Field, Kind, Resource, TagChange, Tags, tag_diff};

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: String,
    /// The AWS service allowed to assume the role (`lambda.amazonaws.com`).
    pub service: String,
    pub policy: Option<Value>,
    pub managed: BTreeSet<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRole {
    pub arn: String,
    pub trust: Value,
    pub policy: Option<Value>,
    pub managed: BTreeSet<String>,
    pub tags: Tags,
}

/// What `up` can change on a role.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Trust {
        from: Value,
        to: Value,
    },
    /// The inline policy [`INLINE_POLICY`]; `None`: none.
    InlinePolicy {
        from: Option<Value>,
        to: Option<Value>,
    },
    /// The ARNs of the attached managed policies.
    ManagedPolicies {
        from: BTreeSet<String>,
        to: BTreeSet<String>,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Trust { from, to } => Field::new("trust_policy", Some(from), to),
            Change::InlinePolicy { from, to } => Field::new("inline_policy", from.as_ref(), to),
            Change::ManagedPolicies { from, to } => Field::new("managed_policies", Some(from), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Role {
    pub fn trust(&self) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": self.service},
            "Action": "sts:AssumeRole"
        }]})
    }
}

impl Resource for Role {
    type Observed = ObservedRole;
    type Change = Change;
    const KIND: Kind = Kind::IamRole;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ObservedRole>, AwsError> {
        let Some(out) = aws
            .iam
            .get_role()
            .role_name(&self.name)
            .send()
            .await
            .found(Service::Iam, "iam:GetRole")?
        else {
            return Ok(None);
        };
        let Some(role) = out.role() else {
            return Ok(None);
        };
        let tags = from_sdk(
            aws.iam
                .list_role_tags()
                .role_name(&self.name)
                .send()
                .await
                .map_err(error("iam:ListRoleTags"))?
                .tags(),
        );
        let policy = aws
            .iam
            .get_role_policy()
            .role_name(&self.name)
            .policy_name(INLINE_POLICY)
            .send()
            .await
            .found(Service::Iam, "iam:GetRolePolicy")?
            .map(|p| decode_policy(p.policy_document()));
        let managed = aws
            .iam
            .list_attached_role_policies()
            .role_name(&self.name)
            .send()
            .await
            .map_err(error("iam:ListAttachedRolePolicies"))?
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect();
        Ok(Some(ObservedRole {
            arn: role.arn().to_string(),
            trust: role
                .assume_role_policy_document()
                .map(decode_policy)
                .unwrap_or(Value::Null),
            policy,
            managed,
            tags,
        }))
    }

    fn tags(observed: &ObservedRole) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &ObservedRole) -> Vec<Change> {
        let mut d = Vec::new();
        let trust = self.trust();
        if o.trust != trust {
            d.push(Change::Trust {
                from: o.trust.clone(),
                to: trust,
            });
        }
        if o.policy != self.policy {
            d.push(Change::InlinePolicy {
                from: o.policy.clone(),
                to: self.policy.clone(),
            });
        }
        if o.managed != self.managed {
            d.push(Change::ManagedPolicies {
                from: o.managed.clone(),
                to: self.managed.clone(),
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ObservedRole>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        if observed.is_none() {
            aws.iam
                .create_role()
                .role_name(&self.name)
                .assume_role_policy_document(self.trust().to_string())
                .description("managed by deployer")
                .set_tags(Some(to_sdk(&self.tags)))
                .send()
                .await
                .map_err(error("iam:CreateRole"))?;
            if let Some(policy) = &self.policy {
                self.put_policy(aws, Some(policy), PROPAGATION).await?;
            }
            return self
                .sync_managed(aws, &BTreeSet::new(), &self.managed, PROPAGATION)
                .await;
        }
        for change in changes {
            match change {
                Change::Trust { to, .. } => {
                    aws.iam
                        .update_assume_role_policy()
                        .role_name(&self.name)
                        .policy_document(to.to_string())
                        .send()
                        .await
                        .map_err(error("iam:UpdateAssumeRolePolicy"))?;
                }
                Change::InlinePolicy { to, .. } => {
                    self.put_policy(aws, to.as_ref(), PROPAGATION).await?
                }
                Change::ManagedPolicies { from, to } => {
                    self.sync_managed(aws, from, to, PROPAGATION).await?
                }
                Change::Tags(_) => {
                    aws.iam
                        .tag_role()
                        .role_name(&self.name)
                        .set_tags(Some(to_sdk(&self.tags)))
                        .send()
                        .await
                        .map_err(error("iam:TagRole"))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &ObservedRole) -> Result<(), AwsError> {
        // A role must be bare before IAM deletes it: no policies, no instance profiles.
        self.detach_all(aws, &o.managed).await?;
        let inline = aws
            .iam
            .list_role_policies()
            .role_name(&self.name)
            .send()
            .await
            .map_err(error("iam:ListRolePolicies"))?;
        for name in inline.policy_names() {
            aws.iam
                .delete_role_policy()
                .role_name(&self.name)
                .policy_name(name)
                .send()
                .await
                .found(Service::Iam, "iam:DeleteRolePolicy")?;
        }
        let profiles = aws
            .iam
            .list_instance_profiles_for_role()
            .role_name(&self.name)
            .send()
            .await
            .map_err(error("iam:ListInstanceProfilesForRole"))?;
        for p in profiles.instance_profiles() {
            aws.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(p.instance_profile_name())
                .role_name(&self.name)
                .send()
                .await
                .found(Service::Iam, "iam:RemoveRoleFromInstanceProfile")?;
        }
        aws.iam
            .delete_role()
            .role_name(&self.name)
            .send()
            .await
            .found(Service::Iam, "iam:DeleteRole")?;
        Ok(())
    }

    fn detail(o: &ObservedRole) -> String {
        o.arn.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn role() -> Role {
        Role {
            name: "s-lambda".into(),
            service: "lambda.amazonaws.com".into(),
            policy: Some(json!({"Version": "2012-10-17", "Statement": []})),
            managed: BTreeSet::new(),
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(r: &Role) -> ObservedRole {
        ObservedRole {
            arn: "arn".into(),
            trust: r.trust(),
            policy: r.policy.clone(),
            managed: r.managed.clone(),
            tags: r.tags.clone(),
        }
    }

    #[test]
    fn role_diff_names_each_drift() {
        let r = role();
        assert_eq!(r.diff(&in_sync(&r)), []);
        let mut o = in_sync(&r);
        o.policy = None;
        o.managed
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
        o.trust = json!({});
        let d = r.diff(&o);
        assert!(
            matches!(
                d[..],
                [
                    Change::Trust { .. },
                    Change::InlinePolicy {
                        from: None,
                        to: Some(_)
                    },
                    Change::ManagedPolicies { .. }
                ]
            ),
            "{d:?}"
        );
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["trust_policy", "inline_policy", "managed_policies"]);
        // A policy attached by hand is detached: `to` is what the manifest asks for.
        assert_eq!(d[2].field().to.to_string(), "[]", "{}", d[2].field());
    }

    #[test]
    fn a_removed_inline_policy_reads_as_none() {
        let mut r = role();
        let o = in_sync(&r);
        r.policy = None;
        let d = r.diff(&o);
        assert!(
            matches!(
                d[..],
                [Change::InlinePolicy {
                    from: Some(_),
                    to: None
                }]
            ),
            "{d:?}"
        );
        assert!(
            d[0].field().to_string().ends_with("→ (none)"),
            "{}",
            d[0].field()
        );
    }
}
