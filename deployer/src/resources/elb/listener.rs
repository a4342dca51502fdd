//! The load balancer's HTTP listener on the manifest's port, forwarding everything to
//! the target group. A listener has no name of its own: the stack calls it
//! `<load balancer>:<port>` and finds it by its port.

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};

use super::load_balancer::find_load_balancer;
use super::target_group::{find_target_group, target_group_arn};
use super::{add_tags, once, tags_of};
use crate::aws::{Aws, AwsError, FoundExt, Service, create_once, error};
use crate::resources::tags::to_sdk;
use crate::resources::{Field, Follow, Id, Kind, Resource, TagChange, Tags, tag_diff};

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
    /// The target group ARN its default action forwards to.
    pub forwards_to: Option<String>,
    /// The wanted target group's ARN, when it exists.
    pub target_group_arn: Option<String>,
    pub tags: Tags,
}

/// What `up` can change on a listener.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `from` is the ARN it forwards to, `to` the name of the wanted target group.
    Forward {
        from: Option<String>,
        to: String,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Forward { from, to } => Field::new("forward", from.as_ref(), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Resource for Listener {
    type Observed = ListenerObserved;
    type Change = Change;
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

    /// AWS refuses to delete a target group a listener forwards to: the listener goes
    /// first and comes back with the new group.
    fn follows(&self, dependency: &Id) -> Follow {
        match dependency.kind {
            Kind::TargetGroup => Follow::Replace,
            _ => Follow::Recheck,
        }
    }

    async fn find(&self, aws: &Aws) -> Result<Option<ListenerObserved>, AwsError> {
        let Some(l) = find_listener(aws, &self.load_balancer, self.port).await? else {
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

    fn diff(&self, o: &ListenerObserved) -> Vec<Change> {
        let mut d = Vec::new();
        if !forwards_to_target_group(o) {
            d.push(Change::Forward {
                from: o.forwards_to.clone(),
                to: self.target_group.clone(),
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&ListenerObserved>,
        changes: &[Change],
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
                        .default_actions(forward(&tg))
                        .set_tags(Some(to_sdk(&self.tags)))
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
        for change in changes {
            match change {
                // To the group's ARN as it is now (it may have been replaced since).
                Change::Forward { .. } => {
                    aws.elb
                        .modify_listener()
                        .listener_arn(&o.arn)
                        .default_actions(forward(&tg))
                        .send()
                        .await
                        .map_err(error("elasticloadbalancing:ModifyListener"))?;
                }
                Change::Tags(_) => add_tags(aws, &o.arn, &self.tags).await?,
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

/// Everything to the target group `target_group_arn`.
fn forward(target_group_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

/// The listeners of the load balancer called `load_balancer`; none when it does not
/// exist.
async fn find_listeners(
    aws: &Aws,
    load_balancer: &str,
) -> Result<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>, AwsError> {
    let Some(arn) = find_load_balancer(aws, load_balancer)
        .await?
        .and_then(|l| l.load_balancer_arn)
    else {
        return Ok(Vec::new());
    };
    Ok(aws
        .elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(error("elasticloadbalancing:DescribeListeners"))?
        .listeners
        .unwrap_or_default())
}

/// The listener of `load_balancer` on `port`, if there is one.
async fn find_listener(
    aws: &Aws,
    load_balancer: &str,
    port: u16,
) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::Listener>, AwsError> {
    Ok(find_listeners(aws, load_balancer)
        .await?
        .into_iter()
        .find(|l| l.port() == Some(port.into())))
}

/// The ports `load_balancer` listens on, for the stack's inventory (a listener on a
/// port the manifest no longer names is the stack's to delete). None when it does not
/// exist.
pub async fn listener_ports(aws: &Aws, load_balancer: &str) -> Result<Vec<u16>, AwsError> {
    Ok(find_listeners(aws, load_balancer)
        .await?
        .iter()
        .filter_map(|l| l.port().and_then(|p| u16::try_from(p).ok()))
        .collect())
}

/// Whether the listener forwards to the wanted target group (which must exist).
fn forwards_to_target_group(o: &ListenerObserved) -> bool {
    o.forwards_to.is_some() && o.forwards_to == o.target_group_arn
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn listener() -> Listener {
        Listener {
            name: "s-alb:80".into(),
            load_balancer: "s-alb".into(),
            port: 80,
            target_group: "s-tg".into(),
            tags: Tags::new(),
        }
    }

    #[test]
    fn a_listener_forwarding_elsewhere_is_drift() {
        let l = listener();
        let mut o = ListenerObserved {
            arn: "arn".into(),
            forwards_to: Some("arn:tg/s-tg".into()),
            target_group_arn: Some("arn:tg/s-tg".into()),
            tags: Tags::new(),
        };
        assert_eq!(l.diff(&o), []);
        o.forwards_to = Some("arn:tg/other".into());
        let d = l.diff(&o);
        assert_eq!(
            d,
            [Change::Forward {
                from: Some("arn:tg/other".into()),
                to: "s-tg".into()
            }]
        );
        assert_eq!(d[0].field().to_string(), "forward: arn:tg/other → s-tg");
        // Forwarding nowhere, to a group that does not exist yet: still drift.
        o.forwards_to = None;
        o.target_group_arn = None;
        assert!(matches!(
            l.diff(&o)[..],
            [Change::Forward { from: None, .. }]
        ));
        assert_eq!(
            l.depends_on(),
            [
                Id::new(Kind::LoadBalancer, "s-alb"),
                Id::new(Kind::TargetGroup, "s-tg")
            ]
        );
    }

    #[test]
    fn a_replaced_target_group_takes_the_listener_with_it() {
        let l = listener();
        let [balancer, group] = &l.depends_on()[..] else {
            panic!()
        };
        assert_eq!(l.follows(group), Follow::Replace);
        assert_eq!(l.follows(balancer), Follow::Recheck);
    }
}
