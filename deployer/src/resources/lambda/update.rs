//! The calls that write a function: creating it and updating its configuration (both
//! retried while IAM has not yet made the role assumable), updating its code, and its
//! reserved concurrency. Which of them an update needs is decided by the function's changes
//! (`function::Update`); each is followed by a wait until the function has settled.

use std::time::Duration;

use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, PackageType};

use super::{Change, Function};
use crate::aws::{Aws, AwsError, error};
use crate::wait;

/// How long, and how often, a call naming a role is repeated while Lambda cannot assume
/// the role yet.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoleRetry {
    pub limit: Duration,
    /// The first pause between two tries (it doubles).
    pub first: Duration,
}

/// A new role may take this long to become assumable by Lambda (IAM is eventually
/// consistent; usually seconds).
pub(super) const ROLE_PROPAGATION: RoleRetry = RoleRetry {
    limit: Duration::from_secs(90),
    first: Duration::from_secs(2),
};

impl Function {
    fn environment(&self) -> Environment {
        Environment::builder()
            .set_variables(Some(self.environment.clone().into_iter().collect()))
            .build()
    }

    fn architecture(&self) -> Architecture {
        Architecture::from(self.architecture.as_str())
    }

    /// Creates the function, repeating the call for up to `role` while Lambda cannot
    /// assume the (new) role yet, and waits until it has settled.
    pub(super) async fn create(&self, aws: &Aws, role: RoleRetry) -> Result<(), AwsError> {
        wait::retrying(
            "lambda:CreateFunction",
            role.limit,
            role.first,
            || async {
                aws.lambda
                    .create_function()
                    .function_name(&self.name)
                    .package_type(PackageType::Image)
                    .code(FunctionCode::builder().image_uri(&self.image).build())
                    .role(&self.role_arn)
                    .architectures(self.architecture())
                    .memory_size(self.memory_mb as i32)
                    .timeout(self.timeout_s as i32)
                    .environment(self.environment())
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(error("lambda:CreateFunction"))
            },
            role_not_ready,
        )
        .await?;
        self.settled(aws, aws.timeouts.create()).await?;
        // A new function has no reserved concurrency: only a number needs a call.
        if self.reserved_concurrency.is_some() {
            self.put_concurrency(aws, self.reserved_concurrency).await?;
        }
        if self.provisioned_concurrency.is_some() {
            self.publish_to_alias(aws, false).await?;
            self.put_provisioned(aws, aws.timeouts.create()).await?;
        }
        Ok(())
    }

    /// Sends every setting `UpdateFunctionConfiguration` carries: memory, timeout, role
    /// and environment. A role just created (or given its trust policy) answers as on
    /// create, so the call is repeated the same way (terraform-provider-aws's
    /// `retryFunctionOp` covers both calls).
    pub(super) async fn update_configuration(
        &self,
        aws: &Aws,
        role: RoleRetry,
    ) -> Result<(), AwsError> {
        wait::retrying(
            "lambda:UpdateFunctionConfiguration",
            role.limit,
            role.first,
            || async {
                aws.lambda
                    .update_function_configuration()
                    .function_name(&self.name)
                    .memory_size(self.memory_mb as i32)
                    .timeout(self.timeout_s as i32)
                    .role(&self.role_arn)
                    .environment(self.environment())
                    .send()
                    .await
                    .map_err(error("lambda:UpdateFunctionConfiguration"))
            },
            role_not_ready,
        )
        .await?;
        Ok(())
    }

    /// Sends the image and its architecture (`UpdateFunctionCode`).
    pub(super) async fn update_code(&self, aws: &Aws) -> Result<(), AwsError> {
        aws.lambda
            .update_function_code()
            .function_name(&self.name)
            .image_uri(&self.image)
            .architectures(self.architecture())
            .send()
            .await
            .map_err(error("lambda:UpdateFunctionCode"))?;
        Ok(())
    }

    /// Reserves `reserved` concurrent executions, or removes the reservation.
    pub(super) async fn put_concurrency(
        &self,
        aws: &Aws,
        reserved: Option<u32>,
    ) -> Result<(), AwsError> {
        match reserved {
            Some(n) => {
                aws.lambda
                    .put_function_concurrency()
                    .function_name(&self.name)
                    .reserved_concurrent_executions(n as i32)
                    .send()
                    .await
                    .map_err(error("lambda:PutFunctionConcurrency"))?;
            }
            None => {
                aws.lambda
                    .delete_function_concurrency()
                    .function_name(&self.name)
                    .send()
                    .await
                    .map_err(error("lambda:DeleteFunctionConcurrency"))?;
            }
        }
        Ok(())
    }
}

/// Whether an error is IAM's eventual consistency: the role exists but Lambda cannot
/// assume it yet. Lambda says so only with the generic `InvalidParameterValueException`
/// (which also covers a missing image): the message is the only way to tell.
fn role_not_ready(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValueException")
        && e.message.contains("cannot be assumed")
}

/// The call that makes a change (terraform-provider's `needsFunctionConfigUpdate` and
/// `needsFunctionCodeUpdate`): settings one call sends together are one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Update {
    /// `UpdateFunctionConfiguration`: memory, timeout, role, environment.
    Configuration,
    /// `UpdateFunctionCode`: the image and its architecture.
    Code,
    ReservedConcurrency,
    /// A new version on the alias, or only its provisioned concurrency.
    ProvisionedConcurrency,
    Tags,
}

impl Change {
    pub(super) fn update(&self) -> Update {
        match self {
            Change::Memory { .. }
            | Change::Timeout { .. }
            | Change::Role { .. }
            | Change::Environment { .. } => Update::Configuration,
            Change::Image { .. } | Change::Architecture { .. } => Update::Code,
            Change::ReservedConcurrency { .. } => Update::ReservedConcurrency,
            Change::ProvisionedConcurrency { .. } => Update::ProvisionedConcurrency,
            Change::Tags(_) => Update::Tags,
        }
    }
}

/// Whether any of `changes` needs the call `update`.
pub(super) fn needs(changes: &[Change], update: Update) -> bool {
    changes.iter().any(|c| c.update() == update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_role_propagation_error_is_retried() {
        let e = |code: &str, msg: &str| AwsError {
            code: Some(code.into()),
            ..AwsError::new("lambda:CreateFunction", msg)
        };
        assert!(role_not_ready(&e(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda."
        )));
        assert!(!role_not_ready(&e(
            "InvalidParameterValueException",
            "Source image 1234.dkr.ecr.us-east-1.amazonaws.com/x@sha256:aa does not exist."
        )));
        assert!(!role_not_ready(&e(
            "AccessDeniedException",
            "cannot be assumed"
        )));
    }
}
