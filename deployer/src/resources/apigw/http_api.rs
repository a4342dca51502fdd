//! The HTTP API itself: found by name, tagged with the stack's tags, and what belongs to
//! it (integration, routes, stage, the function's permission) observed, diffed and
//! made as one resource.

use aws_sdk_apigatewayv2::types::ProtocolType;

use super::integration::{Integration, IntegrationSettings, find_integration};
use super::once;
use super::route::{Routes, find_routes};
use super::stage::{STAGE, ensure_stage, find_stage_auto_deploy};
use crate::aws::{Aws, AwsError, FoundExt, Service, create_once, created, error};
use crate::manifest::OWNER_TAG;
use crate::resources::{Field, Id, Kind, Resource, TagChange, Tags, tag_diff};

#[derive(Debug, Clone, PartialEq)]
pub struct HttpApi {
    pub name: String,
    pub function: String,
    pub function_arn: String,
    /// The function's alias the API invokes (provisioned concurrency), if any.
    pub qualifier: Option<String>,
    /// Route keys (`POST /predict`) sent to the function.
    pub routes: Vec<String>,
    /// The integration's timeout; API Gateway allows at most 30 000 ms.
    pub timeout_ms: u32,
    /// `arn:<partition>:execute-api:<region>:<account>`, completed with the API id.
    pub execute_arn_prefix: String,
    /// `arn:<partition>:apigateway:<region>`, for tagging.
    pub arn_prefix: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub endpoint: String,
    pub tags: Tags,
    pub integration: Option<Integration>,
    /// Route key → (route id, target).
    pub routes: Routes,
    pub stage_auto_deploy: Option<bool>,
    /// The source ARN of the function's permission for this API, if it has one.
    pub permission: Option<String>,
}

/// What `up` can change on an HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `from`: the API's integration, `None` when it has none.
    Integration {
        from: Option<IntegrationSettings>,
        to: IntegrationSettings,
    },
    /// Route keys; a route sent elsewhere than the integration counts as differing.
    Routes {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// The `$default` stage gets auto-deploy; `from`: its auto-deploy, `None` when there
    /// is no such stage.
    Stage {
        from: Option<bool>,
    },
    /// The source ARN the function's statement for this API allows.
    Permission {
        from: Option<String>,
        to: String,
    },
    Tags(TagChange),
}

impl crate::resources::Change for Change {
    fn field(&self) -> Field {
        let stage = |auto_deploy: bool| format!("{STAGE}, auto-deploy {auto_deploy}");
        match self {
            Change::Integration { from, to } => Field::new(
                "integration",
                from.as_ref().map(ToString::to_string),
                to.to_string(),
            ),
            Change::Routes { from, to } => Field::new("routes", Some(from), to),
            Change::Stage { from } => Field::new("stage", from.map(stage), stage(true)),
            Change::Permission { from, to } => Field::new("permission", from.as_ref(), to),
            Change::Tags(t) => t.field(),
        }
    }
}

impl Resource for HttpApi {
    type Observed = Observed;
    type Change = Change;
    const KIND: Kind = Kind::HttpApi;

    fn name(&self) -> &str {
        &self.name
    }

    fn depends_on(&self) -> Vec<Id> {
        vec![Id::new(Kind::LambdaFunction, &self.function)]
    }

