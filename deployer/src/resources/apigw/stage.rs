//! The API's `$default` stage, deploying every change automatically.

use crate::aws::{Aws, AwsError, error};

pub const STAGE: &str = "$default";

/// Makes API `api`'s `$default` stage exist with auto-deploy on (`auto_deploy`: what it
/// has now, `None` when there is no such stage).
pub(super) async fn ensure_stage(
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

/// Whether API `api`'s `$default` stage deploys automatically; `None` when it has no
/// such stage.
pub(super) async fn find_stage_auto_deploy(aws: &Aws, api: &str) -> Result<Option<bool>, AwsError> {
    Ok(aws
        .apigw
        .get_stages()
        .api_id(api)
        .send()
        .await
        .map_err(error("apigateway:GetStages"))?
        .items()
        .iter()
        .find(|s| s.stage_name() == Some(STAGE))
        .map(|s| s.auto_deploy().unwrap_or(false)))
}
