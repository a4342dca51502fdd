//! The targets' output, as AWS keeps it: every line of every process goes to the log
//! group its target writes to on AWS (the function's and the service's), in the
//! emulator's CloudWatch Logs, one stream per process, so `deployer logs` and `status`
//! read local runs and AWS the same way. A copy goes to a file for when the emulator
//! is gone.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use tokio::sync::mpsc;

struct Line {
    group: String,
    stream: String,
    at_ms: i64,
    text: String,
}

/// Where one process's lines go.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<Line>,
    group: String,
    stream: String,
}

impl LogSink {
    pub fn line(&self, text: impl Into<String>) {
        let _ = self.tx.send(Line {
            group: self.group.clone(),
            stream: self.stream.clone(),
            at_ms: now_ms(),
            text: text.into(),
        });
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Ships lines to CloudWatch Logs in batches, every half second.
#[derive(Clone)]
pub struct LogHub {
    tx: mpsc::UnboundedSender<Line>,
}

impl LogHub {
    pub fn start(client: aws_sdk_cloudwatchlogs::Client, file: PathBuf) -> LogHub {
        let (tx, rx) = mpsc::unbounded_channel::<Line>();
        tokio::spawn(ship(client, file, rx));
        LogHub { tx }
    }

    pub fn sink(&self, group: &str, stream: &str) -> LogSink {
        LogSink {
            tx: self.tx.clone(),
            group: group.to_string(),
            stream: stream.to_string(),
        }
    }
}

/// The hub's task, until every sender is gone: each batch to the file, then to its
/// streams (created on first use).
async fn ship(
    client: aws_sdk_cloudwatchlogs::Client,
    file: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Line>,
) {
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .ok();
    let mut streams = std::collections::BTreeSet::new();
    while let Some(batch) = next_batch(&mut rx).await {
        for ((group, stream), lines) in batch {
            if let Some(f) = out.as_mut() {
                for l in &lines {
                    let _ = writeln!(f, "{group} {stream} {}", l.text);
                }
            }
            if streams.insert((group.clone(), stream.clone())) {
                // Already there is as good as created.
                let _ = client
                    .create_log_stream()
                    .log_group_name(&group)
                    .log_stream_name(&stream)
                    .send()
                    .await;
            }
            put(&client, &group, &stream, lines).await;
        }
    }
}

/// The next line and whatever follows it within half a second, by group and stream;
/// `None` once every sender is gone.
async fn next_batch(
    rx: &mut mpsc::UnboundedReceiver<Line>,
) -> Option<BTreeMap<(String, String), Vec<Line>>> {
    let first = rx.recv().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut batch: BTreeMap<(String, String), Vec<Line>> = BTreeMap::new();
    let mut push = |l: Line| {
        batch
            .entry((l.group.clone(), l.stream.clone()))
            .or_default()
            .push(l)
    };
    push(first);
    while let Ok(l) = rx.try_recv() {
        push(l);
    }
    Some(batch)
}

/// Sends one stream's lines, at most 5000 a call.
async fn put(client: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str, lines: Vec<Line>) {
    let events: Vec<InputLogEvent> = lines
        .into_iter()
        .filter_map(|l| {
            InputLogEvent::builder()
                .timestamp(l.at_ms)
                .message(l.text)
                .build()
                .ok()
        })
        .collect();
    for chunk in events.chunks(5000) {
        if let Err(e) = client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(chunk.to_vec()))
            .send()
            .await
        {
            tracing::debug!("shipping logs to {group}: {e}");
        }
    }
}
