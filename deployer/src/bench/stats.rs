//! What a run comes to per target: latency percentiles, throughput, cold starts, errors,
//! scale, resource use, and what a million requests cost on each side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::load::Record;

/// Latency percentiles and extremes, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted `v`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    pub fn of(values: &[f64]) -> Latency {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_by(f64::total_cmp);
        Latency {
            min: v[0],
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: percentile(&v, 50.0),
            p90: percentile(&v, 90.0),
            p95: percentile(&v, 95.0),
            p99: percentile(&v, 99.0),
            p999: percentile(&v, 99.9),
            max: v[v.len() - 1],
        }
    }
}

/// Cold starts: requests that were their process's first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cold {
    pub count: usize,
    pub share: f64,
    pub cold_mean_ms: Option<f64>,
    pub warm_mean_ms: Option<f64>,
    /// Init Duration from the REPORT lines of the run (serverless only).
    pub init_ms: Option<Latency>,
}

/// Resource use, idle (before the load) and busy (during it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    pub idle_cpu_pct: Option<f64>,
    pub busy_cpu_pct: Option<f64>,
    pub idle_rss_mb: Option<f64>,
    pub busy_rss_mb: Option<f64>,
    /// Largest number of instances (serverful) or environments (serverless) seen.
    pub max_units: Option<u64>,
    /// Max Memory Used over the run's REPORT lines (serverless).
    pub max_memory_used_mb: Option<f64>,
    /// Mean billed duration of the run's REPORT lines (serverless).
    pub billed_ms_mean: Option<f64>,
    /// From CloudWatch over the run (on AWS): the ECS service's average CPU and memory
    /// utilisation (%), the group's most in-service instances, the function's most
    /// concurrent executions.
    pub cloudwatch: BTreeMap<String, f64>,
}

/// Dollars per million requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cost {
    pub usd_per_million: Option<f64>,
    pub how: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub target: String,
    pub requests: usize,
    pub ok: usize,
    pub success_rate: f64,
    /// Successful requests per second of the run's wall time.
    pub throughput_rps: f64,
    pub seconds: f64,
    pub latency_ms: Latency,
    /// The server's share of the latency (the rest: network, gateway, queueing).
    pub server_share: Option<f64>,
    pub cold: Cold,
    pub status_codes: BTreeMap<String, usize>,
    pub errors: BTreeMap<String, usize>,
    /// How late the generator sent requests (open loop): p99 and max, ms.
    pub send_lateness_ms: Option<(f64, f64)>,
    pub resources: Resources,
    pub cost: Cost,
    /// The models that answered (one, unless the target changed during the run).
    #[serde(default)]
    pub models: Vec<String>,
}

/// The first intended send time and the last answer of `records`, seconds since the
/// run started (`(inf, 0)` for none).
pub fn span<'a>(records: impl IntoIterator<Item = &'a Record>) -> (f64, f64) {
    records
        .into_iter()
        .fold((f64::INFINITY, 0.0f64), |(start, end), r| {
            (
                start.min(r.intended_s),
                end.max(r.intended_s + r.latency_ms / 1e3),
            )
        })
}

pub fn summarize(target: &str, records: &[Record], open_loop: bool) -> Summary {
    let mine: Vec<&Record> = records.iter().filter(|r| r.target == target).collect();
    let ok: Vec<&Record> = mine.iter().copied().filter(|r| r.status == 200).collect();
    let (first, last) = span(mine.iter().copied());
    let seconds = if mine.is_empty() {
        0.0
    } else {
        (last - first).max(1e-3)
    };
    let latencies: Vec<f64> = ok.iter().map(|r| r.latency_ms).collect();
    let (status_codes, errors) = outcomes(&mine);
    Summary {
        target: target.to_string(),
        requests: mine.len(),
        ok: ok.len(),
        success_rate: if mine.is_empty() {
            0.0
        } else {
            ok.len() as f64 / mine.len() as f64
        },
        throughput_rps: if seconds > 0.0 {
            ok.len() as f64 / seconds
        } else {
            0.0
        },
        seconds,
        latency_ms: Latency::of(&latencies),
        server_share: server_share(&ok),
        cold: Cold::of(&ok),
        status_codes,
        errors,
        send_lateness_ms: open_loop.then(|| lateness(&mine)),
        resources: Resources::default(),
        cost: Cost::default(),
        models: ok
            .iter()
            .filter_map(|r| r.model.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    }
}

/// How much of the latency of the answers that carry the server's timing was the
/// server's.
fn server_share(ok: &[&Record]) -> Option<f64> {
    let served: f64 = ok.iter().filter_map(|r| r.server_ms).sum();
    let total: f64 = ok
        .iter()
        .filter(|r| r.server_ms.is_some())
        .map(|r| r.latency_ms)
        .sum();
    (total > 0.0).then(|| served / total)
}

impl Cold {
    /// The cold starts among the successful requests `ok`.
    fn of(ok: &[&Record]) -> Cold {
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let cold: Vec<&&Record> = ok.iter().filter(|r| r.cold).collect();
        Cold {
            count: cold.len(),
            share: if ok.is_empty() {
                0.0
            } else {
                cold.len() as f64 / ok.len() as f64
            },
            cold_mean_ms: mean(cold.iter().map(|r| r.latency_ms).collect()),
            warm_mean_ms: mean(
                ok.iter()
                    .filter(|r| !r.cold)
                    .map(|r| r.latency_ms)
                    .collect(),
            ),
            init_ms: None,
        }
    }
}

/// How many requests got each status (`none` without an answer), and each error.
fn outcomes(mine: &[&Record]) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut status_codes = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for r in mine {
        let code = if r.status == 0 {
            "none".to_string()
        } else {
            r.status.to_string()
        };
        *status_codes.entry(code).or_insert(0) += 1;
        if let Some(e) = &r.error {
            *errors.entry(e.clone()).or_insert(0) += 1;
        }
    }
    (status_codes, errors)
}

