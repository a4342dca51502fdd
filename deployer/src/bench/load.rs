//! The load: closed loops (the studies' batches, `ab`, the concurrency sweep) and an
//! open loop at a fixed rate whose latencies count from each request's intended send
//! time, so a stalled server is not hidden by a generator that waits for it
//! (coordinated omission). Every request becomes one [`Record`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What is sent: a key in the input bucket (the studies' way) or the photo itself.
#[derive(Debug, Clone)]
pub enum Photo {
    Key(String),
    Body { name: String, bytes: Arc<Vec<u8>> },
}

impl Photo {
    pub fn name(&self) -> &str {
        match self {
            Photo::Key(k) => k,
            Photo::Body { name, .. } => name,
        }
    }
}

/// One request as the generator saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub target: String,
    /// Batch (study), step (sweep) or phase (cold: 0 cold, 1 warm).
    pub phase: u32,
    pub id: u64,
    pub photo: String,
    /// Seconds since the run started: when the schedule wanted it sent, when it was.
    pub intended_s: f64,
    pub sent_s: f64,
    /// From the intended send time to the whole answer.
    pub latency_ms: f64,
    pub status: u16,
    pub bytes: u64,
    /// The server's own total (its `timings_ms.total`).
    pub server_ms: Option<f64>,
    /// The server's stages (`download=12.1;decode=4.0;…`).
    pub stages: Option<String>,
    pub instance: Option<String>,
    /// The answering process's request count: 1 is its first (cold) request.
    pub seq: Option<u64>,
    pub cold: bool,
    pub error: Option<String>,
    /// The model that answered (the answer's `model`: its file's stem).
    #[serde(default)]
    pub model: Option<String>,
}

/// Sends requests to one target.
#[derive(Clone)]
pub struct Shooter {
    pub target: String,
    pub url: String,
    pub client: reqwest::Client,
    pub photos: Arc<Vec<Photo>>,
    pub started: Instant,
    next: Arc<AtomicUsize>,
}

impl Shooter {
    pub fn new(
        target: &str,
        url: &str,
        photos: Arc<Vec<Photo>>,
        timeout: Duration,
        started: Instant,
    ) -> Shooter {
        Shooter {
            target: target.to_string(),
            url: url.to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(timeout)
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            photos,
            started,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn since(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64()
    }

    /// One request, due at `intended`.
    pub async fn shoot(&self, phase: u32, intended: Instant) -> Record {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let photo = &self.photos[n % self.photos.len()];
        let sent = Instant::now();
        let request = self.request(photo);
        let mut r = Record {
            target: self.target.clone(),
            phase,
            id: n as u64,
            photo: photo.name().to_string(),
            intended_s: self.since(intended),
            sent_s: self.since(sent),
            latency_ms: 0.0,
            status: 0,
            bytes: 0,
            server_ms: None,
            stages: None,
            instance: None,
            seq: None,
            cold: false,
            error: None,
            model: None,
        };
        match request.send().await {
            Err(e) => r.error = Some(cause(&e)),
            Ok(answer) => read(&mut r, answer).await,
        }
        r.latency_ms = intended.elapsed().as_secs_f64() * 1e3;
        r.cold = r.seq == Some(1);
        r
    }

    fn request(&self, photo: &Photo) -> reqwest::RequestBuilder {
        match photo {
            Photo::Key(key) => self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(serde_json::json!({ "image": key }).to_string()),
            Photo::Body { name, bytes } => self
                .client
                .post(&self.url)
                .header("content-type", content_type(name))
                .body(bytes.as_ref().clone()),
        }
    }

    /// `concurrency` requests at once, `batches` times, `pause` between batches.
    pub async fn batches(&self, batches: u32, concurrency: u32, pause: Duration) -> Vec<Record> {
        let mut out = Vec::new();
        for b in 0..batches {
            if b > 0 {
                tokio::time::sleep(pause).await;
            }
            let now = Instant::now();
            let shots = (0..concurrency).map(|_| self.shoot(b, now));
            out.extend(futures::future::join_all(shots).await);
        }
        out
    }

    /// `n` requests from `concurrency` workers, each sending its next when the last
    /// answered (like `ab -n N -c C`).
    pub async fn closed(&self, phase: u32, n: u32, concurrency: u32) -> Vec<Record> {
        let left = Arc::new(AtomicUsize::new(n as usize));
        let workers = (0..concurrency.max(1)).map(|_| {
            let left = left.clone();
            async move {
                let mut got = Vec::new();
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                    .is_ok()
                {
                    got.push(self.shoot(phase, Instant::now()).await);
                }
                got
            }
        });
        futures::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// An open loop: request `i` is due at `i / rate` s, whatever the answers do, for
    /// `duration`; at most `max_in_flight` outstanding (beyond, sends are late, and the
    /// lateness is in the records).
    pub async fn rate(&self, rate: f64, duration: Duration, max_in_flight: usize) -> Vec<Record> {
        let total = (rate * duration.as_secs_f64()).floor() as u64;
        let start = Instant::now();
        let gate = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let Ok(permit) = gate.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let r = me.shoot(0, due).await;
                drop(permit);
                r
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        out
    }
}

/// Fills `r` from an answer: its status, the answering process (from the headers, else
/// the body), the server's timings and, for a failure, its cause.
async fn read(r: &mut Record, answer: reqwest::Response) {
    r.status = answer.status().as_u16();
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    r.instance = header("x-instance-id");
    r.seq = header("x-instance-seq").and_then(|s| s.parse().ok());
    let gateway_error = header("x-local-lambda-error");
    match answer.bytes().await {
        Ok(body) => {
            r.bytes = body.len() as u64;
            let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            if let Some(j) = &json {
                from_body(r, j);
            }
            if r.status >= 400 {
                r.error = Some(
                    gateway_error
                        .or_else(|| {
                            let j = json.as_ref()?;
                            j["error"]["code"]
                                .as_str()
                                .or(j["message"].as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_else(|| format!("http {}", r.status)),
                );
            }
        }
        Err(e) => r.error = Some(cause(&e)),
    }
}

/// What the predictor's answer says about itself: its stage timings and, when no
/// header named it, the answering instance.
fn from_body(r: &mut Record, j: &serde_json::Value) {
    r.server_ms = j["timings_ms"]["total"].as_f64();
    r.model = j["model"].as_str().map(str::to_string);
    r.stages = j["timings_ms"].as_object().map(|t| {
        t.iter()
            .filter(|(k, _)| *k != "total")
            .filter_map(|(k, v)| Some(format!("{k}={:.1}", v.as_f64()?)))
            .collect::<Vec<_>>()
            .join(";")
    });
    if r.instance.is_none() {
        r.instance = j["instance"]["id"].as_str().map(str::to_string);
        r.seq = j["instance"]["seq"].as_u64();
    }
}

/// The media type of a photo, from its name (the predictor wants one it decodes).
pub fn content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

/// A short cause for a failed request: refused, timed out, reset.
fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else if e.is_body() || e.is_decode() {
        "broken response".into()
    } else {
        let mut s = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            s = inner.to_string();
            source = inner.source();
        }
        s
    }
}
