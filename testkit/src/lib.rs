//! Test harness shared by the workspace's integration tests: a real moto server (the
//! AWS emulator) on a free loopback port per test, its request recording (to count what a
//! client sent), and SDK clients to check what the emulator holds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

/// A moto server, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    recording: PathBuf,
    dir: PathBuf,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    pub fn start() -> Moto {
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("deployer-moto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let recording = dir.join("requests.jsonl");
        let log = std::fs::File::create(dir.join("moto.log")).unwrap();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_ENABLE_RECORDING", "true")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting moto with `{python}`: {e} (run scripts/setup-test-tools.sh)")
            });
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            recording,
            dir,
        };
        moto.wait_ready(port);
        moto
    }

    fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok()
                    && head.starts_with(b"HTTP/1.")
                    && &head[9..12] == b"200"
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("moto.log")).unwrap_or_default();
        panic!("moto did not become ready on port {port}:\n{log}");
    }

    /// Every request the server received since the last `clear_requests`.
    pub fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| Request::from_recording(&v))
            .collect()
    }

    pub fn clear_requests(&self) {
        let _ = std::fs::write(&self.recording, "");
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .test_credentials()
            .load()
            .await
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk().await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request as moto recorded it, reduced to the operation it called.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub operation: String,
}

impl Request {
    fn from_recording(v: &serde_json::Value) -> Request {
        let method = v["method"].as_str().unwrap_or_default().to_string();
        let headers: std::collections::HashMap<String, String> = v["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let body = match (v["body"].as_str(), v["body_encoded"].as_bool()) {
            (Some(b), Some(true)) => String::from_utf8_lossy(&base64_decode(b)).into_owned(),
            (Some(b), _) => b.to_string(),
            _ => String::new(),
        };
        let operation = if let Some(target) = headers.get("x-amz-target") {
            target.rsplit('.').next().unwrap_or(target).to_string()
        } else if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            action.to_string()
        } else {
            // REST (S3): the method and the path with its sub-resource.
            let url = v["url"].as_str().unwrap_or_default();
            let path = url.splitn(4, '/').nth(3).unwrap_or_default();
            format!("{method} /{path}")
        };
        Request { method, operation }
    }

    /// Whether the request can change anything.
    pub fn is_mutating(&self) -> bool {
        if self.operation.contains(' ') {
            return !matches!(self.method.as_str(), "GET" | "HEAD");
        }
        let reads = ["Describe", "Get", "List", "Head", "BatchGet", "BatchCheck"];
        !reads.iter().any(|p| self.operation.starts_with(p))
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = s.bytes().filter_map(value).collect();
    digits
        .chunks(4)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &d)| acc | u32::from(d) << (18 - 6 * i));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(c.len().saturating_sub(1))
        })
        .collect()
}

pub fn mutating(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| r.operation.clone())
        .collect()
}
