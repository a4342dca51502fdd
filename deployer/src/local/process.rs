//! Processes started from an image's root filesystem: how they are isolated (a chroot,
//! in a user namespace when not root, else the image's own dynamic loader), their CPU
//! cap (a cgroup, where one is writable), and what `/proc` says about them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::logs::LogSink;
use super::rootfs::Rootfs;

/// How a process is made to see the image's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// `chroot` into the unpacked image (as root).
    Chroot,
    /// `unshare --user --map-root-user chroot`: the same without root.
    UserNamespace,
    /// The image's own `ld-linux` with `--library-path` into the unpacked image, and the
    /// image's absolute paths in the environment mapped into it.
    Loader,
}

impl Isolation {
    /// The strongest mode this machine allows, found by trying it once.
    pub fn probe() -> Isolation {
        let works = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // `chroot / true` needs CAP_SYS_CHROOT, which root has and a user namespace gives.
        if works("chroot", &["/", "true"]) {
            Isolation::Chroot
        } else if works(
            "unshare",
            &["--user", "--map-root-user", "chroot", "/", "true"],
        ) {
            Isolation::UserNamespace
        } else {
            Isolation::Loader
        }
    }
}

/// What to start.
pub struct Spec<'a> {
    /// A name for logs and the cgroup (`serverful-2`, `serverless-7`).
    pub name: String,
    pub rootfs: &'a Rootfs,
    /// Added to (and overriding) the image's environment.
    pub env: BTreeMap<String, String>,
    /// Cores this process may use (a cgroup quota), if capping is possible.
    pub cores: Option<f64>,
}

/// A running process and its cgroup.
pub struct Proc {
    pub pid: u32,
    pub child: Child,
    cgroup: Option<PathBuf>,
    /// Its private /tmp, removed when it stops.
    tmp: PathBuf,
}

impl Proc {
    /// Starts `spec` with `isolation`; its output goes to `log`, line by line.
    pub fn spawn(
        spec: Spec,
        isolation: Isolation,
        cpu: &CpuControl,
        log: LogSink,
    ) -> Result<Proc, String> {
        let root = &spec.rootfs.dir;
        let (program, args) = command_line(spec.rootfs, isolation)?;
        let mut env = spec.rootfs.env.clone();
        env.extend(spec.env);
        // Every process gets a /tmp of its own (Lambda's /tmp is per environment), inside
        // the shared unpacked image.
        let tmp = format!("/tmp/{}-{}", spec.name, std::process::id());
        let tmp_dir = inside(root, &tmp);
        let _ = std::fs::remove_dir_all(&tmp_dir);
        std::fs::create_dir_all(&tmp_dir)
            .map_err(|e| format!("creating {tmp} in the image: {e}"))?;
        env.insert("TMPDIR".into(), tmp);
        if isolation == Isolation::Loader {
            map_into_image(&mut env, spec.rootfs);
        }
        let mut command = Command::new(&program);
        command
            .args(&args)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", program.display()))?;
        let pid = child.id().ok_or("the process exited at once")?;
        let cgroup = spec.cores.and_then(|c| cpu.cap(&spec.name, pid, c));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(err, log));
        }
        Ok(Proc {
            pid,
            child,
            cgroup,
            tmp: tmp_dir,
        })
    }

    /// SIGSTOP: a frozen process uses no CPU (as Lambda freezes idle environments).
    pub fn freeze(&self) {
        signal(self.pid, libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        signal(self.pid, libc::SIGCONT);
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        signal(self.pid, libc::SIGTERM);
        signal(self.pid, libc::SIGCONT);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        self.release();
    }

    /// Sends SIGKILL without waiting.
    pub fn start_kill(&self) {
        signal(self.pid, libc::SIGKILL);
    }

    /// SIGKILL now (a timed-out Lambda environment), and reaps it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
        self.release();
    }

    fn release(&mut self) {
        if let Some(dir) = self.cgroup.take() {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }

    pub fn usage(&self) -> Option<Usage> {
        Usage::of(self.pid)
    }
}

