//! The Application Load Balancer in front of the ECS service: the load balancer, the
//! target group (health check on the predictor's readiness path, short deregistration
//! delay) and the HTTP listener forwarding to it.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, Tag,
    TargetGroupAttribute, TargetTypeEnum,
};

use super::{Field, Id, Kind, Resource, Tags, tag_field};
use crate::aws::{Aws, AwsError, FoundExt, Service, create_once, error};
use crate::resources::ec2;
use crate::wait::{self, Poll};

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

async fn tags_of(aws: &Aws, arn: &str) -> Result<Tags, AwsError> {
    Ok(aws
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeTags"))?
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect())
}

async fn add_tags(aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
    aws.elb
        .add_tags()
        .resource_arns(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(error("elasticloadbalancing:AddTags"))?;
    Ok(())
}

/// A call's config without the SDK's retries, for [`create_once`].
fn once() -> aws_sdk_elasticloadbalancingv2::config::Builder {
    aws_sdk_elasticloadbalancingv2::config::Builder::default()
        .retry_config(aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig::disabled())
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

/// The target group called `name`, if it exists.
pub async fn find_target_group(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::TargetGroup>, AwsError> {
    Ok(aws
        .elb
        .describe_target_groups()
        .names(name)
        .send()
        .await
        .found(Service::Elb, "elasticloadbalancing:DescribeTargetGroups")?
        .and_then(|o| o.target_groups().first().cloned()))
}

pub async fn target_group_arn(aws: &Aws, name: &str) -> Result<String, AwsError> {
    find_target_group(aws, name)
        .await?
        .and_then(|t| t.target_group_arn)
        .ok_or_else(|| {
            AwsError::new(
                "elasticloadbalancing:DescribeTargetGroups",
                format!("target group `{name}` does not exist"),
            )
        })
}

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
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub security_group_id: Option<String>,
    pub tags: Tags,
}

impl Resource for LoadBalancer {
    type Observed = BalancerObserved;
    type Change = Field;
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

    fn diff(&self, o: &BalancerObserved) -> Vec<Field> {
        let mut d = Vec::new();
        let mut want = self.subnets.clone();
        want.sort();
        if o.subnets != want {
            d.push(Field::new("subnets", Some(&o.subnets), want));
        }
        let group = o.security_group_id.clone().unwrap_or_default();
        if o.security_groups != [group.clone()] {
            d.push(Field::new(
                "security_groups",
                Some(&o.security_groups),
                [group],
            ));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&BalancerObserved>,
        diff: &[Field],
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
            // AWS makes this call idempotent by name; moto makes a second balancer.
            create_once(
                "elasticloadbalancing:CreateLoadBalancer",
                || async {
                    aws.elb
                        .create_load_balancer()
                        .name(&self.name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(LoadBalancerSchemeEnum::InternetFacing)
                        .set_subnets(Some(self.subnets.clone()))
                        .security_groups(&group)
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .customize()
                        .config_override(once())
                        .send()
                        .await
                        .map(|_| ())
                },
                || async { Ok(find_load_balancer(aws, &self.name).await?.map(|_| ())) },
            )
            .await?;
            return Ok(());
        };
        for f in diff {
            match f.name {
                "subnets" => {
                    aws.elb
                        .set_subnets()
                        .load_balancer_arn(&o.arn)
                        .set_subnets(Some(self.subnets.clone()))
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:SetSubnets"))?;
                }
                "security_groups" => {
                    aws.elb
                        .set_security_groups()
                        .load_balancer_arn(&o.arn)
                        .security_groups(&group)
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:SetSecurityGroups"))?;
                }
                "tags" => add_tags(aws, &o.arn, &self.tags).await?,
                _ => {}
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
        // Its network interfaces keep the security group busy until it is fully gone.
        wait::until(
            "elasticloadbalancing:DeleteLoadBalancer",
            Duration::from_secs(600),
            Duration::from_secs(5),
            || async {
                Ok(match find_load_balancer(aws, &self.name).await? {
                    None => Poll::Ready(()),
                    Some(_) => Poll::Pending("load balancer still exists".into()),
                })
            },
        )
        .await
    }

    fn detail(o: &BalancerObserved) -> String {
        format!("http://{}/predict ({})", o.dns_name, o.state)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    pub name: String,
    pub vpc_id: String,
    pub port: u16,
    pub health_path: String,
    /// Seconds a draining target keeps its connections.
    pub deregistration_delay_s: u32,
    pub tags: Tags,
}

/// The settings of a target group this tool manages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetSettings {
    pub port: u16,
    pub vpc_id: String,
    pub health_path: String,
    pub deregistration_delay_s: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupObserved {
    pub arn: String,
    pub settings: TargetSettings,
    /// Healthy targets out of registered ones.
    pub healthy: usize,
    pub registered: usize,
    pub tags: Tags,
}

impl TargetGroup {
    fn settings(&self) -> TargetSettings {
        TargetSettings {
            port: self.port,
            vpc_id: self.vpc_id.clone(),
            health_path: self.health_path.clone(),
            deregistration_delay_s: self.deregistration_delay_s,
        }
    }

    async fn put_attributes(&self, aws: &Aws, arn: &str) -> Result<(), AwsError> {
        aws.elb
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(self.deregistration_delay_s.to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(error("elasticloadbalancing:ModifyTargetGroupAttributes"))?;
        Ok(())
    }
}

impl Resource for TargetGroup {
    type Observed = GroupObserved;
    type Change = Field;
    const KIND: Kind = Kind::TargetGroup;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<GroupObserved>, AwsError> {
        let Some(tg) = find_target_group(aws, &self.name).await? else {
            return Ok(None);
        };
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        let delay = aws
            .elb
            .describe_target_group_attributes()
            .target_group_arn(&arn)
            .send()
            .await
            .map_err(error("elasticloadbalancing:DescribeTargetGroupAttributes"))?
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value()?.parse().ok())
            .unwrap_or(300);
        let health = aws
            .elb
            .describe_target_health()
            .target_group_arn(&arn)
            .send()
            .await
            .map_err(error("elasticloadbalancing:DescribeTargetHealth"))?;
        let targets = health.target_health_descriptions();
        Ok(Some(GroupObserved {
            settings: TargetSettings {
                port: tg.port().unwrap_or_default() as u16,
                vpc_id: tg.vpc_id().unwrap_or_default().to_string(),
                health_path: tg.health_check_path().unwrap_or_default().to_string(),
                deregistration_delay_s: delay,
            },
            healthy: targets
                .iter()
                .filter(|t| {
                    t.target_health()
                        .and_then(|h| h.state())
                        .is_some_and(|s| s.as_str() == "healthy")
                })
                .count(),
            registered: targets.len(),
            tags: tags_of(aws, &arn).await?,
            arn,
        }))
    }

    fn tags(o: &GroupObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &GroupObserved) -> Vec<Field> {
        let mut d = Vec::new();
        let want = self.settings();
        let have = &o.settings;
        if have.port != want.port || have.vpc_id != want.vpc_id {
            // Port and VPC are fixed at creation: the group must be replaced (by hand).
            d.push(Field::new(
                "port_or_vpc (replace)",
                Some(format!("{} in {}", have.port, have.vpc_id)),
                format!("{} in {}", want.port, want.vpc_id),
            ));
        }
        if have.health_path != want.health_path {
            d.push(Field::new(
                "health_path",
                Some(&have.health_path),
                &want.health_path,
            ));
        }
        if have.deregistration_delay_s != want.deregistration_delay_s {
            d.push(Field::new(
                "deregistration_delay_s",
                Some(have.deregistration_delay_s),
                want.deregistration_delay_s,
            ));
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
        let Some(o) = observed else {
            let out = aws
                .elb
                .create_target_group()
                .name(&self.name)
                .protocol(ProtocolEnum::Http)
                .port(self.port.into())
                .vpc_id(&self.vpc_id)
                // Host networking: one task per instance, registered by instance id.
                .target_type(TargetTypeEnum::Instance)
                .health_check_path(&self.health_path)
                .health_check_interval_seconds(10)
                .healthy_threshold_count(2)
                .unhealthy_threshold_count(3)
                .set_tags(Some(sdk_tags(&self.tags)))
                .send()
                .await
                .map_err(error("elasticloadbalancing:CreateTargetGroup"))?;
            let arn = out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .unwrap_or_default()
                .to_string();
            return self.put_attributes(aws, &arn).await;
        };
        for f in diff {
            match f.name {
                "port_or_vpc (replace)" => {
                    return Err(AwsError::new(
                        "elasticloadbalancing:ModifyTargetGroup",
                        format!(
                            "target group `{}` cannot change port or VPC in place: run `deployer down` first",
                            self.name
                        ),
                    ));
                }
                "health_path" => {
                    aws.elb
                        .modify_target_group()
                        .target_group_arn(&o.arn)
                        .health_check_path(&self.health_path)
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:ModifyTargetGroup"))?;
                }
                "deregistration_delay_s" => self.put_attributes(aws, &o.arn).await?,
                "tags" => add_tags(aws, &o.arn, &self.tags).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &GroupObserved) -> Result<(), AwsError> {
        aws.elb
            .delete_target_group()
            .target_group_arn(&o.arn)
            .send()
            .await
            .found(Service::Elb, "elasticloadbalancing:DeleteTargetGroup")?;
        Ok(())
    }

    fn detail(o: &GroupObserved) -> String {
        format!(
            "{} healthy of {} registered, health check {}",
            o.healthy, o.registered, o.settings.health_path
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// `<load balancer>:<port>`: a listener has no name of its own.
    pub name: String,
    pub load_balancer: String,
    pub port: u16,
    pub target_group: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerObserved {
    pub arn: String,
    pub forwards_to: Option<String>,
    pub target_group_arn: Option<String>,
    pub tags: Tags,
}

/// The ports `load_balancer` listens on, for the stack's inventory (a listener on a
/// port the manifest no longer names is the stack's to delete). None when it does not
/// exist.
pub async fn listener_ports(aws: &Aws, load_balancer: &str) -> Result<Vec<u16>, AwsError> {
    let Some(arn) = find_load_balancer(aws, load_balancer)
        .await?
        .and_then(|l| l.load_balancer_arn)
    else {
        return Ok(Vec::new());
    };
    let listeners = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeListeners"))?;
    Ok(listeners
        .listeners()
        .iter()
        .filter_map(|l| l.port().and_then(|p| u16::try_from(p).ok()))
        .collect())
}

impl Listener {
    fn forward(target_group_arn: &str) -> Action {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(target_group_arn)
            .build()
    }
}

impl Resource for Listener {
    type Observed = ListenerObserved;
    type Change = Field;
    const KIND: Kind = Kind::Listener;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![
            Id::new(Kind::LoadBalancer, &self.load_balancer),
            Id::new(Kind::TargetGroup, &self.target_group),
        ]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ListenerObserved>, AwsError> {
        let Some(lb) = find_load_balancer(aws, &self.load_balancer).await? else {
            return Ok(None);
        };
        let listeners = aws
            .elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap_or_default())
            .send()
            .await
            .map_err(error("elasticloadbalancing:DescribeListeners"))?;
        let Some(l) = listeners
            .listeners()
            .iter()
            .find(|l| l.port() == Some(self.port.into()))
        else {
            return Ok(None);
        };
        let arn = l.listener_arn().unwrap_or_default().to_string();
        Ok(Some(ListenerObserved {
            forwards_to: l
                .default_actions()
                .iter()
                .find_map(|a| a.target_group_arn())
                .map(str::to_string),
            target_group_arn: find_target_group(aws, &self.target_group)
                .await?
                .and_then(|t| t.target_group_arn),
            tags: tags_of(aws, &arn).await?,
            arn,
        }))
    }

    fn tags(o: &ListenerObserved) -> &Tags {
        &o.tags
    }

    fn diff(&self, o: &ListenerObserved) -> Vec<Field> {
        let mut d = Vec::new();
        if o.forwards_to.is_none() || o.forwards_to != o.target_group_arn {
            d.push(Field::new(
                "forward",
                o.forwards_to.as_ref(),
                &self.target_group,
            ));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ListenerObserved>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let tg = target_group_arn(aws, &self.target_group).await?;
        let Some(o) = observed else {
            let lb = find_load_balancer(aws, &self.load_balancer)
                .await?
                .and_then(|l| l.load_balancer_arn)
                .ok_or_else(|| {
                    AwsError::new(
                        "elasticloadbalancing:CreateListener",
                        format!("load balancer `{}` does not exist", self.load_balancer),
                    )
                })?;
            // AWS makes this call idempotent; moto makes a second listener on the port.
            create_once(
                "elasticloadbalancing:CreateListener",
                || async {
                    aws.elb
                        .create_listener()
                        .load_balancer_arn(&lb)
                        .protocol(ProtocolEnum::Http)
                        .port(self.port.into())
                        .default_actions(Listener::forward(&tg))
                        .set_tags(Some(sdk_tags(&self.tags)))
                        .customize()
                        .config_override(once())
                        .send()
                        .await
                        .map(|_| ())
                },
                || async { Ok(self.find(aws).await?.map(|_| ())) },
            )
            .await?;
            return Ok(());
        };
        for f in diff {
            match f.name {
                "forward" => {
                    aws.elb
                        .modify_listener()
                        .listener_arn(&o.arn)
                        .default_actions(Listener::forward(&tg))
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:ModifyListener"))?;
                }
                "tags" => add_tags(aws, &o.arn, &self.tags).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &ListenerObserved) -> Result<(), AwsError> {
        aws.elb
            .delete_listener()
            .listener_arn(&o.arn)
            .send()
            .await
            .found(Service::Elb, "elasticloadbalancing:DeleteListener")?;
        Ok(())
    }

    fn detail(o: &ListenerObserved) -> String {
        format!(
            "forwards to {}",
            o.forwards_to.as_deref().unwrap_or("nothing")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg() -> TargetGroup {
        TargetGroup {
            name: "s-tg".into(),
            vpc_id: "vpc-1".into(),
            port: 8080,
            health_path: "/readyz".into(),
            deregistration_delay_s: 30,
            tags: Tags::new(),
        }
    }

    #[test]
    fn target_group_drift_is_named_and_port_needs_replacement() {
        let t = tg();
        let mut o = GroupObserved {
            arn: "arn".into(),
            settings: t.settings(),
            healthy: 0,
            registered: 0,
            tags: Tags::new(),
        };
        assert_eq!(t.diff(&o), []);
        o.settings.deregistration_delay_s = 300;
        o.settings.health_path = "/".into();
        o.settings.port = 80;
        let names: Vec<&str> = t.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "port_or_vpc (replace)",
                "health_path",
                "deregistration_delay_s"
            ]
        );
    }

    #[test]
    fn a_listener_forwarding_elsewhere_is_drift() {
        let l = Listener {
            name: "s-alb:80".into(),
            load_balancer: "s-alb".into(),
            port: 80,
            target_group: "s-tg".into(),
            tags: Tags::new(),
        };
        let mut o = ListenerObserved {
            arn: "arn".into(),
            forwards_to: Some("arn:tg/s-tg".into()),
            target_group_arn: Some("arn:tg/s-tg".into()),
            tags: Tags::new(),
        };
        assert_eq!(l.diff(&o), []);
        o.forwards_to = Some("arn:tg/other".into());
        assert_eq!(l.diff(&o)[0].name, "forward");
        assert_eq!(
            l.depends_on(),
            [
                Id::new(Kind::LoadBalancer, "s-alb"),
                Id::new(Kind::TargetGroup, "s-tg")
            ]
        );
    }
}
