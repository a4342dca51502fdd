//! The internet-facing Application Load Balancer in the stack's subnets, behind its own
//! security group.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancerSchemeEnum, LoadBalancerTypeEnum};

use super::{add_tags, once, tags_of};
use crate::aws::{Aws, AwsError, FoundExt, Service, create_once, error};
use crate::resources::tags::to_sdk;
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, ec2, tag_diff};
use crate::wait::{self, Poll};

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    pub name: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BalancerObserved {
    pub arn: String,
    pub dns_name: String,
    pub state: String,
    /// Sorted.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The id of the wanted security group, when it exists.
    pub security_group_id: Option<String>,
    pub tags: Tags,
}

/// What `up` can change on a load balancer.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Sorted subnet ids.
    Subnets {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// `to` is the wanted group's id, or its name while it does not exist yet.
    SecurityGroups {
        from: Vec<String>,
        to: Vec<String>,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Subnets { from, to } => Field::new("subnets", Some(from), to),
            Change::SecurityGroups { from, to } => Field::new("security_groups", Some(from), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Resource for LoadBalancer {
    type Observed = BalancerObserved;
    type Change = Change;
    const KIND: Kind = Kind::LoadBalancer;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::SecurityGroup, &self.security_group)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<BalancerObserved>, AwsError> {
        let Some(lb) = find_load_balancer(aws, &self.name).await? else {
            return Ok(None);
        };
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let mut subnets: Vec<String> = lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect();
        subnets.sort();
        Ok(Some(BalancerObserved {
            dns_name: lb.dns_name().unwrap_or_default().to_string(),
            state: lb
                .state()
                .and_then(|s| s.code())
                .map_or("", |c| c.as_str())
                .to_string(),
            subnets,
            security_groups: lb.security_groups().to_vec(),
            security_group_id: ec2::group_id(aws, &self.vpc_id, &self.security_group).await?,
            tags: tags_of(aws, &arn).await?,
            arn,
        }))
    }

    fn tags(o: &BalancerObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &BalancerObserved) -> Vec<Change> {
        let mut d = Vec::new();
        let want = self.sorted_subnets();
        if o.subnets != want {
            d.push(Change::Subnets {
                from: o.subnets.clone(),
                to: want,
            });
        }
        if !has_only_group(o) {
            d.push(Change::SecurityGroups {
                from: o.security_groups.clone(),
                to: vec![
                    o.security_group_id
                        .clone()
                        .unwrap_or_else(|| self.security_group.clone()),
                ],
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&BalancerObserved>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let group = ec2::group_id(aws, &self.vpc_id, &self.security_group)
            .await?
            .ok_or_else(|| {
                AwsError::new(
                    "elasticloadbalancing:CreateLoadBalancer",
                    format!("security group `{}` does not exist", self.security_group),
                )
            })?;
        let Some(o) = observed else {
            return self.create(aws, &group).await;
        };
        for change in changes {
            match change {
                Change::Subnets { .. } => {
                    aws.elb
                        .set_subnets()
                        .load_balancer_arn(&o.arn)
                        .set_subnets(Some(self.subnets.clone()))
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:SetSubnets"))?;
                }
                // The group's id as it is now (it may have been made since the plan).
                Change::SecurityGroups { .. } => {
                    aws.elb
                        .set_security_groups()
                        .load_balancer_arn(&o.arn)
                        .security_groups(&group)
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:SetSecurityGroups"))?;
                }
                Change::Tags(_) => add_tags(aws, &o.arn, &self.tags).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &BalancerObserved) -> Result<(), AwsError> {
        aws.elb
            .delete_load_balancer()
            .load_balancer_arn(&o.arn)
            .send()
            .await
            .found(Service::Elb, "elasticloadbalancing:DeleteLoadBalancer")?;
        wait_load_balancer_deleted(aws, &self.name, aws.timeouts.delete()).await
    }

    fn detail(o: &BalancerObserved) -> String {
        format!("http://{}/predict ({})", o.dns_name, o.state)
    }
}

impl LoadBalancer {
    /// AWS makes this call idempotent by name; moto makes a second balancer.
    async fn create(&self, aws: &Aws, group: &str) -> Result<(), AwsError> {
        create_once(
            "elasticloadbalancing:CreateLoadBalancer",
            || async {
                aws.elb
                    .create_load_balancer()
                    .name(&self.name)
                    .r#type(LoadBalancerTypeEnum::Application)
                    .scheme(LoadBalancerSchemeEnum::InternetFacing)
                    .set_subnets(Some(self.subnets.clone()))
                    .security_groups(group)
                    .set_tags(Some(to_sdk(&self.tags)))
                    .customize()
                    .config_override(once())
                    .send()
                    .await
                    .map(|_| ())
            },
            || async { Ok(find_load_balancer(aws, &self.name).await?.map(|_| ())) },
        )
        .await
    }

    fn sorted_subnets(&self) -> Vec<String> {
        let mut subnets = self.subnets.clone();
        subnets.sort();
        subnets
    }
}

/// The load balancer called `name`, if it exists.
pub async fn find_load_balancer(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>, AwsError> {
    Ok(aws
        .elb
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .found(Service::Elb, "elasticloadbalancing:DescribeLoadBalancers")?
        .and_then(|o| o.load_balancers().first().cloned()))
}

/// Waits until the load balancer called `name` is gone: its network interfaces keep
/// its security group busy until then.
async fn wait_load_balancer_deleted(
    aws: &Aws,
    name: &str,
    timeout: Duration,
) -> Result<(), AwsError> {
    wait::until(
        "elasticloadbalancing:DeleteLoadBalancer",
        timeout,
        Duration::from_secs(5),
        || async {
            Ok(match find_load_balancer(aws, name).await? {
                None => Poll::Ready(()),
                Some(_) => Poll::Pending("load balancer still exists".into()),
            })
        },
    )
    .await
}

/// Whether the balancer is behind the wanted security group and no other. A group that
/// does not exist yet is never the one it has.
fn has_only_group(o: &BalancerObserved) -> bool {
    o.security_group_id
        .as_ref()
        .is_some_and(|id| o.security_groups == [id.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn desired() -> LoadBalancer {
        LoadBalancer {
            name: "s-alb".into(),
            vpc_id: "vpc-1".into(),
            subnets: vec!["subnet-b".into(), "subnet-a".into()],
            security_group: "s-alb-sg".into(),
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(lb: &LoadBalancer) -> BalancerObserved {
        BalancerObserved {
            arn: "arn".into(),
            dns_name: "s-alb.elb".into(),
            state: "active".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_groups: vec!["sg-1".into()],
            security_group_id: Some("sg-1".into()),
            tags: lb.tags.clone(),
        }
    }

    #[test]
    fn in_sync_balancer_has_no_diff() {
        let lb = desired();
        assert_eq!(lb.diff(&in_sync(&lb)), []);
    }

    #[test]
    fn each_drift_is_named() {
        let lb = desired();
        let mut o = in_sync(&lb);
        o.subnets = vec!["subnet-a".into()];
        o.security_groups = vec!["sg-1".into(), "sg-other".into()];
        o.tags.clear();
        let d = lb.diff(&o);
        let names: Vec<&str> = d.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["subnets", "security_groups", "tags"]);
        assert_eq!(
            d[0],
            Change::Subnets {
                from: vec!["subnet-a".into()],
                to: vec!["subnet-a".into(), "subnet-b".into()],
            }
        );
        assert_eq!(d[1].field().to, serde_json::json!(["sg-1"]));
    }

    /// The plan names the group it will attach, not an empty id.
    #[test]
    fn a_group_not_made_yet_is_shown_by_name() {
        let lb = desired();
        let mut o = in_sync(&lb);
        o.security_group_id = None;
        let d = lb.diff(&o);
        assert_eq!(
            d,
            [Change::SecurityGroups {
                from: vec!["sg-1".into()],
                to: vec!["s-alb-sg".into()],
            }]
        );
        assert_eq!(
            d[0].field().to_string(),
            r#"security_groups: ["sg-1"] → ["s-alb-sg"]"#
        );
    }
}
