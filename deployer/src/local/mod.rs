//! The local runtime: both targets running for real on this machine, from what `up`
//! provisioned in the emulator. A supervisor process per stack (started by `up` in the
//! background, or `deployer runtime` in the foreground) runs:
//!  - the serverless side: an HTTP API front ([`apigw`]) and a pool of Lambda execution
//!    environments ([`lambda`]);
//!  - the serverful side: a load balancer ([`alb`]) in front of auto-scaled instances
//!    ([`fleet`], [`scaling`]);
//!
//! every process started from the image's root filesystem ([`rootfs`], [`process`]),
//! its output shipped to the emulator's log groups ([`logs`]). It polls the control
//! plane ([`control`]) and rolls both sides to what it finds; `status` reads its state
//! file, `down` stops it and everything it started.

pub mod alb;
pub mod apigw;
pub mod control;
pub mod fleet;
pub mod lambda;
pub mod logs;
pub mod process;
pub mod rootfs;
pub mod scaling;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::aws::{Aws, is_loopback};
use crate::image::registry::{Registry, RegistryError};
use crate::manifest::Manifest;
use fleet::{Fleet, Release};
use lambda::{Pool, Version};
use process::{CpuControl, Isolation};
use scaling::Timing;

/// Whether `up` runs the local runtime for this manifest: enabled, and the endpoint
/// (`AWS_ENDPOINT_URL` first) an emulator on loopback.
pub fn applies(m: &Manifest) -> bool {
    m.local.enabled && endpoint(m).is_some_and(|e| is_loopback(&e))
}

/// The AWS endpoint in force: `AWS_ENDPOINT_URL`, else the manifest's.
pub fn endpoint(m: &Manifest) -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty())
        .or_else(|| m.endpoint.clone())
}

/// Where a stack's supervisor keeps its pid, state and logs: `DEPLOYER_STATE_DIR`, else
/// `$XDG_STATE_HOME/deployer`, else `~/.local/state/deployer`; one directory per stack
/// and emulator (`<name>@127.0.0.1-4566`): a stack of the same name on another emulator
/// is another stack.
pub fn state_dir(m: &Manifest) -> PathBuf {
    let root = std::env::var_os("DEPLOYER_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("deployer")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/deployer"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("deployer"));
    let at: String = endpoint(m)
        .unwrap_or_default()
        .split("://")
        .last()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    root.join(format!("{}@{}", m.name, at.trim_matches('-')))
}

/// Unpacked images, shared by every stack.
fn cache_dir(stack_dir: &Path) -> PathBuf {
    stack_dir.parent().unwrap_or(stack_dir).join("cache")
}

const PID_FILE: &str = "supervisor.pid";
/// How long `up` tolerates a problem the supervisor reports before giving up.
const PROBLEM_GRACE: Duration = Duration::from_secs(20);
const STATE_FILE: &str = "state.json";
pub const LOG_FILE: &str = "supervisor.log";

/// The supervisor's pid, if one is running for this stack.
pub fn running(m: &Manifest) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(state_dir(m).join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (process::alive(pid) && is_supervisor(pid)).then_some(pid)
}

/// Whether `pid` runs `deployer … runtime` (a pid file can outlive its process, and the
/// pid be reused).
fn is_supervisor(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"runtime"))
}

/// The supervisor's last state, if it is running.
pub fn state(m: &Manifest) -> Option<Value> {
    running(m)?;
    let text = std::fs::read_to_string(state_dir(m).join(STATE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// What the supervisor writes every second.
#[derive(Serialize)]
struct State<'a> {
    pid: u32,
    updated_ms: i64,
    isolation: Isolation,
    cpu_model: &'a str,
    /// Cores of this machine per AWS vCPU.
    cpu_scale: f64,
    timing: Timing,
    serverless: Option<Value>,
    serverful: Option<Value>,
    /// Every process started, for `down` (also when the supervisor is gone).
    pids: Vec<u32>,
    /// The last problem reading the control plane or pulling an image.
    problem: Option<String>,
}

/// The environment the platform gives every process: credentials, region, endpoint
/// (on AWS, the execution role and the region; here, the emulator's).
fn platform_env(m: &Manifest) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        if let Ok(v) = std::env::var(k) {
            env.insert(k.to_string(), v);
        }
    }
    env.entry("AWS_ACCESS_KEY_ID".into())
        .or_insert_with(|| "testing".into());
    env.entry("AWS_SECRET_ACCESS_KEY".into())
        .or_insert_with(|| "testing".into());
    env.insert("AWS_REGION".into(), m.region.clone());
    env.insert("AWS_DEFAULT_REGION".into(), m.region.clone());
    if let Some(e) = endpoint(m) {
        env.insert("AWS_ENDPOINT_URL".into(), e);
    }
    env
}

