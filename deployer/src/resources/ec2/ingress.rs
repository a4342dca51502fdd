//! A security group's ingress rules as this tool sees them: TCP to one port, from a
//! CIDR or another group. Which of a group's rules are the tool's (any other kind, a
//! port range or another protocol, is someone else's: never drift, never revoked), how
//! a desired rule reads once its source group is resolved, and how a difference is
//! revoked and authorized.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, UserIdGroupPair};

use crate::aws::{Aws, AwsError, error};

/// Where an ingress rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Cidr(String),
    /// Another security group of the stack, by name.
    Group(String),
}

/// One ingress rule as EC2 holds it: a TCP port and a CIDR or a group id (`sg-…`).
pub type Rule = (u16, String);

/// The rules `ingress` asks for, group names replaced by their `ids` (`?name` when not
/// found).
pub fn resolve(ingress: &[(u16, Source)], ids: &BTreeMap<String, String>) -> BTreeSet<Rule> {
    ingress
        .iter()
        .map(|(port, s)| {
            let s = match s {
                Source::Cidr(c) => c.clone(),
                Source::Group(g) => ids.get(g).cloned().unwrap_or(format!("?{g}")),
            };
            (*port, s)
        })
        .collect()
}

/// The first source group of `rules` that [`resolve`] did not find.
pub fn unresolved(rules: &BTreeSet<Rule>) -> Option<&str> {
    rules.iter().find_map(|(_, s)| s.strip_prefix('?'))
}

/// Revokes the rules of `have` not in `want`, then authorizes those of `want` not in
/// `have`, on the group `id`.
pub async fn sync(
    aws: &Aws,
    id: &str,
    have: &BTreeSet<Rule>,
    want: &BTreeSet<Rule>,
) -> Result<(), AwsError> {
    let add: Vec<IpPermission> = want.difference(have).map(permission).collect();
    let remove: Vec<IpPermission> = have.difference(want).map(permission).collect();
    if !remove.is_empty() {
        aws.ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(remove))
            .send()
            .await
            .map_err(error("ec2:RevokeSecurityGroupIngress"))?;
    }
    if !add.is_empty() {
        aws.ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(add))
            .send()
            .await
            .map_err(error("ec2:AuthorizeSecurityGroupIngress"))?;
    }
    Ok(())
}

/// `rule` as EC2 takes it.
fn permission((port, source): &Rule) -> IpPermission {
    let p = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port((*port).into())
        .to_port((*port).into());
    if source.starts_with("sg-") {
        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
            .build()
    } else {
        p.ip_ranges(IpRange::builder().cidr_ip(source).build())
            .build()
    }
}

/// The rules among `permissions` that this tool manages (see [`is_managed`]).
pub fn managed(permissions: &[IpPermission]) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in permissions.iter().filter(|p| is_managed(p)) {
        let port = p.from_port().unwrap_or_default() as u16;
        for r in p.ip_ranges() {
            rules.insert((port, r.cidr_ip().unwrap_or_default().to_string()));
        }
        for pair in p.user_id_group_pairs() {
            rules.insert((port, pair.group_id().unwrap_or_default().to_string()));
        }
    }
    rules
}

/// Whether `p` is a kind of rule this tool writes: TCP to one port. Any other (a port
/// range, another protocol, all traffic) is someone else's.
fn is_managed(p: &IpPermission) -> bool {
    p.ip_protocol() == Some("tcp") && p.from_port() == p.to_port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_as_ec2_holds_it() {
        let ingress = [
            (8080, Source::Group("s-alb".into())),
            (80, Source::Cidr("0.0.0.0/0".into())),
        ];
        let ids = [("s-alb".to_string(), "sg-a".to_string())].into();
        let rules = resolve(&ingress, &ids);
        assert_eq!(
            rules,
            BTreeSet::from([(80, "0.0.0.0/0".into()), (8080, "sg-a".into())])
        );
        assert_eq!(unresolved(&rules), None);
        // What `sync` sends reads back as the same rules.
        let sent: Vec<IpPermission> = rules.iter().map(permission).collect();
        assert_eq!(managed(&sent), rules);
        let rules = resolve(&ingress, &BTreeMap::new());
        assert_eq!(unresolved(&rules), Some("s-alb"));
    }
}
