//! Prometheus metrics: requests by route and status, a latency histogram, the in-flight
//! gauge, per-stage histograms, and the process's CPU time and resident memory.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::detector::Timings;

/// Upper bounds of the histogram buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (c, le) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *c += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (c, le) in self.counts.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    stages: BTreeMap<&'static str, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    in_flight: AtomicI64,
}

impl Metrics {
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_finished(&self, route: &str, status: u16, seconds: f64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((route.to_string(), status)).or_default() += 1;
        m.latency
            .entry(route.to_string())
            .or_default()
            .observe(seconds);
    }

    pub fn stages(&self, t: &Timings) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (stage, ms) in t.stages() {
            if let Some(ms) = ms {
                m.stages.entry(stage).or_default().observe(ms / 1e3);
            }
        }
    }

    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP predictor_requests_total Requests served, by route and status.\n");
        out.push_str("# TYPE predictor_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "predictor_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP predictor_request_duration_seconds Request latency, by route.\n");
        out.push_str("# TYPE predictor_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            h.render(
                &mut out,
                "predictor_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP predictor_stage_duration_seconds Time per pipeline stage.\n");
        out.push_str("# TYPE predictor_stage_duration_seconds histogram\n");
        for (stage, h) in &m.stages {
            h.render(
                &mut out,
                "predictor_stage_duration_seconds",
                &format!("stage=\"{stage}\""),
            );
        }
        out.push_str("# HELP predictor_in_flight_requests Requests being served.\n");
        out.push_str("# TYPE predictor_in_flight_requests gauge\n");
        let _ = writeln!(
            out,
            "predictor_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let (cpu, rss) = process_usage();
        out.push_str("# HELP process_cpu_seconds_total User and system CPU time of the process.\n");
        out.push_str("# TYPE process_cpu_seconds_total counter\n");
        let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
        out.push_str("# HELP process_resident_memory_bytes Resident memory of the process.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        out
    }
}

/// CPU seconds and resident bytes from /proc (Linux: ECS and Lambda both are).
pub fn process_usage() -> (f64, u64) {
    // Clock ticks are 100 Hz on every Linux these targets run.
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096);
    (cpu, rss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.request_started();
        m.request_finished("/predict", 200, 0.07);
        m.request_started();
        m.request_finished("/predict", 503, 0.001);
        let text = m.render();
        assert!(
            text.contains("predictor_requests_total{route=\"/predict\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "predictor_request_duration_seconds_bucket{route=\"/predict\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "predictor_request_duration_seconds_bucket{route=\"/predict\",le=\"0.075\"} 2"
        ));
        assert!(text.contains("predictor_in_flight_requests 0"));
        assert!(process_usage().1 > 0);
    }
}
