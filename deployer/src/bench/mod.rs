//! `deployer bench`: the serverless-versus-serverful experiment as one command. The same
//! schedule of requests (the studies' batches, `ab`, an open-loop rate, a concurrency
//! sweep, or forced cold starts) runs against each target, one after the other so they
//! do not share this machine's CPU; every request is recorded, summarised per target
//! (latency, throughput, cold starts, errors, resources, cost) and drawn as SVG charts in
//! a self-contained `report.html`.

pub mod charts;
pub mod load;
mod report;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::aws::{Aws, error};
use crate::error::Error;
use crate::local;
use crate::manifest::Manifest;
use crate::output::Format;
use load::{Photo, Record, Shooter};
use stats::{Prices, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// B batches of C concurrent requests with a pause between (the first study: 4 × 9).
    Study,
    /// N requests at concurrency C (the second study: `ab -n 10 -c 2`).
    Ab,
    /// An open loop at R requests/s for a duration (latency from the intended send time).
    Rate,
    /// Concurrency 1, 2, 4, … up to C, a step each.
    Sweep,
    /// Fresh environments and instances, then the first requests against warm ones.
    Cold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// `{"image": "<key>"}`: the photo is read from the input bucket (uploaded first).
    Key,
    /// The photo itself as the request body.
    Body,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[arg(long, value_enum, default_value_t = Protocol::Study)]
    pub protocol: Protocol,
    /// Which targets, in order.
    #[arg(long, value_delimiter = ',', default_values = ["serverful", "serverless"])]
    pub targets: Vec<String>,
    /// Photos to send [default: the repository's test photographs].
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Where the CSV, JSON, charts and report go [default: bench-results/<stack>-<protocol>-<time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Load both targets at once (they then share this machine's CPU when local).
    #[arg(long)]
    pub parallel: bool,
    #[arg(long, value_enum, default_value_t = By::Key)]
    pub by: By,
    /// study: batches.
    #[arg(long, default_value_t = 4)]
    pub batches: u32,
    /// study: requests per batch [9]; ab: workers [2]; sweep: the highest step [8].
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// study: seconds between batches.
    #[arg(long, default_value_t = 5.0)]
    pub pause_s: f64,
    /// ab: requests [10]; sweep: requests per step [20]; cold: warm requests after the
    /// cold one [5].
    #[arg(long)]
    pub requests: Option<u32>,
    /// rate: requests per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// rate: seconds of load.
    #[arg(long, default_value_t = 30.0)]
    pub duration_s: f64,
    /// rate: requests outstanding at most; beyond, sends wait and the wait is reported
    /// as generator lateness [default: rate × timeout, at most 1000].
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Seconds before a request counts as failed.
    #[arg(long, default_value_t = 60.0)]
    pub timeout_s: f64,
    /// A target's URL instead of the stack's (`serverful=http://…/predict`).
    #[arg(long, value_name = "TARGET=URL")]
    pub url: Vec<String>,
    /// Fail (exit 1) when a target's p99 latency is above this.
    #[arg(long)]
    pub max_p99_ms: Option<f64>,
    /// Fail when a target's error rate (0..1) is above this.
    #[arg(long)]
    pub max_error_rate: Option<f64>,
    /// Fail when a target's throughput is below this.
    #[arg(long)]
    pub min_rps: Option<f64>,
    /// A previous run's `summary.json`, shown beside this one.
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,
}

/// A sample of the local runtime's state during a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    pub instances: u64,
    pub healthy: u64,
    pub environments: u64,
    pub instance_cpu_pct: f64,
    pub instance_rss_mb: f64,
    pub environment_rss_mb: f64,
}

/// An event on the timeline (`events.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub t_s: f64,
    pub target: String,
    pub what: String,
}

/// Everything a run produced (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub stack: String,
    pub protocol: Protocol,
    pub started_unix_ms: i64,
    pub summaries: Vec<Summary>,
    /// The steady rate above which the serverful side (at its minimum) is cheaper.
    pub break_even_rps: Option<f64>,
    pub prices: Prices,
    pub broken: Vec<String>,
}

