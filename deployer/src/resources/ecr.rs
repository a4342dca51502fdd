//! ECR repository: scan on push, mutable tags, a lifecycle policy keeping the last N
//! images, and when Lambda runs the image, the repository policy that lets it pull;
//! force-deleted (with its images) on `down`.

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
use serde_json::{Value, json};

use super::tags::{from_sdk, to_sdk};
use super::{Field, Kind, Resource, TagChange, Tags, owned_by, tag_diff};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};

#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    pub name: String,
    pub scan_on_push: bool,
    pub keep_last: u32,
    /// The functions that pull the image (`arn:aws:lambda:REGION:ACCOUNT:function:*`),
    /// when the serverless target is on. Lambda pulls a same-account image through the
    /// repository policy; it would add the statement itself only if the deploying
    /// principal held `ecr:GetRepositoryPolicy` and `ecr:SetRepositoryPolicy` (Lambda
    /// guide, container images, Amazon ECR permissions). Without functions the policy is
    /// not managed.
    pub lambda_pull: Option<String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub uri: String,
    pub scan_on_push: bool,
    pub mutable: bool,
    pub lifecycle: Option<Value>,
    pub policy: Option<Value>,
    pub tags: Tags,
}

/// What `up` can change on a repository.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    ScanOnPush {
        from: bool,
        to: bool,
    },
    /// Tags were made immutable: `deployer` moves its tag to each new image.
    TagsMutable,
    Lifecycle {
        from: Option<Value>,
        to: Value,
    },
    Policy {
        from: Option<Value>,
        to: Value,
    },
    Tags(TagChange),
}

impl super::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::ScanOnPush { from, to } => Field::new("scan_on_push", Some(from), to),
            Change::TagsMutable => Field::new("image_tag_mutability", Some("IMMUTABLE"), "MUTABLE"),
            Change::Lifecycle { from, to } => Field::new("lifecycle_policy", Some(from), to),
            Change::Policy { from, to } => Field::new("repository_policy", Some(from), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Repository {
    /// Lambda (only for this account's functions) may read the image's layers.
    fn policy(&self) -> Option<Value> {
        self.lambda_pull.as_ref().map(|functions| {
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "LambdaPull",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Condition": {"StringLike": {"aws:sourceArn": functions}}
            }]})
        })
    }

    async fn put_policy(&self, aws: &Aws, policy: &Value) -> Result<(), AwsError> {
        aws.ecr
            .set_repository_policy()
            .repository_name(&self.name)
            .policy_text(policy.to_string())
            .send()
            .await
            .map_err(error("ecr:SetRepositoryPolicy"))?;
        Ok(())
    }

    fn lifecycle(&self) -> Value {
        json!({"rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {} images", self.keep_last),
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": self.keep_last},
            "action": {"type": "expire"}
        }]})
    }

    async fn put_lifecycle(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.ecr
            .put_lifecycle_policy()
            .repository_name(&self.name)
            .lifecycle_policy_text(self.lifecycle().to_string())
            .send()
            .await
            .map_err(error("ecr:PutLifecyclePolicy"))?;
        Ok(())
    }
}

async fn tags_of(aws: &Aws, arn: &str) -> Result<Tags, AwsError> {
    let out = aws
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(error("ecr:ListTagsForResource"))?;
    Ok(from_sdk(out.tags()))
}

