//! The serverful target, locally: instances as predictor processes in server mode (one
//! task per instance, as on ECS on EC2), registered with the load balancer once
//! started, given traffic once healthy, drained before they stop; their number follows
//! target tracking on average CPU between the group's bounds; a new image rolls out by
//! starting new instances and draining the old ones once the new are healthy.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::control;
use super::logs::LogHub;
use super::process::{CpuControl, Isolation, Proc, Spec, alive};
use super::rootfs::Rootfs;
use super::scaling::{Timing, Tracker};

/// The service as deployed now.
#[derive(Debug)]
pub struct Release {
    pub fleet: control::Fleet,
    pub rootfs: Arc<Rootfs>,
    /// This machine's cores per vCPU (the CPU model), and whether it is enforced.
    pub cpu_scale: f64,
    pub capped: bool,
}

impl Release {
    /// Whether an instance of `other` runs the same task as one of this release (a
    /// change of bounds, target or health check replaces no instance).
    pub fn same_task(&self, other: &Release) -> bool {
        let (a, b) = (&self.fleet, &other.fleet);
        self.rootfs.digest == other.rootfs.digest
            && a.env == b.env
            && a.port == b.port
            && a.cpu_units == b.cpu_units
    }

    pub fn vcpus(&self) -> f64 {
        (f64::from(self.fleet.cpu_units) / 1024.0).max(0.125)
    }
}

/// A target's health, as the target group sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
}

pub struct Instance {
    pub id: u32,
    pub release: Arc<Release>,
    /// Instances of an older generation are replaced like an old release.
    generation: u32,
    pub port: u16,
    pub pid: u32,
    proc: Mutex<Option<Proc>>,
    state: Mutex<(TargetState, u32, u32)>,
    draining_since: Mutex<Option<Instant>>,
    pub outstanding: AtomicUsize,
    pub served: AtomicU64,
    launched: Instant,
    cpu: Mutex<(Instant, f64, f64)>,
}

impl Instance {
    pub fn state(&self) -> TargetState {
        self.state.lock().unwrap().0
    }

    fn drain(&self) {
        let mut s = self.state.lock().unwrap();
        if s.0 != TargetState::Draining {
            s.0 = TargetState::Draining;
            *self.draining_since.lock().unwrap() = Some(Instant::now());
        }
    }

    /// Whether a draining instance is done: no request left, or `delay` is over.
    fn drained(&self, delay: Duration) -> bool {
        let since = *self.draining_since.lock().unwrap();
        since.is_some_and(|s| self.outstanding.load(Ordering::Relaxed) == 0 || s.elapsed() >= delay)
    }

    /// One health-check result, with the thresholds in force.
    fn checked(&self, ok: bool, healthy: u32, unhealthy: u32) {
        let mut s = self.state.lock().unwrap();
        if s.0 == TargetState::Draining {
            return;
        }
        if ok {
            s.1 += 1;
            s.2 = 0;
            if s.1 >= healthy {
                s.0 = TargetState::Healthy;
            }
        } else {
            s.2 += 1;
            s.1 = 0;
            if s.2 >= unhealthy {
                s.0 = TargetState::Unhealthy;
            }
        }
    }

    /// CPU use over the last period as a percentage of the vCPUs its instance type
    /// has (scaled to this machine), like CloudWatch's CPUUtilization.
    fn sample_cpu(&self) -> f64 {
        let now = Instant::now();
        let used = self
            .proc
            .lock()
            .unwrap()
            .as_ref()
            .and_then(Proc::usage)
            .map_or(0.0, |u| u.cpu_s);
        let mut c = self.cpu.lock().unwrap();
        let wall = now.duration_since(c.0).as_secs_f64();
        if wall > 0.0 {
            let cores = self.release.vcpus() * self.release.cpu_scale;
            c.2 = ((used - c.1) / (wall * cores) * 100.0).clamp(0.0, 100.0);
        }
        c.0 = now;
        c.1 = used;
        c.2
    }

    fn cpu_pct(&self) -> f64 {
        self.cpu.lock().unwrap().2
    }
}

/// A scaling or health event, for `status` and `bench`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: i64,
    pub what: String,
}

