//! Lambda, locally: a pool of execution environments, each one process of the image
//! talking to a Runtime API of its own (the contract `lambda_runtime` speaks:
//! `/next` long-polls, `/response`, `/error`, `/init/error`). One invocation per
//! environment at a time; a new environment (a cold start) when none is idle, up to
//! the concurrency limit, and a throttle beyond it; Init Duration from spawn to the
//! first `/next`, limited to 10 s; the function's timeout kills the environment; idle
//! environments are frozen (SIGSTOP) and reclaimed after a while. Each invocation ends
//! with a REPORT line in the function's log group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::control::Function;
use super::logs::{LogHub, LogSink, now_ms};
use super::process::{CpuControl, Isolation, Proc, Spec, alive};
use super::rootfs::Rootfs;

/// Lambda's limit on the init phase.
pub const INIT_LIMIT: Duration = Duration::from_secs(10);
/// Lambda's limit on a synchronous response, with room for the envelope.
const RESPONSE_LIMIT: usize = 6 * 1024 * 1024 + 64 * 1024;
/// Memory that buys one vCPU on Lambda.
pub const MB_PER_VCPU: f64 = 1769.0;

/// The function as it is deployed now: its settings and its unpacked image.
#[derive(Debug)]
pub struct Version {
    pub function: Function,
    pub rootfs: Arc<Rootfs>,
    /// Concurrent environments allowed.
    pub limit: u32,
    /// This machine's cores per vCPU; `None`: no caps.
    pub cpu_scale: Option<f64>,
}

/// What an invocation came to.
#[derive(Debug)]
pub enum Invoked {
    /// The function's response payload.
    Ok { payload: Bytes },
    /// The function failed (`/error`, a crash, a timeout, an init failure).
    Failed { reason: String },
    /// No environment free and none may be added.
    Throttled,
    /// No function is deployed (yet).
    Missing,
}

enum Reply {
    Response(Bytes),
    Error(Bytes),
}

struct Invocation {
    request_id: String,
    deadline_ms: i64,
    event: Bytes,
    reply: oneshot::Sender<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Initializing,
    Idle,
    Busy,
}

/// One execution environment.
struct Env {
    id: u32,
    version: Arc<Version>,
    proc: Mutex<Option<Proc>>,
    pid: u32,
    started: Instant,
    phase: Mutex<(Phase, Instant)>,
    invocations: AtomicU64,
    init_ms: Mutex<Option<f64>>,
    init_done: Mutex<Option<oneshot::Sender<()>>>,
    /// Taken by the invocation that started the environment, to wait for its init.
    init_wait: Mutex<Option<oneshot::Receiver<()>>>,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    outbox: mpsc::Sender<Invocation>,
    /// The invocation handed out by `/next`, until `/response` or `/error`.
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    /// Whether the process is stopped (SIGSTOP). Held across "nothing to do → stop" and
    /// "work arrived → continue" so the two never cross.
    frozen: Mutex<bool>,
    log: LogSink,
    /// The Runtime API's server task (it holds the environment: abort it to let go).
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Env {
    /// A fresh environment around `proc`, initialising until its runtime's first `/next`.
    fn new(id: u32, version: Arc<Version>, proc: Proc, log: LogSink) -> Arc<Env> {
        let (outbox, inbox) = mpsc::channel(1);
        let (init_tx, init_rx) = oneshot::channel();
        let pid = proc.pid;
        Arc::new(Env {
            id,
            version,
            proc: Mutex::new(Some(proc)),
            pid,
            started: Instant::now(),
            phase: Mutex::new((Phase::Initializing, Instant::now())),
            invocations: AtomicU64::new(0),
            init_ms: Mutex::new(None),
            init_done: Mutex::new(Some(init_tx)),
            init_wait: Mutex::new(Some(init_rx)),
            inbox: tokio::sync::Mutex::new(inbox),
            outbox,
            current: Mutex::new(None),
            frozen: Mutex::new(false),
            log,
            server: Mutex::new(None),
        })
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap() = (phase, Instant::now());
    }

    fn phase(&self) -> (Phase, Instant) {
        *self.phase.lock().unwrap()
    }

    fn thaw(&self) {
        let mut frozen = self.frozen.lock().unwrap();
        if *frozen {
            if let Some(p) = self.proc.lock().unwrap().as_ref() {
                p.thaw();
            }
            *frozen = false;
        }
    }

    fn take_proc(&self) -> Option<Proc> {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
        self.proc.lock().unwrap().take()
    }
}

/// Counters over the pool's life.
#[derive(Debug, Default)]
pub struct Counters {
    pub invocations: AtomicU64,
    pub cold_starts: AtomicU64,
    pub throttles: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
}

/// The pool, shared by the HTTP API front and the supervisor.
pub struct Pool {
    version: Mutex<Option<Arc<Version>>>,
    envs: Mutex<Vec<Arc<Env>>>,
    next_id: AtomicU64,
    pub counters: Counters,
    /// The platform's part of the environment: credentials, region, endpoint.
    platform: BTreeMap<String, String>,
    isolation: Isolation,
    cpu: CpuControl,
    hub: LogHub,
    reclaim_after: Duration,
    failure: Mutex<Option<String>>,
}

/// An environment as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvView {
    pub id: u32,
    pub pid: u32,
    pub state: &'static str,
    pub invocations: u64,
    pub init_ms: Option<f64>,
    pub digest: String,
    pub rss_mb: f64,
    pub cpu_s: f64,
    pub idle_s: f64,
}