pub async fn run(aws: &Aws, m: &Manifest, o: &Options, format: Format) -> Result<u8, Error> {
    let targets = resolve(aws, m, o).await?;
    let photos = Arc::new(photos(aws, m, o).await?);
    let started_unix_ms = local::logs::now_ms();
    let out = out_dir(m, o, started_unix_ms)?;
    let measured = measure(aws, m, o, &targets, photos).await?;
    let run = conclude(aws, m, o, &targets, &measured, started_unix_ms).await;
    let Measured {
        records, samples, ..
    } = &measured;
    let events = events(records, samples, m, started_unix_ms);
    let compare = previous(o)?;
    report::write(&out, &run, records, &events, samples, compare.as_ref(), o)
        .map_err(|e| usage(format!("writing the report into `{}`: {e}", out.display())))?;
    match format {
        Format::Text => print!("{}", report::table(&run, compare.as_ref())),
        Format::Json => println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default()),
    }
    eprintln!("bench: report in {}", out.join("report.html").display());
    for b in &run.broken {
        eprintln!("error: threshold broken: {b}");
    }
    Ok(if run.broken.is_empty() { 0 } else { 1 })
}

/// What the load left: every request, the window each target was under load and,
/// locally, the runtime's timeline and its idle figures.
struct Measured {
    records: Vec<Record>,
    windows: BTreeMap<String, (f64, f64)>,
    samples: Vec<Sample>,
    idle: Option<Sample>,
}

/// Runs the schedule against every target, sampling the local runtime meanwhile.
async fn measure(
    aws: &Aws,
    m: &Manifest,
    o: &Options,
    targets: &[(String, String)],
    photos: Arc<Vec<Photo>>,
) -> Result<Measured, Error> {
    let is_local = local::applies(m) && local::state(m).is_some();
    let started = Instant::now();
    let sampler = is_local.then(|| Sampler::start(m, started));
    // One second of quiet before the load: the idle figures.
    let idle = sampler
        .as_ref()
        .and_then(|_| local::state(m))
        .map(|s| sample(&s, 0.0));
    if sampler.is_some() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    if o.protocol == Protocol::Cold {
        force_cold(aws, m, targets, is_local).await?;
    }
    let timeout = Duration::from_secs_f64(o.timeout_s.max(0.1));
    let shooters: Vec<Shooter> = targets
        .iter()
        .map(|(name, url)| Shooter::new(name, url, photos.clone(), timeout, started))
        .collect();
    let (records, windows) = load(&shooters, o, sampler.is_some()).await;
    let samples = match sampler {
        Some(s) => s.stop().await,
        None => Vec::new(),
    };
    Ok(Measured {
        records,
        windows,
        samples,
        idle,
    })
}

/// The run's figures per target: latency and the rest from the records, resources
/// from the samples, billing from the REPORT lines, then cost, CloudWatch's view and
/// the thresholds broken.
async fn conclude(
    aws: &Aws,
    m: &Manifest,
    o: &Options,
    targets: &[(String, String)],
    measured: &Measured,
    started_unix_ms: i64,
) -> Run {
    let reports = if targets.iter().any(|(t, _)| t == "serverless") {
        report_lines(aws, m, started_unix_ms).await
    } else {
        Vec::new()
    };
    let mut summaries: Vec<Summary> = targets
        .iter()
        .map(|(t, _)| {
            let mut s = stats::summarize(t, &measured.records, o.protocol == Protocol::Rate);
            resources(
                &mut s,
                &measured.samples,
                measured.idle.as_ref(),
                measured.windows.get(t),
            );
            s
        })
        .collect();
    let break_even_rps = price(&mut summaries, &reports, m);
    let metrics = cloudwatch(aws, m, started_unix_ms).await;
    for s in &mut summaries {
        s.resources.cloudwatch = metrics
            .iter()
            .filter(|(k, _)| k.starts_with(&s.target))
            .map(|(k, v)| (k[s.target.len() + 1..].to_string(), *v))
            .collect();
    }
    Run {
        stack: m.name.clone(),
        protocol: o.protocol,
        started_unix_ms,
        broken: thresholds(&summaries, o),
        summaries,
        break_even_rps,
        prices: m.bench.prices,
    }
}

