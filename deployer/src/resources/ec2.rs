//! EC2: the network the serverful target runs in (looked up, never created), its
//! security groups, and the launch template of the ECS container instances.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, InstanceType, IpPermission, IpRange, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, LocationType, RequestLaunchTemplateData, ResourceType,
    Tag, TagSpecification, UserIdGroupPair,
};

use super::{Field, Id, Kind, Resource, Tags, tag_field};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::manifest::OWNER_TAG;
use crate::wait;

/// The VPC and subnets the load balancer and instances use. The default, with no VPC,
/// is a network not looked up (`down`, the stack's inventory): the security groups are
/// then found by name and the stack's tag, in whichever VPC they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    /// The load balancer's: every subnet given, or the default ones.
    pub subnets: Vec<String>,
    /// The instances': those of `subnets` in a zone that offers the instance type (not
    /// every zone offers every type: t3a is not offered in us-east-1e).
    pub instance_subnets: Vec<String>,
    /// The zones of `subnets` left out of `instance_subnets`.
    pub zones_without_type: Vec<String>,
}

/// The manifest's VPC and subnets, or the region's default VPC and its default subnets.
/// An Application Load Balancer needs subnets in at least two availability zones; the
/// instances need at least one subnet whose zone offers `instance_type`.
pub async fn network(
    aws: &Aws,
    vpc_id: Option<&str>,
    subnets: &[String],
    instance_type: &str,
) -> Result<Network, AwsError> {
    const OP: &str = "ec2:DescribeSubnets";
    let vpc_id = match vpc_id {
        Some(v) => v.to_string(),
        None => aws
            .ec2
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await
            .map_err(error("ec2:DescribeVpcs"))?
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| {
                AwsError::new(
                    "ec2:DescribeVpcs",
                    "the region has no default VPC: set serverful.network.vpc_id and subnets",
                )
            })?,
    };
    let mut request = aws
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build());
    if subnets.is_empty() {
        request = request.filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        );
    } else {
        request = request.set_subnet_ids(Some(subnets.to_vec()));
    }
    let found = request.send().await.map_err(error(OP))?;
    // Default subnets: one per zone. Given subnets: all of them, however many per zone.
    let mut zones = BTreeSet::new();
    let mut chosen = Vec::new();
    for s in found.subnets() {
        if let (Some(zone), Some(id)) = (s.availability_zone(), s.subnet_id()) {
            zones.insert(zone.to_string());
            chosen.push((id.to_string(), zone.to_string()));
        }
    }
    chosen.sort();
    if zones.len() < 2 {
        let which = if subnets.is_empty() {
            "default subnets"
        } else {
            "subnets"
        };
        return Err(AwsError::new(
            OP,
            format!(
                "the {which} of VPC {vpc_id} span {} availability zone(s); an Application Load Balancer needs two: set serverful.network.subnets",
                zones.len()
            ),
        ));
    }
    let offered = zones_offering(aws, instance_type, &zones).await?;
    let instance_subnets: Vec<String> = chosen
        .iter()
        .filter(|(_, zone)| offered.contains(zone))
        .map(|(id, _)| id.clone())
        .collect();
    let zones_without_type: Vec<String> = zones.difference(&offered).cloned().collect();
    if instance_subnets.is_empty() {
        return Err(AwsError::new(
            "ec2:DescribeInstanceTypeOfferings",
            format!(
                "`{instance_type}` is not offered in any availability zone of the subnets of VPC \
                 {vpc_id} ({})",
                zones_without_type.join(", ")
            ),
        )
        .with_hint(format!(
            "set `serverful.network.subnets` to subnets in zones that offer it (`aws ec2 \
             describe-instance-type-offerings --location-type availability-zone --filters \
             Name=instance-type,Values={instance_type}` lists them), or pick another \
             `serverful.instance_type`"
        )));
    }
    Ok(Network {
        vpc_id,
        subnets: chosen.into_iter().map(|(id, _)| id).collect(),
        instance_subnets,
        zones_without_type,
    })
}