impl Pool {
    pub fn new(
        platform: BTreeMap<String, String>,
        isolation: Isolation,
        cpu: CpuControl,
        hub: LogHub,
        reclaim_after: Duration,
    ) -> Arc<Pool> {
        Arc::new(Pool {
            version: Mutex::new(None),
            envs: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            platform,
            isolation,
            cpu,
            hub,
            reclaim_after,
            failure: Mutex::new(None),
        })
    }

    /// Deploys `version`: new invocations get environments of it; the old ones are
    /// retired once idle.
    pub fn deploy(&self, version: Option<Arc<Version>>) {
        *self.version.lock().unwrap() = version;
    }

    pub fn version(&self) -> Option<Arc<Version>> {
        self.version.lock().unwrap().clone()
    }

    /// Runs one invocation with `event` (an API Gateway payload). It runs to its end in
    /// a task of its own: a caller that gives up (the gateway's timeout, a client gone)
    /// does not strand its environment.
    pub async fn invoke(self: &Arc<Self>, event: Bytes) -> Invoked {
        let pool = self.clone();
        tokio::spawn(async move { pool.run(event).await })
            .await
            .unwrap_or_else(|e| Invoked::Failed {
                reason: format!("the invocation panicked: {e}"),
            })
    }

    async fn run(self: &Arc<Self>, event: Bytes) -> Invoked {
        let Some(version) = self.version() else {
            return Invoked::Missing;
        };
        let (env, cold) = match self.acquire(&version) {
            Ok(found) => found,
            Err(Some(e)) => return Invoked::Failed { reason: e },
            Err(None) => {
                self.counters.throttles.fetch_add(1, Ordering::Relaxed);
                return Invoked::Throttled;
            }
        };
        self.counters.invocations.fetch_add(1, Ordering::Relaxed);
        if cold {
            self.counters.cold_starts.fetch_add(1, Ordering::Relaxed);
            if let Err(reason) = self.initialised(&env).await {
                self.retire(&env, &reason);
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                return Invoked::Failed { reason };
            }
        }
        let outcome = self.dispatch(&env, event, cold).await;
        if matches!(outcome, Invoked::Failed { .. }) {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// An idle environment of `version`, or a new one; `Err(None)` at the limit.
    fn acquire(
        self: &Arc<Self>,
        version: &Arc<Version>,
    ) -> Result<(Arc<Env>, bool), Option<String>> {
        let mut envs = self.envs.lock().unwrap();
        let idle = envs
            .iter()
            .filter(|e| Arc::ptr_eq(&e.version, version))
            .filter(|e| e.phase().0 == Phase::Idle)
            .max_by_key(|e| e.phase().1);
        if let Some(env) = idle {
            env.set(Phase::Busy);
            return Ok((env.clone(), false));
        }
        if envs.len() as u32 >= version.limit {
            return Err(None);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u32;
        let spawned = self.spawn(id, version);
        *self.failure.lock().unwrap() = spawned.as_ref().err().cloned();
        let env = spawned.map_err(Some)?;
        envs.push(env.clone());
        Ok((env, true))
    }

    fn spawn(self: &Arc<Self>, id: u32, version: &Arc<Version>) -> Result<Arc<Env>, String> {
        let f = &version.function;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("binding a Runtime API port: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stream = format!(
            "{}/[$LATEST]{:032x}",
            today(),
            (now_ms() as u128) << 32 | u128::from(id)
        );
        let log = self.hub.sink(&f.log_group, &stream);
        let proc = Proc::spawn(
            Spec {
                name: format!("serverless-{id}"),
                rootfs: &version.rootfs,
                env: self.runtime_env(f, port, stream),
                cores: version
                    .cpu_scale
                    .map(|s| f64::from(f.memory_mb) / MB_PER_VCPU * s),
            },
            self.isolation,
            &self.cpu,
            log.clone(),
        )?;
        let env = Env::new(id, version.clone(), proc, log);
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("the Runtime API listener: {e}"))?;
        let api = runtime_api(env.clone());
        *env.server.lock().unwrap() = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, api).await;
        }));
        Ok(env)
    }

    /// The environment Lambda gives a function's process: the platform's, the
    /// function's, then the runtime's own (its Runtime API on `port`, its log stream).
    fn runtime_env(&self, f: &Function, port: u16, stream: String) -> BTreeMap<String, String> {
        let mut env = self.platform.clone();
        env.extend(f.env.clone());
        for (k, v) in [
            ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
            ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", f.log_group.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("TZ", ":UTC".into()),
        ] {
            env.insert(k.into(), v);
        }
        env
    }

    /// Waits for the environment's first `/next`, within Lambda's init limit.
    async fn initialised(&self, env: &Arc<Env>) -> Result<(), String> {
        let rx = env.init_wait.lock().unwrap().take();
        let Some(rx) = rx else { return Ok(()) };
        let dead = exited(env.pid);
        tokio::select! {
            r = rx => r.map_err(|_| "the runtime reported an init error".to_string()),
            () = dead => Err("Runtime exited during init (see the function's log)".into()),
            () = tokio::time::sleep(INIT_LIMIT) => {
                Err(format!("init did not finish within {} s", INIT_LIMIT.as_secs()))
            }
        }
    }

    async fn dispatch(&self, env: &Arc<Env>, event: Bytes, cold: bool) -> Invoked {
        let f = &env.version.function;
        let request_id = request_id();
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        env.log
            .line(format!("START RequestId: {request_id} Version: $LATEST"));
        let sent = env
            .outbox
            .send(Invocation {
                request_id: request_id.clone(),
                deadline_ms: now_ms() + f.timeout.as_millis() as i64,
                event,
                reply: tx,
            })
            .await;
        env.thaw();
        if sent.is_err() {
            self.retire(env, "the environment was shut down");
            return Invoked::Failed {
                reason: "the environment was shut down".into(),
            };
        }
        let dead = exited(env.pid);
        let outcome = tokio::select! {
            r = rx => r.ok(),
            () = dead => None,
            () = tokio::time::sleep(f.timeout) => {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                return self.timed_out(env, &request_id, ms, cold);
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        env.log.line(format!("END RequestId: {request_id}"));
        env.invocations.fetch_add(1, Ordering::Relaxed);
        self.answered(env, &request_id, ms, cold, outcome)
    }

    /// An invocation past the function's timeout: logged as Lambda does, and the
    /// environment retired.
    fn timed_out(&self, env: &Arc<Env>, request_id: &str, ms: f64, cold: bool) -> Invoked {
        let timeout = env.version.function.timeout;
        env.log.line(format!(
            "{request_id} Task timed out after {:.2} seconds",
            timeout.as_secs_f64()
        ));
        self.report(env, request_id, ms, cold, Some("timeout"));
        self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        self.retire(env, "timed out");
        Invoked::Failed {
            reason: format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
        }
    }

    /// What the runtime answered (`None`: it exited first), reported; an environment
    /// whose runtime exited is retired.
    fn answered(
        &self,
        env: &Arc<Env>,
        request_id: &str,
        ms: f64,
        cold: bool,
        outcome: Option<Reply>,
    ) -> Invoked {
        match outcome {
            Some(Reply::Response(payload)) => {
                self.report(env, request_id, ms, cold, None);
                env.set(Phase::Idle);
                Invoked::Ok { payload }
            }
            Some(Reply::Error(body)) => {
                self.report(env, request_id, ms, cold, Some("error"));
                env.set(Phase::Idle);
                Invoked::Failed {
                    reason: String::from_utf8_lossy(&body).into_owned(),
                }
            }
            None => {
                self.report(env, request_id, ms, cold, Some("error"));
                self.retire(env, "the runtime exited");
                Invoked::Failed {
                    reason: "Runtime exited with an error (see the function's log)".into(),
                }
            }
        }
    }

    /// The REPORT line, as Lambda writes it (tab-separated; Init Duration last, on a
    /// cold start; billed = ceil(init + duration) for a container image).
    fn report(&self, env: &Env, request_id: &str, ms: f64, cold: bool, status: Option<&str>) {
        let init = cold.then(|| *env.init_ms.lock().unwrap()).flatten();
        let billed = (ms + init.unwrap_or(0.0)).ceil();
        let peak = env
            .proc
            .lock()
            .unwrap()
            .as_ref()
            .and_then(Proc::usage)
            .map_or(0.0, |u| u.peak_rss_mb);
        let mut line = format!(
            "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed:.0} ms\t\
             Memory Size: {} MB\tMax Memory Used: {peak:.0} MB\t",
            env.version.function.memory_mb
        );
        if let Some(init) = init {
            line.push_str(&format!("Init Duration: {init:.2} ms\t"));
        }
        if let Some(status) = status {
            line.push_str(&format!("Status: {status}\t"));
        }
        env.log.line(line);
    }

    /// Removes `env` and kills its process (SIGKILL now; reaped in the background).
    fn retire(&self, env: &Arc<Env>, why: &str) {
        self.envs.lock().unwrap().retain(|e| !Arc::ptr_eq(e, env));
        Self::kill(env, why);
    }

    fn kill(env: &Env, why: &str) {
        tracing::info!("environment {} retired: {why}", env.id);
        if let Some(p) = env.take_proc() {
            p.start_kill();
            tokio::spawn(p.kill());
        }
    }

    /// Housekeeping, every few hundred milliseconds: environments whose process died,
    /// idle ones past the reclaim time, idle ones of a replaced version. Chosen and
    /// removed under the lock, so none is handed an invocation meanwhile.
    pub fn sweep(&self) {
        let current = self.version();
        let mut doomed: Vec<(Arc<Env>, &str)> = Vec::new();
        self.envs.lock().unwrap().retain(|e| {
            let (phase, since) = e.phase();
            let why = if !alive(e.pid) {
                Some("its process exited")
            } else if phase == Phase::Idle && since.elapsed() >= self.reclaim_after {
                Some("reclaimed after idling")
            } else if phase == Phase::Idle
                && !current.as_ref().is_some_and(|v| Arc::ptr_eq(v, &e.version))
            {
                Some("a new version was deployed")
            } else {
                None
            };
            if let Some(why) = why {
                doomed.push((e.clone(), why));
            }
            why.is_none()
        });
        for (env, why) in doomed {
            Self::kill(&env, why);
        }
    }

    /// Retires every idle environment (the next invocations are cold): `bench
    /// --protocol cold` asks for it.
    pub fn retire_idle(&self) {
        let mut doomed = Vec::new();
        self.envs.lock().unwrap().retain(|e| {
            let idle = e.phase().0 == Phase::Idle;
            if idle {
                doomed.push(e.clone());
            }
            !idle
        });
        for env in doomed {
            Self::kill(&env, "retired on request");
        }
    }

    /// Stops every environment.
    pub async fn shutdown(&self) {
        let envs: Vec<Arc<Env>> = std::mem::take(&mut *self.envs.lock().unwrap());
        for env in envs {
            if let Some(p) = env.take_proc() {
                p.kill().await;
            }
        }
    }

    /// Why the last environment failed to start, if the last start did.
    pub fn problem(&self) -> Option<String> {
        self.failure.lock().unwrap().clone()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.envs.lock().unwrap().iter().map(|e| e.pid).collect()
    }

    pub fn view(&self) -> Vec<EnvView> {
        self.envs
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                let (phase, since) = e.phase();
                let usage = e
                    .proc
                    .lock()
                    .unwrap()
                    .as_ref()
                    .and_then(Proc::usage)
                    .unwrap_or_default();
                let frozen = *e.frozen.lock().unwrap();
                EnvView {
                    id: e.id,
                    pid: e.pid,
                    state: match (phase, frozen) {
                        (Phase::Initializing, _) => "initializing",
                        (Phase::Busy, _) => "busy",
                        (Phase::Idle, true) => "frozen",
                        (Phase::Idle, false) => "idle",
                    },
                    invocations: e.invocations.load(Ordering::Relaxed),
                    init_ms: *e.init_ms.lock().unwrap(),
                    digest: e.version.rootfs.digest.clone(),
                    rss_mb: usage.rss_mb,
                    cpu_s: usage.cpu_s,
                    idle_s: if phase == Phase::Idle {
                        since.elapsed().as_secs_f64()
                    } else {
                        0.0
                    },
                }
            })
            .collect()
    }
}