fn usage(message: String) -> Error {
    Error::Usage {
        message,
        hint: None,
    }
}

/// `--out`, else `bench-results/<stack>-<protocol>-<time>`, created.
fn out_dir(m: &Manifest, o: &Options, started_unix_ms: i64) -> Result<PathBuf, Error> {
    let out = o.out.clone().unwrap_or_else(|| {
        let protocol = format!("{:?}", o.protocol).to_lowercase();
        PathBuf::from(format!(
            "bench-results/{}-{protocol}-{}",
            m.name,
            started_unix_ms / 1000
        ))
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| usage(format!("creating `{}`: {e}", out.display())))?;
    Ok(out)
}

/// The `--compare` run's summary, when one is asked for.
fn previous(o: &Options) -> Result<Option<Run>, Error> {
    let Some(f) = &o.compare else {
        return Ok(None);
    };
    std::fs::read_to_string(f)
        .ok()
        .and_then(|t| serde_json::from_str::<Run>(&t).ok())
        .map(Some)
        .ok_or_else(|| usage(format!("`{}` is not a bench summary.json", f.display())))
}

/// The local runtime's timeline (instances, environments, CPU, memory), sampled every
/// half second until stopped.
struct Sampler {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(m: &Manifest, started: Instant) -> Sampler {
        let stack = m.clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let done = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                if let Some(s) = local::state(&stack) {
                    samples.push(sample(&s, started.elapsed().as_secs_f64()));
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    () = done.notified() => break,
                }
            }
            samples
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> Vec<Sample> {
        self.stop.notify_one();
        self.task.await.unwrap_or_default()
    }
}

/// Every target's records, and the window each was under load. `settle`: pause
/// between targets, so the first side's processes go quiet before the second runs.
async fn load(
    shooters: &[Shooter],
    o: &Options,
    settle: bool,
) -> (Vec<Record>, BTreeMap<String, (f64, f64)>) {
    let mut records: Vec<Record> = Vec::new();
    let mut windows: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    if o.parallel {
        let runs = shooters.iter().map(|s| drive(s, o));
        for (s, r) in shooters.iter().zip(futures::future::join_all(runs).await) {
            windows.insert(s.target.clone(), stats::span(&r));
            records.extend(r);
        }
    } else {
        for (i, s) in shooters.iter().enumerate() {
            if i > 0 && settle {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            eprintln!("bench: {:?} against {} ({})", o.protocol, s.target, s.url);
            let r = drive(s, o).await;
            windows.insert(s.target.clone(), stats::span(&r));
            records.extend(r);
        }
    }
    (records, windows)
}

/// Each target's cost, and the steady rate at which the serverful side at its minimum
/// costs as much as the serverless one.
fn price(summaries: &mut [Summary], reports: &[Report], m: &Manifest) -> Option<f64> {
    let prices = m.bench.prices;
    let mut serverless_per_million = None;
    for s in summaries {
        if s.target == "serverless" {
            let billed: Vec<f64> = reports.iter().map(|r| r.billed_ms).collect();
            let init: Vec<f64> = reports.iter().filter_map(|r| r.init_ms).collect();
            if !init.is_empty() {
                s.cold.init_ms = Some(stats::Latency::of(&init));
            }
            s.resources.max_memory_used_mb =
                reports.iter().map(|r| r.max_memory_mb).reduce(f64::max);
            let billed_mean =
                (!billed.is_empty()).then(|| billed.iter().sum::<f64>() / billed.len() as f64);
            s.resources.billed_ms_mean = billed_mean;
            // Without REPORT lines (another endpoint), the client's latency bounds it.
            let billed_ms = billed_mean.unwrap_or(s.latency_ms.mean);
            s.cost = stats::serverless_cost(&prices, billed_ms, f64::from(m.serverless.memory_mb));
            serverless_per_million = s.cost.usd_per_million;
        } else {
            let instances = s
                .resources
                .max_units
                .unwrap_or(u64::from(m.serverful.min))
                .max(1) as f64;
            s.cost = stats::serverful_cost(&prices, instances, s.throughput_rps);
        }
    }
    serverless_per_million
        .and_then(|c| stats::break_even_rps(&prices, f64::from(m.serverful.min.max(1)), c))
}

/// The run's schedule against one target.
async fn drive(s: &Shooter, o: &Options) -> Vec<Record> {
    match o.protocol {
        Protocol::Study => {
            s.batches(
                o.batches,
                o.concurrency.unwrap_or(9),
                Duration::from_secs_f64(o.pause_s.max(0.0)),
            )
            .await
        }
        Protocol::Ab => {
            s.closed(0, o.requests.unwrap_or(10), o.concurrency.unwrap_or(2))
                .await
        }
        Protocol::Rate => {
            let in_flight = o
                .max_in_flight
                .unwrap_or((o.rate * o.timeout_s).ceil() as usize)
                .clamp(1, 1000);
            s.rate(
                o.rate.max(0.01),
                Duration::from_secs_f64(o.duration_s.max(0.0)),
                in_flight,
            )
            .await
        }
        Protocol::Sweep => {
            let max = o.concurrency.unwrap_or(8).max(1);
            let mut out = Vec::new();
            let (mut c, mut step) = (1, 0);
            while c <= max {
                out.extend(s.closed(step, o.requests.unwrap_or(20), c).await);
                c *= 2;
                step += 1;
            }
            out
        }
        Protocol::Cold => {
            let mut out = s.closed(0, 1, 1).await;
            out.extend(s.closed(1, o.requests.unwrap_or(5), 1).await);
            out
        }
    }
}

/// Each target's URL: `--url`, else the local runtime's, else the stack's on AWS.
async fn resolve(aws: &Aws, m: &Manifest, o: &Options) -> Result<Vec<(String, String)>, Error> {
    let overrides: BTreeMap<&str, &str> = o.url.iter().filter_map(|u| u.split_once('=')).collect();
    let mut out = Vec::new();
    let mut endpoints = None;
    for t in &o.targets {
        if t != "serverful" && t != "serverless" {
            return Err(Error::Usage {
                message: format!("`{t}` is not a target"),
                hint: Some("targets are `serverful` and `serverless`".into()),
            });
        }
        if let Some(url) = overrides.get(t.as_str()) {
            out.push((t.clone(), url.to_string()));
            continue;
        }
        if endpoints.is_none() {
            endpoints = Some(crate::endpoints::live_endpoints(aws, m).await?);
        }
        let url = endpoints
            .iter()
            .flatten()
            .find(|e| e.target == t)
            .map(|e| e.url.clone())
            .ok_or_else(|| Error::Usage {
                message: format!("stack `{}` has no {t} endpoint", m.name),
                hint: Some("`deployer up` creates it, or pass `--url`".into()),
            })?;
        out.push((t.clone(), url));
    }
    Ok(out)
}

/// The photos, and (by key) their upload to the input bucket, skipped for a photo
/// already there with the same content.
async fn photos(aws: &Aws, m: &Manifest, o: &Options) -> Result<Vec<Photo>, Error> {
    let dir = match &o.images {
        Some(d) => d.clone(),
        None => crate::image::source_root(&std::env::current_dir().unwrap_or_default())
            .map(|r| r.join("predictor/tests/images"))
            .ok_or_else(|| Error::Usage {
                message: "no photos given and the repository's test photographs are not here"
                    .into(),
                hint: Some("pass `--images DIR`".into()),
            })?,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| usage(format!("reading `{}`: {e}", dir.display())))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                ["jpg", "jpeg", "png", "webp"].contains(&x.to_ascii_lowercase().as_str())
            })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(usage(format!(
            "no JPEG, PNG or WebP photos in `{}`",
            dir.display()
        )));
    }
    let bucket = m.names().input_bucket;
    let mut out = Vec::new();
    for f in files {
        let bytes =
            std::fs::read(&f).map_err(|e| usage(format!("reading `{}`: {e}", f.display())))?;
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match o.by {
            By::Body => {
                for t in &o.targets {
                    crate::predict::check_body(m, t, &name, bytes.len() as u64)?;
                }
                out.push(Photo::Body {
                    name,
                    bytes: Arc::new(bytes),
                })
            }
            By::Key => {
                let key = format!("bench/{name}");
                upload(aws, &bucket, &key, bytes).await?;
                out.push(Photo::Key(key));
            }
        }
    }
    Ok(out)
}