/// The p99 and the maximum of how late the generator sent each request, ms.
fn lateness(mine: &[&Record]) -> (f64, f64) {
    let mut late: Vec<f64> = mine
        .iter()
        .map(|r| ((r.sent_s - r.intended_s) * 1e3).max(0.0))
        .collect();
    late.sort_by(f64::total_cmp);
    (percentile(&late, 99.0), late.last().copied().unwrap_or(0.0))
}

pub use crate::manifest::Prices;

/// Serverless: billed time × memory plus the per-request prices.
pub fn serverless_cost(p: &Prices, billed_ms: f64, memory_mb: f64) -> Cost {
    let per_request = billed_ms / 1e3 * memory_mb / 1024.0 * p.lambda_gb_second
        + (p.lambda_per_million + p.http_api_per_million) / 1e6;
    Cost {
        usd_per_million: Some(per_request * 1e6),
        how: format!(
            "{billed_ms:.0} ms billed × {memory_mb:.0} MB at ${}/GB-s + ${}/M requests + ${}/M HTTP API requests",
            p.lambda_gb_second, p.lambda_per_million, p.http_api_per_million
        ),
    }
}

/// Serverful: instance-hours and the load balancer at the measured throughput, with
/// the instances kept busy (the cheapest it gets).
pub fn serverful_cost(p: &Prices, instances: f64, throughput_rps: f64) -> Cost {
    if throughput_rps <= 0.0 {
        return Cost {
            usd_per_million: None,
            how: "no throughput measured".into(),
        };
    }
    let hourly = instances * p.instance_hour + p.alb_hour + p.alb_lcu_hour;
    Cost {
        usd_per_million: Some(hourly / (throughput_rps * 3600.0) * 1e6),
        how: format!(
            "{instances:.0} instance(s) at ${}/h + ALB ${}/h + 1 LCU ${}/h, fully used at {throughput_rps:.2} requests/s",
            p.instance_hour, p.alb_hour, p.alb_lcu_hour
        ),
    }
}

/// The steady request rate (per second) at which `min_instances` always-on instances
/// cost as much as serverless at `serverless_per_million`.
pub fn break_even_rps(p: &Prices, min_instances: f64, serverless_per_million: f64) -> Option<f64> {
    let hourly = min_instances * p.instance_hour + p.alb_hour + p.alb_lcu_hour;
    (serverless_per_million > 0.0).then(|| hourly / (serverless_per_million / 1e6) / 3600.0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A request as the generator records it (the report's tests too).
    pub(in crate::bench) fn record(target: &str, latency: f64, status: u16, seq: u64) -> Record {
        Record {
            target: target.into(),
            phase: 0,
            id: 0,
            photo: "bus.jpg".into(),
            intended_s: 0.0,
            sent_s: 0.0,
            latency_ms: latency,
            status,
            bytes: 10,
            server_ms: Some(latency / 2.0),
            stages: None,
            instance: Some("i".into()),
            seq: Some(seq),
            cold: seq == 1,
            error: (status != 200).then(|| "boom".into()),
            model: Some("yolo11n-rect".into()),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 99.9), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let l = Latency::of(&[3.0, 1.0, 2.0]);
        assert_eq!((l.min, l.p50, l.max, l.mean), (1.0, 2.0, 3.0, 2.0));
    }

    #[test]
    fn summaries_separate_cold_warm_and_errors() {
        let records = vec![
            record("serverless", 1000.0, 200, 1),
            record("serverless", 100.0, 200, 2),
            record("serverless", 120.0, 200, 3),
            record("serverless", 5.0, 500, 0),
            record("serverful", 80.0, 200, 7),
        ];
        let s = summarize("serverless", &records, false);
        assert_eq!((s.requests, s.ok), (4, 3));
        assert_eq!(s.cold.count, 1);
        assert_eq!(s.cold.cold_mean_ms, Some(1000.0));
        assert_eq!(s.cold.warm_mean_ms, Some(110.0));
        assert_eq!(s.status_codes["500"], 1);
        assert_eq!(s.errors["boom"], 1);
        assert_eq!(s.server_share, Some(0.5));
        assert!(s.send_lateness_ms.is_none());
    }

    #[test]
    fn costs_follow_the_price_table() {
        let p = Prices::default();
        // 1 s at 1024 MB = 1 GB-s.
        let c = serverless_cost(&p, 1000.0, 1024.0);
        let expected = (0.000_016_666_7 + 1.2 / 1e6) * 1e6;
        assert!((c.usd_per_million.unwrap() - expected).abs() < 1e-9);
        let f = serverful_cost(&p, 1.0, 10.0);
        let hourly = 0.1504 + 0.0225 + 0.008;
        assert!((f.usd_per_million.unwrap() - hourly / 36_000.0 * 1e6).abs() < 1e-9);
        // At the break-even rate an hour of each costs the same.
        let r = break_even_rps(&p, 1.0, c.usd_per_million.unwrap()).unwrap();
        assert!((r * 3600.0 * c.usd_per_million.unwrap() / 1e6 - hourly).abs() < 1e-9);
    }
}