/// Which of `zones` offer `instance_type` (`DescribeInstanceTypeOfferings` by availability
/// zone); every zone of the region when `zones` is empty.
pub async fn zones_offering(
    aws: &Aws,
    instance_type: &str,
    zones: &BTreeSet<String>,
) -> Result<BTreeSet<String>, AwsError> {
    let mut request = aws
        .ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(
            Filter::builder()
                .name("instance-type")
                .values(instance_type)
                .build(),
        );
    if !zones.is_empty() {
        request = request.filters(
            Filter::builder()
                .name("location")
                .set_values(Some(zones.iter().cloned().collect()))
                .build(),
        );
    }
    let mut offered = BTreeSet::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(error("ec2:DescribeInstanceTypeOfferings"))?;
        for o in page.instance_type_offerings() {
            if o.instance_type().map(|t| t.as_str()) == Some(instance_type)
                && let Some(zone) = o.location()
            {
                offered.insert(zone.to_string());
            }
        }
    }
    Ok(offered)
}

/// The id of the security group `name` in `vpc`, if it exists.
pub async fn group_id(aws: &Aws, vpc: &str, name: &str) -> Result<Option<String>, AwsError> {
    let out = aws
        .ec2
        .describe_security_groups()
        .set_filters(Some(group_filters(vpc, name, None)))
        .send()
        .await
        .map_err(error("ec2:DescribeSecurityGroups"))?;
    Ok(out
        .security_groups()
        .first()
        .and_then(|g| g.group_id())
        .map(str::to_string))
}

/// Filters for a security group by name: in `vpc`, or where `vpc` is unknown (`down`
/// and the stack's inventory read no network), in any VPC, carrying `owner` when given.
fn group_filters(vpc: &str, name: &str, owner: Option<(&str, &str)>) -> Vec<Filter> {
    let mut filters = vec![Filter::builder().name("group-name").values(name).build()];
    if !vpc.is_empty() {
        filters.push(Filter::builder().name("vpc-id").values(vpc).build());
    }
    if let Some((key, value)) = owner {
        filters.push(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        );
    }
    filters
}

