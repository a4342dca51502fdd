//! `deployer logs`: the targets' log groups (the function's and the service's), read
//! with FilterLogEvents, on AWS and locally alike (the local runtime ships its
//! processes' output to the emulator's log groups).

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use serde::Serialize;

use crate::aws::{Aws, AwsError, FoundExt, Service};
use crate::manifest::Manifest;
use crate::output::Format;

/// How far before the newest line printed the next poll starts.
const LOOK_BACK_MS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Serverful,
    Serverless,
}

#[derive(Debug, Serialize)]
struct Line<'a> {
    target: &'a str,
    timestamp_ms: i64,
    stream: &'a str,
    message: &'a str,
}

/// `10m`, `2h`, `30s`, `1d` as a duration.
pub fn parse_since(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as `10m`, `2h` or `30s`"))?;
    let secs = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n * secs))
}

/// Prints the log events of `targets` since `since` ago; with `follow`, keeps polling
/// until interrupted.
pub async fn run(
    aws: &Aws,
    m: &Manifest,
    targets: &[Target],
    since: Duration,
    follow: bool,
    format: Format,
) -> Result<(), AwsError> {
    let n = m.names();
    let from = crate::local::logs::now_ms() - since.as_millis() as i64;
    let mut groups: Vec<Group> = targets
        .iter()
        .map(|t| match t {
            Target::Serverful => Group::new("serverful", n.ecs_log_group.clone(), from),
            Target::Serverless => Group::new("serverless", n.lambda_log_group.clone(), from),
        })
        .collect();
    loop {
        for g in &mut groups {
            g.poll(aws, format).await?;
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One target's log group, and how far it has been read.
struct Group {
    target: &'static str,
    name: String,
    /// Where the next poll starts.
    from: i64,
    /// Lines arrive in batches, stream by stream, some with earlier timestamps than
    /// lines already read: each poll looks back a little and skips the events it has
    /// printed.
    seen: HashSet<String>,
}

impl Group {
    fn new(target: &'static str, name: String, from: i64) -> Group {
        Group {
            target,
            name,
            from,
            seen: HashSet::new(),
        }
    }

    /// Prints the group's events since `from` that were not printed yet, page by page.
    async fn poll(&mut self, aws: &Aws, format: Format) -> Result<(), AwsError> {
        let mut token = None;
        let mut newest = self.from;
        loop {
            let Some(out) = aws
                .logs
                .filter_log_events()
                .log_group_name(&self.name)
                .start_time(self.from)
                .set_next_token(token)
                .send()
                .await
                .found(Service::Logs, "logs:FilterLogEvents")?
            else {
                break;
            };
            let mut events: Vec<_> = out.events().to_vec();
            events.sort_by_key(|e| e.timestamp().unwrap_or_default());
            for e in &events {
                let id = e.event_id().unwrap_or_default().to_string();
                if !id.is_empty() && !self.seen.insert(id) {
                    continue;
                }
                newest = newest.max(self.print(e, format));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        self.from = self.from.max(newest - LOOK_BACK_MS);
        Ok(())
    }

    /// Prints one event; its timestamp.
    fn print(&self, e: &FilteredLogEvent, format: Format) -> i64 {
        let target = self.target;
        let line = Line {
            target,
            timestamp_ms: e.timestamp().unwrap_or_default(),
            stream: e.log_stream_name().unwrap_or_default(),
            message: e.message().unwrap_or_default().trim_end(),
        };
        match format {
            Format::Text => println!("[{target}] {}", line.message),
            Format::Json => {
                println!("{}", serde_json::to_string(&line).unwrap_or_default())
            }
        }
        line.timestamp_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_seconds_minutes_hours_days() {
        assert_eq!(parse_since("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_since("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_since("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_since("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_since("ten minutes").is_err());
        assert!(parse_since("5w").is_err());
    }
}