/// Puts `bytes` at `key` unless the same content (by sha256) is there already.
pub async fn upload(aws: &Aws, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
    let sum = hex::encode(sha2::Sha256::digest(&bytes));
    let there = aws.s3.head_object().bucket(bucket).key(key).send().await;
    if there
        .as_ref()
        .ok()
        .and_then(|h| h.metadata())
        .and_then(|meta| meta.get("sha256"))
        .is_some_and(|s| *s == sum)
    {
        return Ok(());
    }
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .metadata("sha256", sum)
        .body(bytes.into())
        .send()
        .await
        .map_err(error("s3:PutObject"))?;
    Ok(())
}

fn sample(s: &serde_json::Value, t_s: f64) -> Sample {
    let instances: Vec<&serde_json::Value> = s["serverful"]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let envs: Vec<&serde_json::Value> = s["serverless"]["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let active: Vec<&&serde_json::Value> = instances
        .iter()
        .filter(|i| i["state"] != "draining")
        .collect();
    Sample {
        t_s,
        instances: active.len() as u64,
        healthy: instances.iter().filter(|i| i["state"] == "healthy").count() as u64,
        environments: envs.len() as u64,
        instance_cpu_pct: if active.is_empty() {
            0.0
        } else {
            active.iter().map(|i| num(&i["cpu_pct"])).sum::<f64>() / active.len() as f64
        },
        // `+ 0.0`: an empty f64 sum is -0.0.
        instance_rss_mb: instances.iter().map(|i| num(&i["rss_mb"])).sum::<f64>() + 0.0,
        environment_rss_mb: envs.iter().map(|e| num(&e["rss_mb"])).sum::<f64>() + 0.0,
    }
}

/// Idle (before the load) and busy (during this target's window) resource figures.
fn resources(
    s: &mut Summary,
    samples: &[Sample],
    idle: Option<&Sample>,
    window: Option<&(f64, f64)>,
) {
    let serverful = s.target == "serverful";
    let units = |x: &Sample| {
        if serverful {
            x.instances
        } else {
            x.environments
        }
    };
    let rss = |x: &Sample| {
        if serverful {
            x.instance_rss_mb
        } else {
            x.environment_rss_mb
        }
    };
    let busy: Vec<&Sample> = samples
        .iter()
        .filter(|x| window.is_some_and(|(a, b)| x.t_s >= *a && x.t_s <= *b))
        .collect();
    if let Some(i) = idle {
        s.resources.idle_rss_mb = Some(rss(i));
        s.resources.idle_cpu_pct = serverful.then_some(i.instance_cpu_pct);
    }
    if !busy.is_empty() {
        s.resources.busy_rss_mb = busy.iter().map(|x| rss(x)).reduce(f64::max);
        if serverful {
            s.resources.busy_cpu_pct =
                Some(busy.iter().map(|x| x.instance_cpu_pct).sum::<f64>() / busy.len() as f64);
        }
        s.resources.max_units = busy.iter().map(|x| units(x)).max();
    }
    if s.resources.max_units.is_none() && !samples.is_empty() {
        s.resources.max_units = samples.iter().map(units).max();
    }
}

/// What the REPORT lines of one invocation say.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub duration_ms: f64,
    pub billed_ms: f64,
    pub max_memory_mb: f64,
    pub init_ms: Option<f64>,
}

