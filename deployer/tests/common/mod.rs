//! The deployer's side of the test harness: the real `deployer` binary run against a
//! `testkit::Moto` server.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod inventory;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // not every test binary counts requests
pub use testkit::{Moto, Request, mutating};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn local_manifest() -> PathBuf {
    repo_root().join("manifests/local.yaml")
}

/// A digest that stands for a prebuilt image.
pub fn fake_digest(fill: char) -> String {
    format!("sha256:{}", fill.to_string().repeat(64))
}

/// `manifests/local.yaml` with `image:` replaced by `image_yaml` (indented block
/// contents), written to a file of this test process.
pub fn local_manifest_with_image(image_yaml: &str) -> PathBuf {
    let source = std::fs::read_to_string(local_manifest()).unwrap();
    let block = "image:\n  registry: 127.0.0.1:5000   # the local registry images are pushed to\n";
    assert!(
        source.contains(block),
        "manifests/local.yaml changed its image block"
    );
    let text = source.replace(block, &format!("image:\n{image_yaml}"));
    // One file per call: a test may hold several manifests at once.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "deployer-local-{}-{}.yaml",
        std::process::id(),
        CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::write(&file, text).unwrap();
    file
}

/// The local stack deploying a prebuilt image by digest: no build, no registry.
pub fn pinned_manifest(digest: &str) -> PathBuf {
    local_manifest_with_image(&format!(
        "  uri: 127.0.0.1:5000/yolo-local-predictor@{digest}\n"
    ))
}

/// The manifest `base` with `edits` (each `from` → `to`, once) applied, written beside it.
pub fn edited(base: &Path, name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(base).unwrap();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "manifests/local.yaml changed: no {from:?}"
        );
        text = text.replacen(from, to, 1);
    }
    let file = format!("{}.{name}.yaml", base.display());
    std::fs::write(&file, text).unwrap();
    file
}

/// What of the stack of the manifest `file` moto still holds, found by the deployer's
/// own finders (`inventory::remaining`, the ones `up` and `down` use): empty after
/// `down`. [`inventory::held`] lists independently of them.
pub async fn remaining(moto: &Moto, file: &str) -> Vec<String> {
    let mut m = deployer::manifest::Manifest::load(Path::new(file)).unwrap();
    m.endpoint = Some(moto.endpoint.clone());
    let aws = deployer::aws::Aws::connect(&m).await;
    let left = deployer::inventory::remaining(&aws, &m).await.unwrap();
    left.iter().map(ToString::to_string).collect()
}

/// Runs `deployer` with `args` against `moto` (no terminal, the emulator's credentials).
pub fn deployer(moto: &Moto, args: &[&str]) -> Run {
    deployer_at(&moto.endpoint, args)
}

/// Runs `deployer` with its AWS calls through `proxy` (in front of a moto).
pub fn via(proxy: &testkit::Proxy, args: &[&str]) -> Run {
    deployer_at(&proxy.endpoint(), args)
}

/// `host:port` of `moto`, what a proxy in front of it forwards to.
pub fn moto_host(moto: &Moto) -> &str {
    moto.endpoint.trim_start_matches("http://")
}

fn deployer_at(endpoint: &str, args: &[&str]) -> Run {
    let started = Instant::now();
    let output = deployer_command(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .unwrap();
    Run::new(output, started.elapsed())
}

/// Starts `deployer` without waiting, for interruption tests.
pub fn spawn_deployer(moto: &Moto, args: &[&str]) -> Child {
    deployer_command(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn deployer_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployer"));
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("NO_COLOR", "1")
        // The control plane only: tests of the local runtime (tests/local.rs) turn it on.
        .env("DEPLOYER_NO_RUNTIME", "1")
        // Never the user's local runtimes (`down` stops the stack's).
        .env(
            "DEPLOYER_STATE_DIR",
            std::env::temp_dir().join(format!("deployer-state-{}", std::process::id())),
        );
    c
}

/// A finished `deployer` run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    fn new(o: Output, elapsed: Duration) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            elapsed,
        }
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// The predictor binary built with this test run (`cargo nextest run --workspace`
/// builds every binary of the workspace into the same directory as `deployer`).
pub fn predictor_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_deployer")).with_file_name("predictor");
    assert!(
        p.is_file(),
        "{} is missing: build the workspace (`cargo build --workspace`) first",
        p.display()
    );
    p
}
