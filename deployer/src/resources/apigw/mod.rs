//! API Gateway HTTP API in front of the Lambda function, one resource (`http_api`) made
//! of the API and what belongs to it, one file each: one AWS_PROXY integration with
//! payload format 2.0 (`integration`), the routes sent to it (`route`), the `$default`
//! stage with auto-deploy (`stage`), and the Lambda permission that lets this API, and
//! only this API, invoke the function (`permission`). Routes, integration and stage
//! belong to the API and are deleted with it; the permission lives on the function and
//! is removed first.

mod http_api;
mod integration;
mod permission;
mod route;
mod stage;

// The module's paths from before the split (`apigw::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    http_api::{Change, HttpApi, Observed, find_api},
    integration::{Integration, IntegrationSettings, PAYLOAD_FORMAT},
    permission::statement_source_arn,
    stage::STAGE,
};

/// A call's config without the SDK's retries, for [`crate::aws::create_once`]: what
/// has no name (an integration), or a name AWS does not keep unique (an API, a route in
/// the emulator), is created once.
fn once() -> aws_sdk_apigatewayv2::config::Builder {
    aws_sdk_apigatewayv2::config::Builder::default()
        .retry_config(aws_sdk_apigatewayv2::config::retry::RetryConfig::disabled())
}
