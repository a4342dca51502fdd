//! The settings of a launch template version that this tool manages, both ways: read
//! from the version EC2 holds, written as the data of a new one. Versions are
//! immutable, so the two meet only through [`TemplateData`].

use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
    ResponseLaunchTemplateData,
};

use crate::resources::Tags;
use crate::resources::tags::to_sdk;

/// The settings of the template's latest version that this tool manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateData {
    pub image_id: String,
    pub instance_type: String,
    pub instance_profile: String,
    pub security_groups: Vec<String>,
    pub user_data: String,
    pub imdsv2_required: bool,
}

impl TemplateData {
    /// The managed settings of a version's data (`None`: a version without any).
    pub fn read(d: Option<&ResponseLaunchTemplateData>) -> TemplateData {
        TemplateData {
            image_id: d.and_then(|d| d.image_id()).unwrap_or_default().to_string(),
            instance_type: d
                .and_then(|d| d.instance_type())
                .map_or("", |t| t.as_str())
                .to_string(),
            instance_profile: d
                .and_then(|d| d.iam_instance_profile())
                .and_then(|p| p.name())
                .unwrap_or_default()
                .to_string(),
            security_groups: d
                .map(|d| d.security_group_ids().to_vec())
                .unwrap_or_default(),
            user_data: d
                .and_then(|d| d.user_data())
                .unwrap_or_default()
                .to_string(),
            imdsv2_required: d
                .and_then(|d| d.metadata_options())
                .and_then(|m| m.http_tokens())
                == Some(&LaunchTemplateHttpTokensState::Required),
        }
    }

    /// The data of a version holding these settings; its instances and volumes carry
    /// `tags`.
    pub fn request(&self, tags: &Tags) -> RequestLaunchTemplateData {
        let tokens = if self.imdsv2_required {
            LaunchTemplateHttpTokensState::Required
        } else {
            LaunchTemplateHttpTokensState::Optional
        };
        let tagged = |kind| {
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(kind)
                .set_tags(Some(to_sdk(tags)))
                .build()
        };
        RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(&self.instance_profile)
                    .build(),
            )
            .set_security_group_ids(Some(self.security_groups.clone()))
            .user_data(&self.user_data)
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(tokens)
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    // Containers in bridge or host mode reach IMDS through one more hop.
                    .http_put_response_hop_limit(2)
                    .build(),
            )
            .tag_specifications(tagged(ResourceType::Instance))
            .tag_specifications(tagged(ResourceType::Volume))
            .build()
    }
}

/// The user data that makes an ECS-optimized instance join `cluster`, base64 as EC2
/// wants it.
pub fn user_data(cluster: &str) -> String {
    aws_smithy_types::base64::encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    ))
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{
        LaunchTemplateIamInstanceProfileSpecification, LaunchTemplateInstanceMetadataOptions,
    };

    use super::*;

    #[test]
    fn user_data_joins_the_cluster() {
        assert_eq!(
            user_data("s-cluster"),
            // base64 of "#!/bin/bash\necho ECS_CLUSTER=s-cluster >> /etc/ecs/ecs.config\n"
            "IyEvYmluL2Jhc2gKZWNobyBFQ1NfQ0xVU1RFUj1zLWNsdXN0ZXIgPj4gL2V0Yy9lY3MvZWNzLmNvbmZpZwo="
        );
    }

    /// What a new version is given reads back as the same settings: a version this
    /// tool wrote is never drift.
    #[test]
    fn a_version_written_reads_back_the_same() {
        let data = TemplateData {
            image_id: "ami-1".into(),
            instance_type: "t3a.xlarge".into(),
            instance_profile: "s-ecs-instance".into(),
            security_groups: vec!["sg-1".into()],
            user_data: user_data("s-cluster"),
            imdsv2_required: true,
        };
        let r = data.request(&Tags::new());
        let m = r.metadata_options().unwrap();
        // As EC2 answers `DescribeLaunchTemplateVersions` for that request.
        let held = ResponseLaunchTemplateData::builder()
            .set_image_id(r.image_id().map(Into::into))
            .set_instance_type(r.instance_type().cloned())
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecification::builder()
                    .set_name(
                        r.iam_instance_profile()
                            .and_then(|p| p.name())
                            .map(Into::into),
                    )
                    .build(),
            )
            .set_security_group_ids(Some(r.security_group_ids().to_vec()))
            .set_user_data(r.user_data().map(Into::into))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptions::builder()
                    .set_http_tokens(m.http_tokens().cloned())
                    .build(),
            )
            .build();
        assert_eq!(TemplateData::read(Some(&held)), data);
        assert!(!TemplateData::read(None).imdsv2_required);
    }
}