/// Parses a Lambda `REPORT` line.
pub fn parse_report(line: &str) -> Option<Report> {
    let field = |name: &str| -> Option<f64> {
        let rest = line.split(name).nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    };
    line.contains("REPORT RequestId:").then_some(())?;
    Some(Report {
        duration_ms: field("\tDuration:").or_else(|| field(" Duration:"))?,
        billed_ms: field("Billed Duration:")?,
        max_memory_mb: field("Max Memory Used:").unwrap_or(0.0),
        init_ms: field("Init Duration:"),
    })
}

/// The function's REPORT lines since `since_ms` (on AWS and locally alike).
async fn report_lines(aws: &Aws, m: &Manifest, since_ms: i64) -> Vec<Report> {
    // Lines reach the log group in batches: give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let Ok(page) = aws
            .logs
            .filter_log_events()
            .log_group_name(m.names().lambda_log_group)
            .start_time(since_ms)
            .filter_pattern("REPORT")
            .set_next_token(token)
            .send()
            .await
        else {
            break;
        };
        out.extend(
            page.events()
                .iter()
                .filter_map(|e| parse_report(e.message()?)),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    out
}

/// What CloudWatch says about the run's window, keyed `<target>.<metric>`: the ECS
/// service's CPU and memory utilisation (average), the Auto Scaling group's in-service
/// instances (needs the group's metrics collection) and the function's concurrent
/// executions (maximum). Missing metrics (locally, or not yet published) are absent.
async fn cloudwatch(aws: &Aws, m: &Manifest, since_ms: i64) -> BTreeMap<String, f64> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    let queries = metrics(m);
    let mut request = aws
        .cloudwatch
        .get_metric_data()
        .start_time(DateTime::from_millis(since_ms - 60_000))
        .end_time(DateTime::from_millis(local::logs::now_ms() + 60_000));
    for (i, q) in queries.iter().enumerate() {
        request = request.metric_data_queries(q.query(i));
    }
    let Ok(answer) = request.send().await else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for r in answer.metric_data_results() {
        let Some(q) = r
            .id()
            .and_then(|id| id.strip_prefix('m')?.parse::<usize>().ok())
            .and_then(|i| queries.get(i))
        else {
            continue;
        };
        if let Some(value) = q.reduce(r.values()) {
            out.insert(q.key.to_string(), value);
        }
    }
    out
}

