//! A security group of the stack: its single-port TCP ingress rules (from a CIDR or
//! another group of the stack) and its tags. Egress stays AWS's default. Rules of
//! another kind (a port range, another protocol) are someone else's: never read as
//! drift, never revoked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, SecurityGroup as SdkGroup, TagSpecification};

use super::ingress::{self, Rule, Source};

use crate::aws::{Aws, AwsError, FoundExt, Service, created, error};
use crate::manifest::OWNER_TAG;
use crate::resources::tags::{from_sdk, to_sdk};
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, tag_diff};
use crate::wait;

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
    /// The rules this tool manages (see [`ingress::managed`]).
    pub ingress: BTreeSet<Rule>,
    /// The ids of the groups the desired rules name, as found.
    pub sources: BTreeMap<String, String>,
    pub tags: Tags,
}

/// What `up` can change on a security group.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The single-port TCP rules: those in `from` and not in `to` are revoked, those in
    /// `to` and not in `from` authorized. A source group not found is `?name`.
    Ingress {
        from: BTreeSet<Rule>,
        to: BTreeSet<Rule>,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Ingress { from, to } => Field::new("ingress", Some(from), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl SecurityGroup {
    /// The ids of the groups the desired rules name, as found now.
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

    /// Makes the rules of the group `id`, which holds `have`, the desired ones. Sources
    /// are resolved now: a group created earlier in this run has its id.
    async fn sync_ingress(
        &self,
        aws: &Aws,
        id: &str,
        have: &BTreeSet<Rule>,
    ) -> Result<(), AwsError> {
        let want = ingress::resolve(&self.ingress, &self.sources(aws).await?);
        if let Some(missing) = ingress::unresolved(&want) {
            return Err(AwsError::new(
                "ec2:AuthorizeSecurityGroupIngress",
                format!("source group `{missing}` does not exist"),
            ));
        }
        ingress::sync(aws, id, have, &want).await
    }
}

impl Resource for SecurityGroup {
    type Observed = GroupObserved;
    type Change = Change;
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
        let Some(g) = find_group(aws, &self.vpc_id, &self.name, owner).await? else {
            return Ok(None);
        };
        Ok(Some(GroupObserved {
            id: g.group_id().unwrap_or_default().to_string(),
            ingress: ingress::managed(g.ip_permissions()),
            sources: self.sources(aws).await?,
            tags: from_sdk(g.tags()),
        }))
    }

    fn tags(o: &GroupObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &GroupObserved) -> Vec<Change> {
        let mut d = Vec::new();
        let want = ingress::resolve(&self.ingress, &o.sources);
        if o.ingress != want {
            d.push(Change::Ingress {
                from: o.ingress.clone(),
                to: want,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&GroupObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let Some(o) = observed else {
            let out = aws
                .ec2
                .create_security_group()
                .group_name(&self.name)
                .description(&self.description)
                .vpc_id(&self.vpc_id)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .set_tags(Some(to_sdk(&self.tags)))
                        .build(),
                )
                .send()
                .await
                .map_err(error("ec2:CreateSecurityGroup"))?;
            let id = created("ec2:CreateSecurityGroup", "GroupId", out.group_id())?;
            return self.sync_ingress(aws, id, &BTreeSet::new()).await;
        };
        for change in changes {
            match change {
                Change::Ingress { from, .. } => self.sync_ingress(aws, &o.id, from).await?,
                Change::Tags(_) => {
                    aws.ec2
                        .create_tags()
                        .resources(&o.id)
                        .set_tags(Some(to_sdk(&self.tags)))
                        .send()
                        .await
                        .map_err(error("ec2:CreateTags"))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &GroupObserved) -> Result<(), AwsError> {
        // Network interfaces of a deleted load balancer or instance linger for minutes;
        // the group cannot go before they do.
        wait::retrying(
            "ec2:DeleteSecurityGroup",
            aws.timeouts.delete(),
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

/// The security group `name`: in `vpc`, or where `vpc` is unknown (`down` and the
/// stack's inventory read no network), in any VPC, carrying `owner` when given. EC2
/// answers a filter that matches nothing with an empty list: `None`.
async fn find_group(
    aws: &Aws,
    vpc: &str,
    name: &str,
    owner: Option<(&str, &str)>,
) -> Result<Option<SdkGroup>, AwsError> {
    let out = aws
        .ec2
        .describe_security_groups()
        .set_filters(Some(group_filters(vpc, name, owner)))
        .send()
        .await
        .map_err(error("ec2:DescribeSecurityGroups"))?;
    Ok(out.security_groups().first().cloned())
}

/// The id of the security group `name` in `vpc`, if it exists.
pub async fn group_id(aws: &Aws, vpc: &str, name: &str) -> Result<Option<String>, AwsError> {
    Ok(find_group(aws, vpc, name, None)
        .await?
        .and_then(|g| g.group_id().map(str::to_string)))
}

/// The id of the security group `name` in `vpc`; an error when it does not exist.
pub(super) async fn require_group(aws: &Aws, vpc: &str, name: &str) -> Result<String, AwsError> {
    group_id(aws, vpc, name).await?.ok_or_else(|| {
        AwsError::new(
            "ec2:DescribeSecurityGroups",
            format!("security group `{name}` does not exist in {vpc}"),
        )
    })
}

/// Filters for a security group by name: in `vpc` when known, carrying `owner` when given.
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

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};

    use super::*;
    use crate::resources::Change as _;

    fn group() -> SecurityGroup {
        SecurityGroup {
            name: "s-instances".into(),
            description: "d".into(),
            vpc_id: "vpc-1".into(),
            ingress: vec![(8080, Source::Group("s-alb".into()))],
            tags: Tags::new(),
        }
    }

    fn observed(ingress: BTreeSet<Rule>) -> GroupObserved {
        GroupObserved {
            id: "sg-i".into(),
            ingress,
            sources: [("s-alb".to_string(), "sg-a".to_string())].into(),
            tags: Tags::new(),
        }
    }

    fn rule(protocol: &str, from: i32, to: i32, cidr: &str) -> IpPermission {
        IpPermission::builder()
            .ip_protocol(protocol)
            .from_port(from)
            .to_port(to)
            .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
            .build()
    }

    #[test]
    fn group_rules_compare_by_resolved_id() {
        let g = group();
        let mut o = observed([(8080, "sg-a".to_string())].into());
        assert_eq!(g.diff(&o), []);
        o.ingress.insert((22, "0.0.0.0/0".into()));
        let d = g.diff(&o);
        let [Change::Ingress { from, to }] = &d[..] else {
            panic!("{d:?}")
        };
        assert!(from.contains(&(22, "0.0.0.0/0".into())));
        assert_eq!(*to, BTreeSet::from([(8080, "sg-a".to_string())]));
        assert_eq!(d[0].name(), "ingress");
        assert_eq!(g.depends_on(), [Id::new(Kind::SecurityGroup, "s-alb")]);
    }

    #[test]
    fn a_source_group_not_found_yet_is_named() {
        let g = group();
        let mut o = observed([(8080, "sg-a".to_string())].into());
        o.sources.clear();
        let d = g.diff(&o);
        let [Change::Ingress { to, .. }] = &d[..] else {
            panic!("{d:?}")
        };
        assert_eq!(*to, BTreeSet::from([(8080, "?s-alb".to_string())]));
    }

    #[test]
    fn rules_the_tool_never_writes_are_not_drift() {
        // The tool's own rule, plus what someone else added: UDP 53, a TCP range, all
        // traffic. Only the single-port TCP rules are read; the rest is never revoked.
        let mine = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(8080)
            .to_port(8080)
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-a").build())
            .build();
        let everything = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build();
        let permissions = [
            mine,
            rule("udp", 53, 53, "10.0.0.0/8"),
            rule("tcp", 1000, 2000, "10.0.0.0/8"),
            everything,
        ];
        let ingress = ingress::managed(&permissions);
        assert_eq!(ingress, BTreeSet::from([(8080, "sg-a".to_string())]));
        assert_eq!(group().diff(&observed(ingress)), []);
        // A single-port TCP rule is the tool's to manage: one it does not want is drift.
        let ingress = ingress::managed(&[rule("tcp", 22, 22, "0.0.0.0/0")]);
        assert_eq!(ingress, BTreeSet::from([(22, "0.0.0.0/0".to_string())]));
        assert!(matches!(
            group().diff(&observed(ingress))[..],
            [Change::Ingress { .. }]
        ));
    }

    #[test]
    fn the_plan_shows_rules_as_values() {
        let c = Change::Ingress {
            from: BTreeSet::new(),
            to: [(8080, "sg-a".to_string())].into(),
        };
        let f = c.field();
        assert_eq!(f.from, Some(serde_json::json!([])));
        assert_eq!(f.to, serde_json::json!([[8080, "sg-a"]]));
    }
}