pub struct Fleet {
    release: Mutex<Option<Arc<Release>>>,
    instances: Mutex<Vec<Arc<Instance>>>,
    next_id: AtomicU32,
    pub desired: AtomicU32,
    generation: AtomicU32,
    tracker: Mutex<Option<Tracker>>,
    pub timing: Timing,
    rr: AtomicUsize,
    platform: BTreeMap<String, String>,
    isolation: Isolation,
    cpu: CpuControl,
    hub: LogHub,
    pub events: Mutex<Vec<Event>>,
    http: reqwest::Client,
    /// The last failure to launch an instance, and when (launches back off meanwhile).
    failure: Mutex<Option<(Instant, String)>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    pub id: u32,
    pub pid: u32,
    pub port: u16,
    pub state: TargetState,
    pub cpu_pct: f64,
    pub rss_mb: f64,
    pub outstanding: usize,
    pub served: u64,
    pub digest: String,
    pub up_s: f64,
}

impl Fleet {
    pub fn new(
        timing: Timing,
        platform: BTreeMap<String, String>,
        isolation: Isolation,
        cpu: CpuControl,
        hub: LogHub,
    ) -> Arc<Fleet> {
        Arc::new(Fleet {
            release: Mutex::new(None),
            instances: Mutex::new(Vec::new()),
            next_id: AtomicU32::new(1),
            desired: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            tracker: Mutex::new(None),
            timing,
            rr: AtomicUsize::new(0),
            platform,
            isolation,
            cpu,
            hub,
            events: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
            failure: Mutex::new(None),
        })
    }

    fn event(&self, what: String) {
        tracing::info!("serverful: {what}");
        self.events.lock().unwrap().push(Event {
            at_ms: super::logs::now_ms(),
            what,
        });
    }

    pub fn release(&self) -> Option<Arc<Release>> {
        self.release.lock().unwrap().clone()
    }

    /// Deploys `release`; bounds and target take effect at once, the image by rolling.
    pub fn deploy(&self, release: Option<Arc<Release>>) {
        if let Some(r) = &release {
            let f = &r.fleet;
            let mut t = self.tracker.lock().unwrap();
            match t.as_mut() {
                Some(t) => {
                    t.min = f.min;
                    t.max = f.max;
                    t.target = f.cpu_target;
                }
                None => {
                    *t = Some(Tracker::new(f.cpu_target, f.min, f.max));
                    self.desired.store(f.min, Ordering::Relaxed);
                }
            }
            let d = self
                .desired
                .load(Ordering::Relaxed)
                .clamp(f.min, f.max.max(f.min));
            self.desired.store(d, Ordering::Relaxed);
        } else {
            self.desired.store(0, Ordering::Relaxed);
        }
        *self.release.lock().unwrap() = release;
    }

