//! Provisioned concurrency: the current code and configuration published as a version,
//! the alias [`ALIAS`] pointed at it, instances kept initialised on that alias, and the
//! alias removed with them when the manifest no longer asks for any.

use std::time::Duration;

use super::Function;
use crate::aws::{Aws, AwsError, FoundExt, Service, error};
use crate::wait::{self, Poll};

/// The alias that carries provisioned concurrency (and that the HTTP API invokes when
/// there is any).
pub const ALIAS: &str = "live";

/// The version the alias [`ALIAS`] points at and the provisioned concurrency requested
/// on it; both `None` when there is no alias.
pub(super) async fn find_alias(
    aws: &Aws,
    function: &str,
) -> Result<(Option<String>, Option<u32>), AwsError> {
    let alias_version = aws
        .lambda
        .get_alias()
        .function_name(function)
        .name(ALIAS)
        .send()
        .await
        .found(Service::Lambda, "lambda:GetAlias")?
        .and_then(|a| a.function_version);
    let provisioned_concurrency = match alias_version {
        None => None,
        Some(_) => aws
            .lambda
            .get_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(ALIAS)
            .send()
            .await
            .found(Service::Lambda, "lambda:GetProvisionedConcurrencyConfig")?
            .and_then(|c| c.requested_provisioned_concurrent_executions())
            .map(|n| n as u32),
    };
    Ok((alias_version, provisioned_concurrency))
}

/// Whether provisioned concurrency is allocated, from its `Status` and `StatusReason`.
pub fn provisioning(status: Option<&str>, reason: Option<&str>) -> Poll<()> {
    match status.unwrap_or("IN_PROGRESS") {
        "READY" => Poll::Ready(()),
        "FAILED" => Poll::Failed(format!(
            "provisioned concurrency FAILED: {}",
            reason.unwrap_or("no reason given")
        )),
        other => Poll::Pending(format!("provisioned concurrency {other}")),
    }
}

impl Function {
    /// Brings the alias in line after an update of an existing function: new code or
    /// settings (`republish`) reach the warm instances as a new version on the alias
    /// (created when `alias_exists` is false); a changed number (`changed`) alone is
    /// only requested; no provisioned concurrency wanted drops the alias.
    pub(super) async fn sync_alias(
        &self,
        aws: &Aws,
        alias_exists: bool,
        republish: bool,
        changed: bool,
    ) -> Result<(), AwsError> {
        let warm = self.provisioned_concurrency.is_some();
        if warm && (republish || !alias_exists) {
            self.publish_to_alias(aws, alias_exists).await?;
            self.put_provisioned(aws, aws.timeouts.update()).await?;
        } else if warm && changed {
            self.put_provisioned(aws, aws.timeouts.update()).await?;
        } else if !warm && alias_exists {
            self.drop_provisioned(aws).await?;
        }
        Ok(())
    }

    /// Requests provisioned concurrency on the alias and waits, bounded, until it is
    /// allocated.
    pub(super) async fn put_provisioned(&self, aws: &Aws, limit: Duration) -> Result<(), AwsError> {
        let Some(n) = self.provisioned_concurrency else {
            return Ok(());
        };
        aws.lambda
            .put_provisioned_concurrency_config()
            .function_name(&self.name)
            .qualifier(ALIAS)
            .provisioned_concurrent_executions(n as i32)
            .send()
            .await
            .map_err(error("lambda:PutProvisionedConcurrencyConfig"))?;
        wait::until(
            "lambda:GetProvisionedConcurrencyConfig",
            limit,
            Duration::from_secs(5),
            || async {
                let c = aws
                    .lambda
                    .get_provisioned_concurrency_config()
                    .function_name(&self.name)
                    .qualifier(ALIAS)
                    .send()
                    .await
                    .map_err(error("lambda:GetProvisionedConcurrencyConfig"))?;
                Ok(provisioning(
                    c.status().map(|s| s.as_str()),
                    c.status_reason(),
                ))
            },
        )
        .await
    }

    /// Publishes the current code and configuration as a version and points the alias
    /// at it (creating the alias when `exists` is false).
    pub(super) async fn publish_to_alias(&self, aws: &Aws, exists: bool) -> Result<(), AwsError> {
        let version = aws
            .lambda
            .publish_version()
            .function_name(&self.name)
            .send()
            .await
            .map_err(error("lambda:PublishVersion"))?
            .version
            .ok_or_else(|| AwsError::new("lambda:PublishVersion", "no version in the answer"))?;
        if exists {
            aws.lambda
                .update_alias()
                .function_name(&self.name)
                .name(ALIAS)
                .function_version(&version)
                .send()
                .await
                .map_err(error("lambda:UpdateAlias"))?;
        } else {
            aws.lambda
                .create_alias()
                .function_name(&self.name)
                .name(ALIAS)
                .function_version(&version)
                .send()
                .await
                .map_err(error("lambda:CreateAlias"))?;
        }
        Ok(())
    }

    /// Removes provisioned concurrency and the alias that carried it.
    pub(super) async fn drop_provisioned(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.lambda
            .delete_provisioned_concurrency_config()
            .function_name(&self.name)
            .qualifier(ALIAS)
            .send()
            .await
            .found(Service::Lambda, "lambda:DeleteProvisionedConcurrencyConfig")?;
        aws.lambda
            .delete_alias()
            .function_name(&self.name)
            .name(ALIAS)
            .send()
            .await
            .found(Service::Lambda, "lambda:DeleteAlias")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GetProvisionedConcurrencyConfig answers as the Lambda reference documents them
    /// (moto has no provisioned concurrency).
    #[test]
    fn provisioning_follows_the_config_status() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/lambda/get_provisioned_concurrency_config.json"
        ))
        .unwrap();
        for case in fixtures.as_array().unwrap() {
            let r = &case["response"];
            let got = provisioning(r["Status"].as_str(), r["StatusReason"].as_str());
            let kind = match &got {
                Poll::Ready(()) => "ready",
                Poll::Pending(_) => "pending",
                Poll::Failed(_) => "failed",
            };
            assert_eq!(kind, case["expect"].as_str().unwrap(), "{}", case["case"]);
            if let Poll::Failed(why) = got {
                assert!(why.contains(r["StatusReason"].as_str().unwrap()), "{why}");
            }
        }
    }
}