/// Runs the supervisor until SIGTERM or Ctrl-C.
pub async fn run(m: &Manifest, aws: &Aws) -> Result<(), String> {
    let dir = claim(m)?;
    let mut supervisor = Supervisor::start(m, aws, dir).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut shutdown = std::pin::pin!(shutdown_signal());
    // SIGUSR1: retire the warm capacity (`bench --protocol cold`).
    let mut renew = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .map_err(|e| format!("listening for SIGUSR1: {e}"))?;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut shutdown => break,
            Some(()) = renew.recv() => {
                supervisor.pool.retire_idle();
                supervisor.fleet.recycle();
            }
        }
        supervisor.step().await;
    }
    supervisor.stop().await;
    Ok(())
}

/// Makes this process the stack's supervisor: its state directory, its pid file.
/// Refused while another supervisor of the stack runs.
fn claim(m: &Manifest) -> Result<PathBuf, String> {
    let dir = state_dir(m);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if let Some(pid) = running(m).filter(|p| *p != std::process::id()) {
        return Err(format!(
            "the local runtime of `{}` already runs (pid {pid})",
            m.name
        ));
    }
    std::fs::write(dir.join(PID_FILE), std::process::id().to_string())
        .map_err(|e| format!("writing the pid file: {e}"))?;
    Ok(dir)
}

/// The running supervisor: both sides, their fronts, and when it last did each of its
/// periodic jobs.
struct Supervisor<'a> {
    m: &'a Manifest,
    aws: &'a Aws,
    dir: PathBuf,
    isolation: Isolation,
    cpu: CpuControl,
    /// Cores of this machine per AWS vCPU.
    cpu_scale: f64,
    /// Whether processes' CPU can be capped (else they are not scaled to their vCPUs).
    capped: bool,
    timing: Timing,
    pool: Arc<Pool>,
    fleet: Arc<Fleet>,
    /// The serverful and the serverless front's URL.
    urls: (String, String),
    fronts: [tokio::task::JoinHandle<()>; 2],
    registry: Result<Registry, RegistryError>,
    names: crate::manifest::Names,
    problem: Option<String>,
    last_poll: Option<Instant>,
    last_health: Instant,
    last_scale: Instant,
    last_state: Option<Instant>,
}

impl<'a> Supervisor<'a> {
    /// Builds both sides and opens their fronts; nothing runs on them until the first
    /// poll of the control plane.
    async fn start(m: &'a Manifest, aws: &'a Aws, dir: PathBuf) -> Result<Self, String> {
        let isolation = Isolation::probe();
        let cpu = CpuControl::probe(&format!("{}-{}", m.name, std::process::id()));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cpu_scale = if m.local.cpu_scale > 0.0 {
            m.local.cpu_scale
        } else {
            cores / 4.0
        };
        let timing = Timing::of(m.local.timing);
        let platform = platform_env(m);
        let hub = logs::LogHub::start(aws.logs.clone(), dir.join("targets.log"));
        let pool = Pool::new(
            platform.clone(),
            isolation,
            cpu.clone(),
            hub.clone(),
            Duration::from_secs(m.local.reclaim_after_s.into()),
        );
        let fleet = Fleet::new(timing, platform, isolation, cpu.clone(), hub);
        let (urls, fronts) = open_fronts(m, &pool, &fleet).await?;
        eprintln!(
            "local runtime of `{}`: serverful {} serverless {} ({isolation:?}, CPU caps: {})",
            m.name,
            urls.0,
            urls.1,
            cpu.describe()
        );
        Ok(Supervisor {
            m,
            aws,
            dir,
            isolation,
            capped: cpu.available(),
            cpu,
            cpu_scale,
            timing,
            pool,
            fleet,
            urls,
            fronts,
            registry: Registry::connect(aws, m.image.registry.as_deref()).await,
            names: m.names(),
            problem: None,
            last_poll: None,
            last_health: Instant::now(),
            last_scale: Instant::now(),
            last_state: None,
        })
    }