/// One CloudWatch metric of the run, asked for by minute.
struct Metric {
    key: &'static str,
    namespace: &'static str,
    name: &'static str,
    stat: &'static str,
    dimensions: Vec<aws_sdk_cloudwatch::types::Dimension>,
}

/// The metrics `cloudwatch` reads: a table.
fn metrics(m: &Manifest) -> [Metric; 4] {
    use aws_sdk_cloudwatch::types::Dimension;
    let n = m.names();
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let service = || {
        vec![
            dim("ClusterName", &n.cluster),
            dim("ServiceName", &n.service),
        ]
    };
    [
        Metric {
            key: "serverful.cpu_pct",
            namespace: "AWS/ECS",
            name: "CPUUtilization",
            stat: "Average",
            dimensions: service(),
        },
        Metric {
            key: "serverful.memory_pct",
            namespace: "AWS/ECS",
            name: "MemoryUtilization",
            stat: "Average",
            dimensions: service(),
        },
        Metric {
            key: "serverful.in_service_instances",
            namespace: "AWS/AutoScaling",
            name: "GroupInServiceInstances",
            stat: "Maximum",
            dimensions: vec![dim("AutoScalingGroupName", &n.auto_scaling_group)],
        },
        Metric {
            key: "serverless.concurrent_executions",
            namespace: "AWS/Lambda",
            name: "ConcurrentExecutions",
            stat: "Maximum",
            dimensions: vec![dim("FunctionName", &n.function)],
        },
    ]
}