    async fn find(&self, aws: &Aws) -> Result<Option<Observed>, AwsError> {
        let Some(api) = find_api(aws, &self.name).await? else {
            return Ok(None);
        };
        let id = api.api_id().unwrap_or_default().to_string();
        Ok(Some(Observed {
            endpoint: api.api_endpoint().unwrap_or_default().to_string(),
            tags: api
                .tags()
                .map(|t| t.clone().into_iter().collect())
                .unwrap_or_default(),
            // The API holds one integration of ours; routes are matched by key.
            integration: find_integration(aws, &id).await?,
            routes: find_routes(aws, &id).await?,
            stage_auto_deploy: find_stage_auto_deploy(aws, &id).await?,
            permission: self.find_permission(aws).await?,
            id,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Change> {
        let mut d = Vec::new();
        match &o.integration {
            Some(i) if self.integration_matches(i) => {}
            have => d.push(Change::Integration {
                from: have.as_ref().map(|i| i.settings.clone()),
                to: self.integration_settings(),
            }),
        }
        let integration = o.integration.as_ref().map(|i| i.id.as_str());
        if !self.routes_match(&o.routes, integration) {
            d.push(Change::Routes {
                from: o.routes.keys().cloned().collect(),
                to: self.routes.clone(),
            });
        }
        if o.stage_auto_deploy != Some(true) {
            d.push(Change::Stage {
                from: o.stage_auto_deploy,
            });
        }
        let want = self.source_arn(&o.id);
        if o.permission.as_deref() != Some(want.as_str()) {
            d.push(Change::Permission {
                from: o.permission.clone(),
                to: want,
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
        // A new API gets everything; the tags it is created with.
        let new = observed.is_none();
        let (mut routes, mut stage, mut permission, mut tags) = (new, new, new, false);
        for change in changes {
            match change {
                // Routes follow the integration (a new one has a new id).
                Change::Integration { .. } | Change::Routes { .. } => routes = true,
                Change::Stage { .. } => stage = true,
                Change::Permission { .. } => permission = true,
                Change::Tags(_) => tags = true,
            }
        }
        let id = match observed {
            Some(o) => o.id.clone(),
            None => self.create_api(aws).await?,
        };
        // Updated or made only when it differs.
        let integration = self
            .ensure_integration(aws, &id, observed.and_then(|o| o.integration.as_ref()))
            .await?;
        if routes {
            let none = Routes::new();
            let have = observed.map_or(&none, |o| &o.routes);
            self.ensure_routes(aws, &id, have, &integration).await?;
        }
        if stage {
            ensure_stage(aws, &id, observed.and_then(|o| o.stage_auto_deploy)).await?;
        }
        if permission {
            self.ensure_permission(aws, &id, observed.and_then(|o| o.permission.as_deref()))
                .await?;
        }
        if tags {
            aws.apigw
                .tag_resource()
                .resource_arn(format!("{}::/apis/{id}", self.arn_prefix))
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(error("apigateway:TagResource"))?;
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, o: &Observed) -> Result<(), AwsError> {
        if o.permission.is_some() {
            self.remove_permission(aws).await?;
        }
        aws.apigw
            .delete_api()
            .api_id(&o.id)
            .send()
            .await
            .found(Service::ApiGateway, "apigateway:DeleteApi")?;
        Ok(())
    }

    fn detail(o: &Observed) -> String {
        format!("{}/predict", o.endpoint)
    }
}

impl HttpApi {
    /// Creates the API once: its name is not unique, so a blind retry of a create whose
    /// answer was lost would make a second one (see [`crate::aws::create_once`]).
    async fn create_api(&self, aws: &Aws) -> Result<String, AwsError> {
        let id = create_once(
            "apigateway:CreateApi",
            || async {
                aws.apigw
                    .create_api()
                    .name(&self.name)
                    .protocol_type(ProtocolType::Http)
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .customize()
                    .config_override(once())
                    .send()
                    .await
                    .map(|out| out.api_id)
            },
            || async {
                let found = find_api(aws, &self.name).await?;
                Ok(found
                    .filter(|api| {
                        api.tags().and_then(|t| t.get(OWNER_TAG)) == self.tags.get(OWNER_TAG)
                    })
                    .and_then(|api| api.api_id)
                    .map(Some))
            },
        )
        .await?;
        created("apigateway:CreateApi", "ApiId", id)
    }
}

/// The HTTP API called `name`, if there is one. Names are not unique in API Gateway:
/// the first one carrying the name wins, the same every time.
pub async fn find_api(
    aws: &Aws,
    name: &str,
) -> Result<Option<aws_sdk_apigatewayv2::types::Api>, AwsError> {
    let mut token = None;
    loop {
        let out = aws
            .apigw
            .get_apis()
            .set_next_token(token)
            .send()
            .await
            .map_err(error("apigateway:GetApis"))?;
        if let Some(api) = out.items().iter().find(|a| a.name() == Some(name)) {
            return Ok(Some(api.clone()));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Change as _;

    fn desired() -> HttpApi {
        HttpApi {
            name: "s-api".into(),
            function: "s-predictor".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:s-predictor".into(),
            qualifier: None,
            routes: vec!["POST /predict".into(), "GET /healthz".into()],
            timeout_ms: 30_000,
            execute_arn_prefix: "arn:aws:execute-api:us-east-1:123456789012".into(),
            arn_prefix: "arn:aws:apigateway:us-east-1".into(),
            tags: [("deployer:stack".to_string(), "s".to_string())].into(),
        }
    }

    fn in_sync(a: &HttpApi) -> Observed {
        Observed {
            id: "abc123".into(),
            endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com".into(),
            tags: a.tags.clone(),
            integration: Some(Integration {
                id: "int1".into(),
                settings: IntegrationSettings {
                    uri: a.function_arn.clone(),
                    payload_format: "2.0".into(),
                    timeout_ms: 30_000,
                },
            }),
            routes: a
                .routes
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        k.clone(),
                        (format!("r{i}"), "integrations/int1".to_string()),
                    )
                })
                .collect(),
            stage_auto_deploy: Some(true),
            permission: Some(a.source_arn("abc123")),
        }
    }

    #[test]
    fn in_sync_api_has_no_diff() {
        let a = desired();
        assert_eq!(a.diff(&in_sync(&a)), []);
    }

    #[test]
    fn each_drift_is_named() {
        let a = desired();
        let mut o = in_sync(&a);
        o.integration.as_mut().unwrap().settings.payload_format = "1.0".into();
        o.routes.remove("GET /healthz");
        o.stage_auto_deploy = None;
        o.permission = Some("arn:aws:execute-api:us-east-1:123456789012:other/*".into());
        o.tags.clear();
        let names: Vec<&str> = a.diff(&o).iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            ["integration", "routes", "stage", "permission", "tags"]
        );
    }

    /// The plan shows values, as it did before the changes were typed (scripts read
    /// the integration's `to` as a string naming the function).
    #[test]
    fn each_change_reads_as_values() {
        let a = desired();
        let mut o = in_sync(&a);
        o.integration.as_mut().unwrap().settings.timeout_ms = 3_000;
        o.routes.remove("GET /healthz");
        o.stage_auto_deploy = Some(false);
        o.permission = None;
        let shown: Vec<String> = a.diff(&o).iter().map(|c| c.field().to_string()).collect();
        let function = "arn:aws:lambda:us-east-1:123456789012:function:s-predictor";
        assert_eq!(
            shown,
            [
                format!(
                    "integration: {function} (format 2.0, 3000 ms) → {function} (format 2.0, 30000 ms)"
                ),
                r#"routes: ["POST /predict"] → ["POST /predict","GET /healthz"]"#.into(),
                "stage: $default, auto-deploy false → $default, auto-deploy true".into(),
                "permission: (none) → arn:aws:execute-api:us-east-1:123456789012:abc123/*".into(),
            ]
        );
        o.integration = None;
        let d = a.diff(&o);
        assert!(
            matches!(
                &d[..2],
                [
                    Change::Integration { from: None, .. },
                    Change::Routes { .. }
                ]
            ),
            "{d:?}"
        );
        assert_eq!(
            d[0].field().to,
            serde_json::json!(format!("{function} (format 2.0, 30000 ms)"))
        );
    }

    #[test]
    fn a_route_to_another_integration_is_drift() {
        let a = desired();
        let mut o = in_sync(&a);
        o.routes.get_mut("POST /predict").unwrap().1 = "integrations/old".into();
        assert!(matches!(a.diff(&o)[..], [Change::Routes { .. }]));
    }
}
