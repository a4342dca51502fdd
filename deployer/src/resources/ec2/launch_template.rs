//! The launch template of the ECS container instances: the ECS-optimized AMI, the
//! instance type and profile, the instances' security group, the user data that joins
//! the cluster, IMDSv2. Versions are immutable: a change is a new version, made the
//! default; the Auto Scaling group follows `$Latest`.

use aws_sdk_ec2::types::{ResourceType, TagSpecification};

use super::security_group::{group_id, require_group};
use super::template_data::{TemplateData, user_data};

use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::resources::tags::{from_sdk, to_sdk};
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, tag_diff};

#[derive(Debug, Clone, PartialEq)]
pub struct LaunchTemplate {
    pub name: String,
    pub vpc_id: String,
    /// The ECS-optimized AMI, resolved from its public SSM parameter at plan time.
    pub image_id: String,
    pub instance_type: String,
    pub instance_profile: String,
    pub security_group: String,
    pub cluster: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateObserved {
    pub id: String,
    pub version: i64,
    pub data: TemplateData,
    /// The id of the security group the template should use, as found now.
    pub security_group_id: Option<String>,
    pub tags: Tags,
}

/// What `up` can change on a launch template: any setting but the tags is a new
/// version.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    ImageId {
        from: String,
        to: String,
    },
    InstanceType {
        from: String,
        to: String,
    },
    InstanceProfile {
        from: String,
        to: String,
    },
    /// Group ids; a group not found is `?name`.
    SecurityGroups {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// Base64, as EC2 holds it.
    UserData {
        from: String,
        to: String,
    },
    /// The instances' metadata service accepted calls without a session token.
    Imdsv2Required,
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        let text = |name, from: &str, to: &str| Field::new(name, Some(from), to);
        match self {
            Change::ImageId { from, to } => text("image_id", from, to),
            Change::InstanceType { from, to } => text("instance_type", from, to),
            Change::InstanceProfile { from, to } => text("instance_profile", from, to),
            Change::SecurityGroups { from, to } => {
                text("security_groups", &from.join(","), &to.join(","))
            }
            Change::UserData { from, to } => text("user_data", from, to),
            Change::Imdsv2Required => text("imdsv2", "optional", "required"),
            Change::Tags(t) => t.field(),
        }
    }
}