    /// One turn of the loop: each periodic job that is due.
    async fn step(&mut self) {
        if self
            .last_poll
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            self.last_poll = Some(Instant::now());
            self.problem = self.roll().await;
            if let Some(p) = &self.problem {
                tracing::warn!("{p}");
            }
        }
        self.pool.sweep();
        self.fleet.reconcile().await;
        let interval = self.fleet.release().map_or(Duration::from_secs(1), |r| {
            self.timing.health_interval(r.fleet.health.interval)
        });
        if self.last_health.elapsed() >= interval {
            self.last_health = Instant::now();
            let f = self.fleet.clone();
            // Health checks take up to their timeout: never hold up the loop.
            tokio::spawn(async move { f.check_health().await });
        }
        if self.last_scale.elapsed() >= self.timing.period {
            self.last_scale = Instant::now();
            self.fleet.scale();
        }
        if self
            .last_state
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_state = Some(Instant::now());
            write_state(&self.dir, &self.state());
        }
    }

    /// Rolls both sides to what the control plane says; the problem, if any.
    async fn roll(&self) -> Option<String> {
        match (&self.registry, control::read(self.aws, &self.names).await) {
            (Err(e), _) => Some(format!("connecting to the registry: {e}")),
            (_, Err(e)) => Some(format!("reading the control plane: {e}")),
            (Ok(registry), Ok(p)) => {
                let cache = cache_dir(&self.dir);
                let scale = self.capped.then_some(self.cpu_scale);
                let a =
                    roll_function(&self.pool, p.function, registry, &cache, self.m, scale).await;
                let (fleet, cpu_scale, capped) = (&self.fleet, self.cpu_scale, self.capped);
                let b = roll_fleet(fleet, p.fleet, registry, &cache, cpu_scale, capped).await;
                a.err().or(b.err())
            }
        }
    }

    fn state(&self) -> State<'_> {
        State {
            pid: std::process::id(),
            updated_ms: logs::now_ms(),
            isolation: self.isolation,
            cpu_model: self.cpu.describe(),
            cpu_scale: self.cpu_scale,
            timing: self.timing,
            serverless: Some(serverless_view(&self.pool, &self.urls.1)),
            serverful: Some(serverful_view(&self.fleet, &self.urls.0)),
            pids: self
                .pool
                .pids()
                .into_iter()
                .chain(self.fleet.pids())
                .collect(),
            problem: self
                .problem
                .clone()
                .or_else(|| self.fleet.problem())
                .or_else(|| self.pool.problem()),
        }
    }

    async fn stop(self) {
        eprintln!("local runtime of `{}`: stopping", self.m.name);
        // No new requests (and so no new environments) while everything stops.
        for front in self.fronts {
            front.abort();
        }
        self.pool.deploy(None);
        self.pool.shutdown().await;
        self.fleet.shutdown().await;
        self.cpu.remove();
        let _ = std::fs::remove_file(self.dir.join(STATE_FILE));
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
    }
}

/// Listens on both sides' ports and serves them: the serverful and the serverless
/// front's URL, and their tasks.
async fn open_fronts(
    m: &Manifest,
    pool: &Arc<Pool>,
    fleet: &Arc<Fleet>,
) -> Result<((String, String), [tokio::task::JoinHandle<()>; 2]), String> {
    let serverless = bind(m.local.serverless_port).await?;
    let serverful = bind(m.local.serverful_port).await?;
    let urls = (
        format!(
            "http://{}",
            serverful.local_addr().map_err(|e| e.to_string())?
        ),
        format!(
            "http://{}",
            serverless.local_addr().map_err(|e| e.to_string())?
        ),
    );
    let fronts = [
        tokio::spawn(serve(serverless, apigw::router(pool.clone()))),
        tokio::spawn(serve(
            serverful,
            alb::router(fleet.clone(), m.local.balancing),
        )),
    ];
    Ok((urls, fronts))
}

async fn bind(port: u16) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("listening on 127.0.0.1:{port}: {e} (set `local.*_port`, 0 picks a free one)")
        })
}