/// The program that starts the image's entrypoint with `isolation`, and its arguments.
/// The child's environment is the image's: the tools are found on ours.
fn command_line(rootfs: &Rootfs, isolation: Isolation) -> Result<(PathBuf, Vec<String>), String> {
    let root = &rootfs.dir;
    let entry = &rootfs.entrypoint;
    Ok(match isolation {
        Isolation::Chroot => (on_path("chroot"), chroot_args(root, entry)),
        Isolation::UserNamespace => {
            let mut a = vec!["--user".into(), "--map-root-user".into()];
            a.push(on_path("chroot").display().to_string());
            a.extend(chroot_args(root, entry));
            (on_path("unshare"), a)
        }
        Isolation::Loader => {
            let loader = rootfs
                .loader()
                .ok_or_else(|| format!("the image at {} has no dynamic loader", root.display()))?;
            let mut a = vec![
                "--library-path".into(),
                rootfs.library_path(),
                inside(root, &entry[0]).display().to_string(),
            ];
            a.extend(entry[1..].iter().cloned());
            (loader, a)
        }
    })
}

/// The image's absolute paths only exist below its root here; the binary is started
/// through the loader, so it cannot find its model by itself.
fn map_into_image(env: &mut BTreeMap<String, String>, rootfs: &Rootfs) {
    let root = &rootfs.dir;
    for v in env.values_mut() {
        if v.starts_with('/') && inside(root, v).exists() {
            *v = inside(root, v).display().to_string();
        }
    }
    let chosen = [contract::MODEL_PATH, contract::MODEL_S3_URI];
    if let Some(model) = rootfs.model()
        && !chosen.iter().any(|v| env.contains_key(*v))
    {
        env.insert(contract::MODEL_PATH.into(), model.display().to_string());
    }
}

/// Copies a process's output to its log, line by line.
async fn forward(stream: impl tokio::io::AsyncRead + Unpin, log: LogSink) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.line(line);
    }
}

/// `name` as found on this process's `PATH` (itself when it is not found).
fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn chroot_args(root: &Path, entry: &[String]) -> Vec<String> {
    let mut a = vec![root.display().to_string()];
    a.extend(entry.iter().cloned());
    a
}

/// `path` (absolute in the image) below `root`.
pub fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; a stale pid gets ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Signals a whole process group (`-pgid`).
pub fn signal_group(negative_pgid: i32, sig: libc::c_int) {
    if negative_pgid < -1 {
        // SAFETY: as `signal`.
        unsafe {
            libc::kill(negative_pgid, sig);
        }
    }
}

/// The process group of a live process.
pub fn group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command: state(0) ppid(1) pgrp(2).
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// The live processes of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| group_of(*p) == Some(pgid) && alive(*p))
        .collect()
}

/// Whether `pid` runs from below `dir`: chrooted into it, or started through a
/// loader found there.
pub fn runs_from(pid: u32, dir: &Path) -> bool {
    let rooted = std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r.starts_with(dir));
    let dir = dir.display().to_string();
    rooted
        || std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir))
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// A process's CPU time and memory, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// User + system CPU seconds since it started.
    pub cpu_s: f64,
    pub rss_mb: f64,
    /// The peak resident set ("Max Memory Used" in Lambda's REPORT line).
    pub peak_rss_mb: f64,
}

impl Usage {
    pub fn of(pid: u32) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // After the command: state(0) ppid(1) … utime(11) stime(12), in clock ticks.
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb = |key: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Some(Usage {
            cpu_s: ticks / hz,
            rss_mb: kb("VmRSS:") / 1024.0,
            peak_rss_mb: kb("VmHWM:") / 1024.0,
        })
    }
}

/// CPU caps through cgroups: v1's `cpu` controller or v2's `cpu.max`, when writable.
#[derive(Debug, Clone)]
pub struct CpuControl {
    /// The directory new groups are made in, and whether it is cgroup v2.
    base: Option<(PathBuf, bool)>,
}

