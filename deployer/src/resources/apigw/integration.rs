//! The API's one integration: AWS_PROXY to the function (or its alias), payload format
//! 2.0, the function's timeout within API Gateway's limit. An integration has no name:
//! the API holds one, ours.

use std::fmt;

use aws_sdk_apigatewayv2::types::IntegrationType;

use super::{HttpApi, once};
use crate::aws::{Aws, AwsError, create_once, created, error};

pub const PAYLOAD_FORMAT: &str = "2.0";

/// The integration as `find` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub id: String,
    pub settings: IntegrationSettings,
}

/// The settings of the integration this tool manages.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationSettings {
    /// The function's (or alias's) ARN.
    pub uri: String,
    pub payload_format: String,
    pub timeout_ms: u32,
}

/// As the plan shows it: `arn:… (format 2.0, 30000 ms)`.
impl fmt::Display for IntegrationSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (format {}, {} ms)",
            self.uri, self.payload_format, self.timeout_ms
        )
    }
}

impl HttpApi {
    /// The integration the manifest asks for.
    pub(super) fn integration_settings(&self) -> IntegrationSettings {
        IntegrationSettings {
            uri: self.function_arn.clone(),
            payload_format: PAYLOAD_FORMAT.into(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// Makes the API's integration the wanted one (`have`: the one it holds, if any);
    /// its id.
    pub(super) async fn ensure_integration(
        &self,
        aws: &Aws,
        api: &str,
        have: Option<&Integration>,
    ) -> Result<String, AwsError> {
        match have {
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
                let id = create_once(
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
                            .config_override(once())
                            .send()
                            .await
                            .map(|out| out.integration_id)
                    },
                    || async {
                        Ok(find_integration(aws, api)
                            .await?
                            .map(|i| i.id)
                            .filter(|id| !id.is_empty())
                            .map(Some))
                    },
                )
                .await?;
                created("apigateway:CreateIntegration", "IntegrationId", id)
            }
        }
    }

    /// Whether the API's integration is the wanted one.
    pub(super) fn integration_matches(&self, i: &Integration) -> bool {
        i.settings == self.integration_settings()
    }
}

/// The integration of API `api`, if it has one (the first, the same every time).
pub(super) async fn find_integration(
    aws: &Aws,
    api: &str,
) -> Result<Option<Integration>, AwsError> {
    let integrations = aws
        .apigw
        .get_integrations()
        .api_id(api)
        .send()
        .await
        .map_err(error("apigateway:GetIntegrations"))?;
    Ok(integrations.items().first().map(|i| Integration {
        id: i.integration_id().unwrap_or_default().to_string(),
        settings: IntegrationSettings {
            uri: i.integration_uri().unwrap_or_default().to_string(),
            payload_format: i.payload_format_version().unwrap_or_default().to_string(),
            timeout_ms: i.timeout_in_millis().unwrap_or_default() as u32,
        },
    }))
}