async fn serve(listener: tokio::net::TcpListener, router: axum::Router) {
    let _ = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await;
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn write_state(dir: &Path, state: &State) {
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    if let Ok(text) = serde_json::to_vec_pretty(state)
        && std::fs::write(&tmp, text).is_ok()
    {
        let _ = std::fs::rename(&tmp, dir.join(STATE_FILE));
    }
}

/// Deploys the function's current settings to the pool when they changed.
async fn roll_function(
    pool: &Pool,
    function: Option<control::Function>,
    registry: &Registry,
    cache: &Path,
    m: &Manifest,
    cpu_scale: Option<f64>,
) -> Result<(), String> {
    let current = pool.version();
    let Some(function) = function else {
        pool.deploy(None);
        return Ok(());
    };
    if current.as_ref().is_some_and(|v| v.function == function) {
        return Ok(());
    }
    let rootfs = Arc::new(rootfs::prepare(registry, &function.image, cache).await?);
    let limit = function.reserved.unwrap_or(m.local.concurrency);
    pool.deploy(Some(Arc::new(Version {
        function,
        rootfs,
        limit,
        cpu_scale,
    })));
    Ok(())
}

/// Deploys the service's current settings to the fleet when they changed.
async fn roll_fleet(
    fleet: &Fleet,
    service: Option<control::Fleet>,
    registry: &Registry,
    cache: &Path,
    cpu_scale: f64,
    capped: bool,
) -> Result<(), String> {
    let current = fleet.release();
    let Some(service) = service else {
        fleet.deploy(None);
        return Ok(());
    };
    if current.as_ref().is_some_and(|r| r.fleet == service) {
        return Ok(());
    }
    let rootfs = Arc::new(rootfs::prepare(registry, &service.image, cache).await?);
    fleet.deploy(Some(Arc::new(Release {
        fleet: service,
        rootfs,
        cpu_scale,
        capped,
    })));
    Ok(())
}

fn serverless_view(pool: &Pool, url: &str) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let v = pool.version();
    let c = &pool.counters;
    serde_json::json!({
        "url": url,
        "function": v.as_ref().map(|v| v.function.name.clone()),
        "digest": v.as_ref().map(|v| v.rootfs.digest.clone()),
        "memory_mb": v.as_ref().map(|v| v.function.memory_mb),
        "timeout_s": v.as_ref().map(|v| v.function.timeout.as_secs()),
        "concurrency_limit": v.as_ref().map(|v| v.limit),
        "cores_per_environment": v.as_ref().and_then(|v| v.cpu_scale.map(|s| f64::from(v.function.memory_mb) / lambda::MB_PER_VCPU * s)),
        "invocations": c.invocations.load(Relaxed),
        "cold_starts": c.cold_starts.load(Relaxed),
        "throttles": c.throttles.load(Relaxed),
        "errors": c.errors.load(Relaxed),
        "timeouts": c.timeouts.load(Relaxed),
        "environments": pool.view(),
    })
}

fn serverful_view(fleet: &Fleet, url: &str) -> Value {
    let r = fleet.release();
    let recent: Vec<_> = {
        let events = fleet.events.lock().unwrap();
        events.iter().rev().take(50).rev().cloned().collect()
    };
    serde_json::json!({
        "url": url,
        "digest": r.as_ref().map(|r| r.rootfs.digest.clone()),
        "desired": fleet.desired.load(std::sync::atomic::Ordering::Relaxed),
        "min": r.as_ref().map(|r| r.fleet.min),
        "max": r.as_ref().map(|r| r.fleet.max),
        "cpu_target": r.as_ref().map(|r| r.fleet.cpu_target),
        "cores_per_instance": r.as_ref().filter(|r| r.capped).map(|r| r.vcpus() * r.cpu_scale),
        "instances": fleet.view(),
        "events": recent,
    })
}

