//! The EC2 instance profile: holds exactly the stack's instance role (a role seconds old
//! is waited for), and the stack's tags.

use super::{FIRST_RETRY, PROPAGATION, not_yet_visible};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::resources::tags::from_sdk;
use crate::resources::tags::to_sdk;
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, tag_diff};
use crate::wait;

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

/// What `up` can change on an instance profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The roles it holds, for the one it should hold alone.
    Roles {
        from: Vec<String>,
        to: String,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Roles { from, to } => Field::new("roles", Some(from), [to]),
            Change::Tags(t) => t.field(),
        }
    }
}

impl InstanceProfile {
    /// Removes every role in `have` but the profile's own and adds it when missing (the
    /// role, or the profile, may be seconds old).
    async fn sync_roles(&self, aws: &Aws, have: &[String]) -> Result<(), AwsError> {
        for other in have.iter().filter(|r| **r != self.role) {
            aws.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(&self.name)
                .role_name(other)
                .send()
                .await
                .map_err(error("iam:RemoveRoleFromInstanceProfile"))?;
        }
        if !have.contains(&self.role) {
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
        Ok(())
    }
}

impl Resource for InstanceProfile {
    type Observed = ObservedProfile;
    type Change = Change;
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
        let tags = from_sdk(p.tags());
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

    fn diff(&self, o: &ObservedProfile) -> Vec<Change> {
        let mut d = Vec::new();
        if o.roles != [self.role.clone()] {
            d.push(Change::Roles {
                from: o.roles.clone(),
                to: self.role.clone(),
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ObservedProfile>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        if observed.is_none() {
            aws.iam
                .create_instance_profile()
                .instance_profile_name(&self.name)
                .set_tags(Some(to_sdk(&self.tags)))
                .send()
                .await
                .map_err(error("iam:CreateInstanceProfile"))?;
            return self.sync_roles(aws, &[]).await;
        }
        for change in changes {
            match change {
                Change::Roles { from, .. } => self.sync_roles(aws, from).await?,
                Change::Tags(_) => {
                    aws.iam
                        .tag_instance_profile()
                        .instance_profile_name(&self.name)
                        .set_tags(Some(to_sdk(&self.tags)))
                        .send()
                        .await
                        .map_err(error("iam:TagInstanceProfile"))?;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

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
        let d = p.diff(&o);
        assert_eq!(
            d,
            [Change::Roles {
                from: vec![],
                to: "r".into()
            }]
        );
        assert_eq!(d[0].field().to_string(), "roles: [] → [\"r\"]");
        assert_eq!(Resource::depends_on(&p), [Id::new(Kind::IamRole, "r")]);
    }
}
