//! The network the serverful target runs in: looked up, never created. The load
//! balancer takes the VPC's subnets, the instances those in a zone that offers their
//! type.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, LocationType};

use crate::aws::{Aws, AwsError, error};

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
    let vpc_id = match vpc_id {
        Some(v) => v.to_string(),
        None => default_vpc(aws).await?,
    };
    let chosen = subnet_zones(aws, &vpc_id, subnets).await?;
    let zones: BTreeSet<String> = chosen.iter().map(|(_, zone)| zone.clone()).collect();
    if zones.len() < 2 {
        let which = if subnets.is_empty() {
            "default subnets"
        } else {
            "subnets"
        };
        return Err(AwsError::new(
            "ec2:DescribeSubnets",
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
        return Err(not_offered(instance_type, &vpc_id, &zones_without_type));
    }
    Ok(Network {
        vpc_id,
        subnets: chosen.into_iter().map(|(id, _)| id).collect(),
        instance_subnets,
        zones_without_type,
    })
}

/// The region's default VPC.
async fn default_vpc(aws: &Aws) -> Result<String, AwsError> {
    aws.ec2
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
        })
}

/// `(subnet, zone)` of the given subnets of `vpc_id`, all of them however many per zone,
/// or of its default subnets (one per zone) when none are given; sorted.
async fn subnet_zones(
    aws: &Aws,
    vpc_id: &str,
    subnets: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let mut request = aws
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build());
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
    let found = request.send().await.map_err(error("ec2:DescribeSubnets"))?;
    let mut chosen: Vec<(String, String)> = found
        .subnets()
        .iter()
        .filter_map(|s| {
            Some((
                s.subnet_id()?.to_string(),
                s.availability_zone()?.to_string(),
            ))
        })
        .collect();
    chosen.sort();
    Ok(chosen)
}

/// No zone of the subnets offers `instance_type`: which zones, and how to find ones that do.
fn not_offered(instance_type: &str, vpc_id: &str, zones: &[String]) -> AwsError {
    AwsError::new(
        "ec2:DescribeInstanceTypeOfferings",
        format!(
            "`{instance_type}` is not offered in any availability zone of the subnets of VPC \
             {vpc_id} ({})",
            zones.join(", ")
        ),
    )
    .with_hint(format!(
        "set `serverful.network.subnets` to subnets in zones that offer it (`aws ec2 \
         describe-instance-type-offerings --location-type availability-zone --filters \
         Name=instance-type,Values={instance_type}` lists them), or pick another \
         `serverful.instance_type`"
    ))
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