fn today() -> String {
    let days = now_ms() / 86_400_000;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}/{m:02}/{d:02}")
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Resolves once process `pid` has ended (checked every 50 ms).
async fn exited(pid: u32) {
    while alive(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A request id shaped like Lambda's (a UUID v4).
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .is_err()
    {
        let seed = now_ms() as u64 ^ u64::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 7) >> 3) as u8;
        }
    }
}

/// The Runtime API of one environment.
fn runtime_api(env: Arc<Env>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // Lambda's response limit is 6 MB; axum's default would refuse above 2 MB.
        .layer(axum::extract::DefaultBodyLimit::max(RESPONSE_LIMIT))
        .with_state(env)
}

async fn next(State(env): State<Arc<Env>>) -> Response {
    if let Some(tx) = env.init_done.lock().unwrap().take() {
        *env.init_ms.lock().unwrap() = Some(env.started.elapsed().as_secs_f64() * 1e3);
        env.set(Phase::Busy);
        let _ = tx.send(());
    }
    let mut inbox = env.inbox.lock().await;
    let waiting = {
        let mut frozen = env.frozen.lock().unwrap();
        match inbox.try_recv() {
            Ok(inv) => Some(inv),
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing to do: Lambda freezes the environment here.
                if let Some(p) = env.proc.lock().unwrap().as_ref() {
                    p.freeze();
                }
                *frozen = true;
                None
            }
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        }
    };
    let inv = match waiting {
        Some(inv) => inv,
        None => match inbox.recv().await {
            Some(inv) => inv,
            None => return StatusCode::GONE.into_response(),
        },
    };
    drop(inbox);
    let f = &env.version.function;
    let mut headers = HeaderMap::new();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", inv.request_id.clone());
    put("lambda-runtime-deadline-ms", inv.deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        format!("arn:aws:lambda:local:000000000000:function:{}", f.name),
    );
    put(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{}",
            now_ms() / 1000,
            &request_id().replace('-', "")[..24]
        ),
    );
    put("content-type", "application/json".into());
    *env.current.lock().unwrap() = Some((inv.request_id, inv.reply));
    (StatusCode::OK, headers, inv.event).into_response()
}

fn reply(env: &Env, id: &str, r: Reply) -> StatusCode {
    let mut current = env.current.lock().unwrap();
    match current.take() {
        Some((expected, tx)) if expected == id => {
            let _ = tx.send(r);
            StatusCode::ACCEPTED
        }
        other => {
            *current = other;
            StatusCode::BAD_REQUEST
        }
    }
}

async fn response(
    State(env): State<Arc<Env>>,
    Path(id): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    (
        reply(&env, &id, Reply::Response(body)),
        axum::Json(serde_json::json!({"status": "OK"})),
    )
}

async fn error(
    State(env): State<Arc<Env>>,
    Path(id): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    env.log.line(String::from_utf8_lossy(&body).into_owned());
    (
        reply(&env, &id, Reply::Error(body)),
        axum::Json(serde_json::json!({"status": "OK"})),
    )
}

async fn init_error(State(env): State<Arc<Env>>, body: Bytes) -> impl IntoResponse {
    env.log.line(format!(
        "INIT_REPORT error: {}",
        String::from_utf8_lossy(&body)
    ));
    // Dropping the sender tells the waiting invocation that init failed.
    env.init_done.lock().unwrap().take();
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stream_dates_are_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_422), (2025, 11, 30));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, request_id());
    }
}
