//! API Gateway HTTP API in front of the Lambda function: one AWS_PROXY integration
//! (payload format 2.0), the routes, the `$default` stage with auto-deploy, and the
//! Lambda permission that lets this API, and only this API, invoke the function.
//! Routes, integration and stage belong to the API and are deleted with it; the
//! permission lives on the function and is removed first.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use serde_json::Value;

use super::{Field, Id, Kind, Resource, Tags, tag_field};
use crate::aws::{Aws, AwsError, FoundExt, Service, create_once, error};
use crate::manifest::OWNER_TAG;

pub const STAGE: &str = "$default";
pub const PAYLOAD_FORMAT: &str = "2.0";

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
pub struct Integration {
    pub id: String,
    pub uri: String,
    pub payload_format: String,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub endpoint: String,
    pub tags: Tags,
    pub integration: Option<Integration>,
    /// Route key → (route id, target).
    pub routes: BTreeMap<String, (String, String)>,
    pub stage_auto_deploy: Option<bool>,
    /// The source ARN of the function's permission for this API, if it has one.
    pub permission: Option<String>,
}

impl HttpApi {
    /// The permission's statement id on the function.
    pub fn statement_id(&self) -> String {
        format!("{}-invoke", self.name)
    }

    /// Every route and stage of this API only.
    pub fn source_arn(&self, api_id: &str) -> String {
        format!("{}:{api_id}/*", self.execute_arn_prefix)
    }

    fn target(integration_id: &str) -> String {
        format!("integrations/{integration_id}")
    }

