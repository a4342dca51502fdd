//! CloudWatch Logs log group with a retention period, created by the stack (so the
//! Lambda and ECS logs do not live forever in a group nobody owns).

use super::{Field, Kind, Resource, TagChange, Tags, tag_diff};
use crate::aws::{Aws, AwsError, FoundExt, Service, error};

#[derive(Debug, Clone, PartialEq)]
pub struct LogGroup {
    pub name: String,
    pub retention_days: u32,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub retention_days: Option<i32>,
    pub tags: Tags,
}

/// What `up` can change on a log group.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Retention { from: Option<i32>, to: u32 },
    Tags(TagChange),
}

impl super::Change for Change {
    fn field(&self) -> Field {
        match self {
            Change::Retention { from, to } => Field::new("retention_days", Some(from), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl LogGroup {
    async fn put_retention(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.logs
            .put_retention_policy()
            .log_group_name(&self.name)
            .retention_in_days(self.retention_days as i32)
            .send()
            .await
            .map_err(error("logs:PutRetentionPolicy"))?;
        Ok(())
    }
}

impl Resource for LogGroup {
    type Observed = Observed;
    type Change = Change;
    const KIND: Kind = Kind::LogGroup;

    fn name(&self) -> &str {
        &self.name
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let Some(page) = aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&self.name)
            .send()
            .await
            .found(Service::Logs, "logs:DescribeLogGroups")?
        else {
            return Ok(None);
        };
        let Some(group) = page
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(&self.name))
        else {
            return Ok(None);
        };
        // `arn` ends in `:*`; the tagging API wants the bare group ARN.
        let arn = group
            .log_group_arn()
            .map(str::to_string)
            .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()))
            .unwrap_or_default();
        let tags = aws
            .logs
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .found(Service::Logs, "logs:ListTagsForResource")?
            .and_then(|t| t.tags().cloned())
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Some(Observed {
            arn,
            retention_days: group.retention_in_days(),
            tags,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Change> {
        let mut d = Vec::new();
        if o.retention_days != Some(self.retention_days as i32) {
            d.push(Change::Retention {
                from: o.retention_days,
                to: self.retention_days,
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
        let Some(o) = observed else {
            aws.logs
                .create_log_group()
                .log_group_name(&self.name)
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(error("logs:CreateLogGroup"))?;
            return self.put_retention(aws).await;
        };
        for change in changes {
            match change {
                Change::Retention { .. } => self.put_retention(aws).await?,
                Change::Tags(_) => {
                    aws.logs
                        .tag_resource()
                        .resource_arn(&o.arn)
                        .set_tags(Some(self.tags.clone().into_iter().collect()))
                        .send()
                        .await
                        .map_err(error("logs:TagResource"))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, _: &Observed) -> Result<(), AwsError> {
        aws.logs
            .delete_log_group()
            .log_group_name(&self.name)
            .send()
            .await
            .found(Service::Logs, "logs:DeleteLogGroup")?;
        Ok(())
    }

    fn detail(o: &Observed) -> String {
        match o.retention_days {
            Some(d) => format!("retention {d} days"),
            None => "retention: never expire".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_drift_is_a_diff() {
        let g = LogGroup {
            name: "/aws/lambda/s".into(),
            retention_days: 14,
            tags: Tags::new(),
        };
        let o = Observed {
            arn: "a".into(),
            retention_days: Some(14),
            tags: Tags::new(),
        };
        assert_eq!(g.diff(&o), []);
        let o = Observed {
            retention_days: None,
            ..o
        };
        assert_eq!(g.diff(&o), [Change::Retention { from: None, to: 14 }]);
    }
}