impl Metric {
    /// The query for this metric, identified as `m<i>`.
    fn query(&self, i: usize) -> aws_sdk_cloudwatch::types::MetricDataQuery {
        use aws_sdk_cloudwatch::types::{MetricDataQuery, MetricStat};
        MetricDataQuery::builder()
            .id(format!("m{i}"))
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        aws_sdk_cloudwatch::types::Metric::builder()
                            .namespace(self.namespace)
                            .metric_name(self.name)
                            .set_dimensions(Some(self.dimensions.clone()))
                            .build(),
                    )
                    .period(60)
                    .stat(self.stat)
                    .build(),
            )
            .build()
    }

    /// The run's value from the per-minute values: their maximum or their mean, as the
    /// statistic asked; none without values.
    fn reduce(&self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        Some(if self.stat == "Maximum" {
            values.iter().copied().fold(f64::MIN, f64::max)
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        })
    }
}

/// Retires warm capacity: locally by asking the supervisor (SIGUSR1), on AWS by a
/// configuration change of the function (a new environment variable), which Lambda
/// answers with fresh environments.
async fn force_cold(
    aws: &Aws,
    m: &Manifest,
    targets: &[(String, String)],
    is_local: bool,
) -> Result<(), Error> {
    if is_local {
        return renew_local(m, targets.iter().any(|(t, _)| t == "serverful")).await;
    }
    if targets.iter().any(|(t, _)| t == "serverless") {
        retire_environments(aws, m).await?;
    }
    Ok(())
}

/// Signals the local supervisor and waits (at most 180 s) until no environment is
/// left and, when `serverful` is a target, every instance is healthy and younger than
/// the signal.
async fn renew_local(m: &Manifest, serverful: bool) -> Result<(), Error> {
    let asked = Instant::now();
    let pid = local::running(m).ok_or_else(|| usage("the local runtime stopped".into()))?;
    local::process::signal(pid, libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(s) = local::state(m) else {
            continue;
        };
        let fresh_envs = s["serverless"]["environments"]
            .as_array()
            .is_none_or(|e| e.is_empty());
        let fresh_instances = !serverful || all_newer(&s, asked.elapsed().as_secs_f64());
        if fresh_envs && fresh_instances {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(usage(
                "the local runtime did not renew its capacity within 180 s".into(),
            ));
        }
    }
}

/// Whether the local runtime has instances, all healthy and up for less than `age_s`.
fn all_newer(state: &serde_json::Value, age_s: f64) -> bool {
    let instances: Vec<&serde_json::Value> = state["serverful"]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    !instances.is_empty()
        && instances
            .iter()
            .all(|i| i["state"] == "healthy" && i["up_s"].as_f64().unwrap_or(f64::MAX) < age_s)
}