impl CpuControl {
    /// Finds a writable cgroup hierarchy and makes a group `deployer-<name>` in it for
    /// one supervisor's processes (nothing is capped without one).
    pub fn probe(name: &str) -> CpuControl {
        let name = format!("deployer-{name}");
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup");
        let candidates = [
            (v1.join(&name), false, v1.join("cpu.cfs_quota_us").exists()),
            (
                v2.join(&name),
                true,
                std::fs::read_to_string(v2.join("cgroup.subtree_control"))
                    .is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu")),
            ),
        ];
        for (dir, v2, present) in candidates {
            if present && (dir.is_dir() || std::fs::create_dir(&dir).is_ok()) {
                // v2 gives a group's children `cpu.max` only once the group delegates it.
                if v2 && std::fs::write(dir.join("cgroup.subtree_control"), "+cpu").is_err() {
                    let _ = std::fs::remove_dir(&dir);
                    continue;
                }
                return CpuControl {
                    base: Some((dir, v2)),
                };
            }
        }
        CpuControl { base: None }
    }

    pub fn available(&self) -> bool {
        self.base.is_some()
    }

    /// `cgroup v1` / `cgroup v2` / `none`.
    pub fn describe(&self) -> &'static str {
        match self.base {
            Some((_, false)) => "cgroup v1 cpu.cfs_quota_us",
            Some((_, true)) => "cgroup v2 cpu.max",
            None => "none (no writable cgroup): processes are not capped",
        }
    }

    /// Moves `pid` into a group of its own limited to `cores`; the group's directory.
    fn cap(&self, name: &str, pid: u32, cores: f64) -> Option<PathBuf> {
        let (base, v2) = self.base.as_ref()?;
        let dir = base.join(name);
        let _ = std::fs::create_dir(&dir);
        let period = 100_000u64;
        let quota = ((cores * period as f64) as u64).max(1000);
        let ok = if *v2 {
            std::fs::write(dir.join("cpu.max"), format!("{quota} {period}")).is_ok()
        } else {
            std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string()).is_ok()
                && std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()).is_ok()
        };
        (ok && std::fs::write(dir.join("cgroup.procs"), pid.to_string()).is_ok()).then_some(dir)
    }

    /// Removes the stack's groups (they must be empty: their processes have ended).
    pub fn remove(&self) {
        if let Some((base, _)) = &self.base {
            if let Ok(entries) = std::fs::read_dir(base) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_this_process() {
        let u = Usage::of(std::process::id()).unwrap();
        assert!(u.rss_mb > 1.0 && u.peak_rss_mb >= u.rss_mb, "{u:?}");
        assert!(u.cpu_s >= 0.0);
        assert!(alive(std::process::id()));
        assert!(Usage::of(u32::MAX - 1).is_none());
    }

    #[test]
    fn image_paths_map_below_the_root() {
        assert_eq!(
            inside(
                Path::new("/cache/rootfs/abc"),
                "/opt/predictor/bin/predictor"
            ),
            PathBuf::from("/cache/rootfs/abc/opt/predictor/bin/predictor")
        );
    }

    /// The chosen bundled model is found below the image's root; with none chosen the
    /// image's default is; a model from S3 gets no second source beside it.
    #[test]
    fn the_model_the_manifest_chose_is_found_below_the_root() {
        let dir = std::env::temp_dir().join(format!("rootfs-model-{}", std::process::id()));
        let models = dir.join("opt/predictor/models");
        std::fs::create_dir_all(&models).unwrap();
        for f in ["yolo11n.onnx", "yolo11n-rect.onnx"] {
            std::fs::write(models.join(f), b"").unwrap();
        }
        let rootfs = Rootfs {
            digest: "sha256:0".into(),
            dir: dir.clone(),
            entrypoint: vec!["/opt/predictor/bin/predictor".into()],
            env: BTreeMap::new(),
        };
        let mapped = |vars: &[(&str, &str)]| {
            let mut env: BTreeMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            map_into_image(&mut env, &rootfs);
            env
        };
        let chosen = mapped(&[("MODEL_PATH", "/opt/predictor/models/yolo11n-rect.onnx")]);
        assert_eq!(
            chosen["MODEL_PATH"],
            models.join("yolo11n-rect.onnx").display().to_string()
        );
        let default = mapped(&[]);
        assert_eq!(
            default["MODEL_PATH"],
            models.join("yolo11n.onnx").display().to_string()
        );
        let s3 = mapped(&[("MODEL_S3_URI", "s3://models/m.onnx")]);
        assert!(!s3.contains_key("MODEL_PATH"), "{s3:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
