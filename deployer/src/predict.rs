//! `deployer predict`: one or more photos through a target, the detections printed.
//! A local file is uploaded to the input bucket and named by key (as the studies sent
//! them), or sent as the body with `--body`; anything else is a key already there.

use std::path::Path;

use serde_json::Value;

use crate::aws::Aws;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::output::Format;

/// Refuses, before anything is sent, a photo larger than `target` takes as a body: the
/// serverless side's limit is the base64-encoded event's, lower than the serverful side's
/// (`Manifest::body_limit`).
pub fn check_body(m: &Manifest, target: &str, name: &str, len: u64) -> Result<(), Error> {
    let limit = m.body_limit(target == "serverless");
    if len <= limit {
        return Ok(());
    }
    Err(Error::Usage {
        message: format!(
            "`{name}` is {len} bytes; the {target} target takes a body of at most {limit} bytes{}",
            if target == "serverless" {
                " (the HTTP API base64-encodes it into Lambda's 6 MB event)"
            } else {
                " (`predictor.max_body_bytes`)"
            }
        ),
        hint: Some(
            "send it by S3 key instead: without `--body` (predict), `--by key` (bench)".into(),
        ),
    })
}

pub async fn run(
    aws: &Aws,
    m: &Manifest,
    target: &str,
    url: &str,
    inputs: &[String],
    body: bool,
    format: Format,
) -> Result<u8, Error> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| Error::Usage {
            message: format!("an HTTP client: {e}"),
            hint: None,
        })?;
    let sender = Sender {
        aws,
        m,
        client,
        target,
        url,
        body,
    };
    let mut failed = 0;
    for input in inputs {
        let (status, json) = sender.send(input).await?;
        if status != 200 {
            failed += 1;
        }
        match format {
            Format::Json => println!(
                "{}",
                serde_json::json!({"input": input, "status": status, "response": json})
            ),
            Format::Text => println!("{}", line(input, status, &json)),
        }
    }
    Ok(u8::from(failed > 0))
}

/// Where the photos go, and how: by key, or (`body`) as the request body.
struct Sender<'a> {
    aws: &'a Aws,
    m: &'a Manifest,
    client: reqwest::Client,
    target: &'a str,
    url: &'a str,
    body: bool,
}

impl Sender<'_> {
    /// The target's status and answer (the text when it is not JSON); status 0 when the
    /// target could not be reached.
    async fn send(&self, input: &str) -> Result<(u16, Value), Error> {
        let path = Path::new(input);
        let request = if path.is_file() {
            self.file(path, input).await?
        } else {
            self.by_key(input)
        };
        Ok(match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (
                0,
                Value::String(format!("could not reach {}: {e}", self.url)),
            ),
        })
    }

    /// A local photo: as the body, or uploaded to the input bucket and sent by key.
    async fn file(&self, path: &Path, input: &str) -> Result<reqwest::RequestBuilder, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Usage {
            message: format!("reading `{input}`: {e}"),
            hint: None,
        })?;
        if self.body {
            check_body(self.m, self.target, input, bytes.len() as u64)?;
            return Ok(self
                .client
                .post(self.url)
                .header("content-type", crate::bench::load::content_type(input))
                .body(bytes));
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let key = format!("predict/{name}");
        let bucket = self.m.names().input_bucket;
        crate::bench::upload(self.aws, &bucket, &key, bytes).await?;
        Ok(self.by_key(&key))
    }

    fn by_key(&self, key: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "image": key }).to_string())
    }
}

/// `bus.jpg  200  bus 0.94, person 0.89  (cold, 412 ms)  <url>`
fn line(input: &str, status: u16, json: &Value) -> String {
    if status != 200 {
        let why = json["error"]["message"]
            .as_str()
            .or(json["message"].as_str())
            .map_or_else(|| json.to_string(), str::to_string);
        return format!("{input}  {status}  error: {why}");
    }
    let found: Vec<String> = json["detections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} {:.2}",
                d["label"].as_str().unwrap_or("?"),
                d["score"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    format!(
        "{input}  {status}  {}  ({}, {:.0} ms)  {}",
        if found.is_empty() {
            "nothing".to_string()
        } else {
            found.join(", ")
        },
        if json["instance"]["cold"] == true {
            "cold"
        } else {
            "warm"
        },
        json["timings_ms"]["total"].as_f64().unwrap_or(0.0),
        json["url"].as_str().unwrap_or("")
    )
}
