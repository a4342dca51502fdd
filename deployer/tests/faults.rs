//! The deployer against an AWS as unkind as the real one, through `testkit`'s proxy in
//! front of moto: `up` and `down` each converge in one run at 20 % injected faults
//! (throttling in each service's shape, 500 before and after the call, 503, latency)
//! for 10 seeds, with no duplicate of anything (HTTP API names are not unique) and
//! nothing left after `down`; a deleted bucket's name refused with `OperationAborted`
//! across `up` → `down` → `up`; and `up` and `down` killed at seeded random points,
//! then rerun, converge.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::inventory::held as everything;
use common::{
    Moto, deployer, deployer_command, fake_digest, moto_host, mutating, pinned_manifest, remaining,
    via,
};
use testkit::{Behaviour, Faults, Proxy, Rng, Window};

/// The local stack with a prebuilt image (no build, no registry).
fn manifest() -> String {
    pinned_manifest(&fake_digest('a')).display().to_string()
}

const BUCKETS: [&str; 2] = ["yolo-local-input", "yolo-local-results"];

/// What `inventory` holds more than once.
fn duplicates(inventory: &[String]) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in inventory {
        *counts.entry(i).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(i, n)| format!("{i} ×{n}"))
        .collect()
}

/// Asserts a converged stack: nothing twice, every kind there, and the plan (read
/// straight from moto, no faults) empty.
async fn assert_converged(moto: &Moto, m: &str, what: &str) -> Vec<String> {
    let held = everything(moto).await;
    assert_eq!(duplicates(&held), Vec::<String>::new(), "{what}: {held:#?}");
    for kind in [
        "api ",
        "asg ",
        "bucket ",
        "cluster ",
        "function ",
        "lb ",
        "role ",
        "service ",
    ] {
        assert!(
            held.iter().any(|h| h.starts_with(kind)),
            "{what}: no {kind}in {held:#?}"
        );
    }
    let plan = deployer(
        moto,
        &["-f", m, "plan", "--detailed-exitcode", "-o", "json"],
    );
    assert_eq!(plan.code, Some(0), "{what}: not converged: {}", plan.stdout);
    held
}

/// Asserts that nothing of the stack is left (the service-linked role is the
/// account's): in moto's full listing, and to the deployer's own finders.
async fn assert_empty(moto: &Moto, m: &str, what: &str) {
    assert_eq!(everything(moto).await, Vec::<String>::new(), "{what}");
    assert_eq!(remaining(moto, m).await, Vec::<String>::new(), "{what}");
}

