//! IAM roles (trust policy, one inline least-privilege policy, managed policies where
//! AWS requires them) and the EC2 instance profile; and the account's service-linked
//! roles, which are AWS's, not the stack's: created when missing, never tagged or
//! deleted.
//!
//! IAM is eventually consistent: a role or profile created moments ago may answer
//! `NoSuchEntity` to the next call that names it (IAM User Guide, "changes I make are not
//! always immediately visible"; terraform-provider-aws PR #6079). Those calls are retried
//! for [`PROPAGATION`].

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

use super::{Field, Id, Kind, Resource, Tags, tag_field};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::wait;

/// How long a new role or instance profile may take to be visible everywhere (usually
/// seconds; AWS names no bound, eksctl saw ~30 s).
pub const PROPAGATION: Duration = Duration::from_secs(120);
/// The first pause between two tries while IAM propagates.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Whether IAM answered that a role or profile it just created does not exist yet.
/// `NoSuchEntity` is IAM's own code for it: no message check.
pub fn not_yet_visible(e: &AwsError) -> bool {
    e.code.as_deref() == Some("NoSuchEntity")
}

/// The name of the one inline policy this tool manages on each role.
pub const INLINE_POLICY: &str = "deployer";

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

/// IAM returns policy documents URL-encoded.
fn decode_policy(raw: &str) -> Value {
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

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

impl Role {
    pub fn trust(&self) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": self.service},
            "Action": "sts:AssumeRole"
        }]})
    }

    /// Puts (or removes) the inline policy; a role created moments ago is waited for up
    /// to `propagation`.
    async fn put_policy(&self, aws: &Aws, propagation: Duration) -> Result<(), AwsError> {
        match &self.policy {
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

    /// Attaches and detaches managed policies; a role created moments ago is waited for
    /// up to `propagation`. (Only AWS's own policies are attached, which exist: a
    /// `NoSuchEntity` here is the role.)
    async fn sync_managed(
        &self,
        aws: &Aws,
        have: &BTreeSet<String>,
        propagation: Duration,
    ) -> Result<(), AwsError> {
        for arn in self.managed.difference(have) {
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
        for arn in have.difference(&self.managed) {
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
}

impl Resource for Role {
    type Observed = ObservedRole;
    type Change = Field;
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
        let tags = aws
            .iam
            .list_role_tags()
            .role_name(&self.name)
            .send()
            .await
            .map_err(error("iam:ListRoleTags"))?
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
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

    fn diff(&self, o: &ObservedRole) -> Vec<Field> {
        let mut d = Vec::new();
        if o.trust != self.trust() {
            d.push(Field::new("trust_policy", Some(&o.trust), self.trust()));
        }
        if o.policy != self.policy {
            d.push(Field::new("inline_policy", o.policy.as_ref(), &self.policy));
        }
        if o.managed != self.managed {
            d.push(Field::new(
                "managed_policies",
                Some(&o.managed),
                &self.managed,
            ));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ObservedRole>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            aws.iam
                .create_role()
                .role_name(&self.name)
                .assume_role_policy_document(self.trust().to_string())
                .description("managed by deployer")
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(error("iam:CreateRole"))?;
            if self.policy.is_some() {
                self.put_policy(aws, PROPAGATION).await?;
            }
            return self.sync_managed(aws, &BTreeSet::new(), PROPAGATION).await;
        };
        for field in diff {
            match field.name {
                "trust_policy" => {
                    aws.iam
                        .update_assume_role_policy()
                        .role_name(&self.name)
                        .policy_document(self.trust().to_string())
                        .send()
                        .await
                        .map_err(error("iam:UpdateAssumeRolePolicy"))?;
                }
                "inline_policy" => self.put_policy(aws, PROPAGATION).await?,
                "managed_policies" => self.sync_managed(aws, &o.managed, PROPAGATION).await?,
                "tags" => {
                    aws.iam
                        .tag_role()
                        .role_name(&self.name)
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .send()
                        .await
                        .map_err(error("iam:TagRole"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &ObservedRole) -> Result<(), AwsError> {
        // A role must be bare before IAM deletes it: no policies, no instance profiles.
        self.sync_managed_empty(aws, &o.managed).await?;
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

impl Role {
    async fn sync_managed_empty(&self, aws: &Aws, have: &BTreeSet<String>) -> Result<(), AwsError> {
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

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceProfile {
    pub name: String,
    pub role: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProfile {
    pub arn: String,
    pub roles: Vec<String>,
    pub tags: Tags,
}

impl Resource for InstanceProfile {
    type Observed = ObservedProfile;
    type Change = Field;
    const KIND: Kind = Kind::IamInstanceProfile;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::IamRole, &self.role)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ObservedProfile>, AwsError> {
        let Some(out) = aws
            .iam
            .get_instance_profile()
            .instance_profile_name(&self.name)
            .send()
            .await
            .found(Service::Iam, "iam:GetInstanceProfile")?
        else {
            return Ok(None);
        };
        let Some(p) = out.instance_profile() else {
            return Ok(None);
        };
        // GetInstanceProfile carries the tags: no ListInstanceProfileTags round trip.
        let tags = p
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        Ok(Some(ObservedProfile {
            arn: p.arn().to_string(),
            roles: p
                .roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .collect(),
            tags,
        }))
    }

    fn tags(observed: &ObservedProfile) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &ObservedProfile) -> Vec<Field> {
        let mut d = Vec::new();
        if o.roles != [self.role.clone()] {
            d.push(Field::new("roles", Some(&o.roles), [&self.role]));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ObservedProfile>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let have_roles = match observed {
            None => {
                aws.iam
                    .create_instance_profile()
                    .instance_profile_name(&self.name)
                    .set_tags(Some(sdk_tags(&self.tags)))
                    .send()
                    .await
                    .map_err(error("iam:CreateInstanceProfile"))?;
                Vec::new()
            }
            Some(o) if diff.iter().any(|f| f.name == "roles") => o.roles.clone(),
            Some(_) => vec![self.role.clone()],
        };
        for other in have_roles.iter().filter(|r| **r != self.role) {
            aws.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(&self.name)
                .role_name(other)
                .send()
                .await
                .map_err(error("iam:RemoveRoleFromInstanceProfile"))?;
        }
        if !have_roles.contains(&self.role) {
            // The role (or the profile) may be seconds old.
            wait::retrying(
                "iam:AddRoleToInstanceProfile",
                PROPAGATION,
                FIRST_RETRY,
                || async {
                    aws.iam
                        .add_role_to_instance_profile()
                        .instance_profile_name(&self.name)
                        .role_name(&self.role)
                        .send()
                        .await
                        .map_err(error("iam:AddRoleToInstanceProfile"))
                },
                not_yet_visible,
            )
            .await?;
        }
        if observed.is_some() && diff.iter().any(|f| f.name == "tags") {
            aws.iam
                .tag_instance_profile()
                .instance_profile_name(&self.name)
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(error("iam:TagInstanceProfile"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &ObservedProfile) -> Result<(), AwsError> {
        for role in &o.roles {
            aws.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(&self.name)
                .role_name(role)
                .send()
                .await
                .found(Service::Iam, "iam:RemoveRoleFromInstanceProfile")?;
        }
        aws.iam
            .delete_instance_profile()
            .instance_profile_name(&self.name)
            .send()
            .await
            .found(Service::Iam, "iam:DeleteInstanceProfile")?;
        Ok(())
    }

    fn detail(o: &ObservedProfile) -> String {
        format!("{} (role {})", o.arn, o.roles.join(", "))
    }
}

/// ECS's service-linked role, which `CreateCluster`, `PutClusterCapacityProviders` and
/// `CreateService` need; an account that never used ECS has none.
pub const ECS_SERVICE_LINKED_ROLE: ServiceLinkedRole = ServiceLinkedRole {
    service: "ecs.amazonaws.com",
    name: "AWSServiceRoleForECS",
};

/// A role AWS defines for one of its services, one per account: this tool creates it
/// when it is missing and leaves it alone otherwise (other stacks use it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLinkedRole {
    pub service: &'static str,
    /// AWS's name for it (moto spells it differently: it is found by path).
    pub name: &'static str,
}

impl ServiceLinkedRole {
    /// The role's ARN; `None` when the account has none. Found by its path, which AWS
    /// reserves for the service's linked roles (`/aws-service-role/ecs.amazonaws.com/`),
    /// so any spelling of the name is found.
    pub async fn find(&self, aws: &Aws) -> Result<Option<String>, AwsError> {
        let roles = aws
            .iam
            .list_roles()
            .path_prefix(format!("/aws-service-role/{}/", self.service))
            .send()
            .await
            .map_err(error("iam:ListRoles"))?;
        Ok(roles.roles().first().map(|r| r.arn().to_string()))
    }

    /// Creates the role unless it exists; whether it was created. Someone creating it
    /// meanwhile is as good as creating it.
    pub async fn ensure(&self, aws: &Aws) -> Result<bool, AwsError> {
        if self.find(aws).await?.is_some() {
            return Ok(false);
        }
        match aws
            .iam
            .create_service_linked_role()
            .aws_service_name(self.service)
            .send()
            .await
            .map_err(error("iam:CreateServiceLinkedRole"))
        {
            Ok(_) => Ok(true),
            Err(e) if already_taken(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether `CreateServiceLinkedRole` answered that the role exists. AWS says so only with
/// the generic `InvalidInput` ("Service role name AWSServiceRoleForECS has been taken in
/// this account, please try a different suffix."), which also covers malformed requests:
/// the message is the only way to tell.
fn already_taken(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidInput") && e.message.contains("has been taken")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn decodes_url_encoded_policy_documents() {
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode_policy(raw),
            json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(decode_policy("{\"a\": 1}"), json!({"a": 1}));
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
        let names: Vec<&str> = r.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(names, ["trust_policy", "inline_policy", "managed_policies"]);
    }

    #[test]
    fn only_a_taken_name_counts_as_an_existing_service_linked_role() {
        let e = |code: &str, message: &str| AwsError {
            operation: "iam:CreateServiceLinkedRole",
            code: Some(code.into()),
            message: message.into(),
            hint: None,
            unreachable: false,
            unsent: false,
        };
        assert!(already_taken(&e(
            "InvalidInput",
            "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix."
        )));
        assert!(!already_taken(&e(
            "InvalidInput",
            "Invalid AWS service name: ecs.amazonaws.con"
        )));
        assert!(!already_taken(&e("AccessDenied", "has been taken")));
        assert!(not_yet_visible(&e(
            "NoSuchEntity",
            "The role with name r cannot be found."
        )));
        assert!(!not_yet_visible(&e("EntityAlreadyExists", "r")));
    }

    #[test]
    fn profile_must_hold_exactly_its_role() {
        let p = InstanceProfile {
            name: "p".into(),
            role: "r".into(),
            tags: Tags::new(),
        };
        let o = ObservedProfile {
            arn: "a".into(),
            roles: vec!["r".into()],
            tags: Tags::new(),
        };
        assert_eq!(p.diff(&o), []);
        let o = ObservedProfile { roles: vec![], ..o };
        assert_eq!(p.diff(&o)[0].name, "roles");
        assert_eq!(Resource::depends_on(&p), [Id::new(Kind::IamRole, "r")]);
    }
}
