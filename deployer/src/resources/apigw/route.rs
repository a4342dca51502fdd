//! The API's routes (`POST /predict`, `GET /healthz`), each sent to the integration.
//! Routes are matched by key; a route the manifest no longer names is deleted.

use std::collections::BTreeMap;

use super::{HttpApi, once};
use crate::aws::{Aws, AwsError, FoundExt, Service, create_once, error};

/// Route key → (route id, target).
pub type Routes = BTreeMap<String, (String, String)>;

impl HttpApi {
    /// Makes the API's routes (`have`) exactly the wanted ones, each sent to
    /// `integration`.
    pub(super) async fn ensure_routes(
        &self,
        aws: &Aws,
        api: &str,
        have: &Routes,
        integration: &str,
    ) -> Result<(), AwsError> {
        let target = target(integration);
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
                None => self.create_route(aws, api, key, &target).await?,
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

    /// AWS refuses a second route with the key (`ConflictException`); moto makes one:
    /// created once (see [`crate::aws::create_once`]).
    async fn create_route(
        &self,
        aws: &Aws,
        api: &str,
        key: &str,
        target: &str,
    ) -> Result<(), AwsError> {
        create_once(
            "apigateway:CreateRoute",
            || async {
                aws.apigw
                    .create_route()
                    .api_id(api)
                    .route_key(key)
                    .target(target)
                    .customize()
                    .config_override(once())
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
                    .any(|r| r.route_key() == Some(key))
                    .then_some(()))
            },
        )
        .await
    }

    /// Whether the API has exactly the wanted routes, each sent to `integration` (its
    /// id; `None` when the API has none).
    pub(super) fn routes_match(&self, have: &Routes, integration: Option<&str>) -> bool {
        let target = integration.map(target);
        have.len() == self.routes.len()
            && self
                .routes
                .iter()
                .all(|k| have.get(k).map(|(_, t)| Some(t)) == Some(target.as_ref()))
    }
}

/// The routes of API `api`.
pub(super) async fn find_routes(aws: &Aws, api: &str) -> Result<Routes, AwsError> {
    Ok(aws
        .apigw
        .get_routes()
        .api_id(api)
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
        .collect())
}

/// A route's target for the integration `integration_id`.
fn target(integration_id: &str) -> String {
    format!("integrations/{integration_id}")
}