async fn require_group(aws: &Aws, vpc: &str, name: &str) -> Result<String, AwsError> {
    group_id(aws, vpc, name).await?.ok_or_else(|| {
        AwsError::new(
            "ec2:DescribeSecurityGroups",
            format!("security group `{name}` does not exist in {vpc}"),
        )
    })
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// Where an ingress rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Cidr(String),
    /// Another security group of the stack, by name.
    Group(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    /// TCP port → sources. Egress stays AWS's default (everything: S3, ECR, logs).
    pub ingress: Vec<(u16, Source)>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupObserved {
    pub id: String,
    /// `(port, "cidr" | "sg-…")`
    pub ingress: BTreeSet<(u16, String)>,
    /// The ids of the groups the desired rules name, as found.
    pub sources: BTreeMap<String, String>,
    pub tags: Tags,
}

impl SecurityGroup {
    /// The desired rules with group names replaced by ids (`?name` when not found).
    fn wanted(&self, sources: &BTreeMap<String, String>) -> BTreeSet<(u16, String)> {
        self.ingress
            .iter()
            .map(|(port, s)| {
                let s = match s {
                    Source::Cidr(c) => c.clone(),
                    Source::Group(g) => sources.get(g).cloned().unwrap_or(format!("?{g}")),
                };
                (*port, s)
            })
            .collect()
    }

    fn permission(port: u16, source: &str) -> IpPermission {
        let p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port.into())
            .to_port(port.into());
        if source.starts_with("sg-") {
            p.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
                .build()
        } else {
            p.ip_ranges(IpRange::builder().cidr_ip(source).build())
                .build()
        }
    }

    async fn sources(&self, aws: &Aws) -> Result<BTreeMap<String, String>, AwsError> {
        let mut ids = BTreeMap::new();
        for (_, s) in &self.ingress {
            if let Source::Group(g) = s
                && let Some(id) = group_id(aws, &self.vpc_id, g).await?
            {
                ids.insert(g.clone(), id);
            }
        }
        Ok(ids)
    }
}

impl Resource for SecurityGroup {
    type Observed = GroupObserved;
    type Change = Field;
    const KIND: Kind = Kind::SecurityGroup;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        self.ingress
            .iter()
            .filter_map(|(_, s)| match s {
                Source::Group(g) => Some(Id::new(Kind::SecurityGroup, g)),
                Source::Cidr(_) => None,
            })
            .collect()
    }

    async fn find(&self, aws: &Aws) -> Result<Option<GroupObserved>, AwsError> {
        // Without a VPC, only the stack's own group of that name is the one meant.
        let owner = self
            .vpc_id
            .is_empty()
            .then(|| self.tags.get_key_value(OWNER_TAG))
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let out = aws
            .ec2
            .describe_security_groups()
            .set_filters(Some(group_filters(&self.vpc_id, &self.name, owner)))
            .send()
            .await
            .map_err(error("ec2:DescribeSecurityGroups"))?;
        let Some(g) = out.security_groups().first() else {
            return Ok(None);
        };
        let mut ingress = BTreeSet::new();
        for p in g.ip_permissions() {
            if p.ip_protocol() != Some("tcp") || p.from_port() != p.to_port() {
                // A kind of rule this tool never writes (a port range, another protocol):
                // someone else's, left alone and never shown as drift.
                continue;
            }
            let port = p.from_port().unwrap_or_default() as u16;
            for r in p.ip_ranges() {
                ingress.insert((port, r.cidr_ip().unwrap_or_default().to_string()));
            }
            for pair in p.user_id_group_pairs() {
                ingress.insert((port, pair.group_id().unwrap_or_default().to_string()));
            }
        }
        Ok(Some(GroupObserved {
            id: g.group_id().unwrap_or_default().to_string(),
            ingress,
            sources: self.sources(aws).await?,
            tags: tags_of(g.tags()),
        }))
    }

    fn tags(o: &GroupObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &GroupObserved) -> Vec<Field> {
        let mut d = Vec::new();
        let want = self.wanted(&o.sources);
        if o.ingress != want {
            d.push(Field::new("ingress", Some(&o.ingress), &want));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&GroupObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let (id, have) = match observed {
            Some(o) => (o.id.clone(), o.ingress.clone()),
            None => {
                let out = aws
                    .ec2
                    .create_security_group()
                    .group_name(&self.name)
                    .description(&self.description)
                    .vpc_id(&self.vpc_id)
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::SecurityGroup)
                            .set_tags(Some(sdk_tags(&self.tags)))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(error("ec2:CreateSecurityGroup"))?;
                (
                    out.group_id().unwrap_or_default().to_string(),
                    BTreeSet::new(),
                )
            }
        };
        // Sources are resolved now: a group created earlier in this run has its id.
        let want = self.wanted(&self.sources(aws).await?);
        if let Some(missing) = want.iter().find(|(_, s)| s.starts_with('?')) {
            return Err(AwsError::new(
                "ec2:AuthorizeSecurityGroupIngress",
                format!("source group `{}` does not exist", &missing.1[1..]),
            ));
        }
        let add: Vec<IpPermission> = want
            .difference(&have)
            .map(|(port, s)| SecurityGroup::permission(*port, s))
            .collect();
        let remove: Vec<IpPermission> = have
            .difference(&want)
            .map(|(port, s)| SecurityGroup::permission(*port, s))
            .collect();
        if !remove.is_empty() {
            aws.ec2
                .revoke_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(remove))
                .send()
                .await
                .map_err(error("ec2:RevokeSecurityGroupIngress"))?;
        }
        if !add.is_empty() {
            aws.ec2
                .authorize_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(add))
                .send()
                .await
                .map_err(error("ec2:AuthorizeSecurityGroupIngress"))?;
        }
        if observed.is_some() && diff.iter().any(|f| f.name == "tags") {
            aws.ec2
                .create_tags()
                .resources(&id)
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(error("ec2:CreateTags"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &GroupObserved) -> Result<(), AwsError> {
        // Network interfaces of a deleted load balancer or instance linger for minutes;
        // the group cannot go before they do.
        wait::retrying(
            "ec2:DeleteSecurityGroup",
            Duration::from_secs(600),
            Duration::from_secs(5),
            || async {
                aws.ec2
                    .delete_security_group()
                    .group_id(&o.id)
                    .send()
                    .await
                    .found(Service::Ec2, "ec2:DeleteSecurityGroup")
            },
            |e| e.code.as_deref() == Some("DependencyViolation"),
        )
        .await?;
        Ok(())
    }

    fn detail(o: &GroupObserved) -> String {
        let rules: Vec<String> = o
            .ingress
            .iter()
            .map(|(p, s)| format!("{p} from {s}"))
            .collect();
        format!("{}: {}", o.id, rules.join(", "))
    }
}

/// The user data that makes an ECS-optimized instance join `cluster`, base64 as EC2
/// wants it.
pub fn user_data(cluster: &str) -> String {
    aws_smithy_types::base64::encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    ))
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateObserved {
    pub id: String,
    pub version: i64,
    pub data: TemplateData,
    /// The id of the security group the template should use, as found now.
    pub security_group_id: Option<String>,
    pub tags: Tags,
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
    let d = v.and_then(|v| v.launch_template_data());
    let data = TemplateData {
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
    };
    Ok(Some(Template {
        id,
        version: v.and_then(|v| v.version_number()).unwrap_or_default(),
        data,
        tags: tags_of(t.tags()),
    }))
}