/// Changes the function's configuration (a new environment variable) so Lambda
/// retires its warm environments, and waits (at most 120 s) for the update to finish.
async fn retire_environments(aws: &Aws, m: &Manifest) -> Result<(), Error> {
    let name = m.names().function;
    let config = aws
        .lambda
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .map_err(error("lambda:GetFunctionConfiguration"))?;
    let mut vars = config
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    vars.insert(
        "DEPLOYER_BENCH_COLD".into(),
        local::logs::now_ms().to_string(),
    );
    aws.lambda
        .update_function_configuration()
        .function_name(&name)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(vars))
                .build(),
        )
        .send()
        .await
        .map_err(error("lambda:UpdateFunctionConfiguration"))?;
    eprintln!(
        "bench: changed `{name}`'s configuration to retire its warm environments (the next `up` puts it back)"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let c = aws
            .lambda
            .get_function_configuration()
            .function_name(&name)
            .send()
            .await
            .map_err(error("lambda:GetFunctionConfiguration"))?;
        if c.last_update_status()
            .is_none_or(|s| s.as_str() == "Successful")
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// The timeline: cold starts from the answers, scale and environment changes from the
/// samples, the runtime's own scaling events.
fn events(
    records: &[Record],
    samples: &[Sample],
    m: &Manifest,
    started_unix_ms: i64,
) -> Vec<Event> {
    let mut out: Vec<Event> = records
        .iter()
        .filter(|r| r.cold)
        .map(|r| Event {
            t_s: r.intended_s,
            target: r.target.clone(),
            what: format!("cold start on {}", r.instance.as_deref().unwrap_or("?")),
        })
        .collect();
    out.extend(
        records
            .iter()
            .filter(|r| r.error.as_deref() == Some("TooManyRequestsException"))
            .map(|r| Event {
                t_s: r.intended_s,
                target: r.target.clone(),
                what: "throttled".into(),
            }),
    );
    out.extend(samples.windows(2).flat_map(|w| changes(&w[0], &w[1])));
    if let Some(s) = local::state(m) {
        for e in s["serverful"]["events"].as_array().into_iter().flatten() {
            let at = e["at_ms"].as_i64().unwrap_or(0);
            if at >= started_unix_ms {
                out.push(Event {
                    t_s: (at - started_unix_ms) as f64 / 1e3,
                    target: "serverful".into(),
                    what: e["what"].as_str().unwrap_or("").to_string(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    out
}

/// What changed in scale from one sample to the next.
fn changes(a: &Sample, b: &Sample) -> Vec<Event> {
    let event = |target: &str, what: String| Event {
        t_s: b.t_s,
        target: target.into(),
        what,
    };
    let mut out = Vec::new();
    if a.instances != b.instances {
        out.push(event(
            "serverful",
            format!("instances {} -> {}", a.instances, b.instances),
        ));
    }
    if a.healthy != b.healthy {
        out.push(event(
            "serverful",
            format!("healthy instances {} -> {}", a.healthy, b.healthy),
        ));
    }
    if a.environments != b.environments {
        out.push(event(
            "serverless",
            format!("environments {} -> {}", a.environments, b.environments),
        ));
    }
    out
}

/// The thresholds a run broke, each named.
fn thresholds(summaries: &[Summary], o: &Options) -> Vec<String> {
    let mut broken = Vec::new();
    for s in summaries {
        if let Some(max) = o.max_p99_ms
            && (s.ok == 0 || s.latency_ms.p99 > max)
        {
            broken.push(format!(
                "{}: p99 {:.0} ms > --max-p99-ms {max}",
                s.target, s.latency_ms.p99
            ));
        }
        if let Some(max) = o.max_error_rate
            && 1.0 - s.success_rate > max
        {
            broken.push(format!(
                "{}: error rate {:.3} > --max-error-rate {max}",
                s.target,
                1.0 - s.success_rate
            ));
        }
        if let Some(min) = o.min_rps
            && s.throughput_rps < min
        {
            broken.push(format!(
                "{}: {:.2} requests/s < --min-rps {min}",
                s.target, s.throughput_rps
            ));
        }
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse_with_and_without_init() {
        let cold = "REPORT RequestId: 3f1c\tDuration: 412.31 ms\tBilled Duration: 1420 ms\tMemory Size: 3000 MB\tMax Memory Used: 312 MB\tInit Duration: 1007.42 ms\t";
        let r = parse_report(cold).unwrap();
        assert_eq!(
            (r.duration_ms, r.billed_ms, r.max_memory_mb, r.init_ms),
            (412.31, 1420.0, 312.0, Some(1007.42))
        );
        let warm = "REPORT RequestId: 9\tDuration: 101.00 ms\tBilled Duration: 102 ms\tMemory Size: 3000 MB\tMax Memory Used: 300 MB\t";
        assert_eq!(parse_report(warm).unwrap().init_ms, None);
        assert!(parse_report("START RequestId: 9 Version: $LATEST").is_none());
    }
}