/// The names of the repositories that carry `stack`'s ownership tag, for the stack's
/// inventory (a repository the manifest renamed is still the stack's). ECR has no tag
/// filter of its own: each repository's tags are read.
pub async fn owned(aws: &Aws, stack: &str) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut pages = aws.ecr.describe_repositories().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(error("ecr:DescribeRepositories"))?;
        for repo in page.repositories() {
            let (Some(name), Some(arn)) = (repo.repository_name(), repo.repository_arn()) else {
                continue;
            };
            if owned_by(&tags_of(aws, arn).await?, stack) {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

impl Resource for Repository {
    type Observed = Observed;
    type Change = Change;
    const KIND: Kind = Kind::EcrRepository;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let Some(out) = aws
            .ecr
            .describe_repositories()
            .repository_names(&self.name)
            .send()
            .await
            .found(Service::Ecr, "ecr:DescribeRepositories")?
        else {
            return Ok(None);
        };
        let Some(repo) = out.repositories().first() else {
            return Ok(None);
        };
        let arn = repo.repository_arn().unwrap_or_default().to_string();
        let tags = tags_of(aws, &arn).await?;
        let lifecycle = aws
            .ecr
            .get_lifecycle_policy()
            .repository_name(&self.name)
            .send()
            .await
            .found(Service::Ecr, "ecr:GetLifecyclePolicy")?
            .and_then(|p| {
                p.lifecycle_policy_text()
                    .and_then(|t| serde_json::from_str(t).ok())
            });
        let policy = aws
            .ecr
            .get_repository_policy()
            .repository_name(&self.name)
            .send()
            .await
            .found(Service::Ecr, "ecr:GetRepositoryPolicy")?
            .and_then(|p| p.policy_text().and_then(|t| serde_json::from_str(t).ok()));
        Ok(Some(Observed {
            uri: repo.repository_uri().unwrap_or_default().to_string(),
            scan_on_push: repo
                .image_scanning_configuration()
                .is_some_and(|c| c.scan_on_push()),
            mutable: repo.image_tag_mutability() != Some(&ImageTagMutability::Immutable),
            lifecycle,
            policy,
            tags,
            arn,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Change> {
        let mut d = Vec::new();
        if o.scan_on_push != self.scan_on_push {
            d.push(Change::ScanOnPush {
                from: o.scan_on_push,
                to: self.scan_on_push,
            });
        }
        if !o.mutable {
            d.push(Change::TagsMutable);
        }
        let lifecycle = self.lifecycle();
        if o.lifecycle.as_ref() != Some(&lifecycle) {
            d.push(Change::Lifecycle {
                from: o.lifecycle.clone(),
                to: lifecycle,
            });
        }
        if let Some(policy) = self.policy()
            && o.policy.as_ref() != Some(&policy)
        {
            d.push(Change::Policy {
                from: o.policy.clone(),
                to: policy,
            });
        }
        d.extend(tag_diff(&o.tags, &self.tags).map(Change::Tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        changes: &[Change],
    ) -> Result<(), AwsError> {
        let scanning = ImageScanningConfiguration::builder()
            .scan_on_push(self.scan_on_push)
            .build();
        let Some(o) = observed else {
            aws.ecr
                .create_repository()
                .repository_name(&self.name)
                .image_scanning_configuration(scanning)
                .image_tag_mutability(ImageTagMutability::Mutable)
                .set_tags(Some(to_sdk(&self.tags)))
                .send()
                .await
                .map_err(error("ecr:CreateRepository"))?;
            self.put_lifecycle(aws).await?;
            if let Some(policy) = self.policy() {
                self.put_policy(aws, &policy).await?;
            }
            return Ok(());
        };
        for change in changes {
            match change {
                Change::ScanOnPush { .. } => {
                    aws.ecr
                        .put_image_scanning_configuration()
                        .repository_name(&self.name)
                        .image_scanning_configuration(scanning.clone())
                        .send()
                        .await
                        .map_err(error("ecr:PutImageScanningConfiguration"))?;
                }
                Change::TagsMutable => {
                    aws.ecr
                        .put_image_tag_mutability()
                        .repository_name(&self.name)
                        .image_tag_mutability(ImageTagMutability::Mutable)
                        .send()
                        .await
                        .map_err(error("ecr:PutImageTagMutability"))?;
                }
                Change::Lifecycle { .. } => self.put_lifecycle(aws).await?,
                Change::Policy { to, .. } => self.put_policy(aws, to).await?,
                Change::Tags(_) => {
                    aws.ecr
                        .tag_resource()
                        .resource_arn(&o.arn)
                        .set_tags(Some(to_sdk(&self.tags)))
                        .send()
                        .await
                        .map_err(error("ecr:TagResource"))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &Observed) -> Result<(), AwsError> {
        aws.ecr
            .delete_repository()
            .repository_name(&self.name)
            .force(true)
            .send()
            .await
            .found(Service::Ecr, "ecr:DeleteRepository")?;
        Ok(())
    }

    fn detail(o: &Observed) -> String {
        o.uri.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn desired() -> Repository {
        Repository {
            name: "s-predictor".into(),
            scan_on_push: true,
            keep_last: 10,
            lambda_pull: Some("arn:aws:lambda:us-east-1:123456789012:function:*".into()),
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(r: &Repository) -> Observed {
        Observed {
            arn: "arn".into(),
            uri: "uri".into(),
            scan_on_push: true,
            mutable: true,
            lifecycle: Some(r.lifecycle()),
            policy: r.policy(),
            tags: r.tags.clone(),
        }
    }

    #[test]
    fn in_sync_repository_has_no_diff() {
        let r = desired();
        assert_eq!(r.diff(&in_sync(&r)), []);
    }

    #[test]
    fn each_drift_is_named() {
        let r = desired();
        let mut o = in_sync(&r);
        o.scan_on_push = false;
        o.mutable = false;
        o.lifecycle = None;
        let names: Vec<&str> = r.diff(&o).iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            ["scan_on_push", "image_tag_mutability", "lifecycle_policy"]
        );
        let mut longer = r.clone();
        longer.keep_last = 20;
        assert!(matches!(
            longer.diff(&in_sync(&r))[..],
            [Change::Lifecycle { .. }]
        ));
    }

    #[test]
    fn lambda_may_pull_only_for_this_accounts_functions() {
        let r = desired();
        let mut o = in_sync(&r);
        o.policy = None;
        let d = r.diff(&o);
        let [Change::Policy { to, .. }] = &d[..] else {
            panic!("{d:?}")
        };
        let statement = &to["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "lambda.amazonaws.com");
        assert_eq!(
            statement["Action"],
            json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
        );
        assert_eq!(
            statement["Condition"]["StringLike"]["aws:sourceArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:*"
        );
        // Without functions, someone else's policy is left alone.
        let ecs_only = Repository {
            lambda_pull: None,
            ..r
        };
        o.policy = Some(json!({"Statement": []}));
        assert_eq!(ecs_only.diff(&o), []);
    }
}