/// The CPU architectures (EC2's names: `x86_64`, `arm64`) an instance type runs, from
/// `DescribeInstanceTypes`; an instance type the region does not know is an input error.
pub async fn instance_architectures(
    aws: &Aws,
    instance_type: &str,
) -> Result<Option<Vec<String>>, AwsError> {
    const OP: &str = "ec2:DescribeInstanceTypes";
    let out = aws
        .ec2
        .describe_instance_types()
        .instance_types(InstanceType::from(instance_type))
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        // EC2 refuses an unknown type in the request itself (`InvalidInstanceType`).
        // (`InvalidInstanceType.NotFound` from older emulators.)
        Err(e)
            if matches!(
                e.code(),
                Some("InvalidInstanceType" | "InvalidInstanceType.NotFound")
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(error(OP)(e)),
    };
    Ok(out.instance_types().first().map(|t| {
        t.processor_info()
            .map(|p| {
                p.supported_architectures()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }))
}

/// The public SSM parameter naming the current ECS-optimized Amazon Linux 2023 AMI for
/// instances of `architecture` (EC2's name).
pub fn ami_parameter(architecture: &str) -> &'static str {
    match architecture {
        "arm64" => "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
        _ => "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
    }
}

/// The ECS-optimized AMI AWS recommends now for `architecture`.
pub async fn recommended_ami(aws: &Aws, architecture: &str) -> Result<String, AwsError> {
    const OP: &str = "ssm:GetParameter";
    aws.ssm
        .get_parameter()
        .name(ami_parameter(architecture))
        .send()
        .await
        .map_err(error(OP))?
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| AwsError::new(OP, "the ECS AMI parameter has no value"))
}

impl LaunchTemplate {
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

    fn request(&self, security_group_id: &str) -> RequestLaunchTemplateData {
        RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(&self.instance_profile)
                    .build(),
            )
            .security_group_ids(security_group_id)
            .user_data(user_data(&self.cluster))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(LaunchTemplateHttpTokensState::Required)
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    // Containers in bridge or host mode reach IMDS through one more hop.
                    .http_put_response_hop_limit(2)
                    .build(),
            )
            .tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(sdk_tags(&self.tags)))
                    .build(),
            )
            .tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::Volume)
                    .set_tags(Some(sdk_tags(&self.tags)))
                    .build(),
            )
            .build()
    }
}

