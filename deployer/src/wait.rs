//! Bounded waits. Every wait in the deployer goes through [`until`]: it polls a check
//! that says ready, still pending (and why), or failed (and why), and gives up after a
//! limit, naming the last reason it was still waiting, instead of hanging.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::AwsError;

/// What one look at a resource found.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll<T> {
    Ready(T),
    /// Not there yet; the reason is shown while waiting and in the timeout error.
    Pending(String),
    /// It will never get there: stop now with this reason.
    Failed(String),
}

/// Where a wait says what it waits for (the command's progress lines).
type Reporter = Box<dyn Fn(&'static str, &str) + Send + Sync>;
static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// Sends every wait's reason to `report` (operation, reason) each time it changes; set
/// once by the command. Without it, reasons go to the `-v` log only.
pub fn report_to(report: impl Fn(&'static str, &str) + Send + Sync + 'static) {
    let _ = REPORTER.set(Box::new(report));
}

/// Polls `check` until it is ready, fails, or `limit` has passed. The interval starts at
/// `first` and doubles up to ten times that.
pub async fn until<T, F, Fut>(
    operation: &'static str,
    limit: Duration,
    first: Duration,
    mut check: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, AwsError>>,
{
    let deadline = Instant::now() + limit;
    let mut interval = first;
    let mut told = String::new();
    loop {
        let why = match check().await? {
            Poll::Ready(v) => return Ok(v),
            Poll::Failed(why) => return Err(AwsError::new(operation, why)),
            Poll::Pending(why) => why,
        };
        tracing::info!(operation, "waiting: {why}");
        if why != told {
            if let Some(report) = REPORTER.get() {
                report(operation, &why);
            }
            told.clone_from(&why);
        }
        if Instant::now() + interval > deadline {
            return Err(AwsError::timed_out(
                operation,
                format!("gave up after {}s: {why}", limit.as_secs()),
            ));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(first * 10);
    }
}

/// Repeats `call` while it fails with an error `transient` accepts (a role IAM has not
/// propagated yet, a group still held by network interfaces), bounded like [`until`].
pub async fn retrying<T, F, Fut>(
    operation: &'static str,
    limit: Duration,
    first: Duration,
    mut call: F,
    transient: fn(&AwsError) -> bool,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    until(operation, limit, first, || {
        let attempt = call();
        async move {
            match attempt.await {
                Ok(v) => Ok(Poll::Ready(v)),
                Err(e) if transient(&e) => Ok(Poll::Pending(e.to_string())),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Kind;

    #[tokio::test]
    async fn retrying_repeats_only_transient_errors() {
        let busy = |e: &AwsError| e.code.as_deref() == Some("DependencyViolation");
        let error = |code: &str| AwsError {
            code: Some(code.into()),
            ..AwsError::new("ec2:DeleteSecurityGroup", "m")
        };
        let mut n = 0;
        let v = retrying(
            "op",
            1000 * MS,
            MS,
            || {
                n += 1;
                let r = if n < 3 {
                    Err(error("DependencyViolation"))
                } else {
                    Ok(n)
                };
                async move { r }
            },
            busy,
        )
        .await
        .unwrap();
        assert_eq!(v, 3);
        let e = retrying::<(), _, _>(
            "op",
            1000 * MS,
            MS,
            || async { Err(error("InvalidGroup.InUse")) },
            busy,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("InvalidGroup.InUse"));
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn returns_once_ready() {
        let mut n = 0;
        let v = until("op", 1000 * MS, MS, || {
            n += 1;
            let p = if n < 3 {
                Poll::Pending(format!("try {n}"))
            } else {
                Poll::Ready(n)
            };
            async move { Ok(p) }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn stops_at_the_first_failure_with_its_reason() {
        let e = until::<(), _, _>("lambda:Wait", 1000 * MS, MS, || async {
            Ok(Poll::Failed("InvalidImage: exec format error".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(e.operation, "lambda:Wait");
        assert_eq!(e.message, "InvalidImage: exec format error");
        assert_eq!(e.kind, Kind::Refused, "a failure is not a timeout");
    }

    #[tokio::test]
    async fn gives_up_naming_the_last_reason() {
        let e = until::<(), _, _>("ecs:Wait", 20 * MS, 5 * MS, || async {
            Ok(Poll::Pending("0 of 1 tasks running".into()))
        })
        .await
        .unwrap_err();
        assert!(e.message.starts_with("gave up after 0s"), "{}", e.message);
        assert!(e.message.ends_with("0 of 1 tasks running"), "{}", e.message);
        assert_eq!(e.kind, Kind::TimedOut);
        let retried = retrying::<(), _, _>(
            "ec2:DeleteSecurityGroup",
            20 * MS,
            5 * MS,
            || async { Err(AwsError::new("ec2:DeleteSecurityGroup", "in use")) },
            |_| true,
        )
        .await
        .unwrap_err();
        assert_eq!(retried.kind, Kind::TimedOut);
    }
}