impl LaunchTemplate {
    async fn create(&self, aws: &Aws, group: &str) -> Result<(), AwsError> {
        aws.ec2
            .create_launch_template()
            .launch_template_name(&self.name)
            .launch_template_data(self.wanted(Some(group)).request(&self.tags))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(to_sdk(&self.tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(error("ec2:CreateLaunchTemplate"))?;
        Ok(())
    }

    /// Versions are immutable: a change is a new version, made the default. The Auto
    /// Scaling group follows `$Latest`, so new instances use it.
    async fn new_default_version(
        &self,
        aws: &Aws,
        o: &TemplateObserved,
        group: &str,
    ) -> Result<(), AwsError> {
        let v = aws
            .ec2
            .create_launch_template_version()
            .launch_template_id(&o.id)
            .launch_template_data(self.wanted(Some(group)).request(&self.tags))
            .send()
            .await
            .map_err(error("ec2:CreateLaunchTemplateVersion"))?;
        let number = v
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or(o.version + 1);
        aws.ec2
            .modify_launch_template()
            .launch_template_id(&o.id)
            .default_version(number.to_string())
            .send()
            .await
            .map_err(error("ec2:ModifyLaunchTemplate"))?;
        Ok(())
    }

    fn wanted(&self, security_group_id: Option<&str>) -> TemplateData {
        TemplateData {
            image_id: self.image_id.clone(),
            instance_type: self.instance_type.clone(),
            instance_profile: self.instance_profile.clone(),
            security_groups: vec![
                security_group_id
                    .map_or_else(|| format!("?{}", self.security_group), str::to_string),
            ],
            user_data: user_data(&self.cluster),
            imdsv2_required: true,
        }
    }
}

impl Resource for LaunchTemplate {
    type Observed = TemplateObserved;
    type Change = Change;
    const KIND: Kind = Kind::LaunchTemplate;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![
            Id::new(Kind::SecurityGroup, &self.security_group),
            Id::new(Kind::IamInstanceProfile, &self.instance_profile),
            // The instances join the cluster: it goes only after they are gone.
            Id::new(Kind::EcsCluster, &self.cluster),
        ]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<TemplateObserved>, AwsError> {
        let Some(t) = find_template(aws, &self.name).await? else {
            return Ok(None);
        };
        Ok(Some(TemplateObserved {
            id: t.id,
            version: t.version,
            data: t.data,
            security_group_id: group_id(aws, &self.vpc_id, &self.security_group).await?,
            tags: t.tags,
        }))
    }

    fn tags(o: &TemplateObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &TemplateObserved) -> Vec<Change> {
        let want = self.wanted(o.security_group_id.as_deref());
        let have = &o.data;
        let mut d = Vec::new();
        if have.image_id != want.image_id {
            d.push(Change::ImageId {
                from: have.image_id.clone(),
                to: want.image_id,
            });
        }
        if have.instance_type != want.instance_type {
            d.push(Change::InstanceType {
                from: have.instance_type.clone(),
                to: want.instance_type,
            });
        }
        if have.instance_profile != want.instance_profile {
            d.push(Change::InstanceProfile {
                from: have.instance_profile.clone(),
                to: want.instance_profile,
            });
        }
        if have.security_groups != want.security_groups {
            d.push(Change::SecurityGroups {
                from: have.security_groups.clone(),
                to: want.security_groups,
            });
        }
        if have.user_data != want.user_data {
            d.push(Change::UserData {
                from: have.user_data.clone(),
                to: want.user_data,
            });
        }
        if !have.imdsv2_required {
            d.push(Change::Imdsv2Required);
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&TemplateObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let group = require_group(aws, &self.vpc_id, &self.security_group).await?;
        let Some(o) = observed else {
            return self.create(aws, &group).await;
        };
        // Every setting of the template data goes in one new version, whichever changed.
        let (mut new_version, mut tags) = (false, false);
        for change in changes {
            match change {
                Change::ImageId { .. }
                | Change::InstanceType { .. }
                | Change::InstanceProfile { .. }
                | Change::SecurityGroups { .. }
                | Change::UserData { .. }
                | Change::Imdsv2Required => new_version = true,
                Change::Tags(_) => tags = true,
            }
        }
        if new_version {
            self.new_default_version(aws, o, &group).await?;
        }
        if tags {
            aws.ec2
                .create_tags()
                .resources(&o.id)
                .set_tags(Some(to_sdk(&self.tags)))
                .send()
                .await
                .map_err(error("ec2:CreateTags"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &TemplateObserved) -> Result<(), AwsError> {
        aws.ec2
            .delete_launch_template()
            .launch_template_id(&o.id)
            .send()
            .await
            .found(Service::Ec2, "ec2:DeleteLaunchTemplate")?;
        Ok(())
    }

    fn detail(o: &TemplateObserved) -> String {
        format!(
            "{} v{}: {} {}",
            o.id, o.version, o.data.instance_type, o.data.image_id
        )
    }
}

/// A launch template as its latest version holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub version: i64,
    pub data: TemplateData,
    pub tags: Tags,
}

/// The launch template `name`, if it exists: its latest version's settings.
pub async fn find_template(aws: &Aws, name: &str) -> Result<Option<Template>, AwsError> {
    let Some(out) = aws
        .ec2
        .describe_launch_templates()
        .launch_template_names(name)
        .send()
        .await
        .found(Service::Ec2, "ec2:DescribeLaunchTemplates")?
    else {
        return Ok(None);
    };
    let Some(t) = out.launch_templates().first() else {
        return Ok(None);
    };
    let id = t.launch_template_id().unwrap_or_default().to_string();
    let versions = aws
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions("$Latest")
        .send()
        .await
        .map_err(error("ec2:DescribeLaunchTemplateVersions"))?;
    let v = versions.launch_template_versions().first();
    let data = TemplateData::read(v.and_then(|v| v.launch_template_data()));
    Ok(Some(Template {
        id,
        version: v.and_then(|v| v.version_number()).unwrap_or_default(),
        data,
        tags: from_sdk(t.tags()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn template() -> LaunchTemplate {
        LaunchTemplate {
            name: "s-instances".into(),
            vpc_id: "vpc-1".into(),
            image_id: "ami-0aae19d30bab785d3".into(),
            instance_type: "t3a.xlarge".into(),
            instance_profile: "s-ecs-instance".into(),
            security_group: "s-instances".into(),
            cluster: "s-cluster".into(),
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn observed(t: &LaunchTemplate) -> TemplateObserved {
        TemplateObserved {
            id: "lt-1".into(),
            version: 1,
            data: t.wanted(Some("sg-1")),
            security_group_id: Some("sg-1".into()),
            tags: t.tags.clone(),
        }
    }

    #[test]
    fn in_sync_template_has_no_diff() {
        let t = template();
        assert_eq!(t.diff(&observed(&t)), []);
    }

    #[test]
    fn a_new_ami_or_instance_type_is_a_new_version() {
        let t = template();
        let mut newer = t.clone();
        newer.image_id = "ami-new".into();
        newer.instance_type = "c6a.xlarge".into();
        assert_eq!(
            newer.diff(&observed(&t)),
            [
                Change::ImageId {
                    from: "ami-0aae19d30bab785d3".into(),
                    to: "ami-new".into()
                },
                Change::InstanceType {
                    from: "t3a.xlarge".into(),
                    to: "c6a.xlarge".into()
                },
            ]
        );
        let mut o = observed(&t);
        o.data.imdsv2_required = false;
        o.data.security_groups = vec!["sg-other".into()];
        let d = t.diff(&o);
        assert!(matches!(
            d[..],
            [Change::SecurityGroups { .. }, Change::Imdsv2Required]
        ));
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["security_groups", "imdsv2"]);
    }

    #[test]
    fn the_plan_shows_groups_and_imds_as_text() {
        let c = Change::SecurityGroups {
            from: vec!["sg-1".into(), "sg-2".into()],
            to: vec!["?s-instances".into()],
        };
        assert_eq!(
            c.field().to_string(),
            "security_groups: sg-1,sg-2 → ?s-instances"
        );
        assert_eq!(
            Change::Imdsv2Required.field().to_string(),
            "imdsv2: optional → required"
        );
    }
}
