//! Test harness shared by the workspace's integration tests: a real moto server (the
//! AWS emulator) on a free loopback port per test, its request recording (to count what a
//! client sent), and SDK clients to check what the emulator holds; a real registry; and
//! a proxy that answers like AWS where the emulators are kinder ([`proxy`]).

pub mod consistency;
pub mod faults;
pub mod proxy;

pub use consistency::Window;
pub use faults::{Fault, Faults, Rng};
pub use proxy::{Behaviour, Injected, Proxy};

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
    /// The body as text (query-protocol calls: the form; JSON calls: the document).
    pub body: String,
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
        Request {
            method,
            operation,
            body,
        }
    }

    /// A query-protocol parameter (`MinSize`, `LaunchTemplate.LaunchTemplateName`),
    /// decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| consistency::form_decode(k) == name)
            .map(|(_, v)| consistency::form_decode(v))
    }

    /// Whether the request can change anything.
    pub fn is_mutating(&self) -> bool {
        if self.operation.contains(' ') {
            return !matches!(self.method.as_str(), "GET" | "HEAD");
        }
        let reads = [
            "Describe",
            "Get",
            "List",
            "Head",
            "BatchGet",
            "BatchCheck",
            "Filter",
        ];
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

/// A response from [`http`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A minimal HTTP/1.1 client for loopback tests: one request per connection.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let rest = url.strip_prefix("http://").expect("http:// URLs only");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer early (413 from Content-Length) and close before the body is
    // all sent; like curl, read its answer anyway.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw)
        && raw.is_empty()
    {
        return Err(e);
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no end of headers"))?;
    let text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// Standard base64 with padding, for building event payloads.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `call` `n` times from `concurrency` threads (a closed loop: each thread starts its
/// next call when the previous one answered) and returns every result, in no set order.
pub fn closed_loop<T: Send>(n: usize, concurrency: usize, call: impl Fn() -> T + Sync) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                        got.push(call());
                    }
                    got
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

/// A real OCI registry (Debian's `docker-registry`, the CNCF distribution registry) on a
/// free loopback port, with its own config (the packaged one listens on every
/// interface), optionally behind htpasswd Basic auth, the scheme ECR uses.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`
    pub host: String,
    pub dir: PathBuf,
    /// `(user, password)` when auth is on.
    pub credentials: Option<(String, String)>,
}

impl Registry {
    pub fn start(with_auth: bool) -> Registry {
        let binary = std::env::var("REGISTRY_BIN").unwrap_or_else(|_| "docker-registry".into());
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("deployer-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        let credentials = with_auth.then(|| ("pusher".to_string(), "s3cret-Pa55".to_string()));
        if let Some((user, password)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .unwrap_or_else(|e| panic!("htpasswd (apache2-utils): {e}"));
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(&binary)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting `{binary}`: {e} (run scripts/setup-test-tools.sh)")
            });
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            dir,
            credentials,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http("GET", &format!("http://{}/v2/", registry.host), &[], &[])
                && (r.status == 200 || r.status == 401)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not start: {}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// How many blob uploads the registry has completed so far (from its access log).
    pub fn blob_uploads(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
