//! Lambda function from the container image, one file per concern: the function itself
//! (`function`: package type Image deployed by digest, memory and timeout from the
//! manifest, the predictor's environment, the stack's execution role, reserved
//! concurrency) with the calls that write it (`update`) and its status and waiter
//! (`status`), the alias [`ALIAS`] with its published version and provisioned
//! concurrency (`provisioned_concurrency`), and the last cold start read from the
//! function's logs (`cold_start`). A new digest is `UpdateFunctionCode`; changed
//! settings are `UpdateFunctionConfiguration` (sent first); every change waits, bounded,
//! until the function is `Active` and its last update `Successful`. The tests that
//! replay `apply`'s calls and their order are in `replay`.

mod cold_start;
mod function;
mod provisioned_concurrency;
#[cfg(test)]
mod replay;
mod status;
mod update;

// The module's paths from before the split (`lambda::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    cold_start::init_duration,
    function::{Change, Function, Observed},
    provisioned_concurrency::{ALIAS, provisioning},
    status::readiness,
};
