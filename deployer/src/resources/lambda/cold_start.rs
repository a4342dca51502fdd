//! The function's last cold start, as status shows it: the init duration Lambda writes
//! in its `REPORT` log lines.

use crate::aws::{Aws, AwsError, FoundExt, Service};

/// The most recent cold start's init duration, from the `REPORT` lines Lambda writes to
/// the function's log group. `None` when there is no log group or no cold start yet.
pub(super) async fn last_init_duration(
    aws: &Aws,
    log_group: &str,
) -> Result<Option<f64>, AwsError> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64 - 24 * 3600 * 1000)
        .unwrap_or_default();
    let Some(out) = aws
        .logs
        .filter_log_events()
        .log_group_name(log_group)
        .filter_pattern("\"Init Duration\"")
        .start_time(since)
        .send()
        .await
        .found(Service::Logs, "logs:FilterLogEvents")?
    else {
        return Ok(None);
    };
    Ok(out
        .events()
        .iter()
        .max_by_key(|e| e.timestamp().unwrap_or_default())
        .and_then(|e| init_duration(e.message().unwrap_or_default())))
}

/// The init duration in a Lambda `REPORT` log line (present only for a cold start).
pub fn init_duration(report: &str) -> Option<f64> {
    let rest = report.split("Init Duration:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_duration_is_read_from_a_cold_start_report() {
        let cold = "REPORT RequestId: 3f1c Duration: 412.31 ms Billed Duration: 1420 ms \
                    Memory Size: 3000 MB Max Memory Used: 312 MB Init Duration: 1007.42 ms";
        assert_eq!(init_duration(cold), Some(1007.42));
        let warm = "REPORT RequestId: 3f1d Duration: 98.1 ms Billed Duration: 99 ms";
        assert_eq!(init_duration(warm), None);
    }
}
