//! The local runtime end to end: `deployer up` against moto and a real registry on
//! loopback, then real requests through both local fronts to predictor processes
//! started from the pushed image; cold starts, throttles, timeouts, reclaim, health,
//! scaling, rollouts, and `down` leaving no process behind. Every wait is bounded.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Moto, deployer_command, predictor_bin, repo_root};
use serde_json::Value;
use testkit::{HttpResponse, Registry, http};

const STACK: &str = "yolo-rt";

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("predictor/tests/images").join(name)).unwrap()
}

/// A stack on its own moto, registry and state directory; its processes are killed
/// when it is dropped, whatever the test did.
struct Stack {
    moto: Moto,
    _registry: Registry,
    dir: PathBuf,
    manifest: PathBuf,
}

impl Stack {
    /// `serverful`, `serverless` and `local` are the bodies of those sections (indented);
    /// `extra` holds further top-level sections.
    fn new(test: &str, serverful: &str, serverless: &str, local: &str, extra: &str) -> Stack {
        let moto = Moto::start();
        let registry = Registry::start(false);
        let dir = std::env::temp_dir().join(format!("deployer-rt-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("stack.yaml");
        std::fs::write(
            &manifest,
            format!(
                "name: {STACK}\nregion: us-east-1\nendpoint: {}\nimage:\n  registry: {}\n\
                 serverful:\n  wait_s: 0\n{serverful}\nserverless:\n{serverless}\n\
                 local:\n  serverful_port: 0\n  serverless_port: 0\n  timing: fast\n{local}\n{extra}\n",
                moto.endpoint, registry.host
            ),
        )
        .unwrap();
        Stack {
            moto,
            _registry: registry,
            dir,
            manifest,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["-f", self.manifest.to_str().unwrap()];
        all.extend(args);
        deployer_command(&all)
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("DEPLOYER_STATE_DIR", self.dir.join("state"))
            .env_remove("DEPLOYER_NO_RUNTIME")
            .output()
            .unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "deployer {args:?} failed:\n{stderr}\n{}\nsupervisor log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            self.supervisor_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `up` with `binary` in the image; the two URLs it prints.
    fn up(&self, binary: &Path) -> (String, String) {
        let out = self.ok(&[
            "up",
            "--yes",
            "-o",
            "json",
            "--predictor-bin",
            binary.to_str().unwrap(),
        ]);
        let report: Value = serde_json::from_str(&out).unwrap();
        let url = |target: &str| {
            report["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["target"] == target)
                .map(|e| e["url"].as_str().unwrap().to_string())
                .unwrap_or_default()
        };
        (url("serverful"), url("serverless"))
    }

    /// Replaces `from` by `to` in the manifest.
    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.manifest).unwrap();
        assert!(text.contains(from), "{from} not in the manifest");
        std::fs::write(&self.manifest, text.replace(from, to)).unwrap();
    }

    fn state_dir(&self) -> PathBuf {
        let port = self.moto.endpoint.rsplit(':').next().unwrap();
        self.dir
            .join("state")
            .join(format!("{STACK}@127.0.0.1-{port}"))
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_dir().join("state.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn supervisor_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.state_dir().join("supervisor.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("supervisor.log")).unwrap_or_default()
    }

    /// Waits (bounded) until `cond` holds of the state the supervisor writes.
    #[track_caller]
    fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.state();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; state:\n{s:#}\nsupervisor log:\n{}",
                self.supervisor_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pids(&self) -> Vec<u32> {
        let s = self.state();
        let mut pids: Vec<u32> = s["pids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_u64().map(|p| p as u32))
            .collect();
        pids.extend(self.supervisor_pid());
        pids
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let pids = self.pids();
        if let Some(pid) = self.supervisor_pid() {
            // SAFETY: kill(2) on our own test's process group.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        for p in pids {
            unsafe {
                libc::kill(p as i32, libc::SIGKILL);
            }
        }
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// Whether a process is stopped (SIGSTOP).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? == "T"))
        .unwrap_or(false)
}

/// The live processes of a process group.
fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(2)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(pgid)
        })
        .filter(|pid| alive(*pid))
        .collect()
}

fn post_image(url: &str, body: &[u8]) -> HttpResponse {
    http("POST", url, &[("Content-Type", "image/jpeg")], body).unwrap()
}

fn labels(r: &HttpResponse) -> Vec<String> {
    r.json()["detections"]
        .as_array()
        .unwrap_or_else(|| panic!("no detections: {}", String::from_utf8_lossy(&r.body)))
        .iter()
        .map(|d| d["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn both_targets_serve_detections_cold_then_warm_and_down_leaves_no_process() {
    let s = Stack::new("serve", "  min: 1\n  max: 2", "  timeout_s: 30", "", "");
    let (serverful, serverless) = s.up(&predictor_bin());
    assert!(
        serverful.starts_with("http://127.0.0.1:") && serverful.ends_with("/predict"),
        "{serverful}"
    );
    assert!(serverless.starts_with("http://127.0.0.1:"), "{serverless}");
    let bus = photo("bus.jpg");

    // Serverless: the first request is a cold start, the second is warm on the same
    // environment.
    let first = post_image(&serverless, &bus);
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert!(labels(&first).contains(&"bus".to_string()));
    assert_eq!(first.header("x-instance-seq"), Some("1"), "cold");
    assert!(first.header("apigw-requestid").is_some());
    let second = post_image(&serverless, &bus);
    assert_eq!(second.json()["instance"]["seq"], 2, "warm");
    assert_eq!(
        second.json()["instance"]["id"],
        first.json()["instance"]["id"]
    );

    // Serverful: the same detections through the load balancer.
    let r = post_image(&serverful, &bus);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(labels(&r), labels(&first));
    // Both serve the manifest's default variant, from the image's models.
    for answer in [&r, &first] {
        assert_eq!(answer.json()["model"], "yolo11n-rect");
    }
    assert!(
        r.json()["url"]
            .as_str()
            .is_some_and(|u| u.contains("results/"))
    );

    // A bad image gets the predictor's own 4xx JSON, unchanged, through both fronts.
    for url in [&serverful, &serverless] {
        let bad = post_image(url, b"this is not a JPEG");
        assert!((400..500).contains(&bad.status), "{url}: {}", bad.status);
        assert!(
            bad.json()["error"]["code"].is_string(),
            "{url}: {}",
            String::from_utf8_lossy(&bad.body)
        );
    }
    // The gateway's own answer for a route it does not have.
    let base = serverless.trim_end_matches("/predict");
    let none = http("GET", &format!("{base}/nothing"), &[], b"").unwrap();
    assert_eq!(
        (none.status, none.json()),
        (404, serde_json::json!({"message": "Not Found"}))
    );

    // `status` shows the live data plane; the REPORT lines are in the function's log.
    // The supervisor writes its state once a second: wait until it has seen the requests.
    s.wait_for(
        "the cold start in the state",
        Duration::from_secs(10),
        |st| st["serverless"]["cold_starts"].as_u64() >= Some(1),
    );
    let status: Value = serde_json::from_str(&s.ok(&["status", "-o", "json"])).unwrap();
    let rt = &status["runtime"];
    assert_eq!(rt["serverless"]["cold_starts"], 1, "{rt:#}");
    assert_eq!(
        rt["serverless"]["environments"].as_array().unwrap().len(),
        1
    );
    assert!(
        rt["serverless"]["environments"][0]["init_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(rt["serverful"]["instances"][0]["state"], "healthy");
    assert!(rt["isolation"].is_string() && rt["cpu_model"].is_string());
    let logs = s.wait_for_logs("REPORT RequestId");
    assert!(logs.contains("Init Duration:"), "{logs}");
    assert!(logs.contains("Max Memory Used:"), "{logs}");

    // `deployer predict`: a file uploaded and named by key, or sent as the body.
    let bus_path = repo_root().join("predictor/tests/images/bus.jpg");
    let text = s.ok(&[
        "predict",
        "--target",
        "serverful",
        bus_path.to_str().unwrap(),
    ]);
    assert!(text.contains("bus.jpg  200  bus 0.9"), "{text}");
    let json: Value = serde_json::from_str(
        s.ok(&[
            "predict",
            "--body",
            "-o",
            "json",
            bus_path.to_str().unwrap(),
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(json["status"], 200, "{json:#}");
    assert_eq!(json["response"]["detections"][0]["label"], "bus");
    let missing = s.run(&["predict", "no/such/key.jpg"]);
    assert_eq!(missing.status.code(), Some(1), "a failed request is exit 1");
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("404"),
        "{missing:?}"
    );

    // A second `up` with nothing changed leaves every process as it was.
    let before = s.pids();
    s.up(&predictor_bin());
    assert_eq!(s.pids(), before, "an unchanged `up` restarted processes");

    let pids = s.pids();
    assert!(
        pids.len() >= 3,
        "supervisor, an instance, an environment: {pids:?}"
    );
    s.ok(&["down", "--yes"]);
    for p in &pids {
        assert!(!alive(*p), "pid {p} survived `down`");
    }
}

impl Stack {
    /// Waits (bounded) for `needle` in the serverless target's logs, as `deployer logs`
    /// prints them.
    fn wait_for_logs(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run(&["logs", "serverless", "--since", "1h"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in the logs:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn lambda_throttles_at_its_limit_kills_timeouts_and_reclaims_idle_environments() {
    let s = Stack::new(
        "lambda",
        "  enabled: false",
        "  timeout_s: 3\n  reserved_concurrency: 2",
        "  reclaim_after_s: 2",
        "predictor:\n  deadline_ms: 2500",
    );
    let (_, url) = s.up(&predictor_bin());
    let bus = photo("bus.jpg");

    // Three at once against a limit of two: two cold starts, one throttle.
    let answers: Vec<HttpResponse> = std::thread::scope(|sc| {
        let calls: Vec<_> = (0..3)
            .map(|_| sc.spawn(|| post_image(&url, &bus)))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let ok: Vec<&HttpResponse> = answers.iter().filter(|r| r.status == 200).collect();
    let throttled: Vec<&HttpResponse> = answers
        .iter()
        .filter(|r| r.header("x-local-lambda-error") == Some("TooManyRequestsException"))
        .collect();
    assert_eq!(
        (ok.len(), throttled.len()),
        (2, 1),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        throttled[0].status, 500,
        "an HTTP API answers a throttled invoke with 500"
    );
    let ids: std::collections::BTreeSet<String> = ok
        .iter()
        .map(|r| r.json()["instance"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "two environments");
    assert!(
        ok.iter().all(|r| r.json()["instance"]["seq"] == 1),
        "both cold"
    );

    // Idle past `reclaim_after_s`: the environments are reclaimed, the next call is cold.
    s.wait_for("reclaim", Duration::from_secs(20), |st| {
        st["serverless"]["cold_starts"] == 2
            && st["serverless"]["environments"]
                .as_array()
                .is_some_and(|e| e.is_empty())
    });
    let cold = post_image(&url, &bus);
    assert_eq!(cold.json()["instance"]["seq"], 1, "reclaimed: cold again");
    assert!(!ids.contains(cold.json()["instance"]["id"].as_str().unwrap()));

    // A handler stuck past the function's timeout (its process stopped mid-request) is
    // killed; the next request re-initialises.
    let st = s.wait_for("the environment listed", Duration::from_secs(10), |st| {
        st["serverless"]["environments"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    let env_pid = st["serverless"]["environments"][0]["pid"].as_u64().unwrap() as i32;
    let stuck = std::thread::scope(|sc| {
        let call = sc.spawn(|| post_image(&url, &bus));
        // Keep stopping it until the answer comes: the dispatcher continues a frozen
        // environment when it hands it the request.
        while !call.is_finished() {
            unsafe {
                libc::kill(env_pid, libc::SIGSTOP);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        call.join().unwrap()
    });
    assert_eq!(
        stuck.status,
        500,
        "{}",
        String::from_utf8_lossy(&stuck.body)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(env_pid as u32) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(env_pid as u32),
        "the timed-out environment was killed"
    );
    let logs = s.wait_for_logs("Task timed out after 3.00 seconds");
    assert!(logs.contains("Status: timeout"), "{logs}");
    s.wait_for("the counters", Duration::from_secs(5), |st| {
        st["serverless"]["timeouts"] == 1 && st["serverless"]["throttles"] == 1
    });
    let after = post_image(&url, &bus);
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["instance"]["seq"], 1, "a new environment");

    // `down` after the supervisor was killed still stops everything it started. (Right
    // after a request: the environment would be reclaimed 2 s later.)
    let supervisor = s.supervisor_pid().unwrap();
    let pids = group_members(supervisor);
    assert!(
        pids.len() >= 2,
        "the supervisor and an environment: {pids:?}"
    );
    // Frozen (idle, waiting for its next event): an environment between its response
    // and its next `/next` would exit by itself when the Runtime API went away.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids.iter().any(|p| *p != supervisor && stopped(*p)) {
        assert!(
            Instant::now() < deadline,
            "the idle environment was not frozen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe {
        libc::kill(supervisor as i32, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        pids.iter().any(|p| *p != supervisor && alive(*p)),
        "the environment outlives its supervisor"
    );
    s.ok(&["down", "--yes"]);
    for p in &pids {
        assert!(!alive(*p), "pid {p} survived `down`");
    }
}

#[test]
fn instances_are_health_checked_scaled_out_under_load_and_in_when_idle() {
    let s = Stack::new(
        "fleet",
        // No scaling while the health checks are tested.
        "  min: 2\n  max: 3\n  cpu_target: 95",
        "  enabled: false",
        "",
        "",
    );
    let (url, _) = s.up(&predictor_bin());
    let bus = photo("bus.jpg");
    let st = s.wait_for("two healthy instances", Duration::from_secs(60), |st| {
        healthy(st).len() == 2
    });
    // A stopped instance fails its health checks and gets no more traffic.
    let stopped_pid = healthy(&st)[0];
    unsafe {
        libc::kill(stopped_pid as i32, libc::SIGSTOP);
    }
    s.wait_for(
        "the stopped instance unhealthy",
        Duration::from_secs(20),
        |st| {
            st["serverful"]["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["pid"] == stopped_pid && i["state"] == "unhealthy")
        },
    );
    let served = |st: &Value| {
        st["serverful"]["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["pid"] == stopped_pid)
            .map(|i| i["served"].clone())
    };
    let before = served(&s.state());
    let mut served_by = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let r = post_image(&url, &bus);
        assert_eq!(r.status, 200);
        served_by.insert(r.header("x-instance-id").unwrap().to_string());
    }
    assert_eq!(
        served_by.len(),
        1,
        "only the healthy instance answered: {served_by:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        served(&s.state()),
        before,
        "the unhealthy instance got requests"
    );
    unsafe {
        libc::kill(stopped_pid as i32, libc::SIGCONT);
    }
    s.wait_for("both healthy again", Duration::from_secs(20), |st| {
        healthy(st).len() == 2
    });

    // A lower target, through the control plane: the runtime follows what `up` set.
    s.edit("cpu_target: 95", "cpu_target: 10");
    s.up(&predictor_bin());
    s.wait_for("the new target", Duration::from_secs(10), |st| {
        st["serverful"]["cpu_target"] == 10.0
    });

    // Load above the CPU target: target tracking adds the third instance.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        for _ in 0..3 {
            sc.spawn(|| {
                let until = Instant::now() + Duration::from_secs(60);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                    let _ = post_image(&url, &bus);
                }
            });
        }
        s.wait_for("scale-out to 3", Duration::from_secs(60), |st| {
            healthy(st).len() == 3
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let st = s.state();
    let events: Vec<&str> = st["serverful"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_str())
        .collect();
    assert!(
        events.iter().any(|e| e.starts_with("desired 2 -> 3")),
        "{events:?}"
    );

    // Idle: back to the minimum, the extra instance drained and stopped.
    s.wait_for("scale-in to 2", Duration::from_secs(60), |st| {
        st["serverful"]["desired"] == 2
            && st["serverful"]["instances"]
                .as_array()
                .is_some_and(|i| i.len() == 2)
    });
    s.ok(&["down", "--yes"]);
}

fn healthy(st: &Value) -> Vec<u32> {
    st["serverful"]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["state"] == "healthy")
        .map(|i| i["pid"].as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn a_new_image_rolls_both_targets_to_its_digest() {
    let s = Stack::new("roll", "  min: 1\n  max: 1", "", "", "");
    let (serverful, serverless) = s.up(&predictor_bin());
    let bus = photo("bus.jpg");
    let before = (
        post_image(&serverful, &bus).json()["instance"]["id"].clone(),
        post_image(&serverless, &bus).json()["instance"]["id"].clone(),
    );
    let old = s.state()["serverless"]["digest"].clone();

    // The same program with one more byte: another image, another digest.
    let changed = s.dir.join("predictor");
    let mut bytes = std::fs::read(predictor_bin()).unwrap();
    bytes.push(0);
    std::fs::write(&changed, bytes).unwrap();
    std::fs::set_permissions(
        &changed,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    s.up(&changed);
    let st = s.state();
    let new = st["serverless"]["digest"].clone();
    assert_ne!(new, old);
    assert_eq!(st["serverful"]["digest"], new);
    // `up` returned once both sides served the new image.
    let r = post_image(&serverful, &bus);
    assert_eq!(r.status, 200);
    assert_ne!(
        r.json()["instance"]["id"],
        before.0,
        "served by a new instance"
    );
    let r = post_image(&serverless, &bus);
    assert_ne!(
        r.json()["instance"]["id"],
        before.1,
        "served by a new environment"
    );
    assert_eq!(r.json()["instance"]["seq"], 1);
    s.wait_for("the old instance gone", Duration::from_secs(30), |st| {
        st["serverful"]["instances"]
            .as_array()
            .is_some_and(|i| i.iter().all(|i| i["digest"] == new))
    });
    s.ok(&["down", "--yes"]);
}

/// Runs `deployer bench` with `args` into `out`; its exit code, stdout and stderr.
fn bench(s: &Stack, out: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["bench", "--out", out.to_str().unwrap(), "--images"];
    let images = repo_root().join("predictor/tests/images");
    all.push(images.to_str().unwrap());
    all.extend(args);
    let o = s.run(&all);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn csv_rows(out: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(out.join("requests.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn bench_runs_every_protocol_against_both_local_targets_and_writes_its_report() {
    let s = Stack::new(
        "bench",
        "  min: 1\n  max: 2",
        "",
        "",
        "bench:\n  prices:\n    instance_hour: 1.5",
    );
    s.up(&predictor_bin());
    let protocols: [(&str, &[&str], usize); 5] = [
        (
            "study",
            &["--batches", "2", "--concurrency", "2", "--pause-s", "0.2"],
            4,
        ),
        (
            "ab",
            &["--requests", "4", "--concurrency", "2", "--by", "body"],
            4,
        ),
        ("rate", &["--rate", "4", "--duration-s", "1"], 4),
        ("sweep", &["--concurrency", "2", "--requests", "2"], 4),
        ("cold", &["--requests", "1"], 2),
    ];
    for (protocol, args, per_target) in protocols {
        let out = s.dir.join(format!("bench-{protocol}"));
        let mut all = vec!["--protocol", protocol];
        all.extend(args);
        let (code, stdout, stderr) = bench(&s, &out, &all);
        assert_eq!(code, Some(0), "{protocol}: {stderr}\n{stdout}");
        assert!(
            stdout.contains("serverful") && stdout.contains("serverless"),
            "{stdout}"
        );
        let rows = csv_rows(&out);
        assert_eq!(
            rows.len(),
            2 * per_target,
            "{protocol}: one row per request"
        );
        assert!(rows.iter().all(|r| r[7] == "200"), "{protocol}: {rows:?}");
        assert!(
            rows.iter().all(|r| r[14].contains("infer=")),
            "{protocol}: the server's stages"
        );
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["summaries"].as_array().unwrap().len(), 2);
        // The manifest's price table is the one used.
        assert_eq!(summary["prices"]["instance_hour"], 1.5);
        assert!(
            summary["summaries"][0]["cost"]["how"]
                .as_str()
                .unwrap()
                .contains("$1.5/h"),
            "{summary:#}"
        );
        for line in std::fs::read_to_string(out.join("events.jsonl"))
            .unwrap()
            .lines()
        {
            serde_json::from_str::<Value>(line).unwrap();
        }
        // Every chart is a whole SVG document; the latency chart has one mark per
        // request, the cold ones marked as such, as in the CSV.
        for chart in [
            "latency.svg",
            "percentiles.svg",
            "units.svg",
            "cpu.svg",
            "memory.svg",
        ] {
            let svg = std::fs::read_to_string(out.join(chart)).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                "{chart}"
            );
            assert_eq!(
                svg.matches('<').count(),
                svg.matches('>').count(),
                "{chart}"
            );
        }
        let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
        let marks = svg.matches("<circle class=\"point\"").count()
            + svg.matches("<circle class=\"cold\"").count();
        assert_eq!(marks, rows.len(), "{protocol}: one mark per request");
        let cold_rows = rows.iter().filter(|r| r[12] == "true").count();
        assert_eq!(
            svg.matches("<circle class=\"cold\"").count(),
            cold_rows,
            "{protocol}"
        );
        if protocol == "cold" {
            // Fresh capacity on both sides: each side's first request is cold.
            for target in ["serverful", "serverless"] {
                let first = rows.iter().find(|r| r[0] == target).unwrap();
                assert_eq!(first[12], "true", "{target}: {rows:?}");
            }
            assert!(
                summary["summaries"][1]["cold"]["init_ms"]["mean"]
                    .as_f64()
                    .is_some(),
                "{summary:#}"
            );
        }
        if protocol == "sweep" {
            assert!(out.join("sweep.svg").is_file());
        }
        assert!(
            std::fs::read_to_string(out.join("report.html"))
                .unwrap()
                .contains("<svg")
        );
    }

    // On AWS the services publish metrics to CloudWatch; the run reads those of its
    // window (here, published into the emulator by the test).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let cw = aws_sdk_cloudwatch::Client::new(&s.moto.sdk().await);
        let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
        let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
        for (namespace, metric, value, dims) in [
            (
                "AWS/ECS",
                "CPUUtilization",
                42.0,
                vec![
                    dim("ClusterName", "yolo-rt-cluster"),
                    dim("ServiceName", "yolo-rt-predictor"),
                ],
            ),
            (
                "AWS/Lambda",
                "ConcurrentExecutions",
                3.0,
                vec![dim("FunctionName", "yolo-rt-predictor")],
            ),
        ] {
            cw.put_metric_data()
                .namespace(namespace)
                .metric_data(
                    MetricDatum::builder()
                        .metric_name(metric)
                        .value(value)
                        .timestamp(now)
                        .set_dimensions(Some(dims))
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    });
    let out = s.dir.join("bench-cloudwatch");
    let (code, stdout, stderr) = bench(&s, &out, &["--protocol", "ab", "--requests", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let cw = |i: usize| summary["summaries"][i]["resources"]["cloudwatch"].clone();
    assert_eq!(cw(0), serde_json::json!({"cpu_pct": 42.0}), "{summary:#}");
    assert_eq!(
        cw(1),
        serde_json::json!({"concurrent_executions": 3.0}),
        "{summary:#}"
    );
    assert!(
        stdout.contains("serverful CloudWatch: cpu_pct 42.0"),
        "{stdout}"
    );

    // A threshold turns the run into a gate.
    let out = s.dir.join("bench-gate");
    let (code, _, stderr) = bench(
        &s,
        &out,
        &[
            "--protocol",
            "ab",
            "--requests",
            "2",
            "--targets",
            "serverless",
            "--max-p99-ms",
            "1",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("serverless: p99") && stderr.contains("--max-p99-ms 1"),
        "{stderr}"
    );
    s.ok(&["down", "--yes"]);
}

#[test]
fn bench_reports_a_stalled_target_and_a_dead_one_without_crashing() {
    // A stack that was never brought up: the targets are given by URL.
    let s = Stack::new("bench-faults", "", "", "", "");
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled_url = format!("http://{}/predict", stalled.local_addr().unwrap());
    let dead_url = format!("http://127.0.0.1:{}/predict", testkit::free_port());
    // Accept and never answer; the connections close when the test ends.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in stalled.incoming().take(100) {
            held.push(c);
        }
    });
    let out = s.dir.join("bench-faults");
    let (code, stdout, stderr) = bench(
        &s,
        &out,
        &[
            "--protocol",
            "rate",
            "--rate",
            "8",
            "--duration-s",
            "1",
            "--timeout-s",
            "0.5",
            "--max-in-flight",
            "2",
            "--by",
            "body",
            "--url",
            &format!("serverful={stalled_url}"),
            "--url",
            &format!("serverless={dead_url}"),
            "--max-error-rate",
            "0.5",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}\n{stdout}");
    assert!(stderr.contains("--max-error-rate"), "{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let side = |t: &str| {
        summary["summaries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["target"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(side("serverful")["errors"]["timeout"], 8, "{summary:#}");
    assert_eq!(
        side("serverless")["errors"]["connection refused"],
        8,
        "{summary:#}"
    );
    // Two in flight at most: the stalled target held them, the generator sent late, and
    // the report says so.
    let late = side("serverful")["send_lateness_ms"][1].as_f64().unwrap();
    assert!(late > 100.0, "lateness {late} ms: {summary:#}");
    assert!(stdout.contains("generator lateness"), "{stdout}");
}
