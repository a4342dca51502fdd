//! Whether a function is ready for the next call: its status, read from `State` and
//! `LastUpdateStatus`, and the bounded wait until it is (Lambda refuses an update while
//! another is in progress).

use std::time::Duration;

use super::Function;
use crate::aws::{Aws, AwsError, error};
use crate::wait::{self, Poll};

/// Whether a function is ready for the next call, from its `State` and
/// `LastUpdateStatus` (and their reasons).
pub fn readiness(
    state: Option<&str>,
    state_reason: Option<&str>,
    last_update: Option<&str>,
    update_reason: Option<&str>,
) -> Poll<()> {
    let reason = |r: Option<&str>| r.unwrap_or("no reason given").to_string();
    match (
        state.unwrap_or("Pending"),
        last_update.unwrap_or("Successful"),
    ) {
        ("Failed", _) => Poll::Failed(format!("function state Failed: {}", reason(state_reason))),
        (_, "Failed") => Poll::Failed(format!("last update Failed: {}", reason(update_reason))),
        // An idle function is reclaimed to Inactive; an update reactivates it.
        ("Active" | "Inactive", "Successful") => Poll::Ready(()),
        (state, update) => Poll::Pending(format!("state {state}, last update {update}")),
    }
}

impl Function {
    /// Waits, bounded, until the function is ready for the next call.
    pub(super) async fn settled(&self, aws: &Aws, limit: Duration) -> Result<(), AwsError> {
        wait::until(
            "lambda:GetFunctionConfiguration",
            limit,
            Duration::from_secs(1),
            || async {
                let c = aws
                    .lambda
                    .get_function_configuration()
                    .function_name(&self.name)
                    .send()
                    .await
                    .map_err(error("lambda:GetFunctionConfiguration"))?;
                Ok(readiness(
                    c.state().map(|s| s.as_str()),
                    c.state_reason(),
                    c.last_update_status().map(|s| s.as_str()),
                    c.last_update_status_reason(),
                ))
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `State`/`LastUpdateStatus` pairs as the GetFunctionConfiguration reference
    /// documents them (fixtures in tests/fixtures/lambda).
    #[test]
    fn readiness_follows_state_and_last_update() {
        let fixtures: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/lambda/get_function_configuration.json"
        ))
        .unwrap();
        for case in fixtures.as_array().unwrap() {
            let c = &case["response"];
            let s = |k: &str| c[k].as_str();
            let got = readiness(
                s("State"),
                s("StateReason"),
                s("LastUpdateStatus"),
                s("LastUpdateStatusReason"),
            );
            let want = case["expect"].as_str().unwrap();
            let kind = match &got {
                Poll::Ready(()) => "ready",
                Poll::Pending(_) => "pending",
                Poll::Failed(_) => "failed",
            };
            assert_eq!(kind, want, "{}: {got:?}", case["case"]);
            if let Poll::Failed(why) = got {
                assert!(
                    why.contains(s("StateReason").or(s("LastUpdateStatusReason")).unwrap()),
                    "{why}"
                );
            }
        }
    }
}
