//! What the stack owns in AWS, whatever its manifest asks for now. `up` deletes what the
//! stack owns and no longer wants (a target switched off, a renamed bucket or
//! repository, a listener on a port the manifest no longer names); `down` deletes all
//! of it, without looking up the network, the AMI or the image, so a stack whose
//! subnets are gone can still be torn down.
//!
//! Two sources, each as close to AWS's own index as it reaches:
//! - the stack's shape ([`stack::shape`]): every resource the stack's names can denote,
//!   both targets on, each found by name as `up` finds it and counted only when it
//!   carries the stack's tag. Most names derive from the stack's name alone;
//! - for what the manifest names itself, what carries the stack's tag: buckets through
//!   the Resource Groups Tagging API (one call for the region), repositories by
//!   listing them (ECR has no tag filter), and the ports the stack's load balancer
//!   listens on.

use std::collections::BTreeSet;

use crate::aws::{Aws, AwsError};
use crate::manifest::Manifest;
use crate::resources::{Id, Kind, Node, ecr, elb, s3};
use crate::stack::{self, Account};

/// Every resource the stack may own: its shape, and what carries its tag under a name
/// the manifest no longer gives.
pub async fn owned(
    aws: &Aws,
    m: &Manifest,
    account: &Account,
) -> Result<Vec<Box<dyn Node>>, AwsError> {
    let mut nodes = stack::shape(m, account);
    let names = m.names();
    let tags = m.resource_tags();
    let mut extra: Vec<Box<dyn Node>> = Vec::new();
    for name in s3::owned(aws, &m.name).await? {
        extra.push(Box::new(s3::Bucket {
            name,
            setting: "buckets",
            region: m.region.clone(),
            partition: account.partition.clone(),
            public: false,
            expire_after_days: 0,
            tags: tags.clone(),
        }));
    }
    for name in ecr::owned(aws, &m.name).await? {
        extra.push(Box::new(ecr::Repository {
            name,
            scan_on_push: false,
            keep_last: 0,
            lambda_pull: None,
            tags: tags.clone(),
        }));
    }
    for port in elb::listener_ports(aws, &names.load_balancer).await? {
        extra.push(Box::new(elb::Listener {
            name: format!("{}:{port}", names.load_balancer),
            load_balancer: names.load_balancer.clone(),
            port,
            target_group: names.target_group.clone(),
            tags: tags.clone(),
        }));
    }
    let known: BTreeSet<Id> = nodes.iter().map(|n| n.id()).collect();
    nodes.extend(extra.into_iter().filter(|n| !known.contains(&n.id())));
    Ok(nodes)
}

/// What of the stack is still in AWS, each found by the finder `up` and `down` use:
/// after `down`, nothing (the integration tests' destroy check).
pub async fn remaining(aws: &Aws, m: &Manifest) -> Result<Vec<Id>, AwsError> {
    let account = Account::of(aws, m).await?;
    let mut left = Vec::new();
    for node in owned(aws, m, &account).await? {
        let seen = node.observe(aws, &m.name).await?;
        if seen.exists {
            left.push(seen.id);
        }
    }
    Ok(left)
}

/// The resources of `owned` that `desired` does not hold, in their order.
pub fn unwanted(desired: &[Box<dyn Node>], owned: Vec<Box<dyn Node>>) -> Vec<Box<dyn Node>> {
    let wanted: BTreeSet<Id> = desired.iter().map(|n| n.id()).collect();
    owned
        .into_iter()
        // The image is what the repository holds, not a resource of its own to delete.
        .filter(|n| n.id().kind != Kind::Image && !wanted.contains(&n.id()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Manifest {
        Manifest::parse(std::path::Path::new("t.yaml"), yaml).unwrap()
    }

    fn account() -> Account {
        Account {
            id: "123456789012".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
        }
    }

    fn ids(nodes: &[Box<dyn Node>]) -> Vec<String> {
        nodes.iter().map(|n| n.id().to_string()).collect()
    }

    #[test]
    fn the_shape_holds_both_targets_whatever_the_manifest_enables() {
        let off = manifest(
            "name: s\nregion: us-east-1\nserverful: {enabled: false}\nserverless: {enabled: false}\n",
        );
        let shape = ids(&stack::shape(&off, &account()));
        for id in [
            "ecs service `s-predictor`",
            "security group `s-alb`",
            "lambda function `s-predictor`",
            "http api `s-api`",
            "s3 bucket `s-input`",
        ] {
            assert!(shape.contains(&id.to_string()), "{id} in {shape:?}");
        }
        assert_eq!(
            crate::plan::check_graph(&stack::shape(&off, &account())),
            Ok(())
        );
    }

    #[test]
    fn switching_a_target_off_leaves_exactly_its_resources_unwanted() {
        let on = manifest("name: s\nregion: us-east-1\n");
        let off = manifest("name: s\nregion: us-east-1\nserverless: {enabled: false}\n");
        let desired = stack::desired(&off, &stack::tests::context());
        let gone = ids(&unwanted(&desired, stack::shape(&on, &account())));
        assert_eq!(
            gone,
            [
                "iam role `s-lambda`",
                "log group `/aws/lambda/s-predictor`",
                "lambda function `s-predictor`",
                "http api `s-api`",
            ]
        );
    }
}