    async fn ensure_integration(
        &self,
        aws: &Aws,
        api: &str,
        o: Option<&Integration>,
    ) -> Result<String, AwsError> {
        match o {
            Some(i) if self.integration_matches(i) => Ok(i.id.clone()),
            Some(i) => {
                aws.apigw
                    .update_integration()
                    .api_id(api)
                    .integration_id(&i.id)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_uri(&self.function_arn)
                    .payload_format_version(PAYLOAD_FORMAT)
                    .timeout_in_millis(self.timeout_ms as i32)
                    .send()
                    .await
                    .map_err(error("apigateway:UpdateIntegration"))?;
                Ok(i.id.clone())
            }
            // Integrations have no name: created once (see [`crate::aws::create_once`]).
            None => {
                let once = aws_sdk_apigatewayv2::config::Builder::default()
                    .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled());
                create_once(
                    "apigateway:CreateIntegration",
                    || async {
                        aws.apigw
                            .create_integration()
                            .api_id(api)
                            .integration_type(IntegrationType::AwsProxy)
                            .integration_uri(&self.function_arn)
                            .payload_format_version(PAYLOAD_FORMAT)
                            .timeout_in_millis(self.timeout_ms as i32)
                            .customize()
                            .config_override(once.clone())
                            .send()
                            .await
                            .map(|out| out.integration_id.unwrap_or_default())
                    },
                    || async {
                        let all = aws
                            .apigw
                            .get_integrations()
                            .api_id(api)
                            .send()
                            .await
                            .map_err(error("apigateway:GetIntegrations"))?;
                        Ok(all.items().first().and_then(|i| i.integration_id.clone()))
                    },
                )
                .await
            }
        }
    }

    fn integration_matches(&self, i: &Integration) -> bool {
        i.uri == self.function_arn
            && i.payload_format == PAYLOAD_FORMAT
            && i.timeout_ms == self.timeout_ms
    }

    async fn ensure_routes(
        &self,
        aws: &Aws,
        api: &str,
        have: &BTreeMap<String, (String, String)>,
        integration: &str,
    ) -> Result<(), AwsError> {
        let target = HttpApi::target(integration);
        for key in &self.routes {
            match have.get(key) {
                Some((_, t)) if *t == target => {}
                Some((id, _)) => {
                    aws.apigw
                        .update_route()
                        .api_id(api)
                        .route_id(id)
                        .target(&target)
                        .send()
                        .await
                        .map_err(error("apigateway:UpdateRoute"))?;
                }
                // AWS refuses a second route with the key (`ConflictException`);
                // moto makes one: created once (see [`crate::aws::create_once`]).
                None => {
                    let once = aws_sdk_apigatewayv2::config::Builder::default()
                        .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled());
                    create_once(
                        "apigateway:CreateRoute",
                        || async {
                            aws.apigw
                                .create_route()
                                .api_id(api)
                                .route_key(key)
                                .target(&target)
                                .customize()
                                .config_override(once.clone())
                                .send()
                                .await
                                .map(|_| ())
                        },
                        || async {
                            let routes = aws
                                .apigw
                                .get_routes()
                                .api_id(api)
                                .send()
                                .await
                                .map_err(error("apigateway:GetRoutes"))?;
                            Ok(routes
                                .items()
                                .iter()
                                .any(|r| r.route_key() == Some(key.as_str()))
                                .then_some(()))
                        },
                    )
                    .await?;
                }
            }
        }
        for (key, (id, _)) in have {
            if !self.routes.contains(key) {
                aws.apigw
                    .delete_route()
                    .api_id(api)
                    .route_id(id)
                    .send()
                    .await
                    .found(Service::ApiGateway, "apigateway:DeleteRoute")?;
            }
        }
        Ok(())
    }

    async fn ensure_stage(
        &self,
        aws: &Aws,
        api: &str,
        auto_deploy: Option<bool>,
    ) -> Result<(), AwsError> {
        match auto_deploy {
            Some(true) => {}
            Some(false) => {
                aws.apigw
                    .update_stage()
                    .api_id(api)
                    .stage_name(STAGE)
                    .auto_deploy(true)
                    .send()
                    .await
                    .map_err(error("apigateway:UpdateStage"))?;
            }
            None => {
                aws.apigw
                    .create_stage()
                    .api_id(api)
                    .stage_name(STAGE)
                    .auto_deploy(true)
                    .send()
                    .await
                    .map_err(error("apigateway:CreateStage"))?;
            }
        }
        Ok(())
    }

    async fn ensure_permission(
        &self,
        aws: &Aws,
        api: &str,
        have: Option<&str>,
    ) -> Result<(), AwsError> {
        let want = self.source_arn(api);
        // A new API (its predecessor deleted out of band) finds the old statement still
        // on the function under the same id, and AddPermission would refuse it
        // (`ResourceConflictException`): read the function's policy before adding.
        let have = match have {
            Some(h) => Some(h.to_string()),
            None => self.find_permission(aws).await?,
        };
        if have.as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        if have.is_some() {
            self.remove_permission(aws).await?;
        }
        aws.lambda
            .add_permission()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .statement_id(self.statement_id())
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(want)
            .send()
            .await
            .map_err(error("lambda:AddPermission"))?;
        Ok(())
    }

    /// Creates the API once: its name is not unique, so a blind retry of a create whose
    /// answer was lost would make a second one (see [`crate::aws::create_once`]).
    async fn create_api(&self, aws: &Aws) -> Result<String, AwsError> {
        let once = aws_sdk_apigatewayv2::config::Builder::default()
            .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled());
        create_once(
            "apigateway:CreateApi",
            || async {
                aws.apigw
                    .create_api()
                    .name(&self.name)
                    .protocol_type(ProtocolType::Http)
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .customize()
                    .config_override(once.clone())
                    .send()
                    .await
                    .map(|out| out.api_id.unwrap_or_default())
            },
            || async {
                let found = find_api(aws, &self.name).await?;
                Ok(found
                    .filter(|api| {
                        api.tags().and_then(|t| t.get(OWNER_TAG)) == self.tags.get(OWNER_TAG)
                    })
                    .and_then(|api| api.api_id))
            },
        )
        .await
    }

    async fn remove_permission(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.lambda
            .remove_permission()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .statement_id(self.statement_id())
            .send()
            .await
            .found(Service::Lambda, "lambda:RemovePermission")?;
        Ok(())
    }

    /// The source ARN of this API's statement in the function's resource policy.
    async fn find_permission(&self, aws: &Aws) -> Result<Option<String>, AwsError> {
        let Some(out) = aws
            .lambda
            .get_policy()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .send()
            .await
            .found(Service::Lambda, "lambda:GetPolicy")?
        else {
            return Ok(None);
        };
        Ok(statement_source_arn(
            out.policy().unwrap_or("{}"),
            &self.statement_id(),
        ))
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

/// The `AWS:SourceArn` condition of statement `sid` in a Lambda resource policy.
pub fn statement_source_arn(policy: &str, sid: &str) -> Option<String> {
    let policy: Value = serde_json::from_str(policy).ok()?;
    let statement = policy["Statement"]
        .as_array()?
        .iter()
        .find(|s| s["Sid"].as_str() == Some(sid))?;
    // A statement under our id with no source condition is still there (and still
    // blocks `AddPermission`): it differs from every wanted source ARN.
    Some(
        statement["Condition"]["ArnLike"]["AWS:SourceArn"]
            .as_str()
            .unwrap_or("(any source)")
            .to_string(),
    )
}

impl Resource for HttpApi {
    type Observed = Observed;
    type Change = Field;
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
        // The API holds one integration of ours; routes are matched by key.
        let integrations = aws
            .apigw
            .get_integrations()
            .api_id(&id)
            .send()
            .await
            .map_err(error("apigateway:GetIntegrations"))?;
        let integration = integrations.items().first().map(|i| Integration {
            id: i.integration_id().unwrap_or_default().to_string(),
            uri: i.integration_uri().unwrap_or_default().to_string(),
            payload_format: i.payload_format_version().unwrap_or_default().to_string(),
            timeout_ms: i.timeout_in_millis().unwrap_or_default() as u32,
        });
        let routes = aws
            .apigw
            .get_routes()
            .api_id(&id)
            .send()
            .await
            .map_err(error("apigateway:GetRoutes"))?
            .items()
            .iter()
            .map(|r| {
                (
                    r.route_key().unwrap_or_default().to_string(),
                    (
                        r.route_id().unwrap_or_default().to_string(),
                        r.target().unwrap_or_default().to_string(),
                    ),
                )
            })
            .collect();
        let stage_auto_deploy = aws
            .apigw
            .get_stages()
            .api_id(&id)
            .send()
            .await
            .map_err(error("apigateway:GetStages"))?
            .items()
            .iter()
            .find(|s| s.stage_name() == Some(STAGE))
            .map(|s| s.auto_deploy().unwrap_or(false));
        Ok(Some(Observed {
            endpoint: api.api_endpoint().unwrap_or_default().to_string(),
            tags: api
                .tags()
                .map(|t| t.clone().into_iter().collect())
                .unwrap_or_default(),
            integration,
            routes,
            stage_auto_deploy,
            permission: self.find_permission(aws).await?,
            id,
        }))
    }

    fn tags(observed: &Observed) -> &Tags {
        &observed.tags
    }

    fn diff(&self, o: &Observed) -> Vec<Field> {
        let mut d = Vec::new();
        match &o.integration {
            Some(i) if self.integration_matches(i) => {}
            have => d.push(Field::new(
                "integration",
                have.as_ref().map(|i| {
                    format!(
                        "{} (format {}, {} ms)",
                        i.uri, i.payload_format, i.timeout_ms
                    )
                }),
                format!(
                    "{} (format {PAYLOAD_FORMAT}, {} ms)",
                    self.function_arn, self.timeout_ms
                ),
            )),
        }
        let target = o.integration.as_ref().map(|i| HttpApi::target(&i.id));
        let routes_ok = o.routes.len() == self.routes.len()
            && self
                .routes
                .iter()
                .all(|k| o.routes.get(k).map(|(_, t)| Some(t)) == Some(target.as_ref()));
        if !routes_ok {
            d.push(Field::new(
                "routes",
                Some(o.routes.keys().collect::<Vec<_>>()),
                &self.routes,
            ));
        }
        if o.stage_auto_deploy != Some(true) {
            d.push(Field::new(
                "stage",
                o.stage_auto_deploy
                    .map(|a| format!("{STAGE}, auto-deploy {a}")),
                format!("{STAGE}, auto-deploy true"),
            ));
        }
        let want = self.source_arn(&o.id);
        if o.permission.as_deref() != Some(want.as_str()) {
            d.push(Field::new("permission", o.permission.as_ref(), want));
        }
        d.extend(tag_field(&o.tags, &self.tags));
        d
    }

    async fn apply(
        &self,
        aws: &Aws,
        observed: Option<&Observed>,
        diff: &[Field],
    ) -> Result<(), AwsError> {
        let id = match observed {
            Some(o) => o.id.clone(),
            None => self.create_api(aws).await?,
        };
        let empty = BTreeMap::new();
        let changed = |name: &str| observed.is_none() || diff.iter().any(|f| f.name == name);
        let integration = self
            .ensure_integration(aws, &id, observed.and_then(|o| o.integration.as_ref()))
            .await?;
        if changed("routes") || changed("integration") {
            self.ensure_routes(
                aws,
                &id,
                observed.map_or(&empty, |o| &o.routes),
                &integration,
            )
            .await?;
        }
        if changed("stage") {
            self.ensure_stage(aws, &id, observed.and_then(|o| o.stage_auto_deploy))
                .await?;
        }
        if changed("permission") {
            self.ensure_permission(aws, &id, observed.and_then(|o| o.permission.as_deref()))
                .await?;
        }
        if let (Some(_), true) = (observed, changed("tags")) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
                uri: a.function_arn.clone(),
                payload_format: "2.0".into(),
                timeout_ms: 30_000,
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
    fn the_permission_is_scoped_to_this_api() {
        assert_eq!(
            desired().source_arn("abc123"),
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*"
        );
    }

    #[test]
    fn each_drift_is_named() {
        let a = desired();
        let mut o = in_sync(&a);
        o.integration.as_mut().unwrap().payload_format = "1.0".into();
        o.routes.remove("GET /healthz");
        o.stage_auto_deploy = None;
        o.permission = Some("arn:aws:execute-api:us-east-1:123456789012:other/*".into());
        let names: Vec<&str> = a.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(names, ["integration", "routes", "stage", "permission"]);
    }

    #[test]
    fn a_route_to_another_integration_is_drift() {
        let a = desired();
        let mut o = in_sync(&a);
        o.routes.get_mut("POST /predict").unwrap().1 = "integrations/old".into();
        let names: Vec<&str> = a.diff(&o).iter().map(|f| f.name).collect();
        assert_eq!(names, ["routes"]);
    }

    /// A resource policy as the Lambda GetPolicy reference shows it.
    #[test]
    fn the_statement_is_found_in_the_function_policy() {
        let policy = r#"{"Version":"2012-10-17","Id":"default","Statement":[
            {"Sid":"other","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},
             "Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:s-predictor"},
            {"Sid":"s-api-invoke","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},
             "Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:s-predictor",
             "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}}]}"#;
        assert_eq!(
            statement_source_arn(policy, "s-api-invoke").as_deref(),
            Some("arn:aws:execute-api:us-east-1:123456789012:abc123/*")
        );
        assert_eq!(statement_source_arn(policy, "missing"), None);
        assert_eq!(statement_source_arn("not json", "s-api-invoke"), None);
        // Our id without a source condition: there, and not what is wanted.
        let unconditioned = r#"{"Statement":[{"Sid":"s-api-invoke","Effect":"Allow"}]}"#;
        assert_eq!(
            statement_source_arn(unconditioned, "s-api-invoke").as_deref(),
            Some("(any source)")
        );
    }
}