    /// Replaces every instance with a fresh one (rolled like a new image): `bench
    /// --protocol cold` asks for it.
    pub fn recycle(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.event("recycling every instance on request".into());
    }

    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances.lock().unwrap().clone()
    }

    /// The instance the next request goes to: healthy ones only; when none is healthy
    /// the ALB fails open to the unhealthy ones; `None` with nothing registered.
    pub fn pick(&self, least_outstanding: bool) -> Option<Arc<Instance>> {
        let all = self.instances();
        let of = |s: TargetState| -> Vec<Arc<Instance>> {
            all.iter().filter(|i| i.state() == s).cloned().collect()
        };
        let mut candidates = of(TargetState::Healthy);
        if candidates.is_empty() {
            candidates = of(TargetState::Unhealthy);
        }
        if candidates.is_empty() {
            return None;
        }
        if least_outstanding {
            let n = self.rr.fetch_add(1, Ordering::Relaxed);
            let len = candidates.len();
            // Ties go round robin.
            candidates.rotate_left(n % len);
            candidates
                .into_iter()
                .min_by_key(|i| i.outstanding.load(Ordering::Relaxed))
        } else {
            let n = self.rr.fetch_add(1, Ordering::Relaxed);
            Some(candidates[n % candidates.len()].clone())
        }
    }

    fn launch(&self, release: &Arc<Release>) -> Result<Arc<Instance>, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Each instance has its own address on AWS; here, its own loopback port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let mut env = self.platform.clone();
        env.extend(release.fleet.env.clone());
        env.insert("PORT".into(), port.to_string());
        env.insert("BIND_ADDRESS".into(), "127.0.0.1".into());
        let stream = format!("predictor/predictor/local-{id:04}");
        let log = self.hub.sink(&release.fleet.log_group, &stream);
        let proc = Proc::spawn(
            Spec {
                name: format!("serverful-{id}"),
                rootfs: &release.rootfs,
                env,
                cores: release.capped.then(|| release.vcpus() * release.cpu_scale),
            },
            self.isolation,
            &self.cpu,
            log,
        )?;
        let instance = Arc::new(Instance {
            id,
            release: release.clone(),
            generation: self.generation.load(Ordering::Relaxed),
            port,
            pid: proc.pid,
            proc: Mutex::new(Some(proc)),
            state: Mutex::new((TargetState::Initial, 0, 0)),
            draining_since: Mutex::new(None),
            outstanding: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            launched: Instant::now(),
            cpu: Mutex::new((Instant::now(), 0.0, 0.0)),
        });
        self.event(format!(
            "instance {id} launched (pid {}, port {port})",
            instance.pid
        ));
        Ok(instance)
    }

    /// Brings the instances to the desired count of the current release, rolls old
    /// releases out once the new ones are healthy, and stops drained instances.
    pub async fn reconcile(&self) {
        let release = self.release();
        let desired = self.desired.load(Ordering::Relaxed) as usize;
        let mut stop = Vec::new();
        {
            let mut all = self.instances.lock().unwrap();
            // Dead processes are replaced, as ECS replaces a stopped task.
            stop.extend(take_out(&mut all, |i| !alive(i.pid)));
            let generation = self.generation.load(Ordering::Relaxed);
            let current = |i: &Instance| {
                i.generation == generation
                    && release.as_ref().is_some_and(|r| r.same_task(&i.release))
            };
            let active: Vec<Arc<Instance>> = all
                .iter()
                .filter(|i| current(i) && i.state() != TargetState::Draining)
                .cloned()
                .collect();
            if let Some(r) = release.as_ref().filter(|_| !self.backing_off()) {
                self.launch_several(&mut all, r, desired.saturating_sub(active.len()));
            }
            // Scale in: the newest go first.
            for i in active
                .iter()
                .rev()
                .take(active.len().saturating_sub(desired))
            {
                i.drain();
                self.event(format!("instance {} draining (scale-in)", i.id));
            }
            // Roll out: old releases drain once the new ones can take the traffic.
            let healthy_new = active
                .iter()
                .filter(|i| i.state() == TargetState::Healthy)
                .count();
            if healthy_new >= desired {
                self.drain_replaced(&all, &current);
            }
            let delay = release.as_ref().map_or(Duration::ZERO, |r| {
                self.timing
                    .deregistration_delay(r.fleet.deregistration_delay)
            });
            stop.extend(take_out(&mut all, |i| i.drained(delay)));
        }
        for i in stop {
            let p = i.proc.lock().unwrap().take();
            if let Some(p) = p {
                self.event(format!("instance {} stopped", i.id));
                // A graceful stop takes up to its grace period: not in the loop's time.
                tokio::spawn(p.stop(Duration::from_secs(5)));
            }
        }
    }

    /// Whether a launch failed less than 2 s ago (launches wait meanwhile).
    fn backing_off(&self) -> bool {
        self.failure
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(2))
    }

    /// Launches up to `count` instances of `release` into `all`, stopping at the first
    /// failure (which is kept, for the back-off and the state).
    fn launch_several(&self, all: &mut Vec<Arc<Instance>>, release: &Arc<Release>, count: usize) {
        for _ in 0..count {
            match self.launch(release) {
                Ok(i) => {
                    all.push(i);
                    *self.failure.lock().unwrap() = None;
                }
                Err(e) => {
                    tracing::warn!("launching an instance: {e}");
                    *self.failure.lock().unwrap() = Some((Instant::now(), e));
                    break;
                }
            }
        }
    }

    /// Drains every instance not of the `current` release that is not draining yet.
    fn drain_replaced(&self, all: &[Arc<Instance>], current: &dyn Fn(&Instance) -> bool) {
        for i in all
            .iter()
            .filter(|i| !current(i) && i.state() != TargetState::Draining)
        {
            i.drain();
            self.event(format!(
                "instance {} draining (replaced by a new image)",
                i.id
            ));
        }
    }

    /// One round of health checks on every registered instance.
    pub async fn check_health(&self) {
        let Some(release) = self.release() else {
            return;
        };
        let h = &release.fleet.health;
        let timeout = h.timeout.min(self.timing.health_interval(h.interval));
        let healthy = self.timing.threshold(h.healthy);
        let unhealthy = self.timing.threshold(h.unhealthy);
        let checks = self
            .instances()
            .into_iter()
            .filter(|i| i.state() != TargetState::Draining)
            .map(|i| {
                let url = format!("http://127.0.0.1:{}{}", i.port, h.path);
                let http = self.http.clone();
                async move {
                    let ok = http
                        .get(&url)
                        .timeout(timeout)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == 200);
                    let before = i.state();
                    i.checked(ok, healthy, unhealthy);
                    (i.id, before, i.state())
                }
            });
        for (id, before, after) in futures::future::join_all(checks).await {
            if before != after {
                self.event(format!("instance {id} {after:?}").to_lowercase());
            }
        }
    }

    /// One metric period: the group's average CPU, and target tracking's answer. Only
    /// instances in service count (AWS leaves those warming up out of the metric).
    pub fn scale(&self) {
        let active: Vec<Arc<Instance>> = self
            .instances()
            .into_iter()
            .filter(|i| i.state() == TargetState::Healthy)
            .collect();
        if active.is_empty() {
            return;
        }
        let avg = active.iter().map(|i| i.sample_cpu()).sum::<f64>() / active.len() as f64;
        let current = self.desired.load(Ordering::Relaxed);
        let mut tracker = self.tracker.lock().unwrap();
        if let Some(next) = tracker
            .as_mut()
            .and_then(|t| t.observe(current, avg, Instant::now(), &self.timing))
        {
            self.desired.store(next, Ordering::Relaxed);
            drop(tracker);
            self.event(format!(
                "desired {current} -> {next} (average CPU {avg:.0} %)"
            ));
        }
    }

    pub async fn shutdown(&self) {
        let all: Vec<Arc<Instance>> = std::mem::take(&mut *self.instances.lock().unwrap());
        for i in all {
            let p = i.proc.lock().unwrap().take();
            if let Some(p) = p {
                p.stop(Duration::from_secs(5)).await;
            }
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.instances().iter().map(|i| i.pid).collect()
    }

    pub fn view(&self) -> Vec<InstanceView> {
        self.instances()
            .iter()
            .map(|i| {
                let usage = i
                    .proc
                    .lock()
                    .unwrap()
                    .as_ref()
                    .and_then(Proc::usage)
                    .unwrap_or_default();
                InstanceView {
                    id: i.id,
                    pid: i.pid,
                    port: i.port,
                    state: i.state(),
                    cpu_pct: i.cpu_pct(),
                    rss_mb: usage.rss_mb,
                    outstanding: i.outstanding.load(Ordering::Relaxed),
                    served: i.served.load(Ordering::Relaxed),
                    digest: i.release.rootfs.digest.clone(),
                    up_s: i.launched.elapsed().as_secs_f64(),
                }
            })
            .collect()
    }

    /// Why the last launch failed, if the last attempt did.
    pub fn problem(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap()
            .as_ref()
            .map(|(_, e)| format!("launching an instance: {e}"))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Removes the instances that are `gone` from `all`, and returns them.
fn take_out(all: &mut Vec<Arc<Instance>>, gone: impl Fn(&Instance) -> bool) -> Vec<Arc<Instance>> {
    let mut out = Vec::new();
    all.retain(|i| {
        let g = gone(i);
        if g {
            out.push(i.clone());
        }
        !g
    });
    out
}
