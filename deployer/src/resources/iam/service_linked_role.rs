//! The account's service-linked roles, which are AWS's, not the stack's: created when
//! missing, never tagged or deleted (other stacks use them too).

use crate::aws::{Aws, AwsError, error};

/// ECS's service-linked role, which `CreateCluster`, `PutClusterCapacityProviders` and
/// `CreateService` need; an account that never used ECS has none.
pub const ECS_SERVICE_LINKED_ROLE: ServiceLinkedRole = ServiceLinkedRole {
    service: "ecs.amazonaws.com",
    name: "AWSServiceRoleForECS",
};

/// A role AWS defines for one of its services, one per account: this tool creates it
/// when it is missing and leaves it alone otherwise (other stacks use it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLinkedRole {
    pub service: &'static str,
    /// AWS's name for it (moto spells it differently: it is found by path).
    pub name: &'static str,
}

impl ServiceLinkedRole {
    /// The role's ARN; `None` when the account has none. Found by its path, which AWS
    /// reserves for the service's linked roles (`/aws-service-role/ecs.amazonaws.com/`),
    /// so any spelling of the name is found.
    pub async fn find(&self, aws: &Aws) -> Result<Option<String>, AwsError> {
        let roles = aws
            .iam
            .list_roles()
            .path_prefix(format!("/aws-service-role/{}/", self.service))
            .send()
            .await
            .map_err(error("iam:ListRoles"))?;
        Ok(roles.roles().first().map(|r| r.arn().to_string()))
    }

    /// Creates the role unless it exists; whether it was created. Someone creating it
    /// meanwhile is as good as creating it.
    pub async fn ensure(&self, aws: &Aws) -> Result<bool, AwsError> {
        if self.find(aws).await?.is_some() {
            return Ok(false);
        }
        match aws
            .iam
            .create_service_linked_role()
            .aws_service_name(self.service)
            .send()
            .await
            .map_err(error("iam:CreateServiceLinkedRole"))
        {
            Ok(_) => Ok(true),
            Err(e) if already_taken(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether `CreateServiceLinkedRole` answered that the role exists. AWS says so only with
/// the generic `InvalidInput` ("Service role name AWSServiceRoleForECS has been taken in
/// this account, please try a different suffix."), which also covers malformed requests:
/// the message is the only way to tell.
fn already_taken(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidInput") && e.message.contains("has been taken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_taken_name_counts_as_an_existing_service_linked_role() {
        let e = |code: &str, message: &str| AwsError {
            code: Some(code.into()),
            ..AwsError::new("iam:CreateServiceLinkedRole", message)
        };
        assert!(already_taken(&e(
            "InvalidInput",
            "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix."
        )));
        assert!(!already_taken(&e(
            "InvalidInput",
            "Invalid AWS service name: ecs.amazonaws.con"
        )));
        assert!(!already_taken(&e("AccessDenied", "has been taken")));
    }
}
