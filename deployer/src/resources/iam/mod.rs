//! IAM, one file per resource: roles (`role`: trust policy, one inline least-privilege
//! policy, managed policies where AWS requires them) and the EC2 instance profile
//! (`instance_profile`); and the account's service-linked roles
//! (`service_linked_role`), which are AWS's, not the stack's: created when missing,
//! never tagged or deleted. A role's policies are written by `policies`. What they
//! share lives here: the propagation retry and tags.
//!
//! IAM is eventually consistent: a role or profile created moments ago may answer
//! `NoSuchEntity` to the next call that names it (IAM User Guide, "changes I make are not
//! always immediately visible"; terraform-provider-aws PR #6079). Those calls are retried
//! for [`PROPAGATION`].

mod instance_profile;
mod policies;
mod role;
mod service_linked_role;

// The module's paths from before the split (`iam::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    instance_profile::{Change as ProfileChange, InstanceProfile, ObservedProfile},
    policies::INLINE_POLICY,
    role::{Change as RoleChange, ObservedRole, Role},
    service_linked_role::{ECS_SERVICE_LINKED_ROLE, ServiceLinkedRole},
};

use std::time::Duration;

use crate::aws::AwsError;

/// How long a new role or instance profile may take to be visible everywhere (usually
/// seconds; AWS names no bound, eksctl saw ~30 s).
pub const PROPAGATION: Duration = Duration::from_secs(120);
/// The first pause between two tries while IAM propagates.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Whether IAM answered that a role or profile it just created does not exist yet.
/// `NoSuchEntity` is IAM's own code for it: no message check.
pub fn not_yet_visible(e: &AwsError) -> bool {
    e.code.as_deref() == Some("NoSuchEntity")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_such_entity_is_iam_propagating() {
        let e = |code: &str, message: &str| AwsError {
            code: Some(code.into()),
            ..AwsError::new("iam:AddRoleToInstanceProfile", message)
        };
        assert!(not_yet_visible(&e(
            "NoSuchEntity",
            "The role with name r cannot be found."
        )));
        assert!(!not_yet_visible(&e("EntityAlreadyExists", "r")));
    }
}