/// Starts the supervisor in the background (unless it runs) and waits until both
/// targets serve `digest` (when given): the serverless front listening with the
/// function deployed, one healthy instance behind the load balancer.
pub async fn start(
    m: &Manifest,
    file: &Path,
    digest: Option<&str>,
    wait: Duration,
) -> Result<Value, String> {
    let dir = state_dir(m);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut child = None;
    if running(m).is_none() {
        // A supervisor that died may have left processes behind: end them first.
        stop(m).await;
        child = Some(spawn_supervisor(&dir, file)?);
    }
    let started = Instant::now();
    loop {
        if let Some(state) = state(m)
            && ready(m, &state, digest)
        {
            return Ok(state);
        }
        let exited = match child.as_mut() {
            Some(c) => c.try_wait().map_or(true, |s| s.is_some()),
            None => running(m).is_none(),
        };
        if exited {
            return Err(format!(
                "the local runtime stopped; its log ({}):\n{}",
                dir.join(LOG_FILE).display(),
                tail(&dir.join(LOG_FILE), 15)
            ));
        }
        let problem = state(m).and_then(|s| s["problem"].as_str().map(str::to_string));
        // A problem that outlasts a few polls (an image that cannot be pulled, a control
        // plane that does not answer) will not go away by waiting.
        if let Some(p) = problem
            .as_ref()
            .filter(|_| started.elapsed() > PROBLEM_GRACE)
        {
            return Err(format!(
                "{p}\nthe supervisor keeps running: `deployer down` stops it"
            ));
        }
        if started.elapsed() > wait {
            return Err(format!(
                "the local runtime did not become ready within {} s: {}",
                wait.as_secs(),
                problem.as_deref().unwrap_or("no healthy instance yet")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ready(m: &Manifest, state: &Value, digest: Option<&str>) -> bool {
    let on_digest = |v: &Value| {
        v.as_str()
            .is_some_and(|have| digest.is_none_or(|want| have == want))
    };
    let serverless = !m.serverless.enabled || on_digest(&state["serverless"]["digest"]);
    let instances: Vec<&Value> = state["serverful"]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let healthy: Vec<&&Value> = instances
        .iter()
        .filter(|i| i["state"] == "healthy")
        .collect();
    // Every instance taking traffic runs the new image (old ones may still drain).
    let serverful = !m.serverful.enabled
        || (!healthy.is_empty() && healthy.iter().all(|i| on_digest(&i["digest"])));
    serverless && serverful
}

fn tail(file: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn spawn_supervisor(dir: &Path, file: &Path) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let log =
        std::fs::File::create(dir.join(LOG_FILE)).map_err(|e| format!("creating the log: {e}"))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("-f")
        .arg(file)
        .arg("runtime")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: setsid(2) is async-signal-safe. A session of its own makes the supervisor
    // and every process it starts one group, which `down` signals as one.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| format!("starting the local runtime: {e}"))
}

/// Stops the stack's supervisor and every process it started, also when the
/// supervisor itself was killed. Returns how many processes were stopped.
pub async fn stop(m: &Manifest) -> usize {
    let stack = &m.name;
    let dir = state_dir(m);
    let pid: Option<u32> = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let recorded = recorded_pids(&dir);
    let mut stopped = 0;
    let members: Vec<u32> = pid
        .map(|g| ours(g, &recorded, &cache_dir(&dir)))
        .unwrap_or_default();
    if let Some(pid) = pid.filter(|p| process::alive(*p) && is_supervisor(*p)) {
        stopped += 1;
        terminate_supervisor(pid).await;
    }
    let leftovers: Vec<u32> = members
        .iter()
        .chain(recorded.iter())
        .copied()
        .filter(|p| process::alive(*p))
        .collect();
    for p in &leftovers {
        stopped += 1;
        process::signal(*p, libc::SIGKILL);
    }
    // SIGKILL is asynchronous: return once they are gone (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    while leftovers
        .iter()
        .chain(pid.iter())
        .any(|p| process::alive(*p))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(pid) = pid {
        CpuControl::probe(&format!("{stack}-{pid}")).remove();
    }
    let _ = std::fs::remove_file(dir.join(STATE_FILE));
    let _ = std::fs::remove_file(dir.join(PID_FILE));
    stopped
}

/// The pids the supervisor's last state lists.
fn recorded_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join(STATE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|s| {
            s["pids"].as_array().map(|a| {
                a.iter()
                    .filter_map(|p| p.as_u64().map(|p| p as u32))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The members of process group `group` that are this stack's. The supervisor leads
/// its own process group. When it is gone, its group's members are still found by
/// their group id; a member is ours when it runs from this stack's image cache (its
/// root, or its command line through the loader).
fn ours(group: u32, recorded: &[u32], cache: &Path) -> Vec<u32> {
    process::group_members(group)
        .into_iter()
        .filter(|m| recorded.contains(m) || process::runs_from(*m, cache))
        .collect()
}

/// SIGTERM to the supervisor's group, then (after at most 15 s) SIGKILL to the
/// supervisor.
async fn terminate_supervisor(pid: u32) {
    process::signal_group(-(pid as i32), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while process::alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    process::signal(pid, libc::SIGKILL);
}