impl Resource for LaunchTemplate {
    type Observed = TemplateObserved;
    type Change = Field;
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

    fn diff(&self, o: &TemplateObserved) -> Vec<Field> {
        let want = self.wanted(o.security_group_id.as_deref());
        let have = &o.data;
        let mut d = Vec::new();
        let mut field = |name, from: &str, to: &str| d.push(Field::new(name, Some(from), to));
        if have.image_id != want.image_id {
            field("image_id", &have.image_id, &want.image_id);
        }
        if have.instance_type != want.instance_type {
            field("instance_type", &have.instance_type, &want.instance_type);
        }
        if have.instance_profile != want.instance_profile {
            field(
                "instance_profile",
                &have.instance_profile,
                &want.instance_profile,
            );
        }
        if have.security_groups != want.security_groups {
            field(
                "security_groups",
                &have.security_groups.join(","),
                &want.security_groups.join(","),
            );
        }
        if have.user_data != want.user_data {
            field("user_data", &have.user_data, &want.user_data);
        }
        if !have.imdsv2_required {
            field("imdsv2", "optional", "required");
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&TemplateObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let group = require_group(aws, &self.vpc_id, &self.security_group).await?;
        let Some(o) = observed else {
            aws.ec2
                .create_launch_template()
                .launch_template_name(&self.name)
                .launch_template_data(self.request(&group))
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::LaunchTemplate)
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .build(),
                )
                .send()
                .await
                .map_err(error("ec2:CreateLaunchTemplate"))?;
            return Ok(());
        };
        if diff.iter().any(|f| f.name != "tags") {
            // Versions are immutable: a change is a new version, made the default. The
            // Auto Scaling group follows `$Latest`, so new instances use it.
            let v = aws
                .ec2
                .create_launch_template_version()
                .launch_template_id(&o.id)
                .launch_template_data(self.request(&group))
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
        }
        if diff.iter().any(|f| f.name == "tags") {
            aws.ec2
                .create_tags()
                .resources(&o.id)
                .set_tags(Some(sdk_tags(&self.tags)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn user_data_joins_the_cluster() {
        assert_eq!(
            user_data("s-cluster"),
            // base64 of "#!/bin/bash\necho ECS_CLUSTER=s-cluster >> /etc/ecs/ecs.config\n"
            "IyEvYmluL2Jhc2gKZWNobyBFQ1NfQ0xVU1RFUj1zLWNsdXN0ZXIgPj4gL2V0Yy9lY3MvZWNzLmNvbmZpZwo="
        );
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
        let names: Vec<&str> = newer.diff(&observed(&t)).iter().map(|f| f.name).collect();
        assert_eq!(names, ["image_id", "instance_type"]);
        let mut o = observed(&t);
        o.data.imdsv2_required = false;
        o.data.security_groups = vec!["sg-other".into()];
        let names: Vec<&str> = t.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(names, ["security_groups", "imdsv2"]);
    }

    #[test]
    fn group_rules_compare_by_resolved_id() {
        let g = SecurityGroup {
            name: "s-instances".into(),
            description: "d".into(),
            vpc_id: "vpc-1".into(),
            ingress: vec![(8080, Source::Group("s-alb".into()))],
            tags: Tags::new(),
        };
        let sources: BTreeMap<String, String> = [("s-alb".to_string(), "sg-a".to_string())].into();
        let mut o = GroupObserved {
            id: "sg-i".into(),
            ingress: [(8080, "sg-a".to_string())].into(),
            sources: sources.clone(),
            tags: Tags::new(),
        };
        assert_eq!(g.diff(&o), []);
        o.ingress.insert((22, "0.0.0.0/0".into()));
        assert_eq!(g.diff(&o)[0].name, "ingress");
        assert_eq!(g.depends_on(), [Id::new(Kind::SecurityGroup, "s-alb")]);
    }
}
