//! The service's task definition: the settings this tool manages (`TaskSpec`), read
//! back from the revision the service runs, registered as a new revision when they
//! change, and every revision of the family deregistered with the service.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, PortMapping,
    TransportProtocol,
};
use serde::Serialize;

use super::Service;
use crate::aws::{Aws, AwsError, error};
use crate::resources::tags::to_sdk;

/// The task definition settings this tool manages, comparable across revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    pub image: String,
    pub cpu: i32,
    pub memory_mb: i32,
    pub port: i32,
    pub environment: BTreeMap<String, String>,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub log_group: String,
}

impl TaskSpec {
    /// The settings of `self` that differ from `have`'s, as `have` holds them and as
    /// `self` wants them (all of them when there is no `have`), for the plan.
    pub(super) fn differing(&self, have: Option<&TaskSpec>) -> (Option<Settings>, Settings) {
        let have = have.map(|t| serde_json::to_value(t).unwrap_or_default());
        let want = serde_json::to_value(self).unwrap_or_default();
        let changed: Settings = want
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| have.as_ref().map(|h| &h[k.as_str()]) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let before = have.map(|h| {
            changed
                .keys()
                .map(|k| (k.clone(), h[k.as_str()].clone()))
                .collect()
        });
        (before, changed)
    }
}

/// Some of a task spec's settings, by their names.
pub(super) type Settings = BTreeMap<String, serde_json::Value>;

/// The managed settings of container `container` in task definition `arn`; `None` when
/// the task definition has no such container.
pub(super) async fn find_task_spec(
    aws: &Aws,
    arn: &str,
    container: &str,
) -> Result<Option<TaskSpec>, AwsError> {
    let td = aws
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(error("ecs:DescribeTaskDefinition"))?;
    Ok(td.task_definition().and_then(|td| {
        let c = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))?;
        Some(TaskSpec {
            image: c.image().unwrap_or_default().to_string(),
            cpu: c.cpu(),
            memory_mb: c.memory().unwrap_or_default(),
            port: c
                .port_mappings()
                .first()
                .and_then(|p| p.container_port())
                .unwrap_or_default(),
            environment: c
                .environment()
                .iter()
                .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                .collect(),
            execution_role_arn: td.execution_role_arn().unwrap_or_default().to_string(),
            task_role_arn: td.task_role_arn().unwrap_or_default().to_string(),
            log_group: c
                .log_configuration()
                .and_then(|l| l.options())
                .and_then(|o| o.get("awslogs-group"))
                .cloned()
                .unwrap_or_default(),
        })
    }))
}

impl Service {
    fn container_definition(&self) -> ContainerDefinition {
        let t = &self.task;
        ContainerDefinition::builder()
            .name(&self.container)
            .image(&t.image)
            .cpu(t.cpu)
            .memory(t.memory_mb)
            .essential(true)
            .port_mappings(
                PortMapping::builder()
                    .container_port(t.port)
                    .host_port(t.port)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .set_environment(Some(
                t.environment
                    .iter()
                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                    .collect(),
            ))
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", &t.log_group)
                    .options("awslogs-region", &self.region)
                    .options("awslogs-stream-prefix", "predictor")
                    .build()
                    .expect("log driver is set"),
            )
            .build()
    }

    pub(super) async fn register(&self, aws: &Aws) -> Result<String, AwsError> {
        let out = aws
            .ecs
            .register_task_definition()
            .family(&self.family)
            .network_mode(NetworkMode::Host)
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Ec2)
            .execution_role_arn(&self.task.execution_role_arn)
            .task_role_arn(&self.task.task_role_arn)
            .container_definitions(self.container_definition())
            .set_tags(Some(to_sdk(&self.tags)))
            .send()
            .await
            .map_err(error("ecs:RegisterTaskDefinition"))?;
        out.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| AwsError::new("ecs:RegisterTaskDefinition", "no ARN in the answer"))
    }

    /// Deregisters every revision of the service's family.
    pub(super) async fn deregister_revisions(&self, aws: &Aws) -> Result<(), AwsError> {
        let revisions = aws
            .ecs
            .list_task_definitions()
            .family_prefix(&self.family)
            .send()
            .await
            .map_err(error("ecs:ListTaskDefinitions"))?;
        for arn in revisions.task_definition_arns() {
            // The prefix matches other families too (`x-predictor` and `x-predictor-2`).
            if arn
                .rsplit('/')
                .next()
                .and_then(|f| f.rsplit_once(':'))
                .is_some_and(|(family, _)| family == self.family)
            {
                aws.ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(error("ecs:DeregisterTaskDefinition"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A task spec as the stack builds it, for the service's tests too.
    pub(in crate::resources::ecs) fn spec() -> TaskSpec {
        TaskSpec {
            image: "r/s-predictor@sha256:aa".into(),
            cpu: 4096,
            memory_mb: 15000,
            port: 8080,
            environment: [("PORT".to_string(), "8080".to_string())].into(),
            execution_role_arn: "arn:exec".into(),
            task_role_arn: "arn:task".into(),
            log_group: "/ecs/s-predictor".into(),
        }
    }

    #[test]
    fn only_the_settings_that_differ_are_shown() {
        let have = spec();
        let mut want = spec();
        want.image = "r/s-predictor@sha256:bb".into();
        want.environment.insert("MODEL".into(), "m".into());
        let (before, after) = want.differing(Some(&have));
        assert_eq!(
            json!(before),
            json!({"image": "r/s-predictor@sha256:aa", "environment": {"PORT": "8080"}})
        );
        assert_eq!(
            json!(after),
            json!({"image": "r/s-predictor@sha256:bb",
                   "environment": {"MODEL": "m", "PORT": "8080"}})
        );
        // A revision without the container: every setting is new.
        let (before, after) = want.differing(None);
        assert_eq!(before, None);
        assert_eq!(json!(after), json!(want));
    }
}