/// 20 % of the calls get a fault (a fifth each: throttling, 500 before, 500 after the
/// call happened, 503, up to 300 ms of latency); each seed's `up` and `down` must each
/// converge in one run.
async fn converge_at_20_percent(seeds: std::ops::Range<u64>) {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    let m = manifest();
    for seed in seeds {
        proxy.set(Behaviour {
            faults: Some(Faults::percent(seed, 20)),
            ..Behaviour::default()
        });
        let before = proxy.injected().len();
        let calls = moto.requests().len();
        let up = via(&proxy, &["-f", &m, "up"]);
        let up_faults = proxy.injected().len() - before;
        let up = up.expect(0);
        let down_from = proxy.injected().len();
        let up_calls = moto.requests().len() - calls;
        proxy.set(Behaviour::default());
        assert_converged(&moto, &m, &format!("seed {seed}: up")).await;
        proxy.set(Behaviour {
            faults: Some(Faults::percent(seed, 20)),
            ..Behaviour::default()
        });
        let calls = moto.requests().len();
        let down = via(&proxy, &["-f", &m, "down", "--delete-buckets"]);
        let down_faults = proxy.injected().len() - down_from;
        let down = down.expect(0);
        let down_calls = moto.requests().len() - calls;
        assert_empty(&moto, &m, &format!("seed {seed}: after down")).await;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &proxy.injected()[before..] {
            *kinds.entry(i.fault.kind()).or_default() += 1;
        }
        eprintln!(
            "seed {seed}: up {:.1?} ({up_faults} faults, {up_calls} calls reached moto), \
             down {:.1?} ({down_faults} faults, {down_calls} calls); {kinds:?}",
            up.elapsed, down.elapsed
        );
        assert!(
            up_faults > 10 && down_faults > 5,
            "seed {seed}: too few faults to mean anything"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_and_down_converge_at_20_percent_faults_seeds_0_to_4() {
    converge_at_20_percent(0..5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_and_down_converge_at_20_percent_faults_seeds_5_to_9() {
    converge_at_20_percent(5..10).await;
}

/// AWS keeps a deleted bucket's name from being re-created for a while. `down` keeps
/// the buckets (emptied) by default, so `up` → `down` → `up` never meets the window;
/// `down --delete-buckets` does, and the next `up` says so, names the bucket and how
/// long, creates everything that does not need the buckets, and converges once the
/// window has closed.
/// Returns how many requests a whole `up` (but the buckets) and a whole `down` made.
async fn deleted_bucket_names(moto: &Moto, proxy: &Proxy, m: &str) -> (usize, usize) {
    let window = Behaviour {
        deleted_bucket_names: Some(Window::For(Duration::from_secs(3600))),
        ..Behaviour::default()
    };
    proxy.set(window);
    via(proxy, &["-f", m, "up"]).expect(0);
    via(proxy, &["-f", m, "down"]).expect(0);
    let held = everything(moto).await;
    assert_eq!(
        held,
        BUCKETS.map(|b| format!("bucket {b}")),
        "`down` keeps the buckets only"
    );
    moto.clear_requests();
    let from = proxy.calls();
    via(proxy, &["-f", m, "up"]).expect(0);
    let up = proxy.calls() - from;
    let writes = mutating(&moto.requests());
    assert!(
        !writes
            .iter()
            .any(|w| BUCKETS.map(|b| format!("PUT /{b}/")).contains(w)),
        "{writes:?}"
    );
    assert_eq!(proxy.altered(), Vec::<String>::new());
    assert_converged(moto, m, "up after down").await;

    let from = proxy.calls();
    via(proxy, &["-f", m, "down", "--delete-buckets"]).expect(0);
    let down = proxy.calls() - from;
    assert_empty(moto, m, "down --delete-buckets").await;
    let refused = via(proxy, &["-f", m, "up"]);
    assert_eq!(
        proxy.altered(),
        [
            "CreateBucket: OperationAborted",
            "CreateBucket: OperationAborted"
        ]
    );
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    // The root causes come last on stderr, one paragraph each with its hint; stdout has
    // the report's data only.
    let (_, causes) = refused
        .stderr
        .split_once("error: `up` failed: 2 of ")
        .unwrap_or_else(|| panic!("no summary of the failure last: {}", refused.stderr));
    assert_eq!(
        causes.matches("creating s3 bucket `").count(),
        2,
        "{causes}"
    );
    assert!(
        causes
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("hint: "),
        "{causes}"
    );
    assert!(!refused.stdout.contains("error"), "{}", refused.stdout);
    for b in BUCKETS {
        let line = format!("bucket `{b}` was deleted recently");
        assert!(refused.stderr.contains(&line), "{}", refused.stderr);
    }
    assert!(
        refused.stderr.contains("48-72 hours")
            && refused
                .stderr
                .lines()
                .any(|l| l.trim_start().starts_with("hint: ") && l.contains("--delete-buckets")),
        "{}",
        refused.stderr
    );
    let held = everything(moto).await;
    assert!(
        !held.iter().any(|h| h.starts_with("bucket ")) && held.iter().any(|h| h.starts_with("lb ")),
        "what does not need the buckets is created: {held:#?}"
    );

    // The window closes: the same `up` converges.
    proxy.set(Behaviour::default());
    via(proxy, &["-f", m, "up"]).expect(0);
    assert_converged(moto, m, "up once the name is free").await;
    (up, down)
}

/// Runs `args` through `proxy` and kills it (SIGKILL: no cleanup of any kind) once the
/// proxy has received `after` of its requests (a point in the run whatever the
/// machine's speed; calls then in flight still reach moto, as they would AWS); whether
/// it had finished before.
fn killed(proxy: &Proxy, args: &[&str], after: usize) -> bool {
    let from = proxy.calls();
    let mut child = deployer_command(args)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.calls() - from < after {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        assert!(Instant::now() < deadline, "`{}` hangs", args.join(" "));
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// `down` and `up` killed at seeded random points (uniform over the requests of a whole
/// run), alternately, 10 times in all; each rerun converges: nothing left after
/// `down`; after `up` nothing twice and an empty plan.
async fn killed_and_rerun(moto: &Moto, proxy: &Proxy, m: &str, up: usize, down: usize) {
    let mut rng = Rng::new(12);
    let mut finished = 0;
    for trial in 0..10 {
        let (args, whole): (&[&str], usize) = if trial % 2 == 0 {
            (&["-f", m, "down", "--delete-buckets"], down)
        } else {
            (&["-f", m, "up"], up)
        };
        let at = 1 + rng.below(whole as u64) as usize;
        finished += usize::from(killed(proxy, args, at));
        let what = format!(
            "trial {trial}: `{}` killed at request {at} of {whole}",
            args[2]
        );
        let rerun = via(proxy, args);
        assert_eq!(rerun.code, Some(0), "{what}: {}", rerun.stderr);
        if trial % 2 == 0 {
            assert_empty(moto, m, &what).await;
        } else {
            assert_converged(moto, m, &what).await;
        }
    }
    eprintln!("whole up {up:?}, down {down:?}; {finished} of 10 runs finished before the kill");
    assert!(finished < 4, "most kills must land mid-run");
}

/// One emulator for both (its first calls load moto's services, seconds of CPU): the
/// deleted-bucket window, whose runs also measure a whole `up` and `down`, then the
/// kills.
#[tokio::test(flavor = "multi_thread")]
async fn deleted_bucket_names_and_kills_at_random_points() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    let m = manifest();
    let (up, down) = deleted_bucket_names(&moto, &proxy, &m).await;
    killed_and_rerun(&moto, &proxy, &m, up, down).await;
}
