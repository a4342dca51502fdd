//! Lambda function from the container image, one file per concern: the function itself
//! (`function`: package type Image deployed by digest, memory and timeout from the
//! manifest, the predictor's environment, the stack's execution role, reserved
//! concurrency), the alias [`ALIAS`] with its published version and provisioned
//! concurrency (`provisioned_concurrency`), and the last cold start read from the
//! function's logs (`cold_start`). A new digest is `UpdateFunctionCode`; changed
//! settings are `UpdateFunctionConfiguration`; every change waits, bounded, until the
//! function is `Active` and its last update `Successful`.

mod cold_start;
mod function;
mod provisioned_concurrency;

// The module's paths from before the split (`lambda::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    cold_start::init_duration,
    function::{Function, Observed, readiness},
    provisioned_concurrency::{ALIAS, provisioning},
};
