//! A run's files: `requests.csv` (one row per request), `events.jsonl`, `samples.csv`,
//! `summary.json`, the charts (`latency.svg`, `percentiles.svg`, `sweep.svg`,
//! `sweep-p99.svg`, `units.svg`, `cpu.svg`, `memory.svg`) and `report.html`, which
//! embeds tables and charts.

use std::fmt::Write as _;
use std::path::Path;

use super::charts::{COLORS, Chart, Mark, Series};
use super::load::Record;
use super::stats::Summary;
use super::{Event, Options, Protocol, Run, Sample};

fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

pub fn write(
    dir: &Path,
    run: &Run,
    records: &[Record],
    events: &[Event],
    samples: &[Sample],
    compare: Option<&Run>,
    o: &Options,
) -> std::io::Result<()> {
    std::fs::write(dir.join("requests.csv"), requests_csv(records))?;
    std::fs::write(dir.join("events.jsonl"), events_jsonl(events))?;
    std::fs::write(dir.join("samples.csv"), samples_csv(samples))?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(run).unwrap_or_default(),
    )?;

    let charts = charts(run, records, samples, o);
    for (file, chart) in &charts {
        std::fs::write(dir.join(file), chart.svg())?;
    }
    std::fs::write(dir.join("report.html"), html(run, &charts, compare))?;
    Ok(())
}

fn requests_csv(records: &[Record]) -> String {
    let mut csv = String::from(
        "target,phase,id,photo,intended_s,sent_s,latency_ms,status,bytes,server_ms,instance,seq,cold,error,stages\n",
    );
    for r in records {
        let _ = writeln!(
            csv,
            "{},{},{},{},{:.4},{:.4},{:.2},{},{},{},{},{},{},{},{}",
            r.target,
            r.phase,
            r.id,
            field(&r.photo),
            r.intended_s,
            r.sent_s,
            r.latency_ms,
            r.status,
            r.bytes,
            r.server_ms.map_or(String::new(), |v| format!("{v:.2}")),
            field(r.instance.as_deref().unwrap_or("")),
            r.seq.map_or(String::new(), |v| v.to_string()),
            r.cold,
            field(r.error.as_deref().unwrap_or("")),
            field(r.stages.as_deref().unwrap_or(""))
        );
    }
    csv
}

fn events_jsonl(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::to_string(e).ok())
        .map(|l| l + "\n")
        .collect()
}

fn samples_csv(samples: &[Sample]) -> String {
    let mut s = String::from(
        "t_s,instances,healthy,environments,instance_cpu_pct,instance_rss_mb,environment_rss_mb\n",
    );
    for x in samples {
        let _ = writeln!(
            s,
            "{:.2},{},{},{},{:.1},{:.1},{:.1}",
            x.t_s,
            x.instances,
            x.healthy,
            x.environments,
            x.instance_cpu_pct,
            x.instance_rss_mb,
            x.environment_rss_mb
        );
    }
    s
}

/// A CSV field, quoted when it must be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn targets(run: &Run) -> Vec<String> {
    run.summaries.iter().map(|s| s.target.clone()).collect()
}

fn charts(run: &Run, records: &[Record], samples: &[Sample], o: &Options) -> Vec<(String, Chart)> {
    let names = targets(run);
    let mut out = vec![
        ("latency.svg".to_string(), latency(run, records, &names, o)),
        ("percentiles.svg".to_string(), percentiles(records, &names)),
    ];
    if o.protocol == Protocol::Sweep {
        out.extend(sweep(records, &names));
    }
    // Units, CPU and memory over time, from the sampler.
    if !samples.is_empty() {
        out.push(("units.svg".into(), units(samples)));
        out.push(("cpu.svg".into(), cpu(samples)));
        out.push(("memory.svg".into(), memory(samples)));
    }
    out
}

fn of<'a>(records: &'a [Record], target: &'a str) -> impl Iterator<Item = &'a Record> {
    records.iter().filter(move |r| r.target == target)
}

/// When a target's first request was meant to go out: its charts' time zero.
fn origin(records: &[Record], target: &str) -> f64 {
    of(records, target)
        .map(|r| r.intended_s)
        .fold(f64::INFINITY, f64::min)
}

/// Every request's latency over time: the studies' figure, with cold starts marked.
/// Each target on its own clock (time since its first request), so the same
/// schedule lines up when the targets ran one after the other.
fn latency(run: &Run, records: &[Record], names: &[String], o: &Options) -> Chart {
    let guides = match (o.protocol, names.first()) {
        (Protocol::Study, Some(first)) => batch_starts(records, first),
        _ => Vec::new(),
    };
    Chart {
        title: format!("Response time of every request ({:?})", run.protocol).to_lowercase(),
        x_label: "time since the target's first request (s), at the intended send time".into(),
        y_label: "response time (ms)".into(),
        guides,
        series: names
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mine: Vec<&Record> = of(records, t).collect();
                let zero = origin(records, t);
                Series {
                    name: t.clone(),
                    color: color(i),
                    mark: Mark::Points,
                    points: mine
                        .iter()
                        .map(|r| (r.intended_s - zero, r.latency_ms))
                        .collect(),
                    cold: mine.iter().map(|r| r.cold).collect(),
                }
            })
            .collect(),
    }
}

/// A labelled guide where each batch of `target`'s requests begins, on its clock.
fn batch_starts(records: &[Record], target: &str) -> Vec<(f64, String)> {
    let zero = origin(records, target);
    let mut guides = Vec::new();
    let mut phase = None;
    for r in of(records, target) {
        if phase != Some(r.phase) {
            phase = Some(r.phase);
            guides.push((r.intended_s - zero, format!("batch {}", r.phase + 1)));
        }
    }
    guides
}

fn percentiles(records: &[Record], names: &[String]) -> Chart {
    Chart {
        title: "Latency distribution".into(),
        x_label: "percentile".into(),
        y_label: "response time (ms)".into(),
        series: names
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mine: Vec<&Record> = of(records, t).collect();
                let v = ok_latencies(&mine);
                let n = v.len().max(1) as f64;
                Series {
                    name: t.clone(),
                    color: color(i),
                    mark: Mark::Line,
                    points: v
                        .iter()
                        .enumerate()
                        .map(|(k, y)| ((k + 1) as f64 / n * 100.0, *y))
                        .collect(),
                    cold: Vec::new(),
                }
            })
            .collect(),
        ..Chart::default()
    }
}

/// The latencies of the successful requests, sorted.
fn ok_latencies(rs: &[&Record]) -> Vec<f64> {
    let mut v: Vec<f64> = rs
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.latency_ms)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Throughput and p99 at each concurrency step of a sweep.
fn sweep(records: &[Record], names: &[String]) -> [(String, Chart); 2] {
    let rps = |rs: &[&Record]| {
        let (start, end) = super::stats::span(rs.iter().copied());
        rs.iter().filter(|r| r.status == 200).count() as f64 / (end - start).max(1e-3)
    };
    let p99 = |rs: &[&Record]| super::stats::percentile(&ok_latencies(rs), 99.0);
    let series = |name: &dyn Fn(&str) -> String, f: &dyn Fn(&[&Record]) -> f64| {
        names
            .iter()
            .enumerate()
            .map(|(i, t)| Series {
                name: name(t),
                color: color(i),
                mark: Mark::Line,
                points: per_step(records, t, f),
                cold: Vec::new(),
            })
            .collect()
    };
    [
        (
            "sweep.svg".into(),
            Chart {
                title: "Throughput against offered concurrency".into(),
                x_label: "concurrency".into(),
                y_label: "requests/s".into(),
                series: series(&|t| format!("{t} throughput (requests/s)"), &rps),
                ..Chart::default()
            },
        ),
        (
            "sweep-p99.svg".into(),
            Chart {
                title: "p99 latency against offered concurrency".into(),
                x_label: "concurrency".into(),
                y_label: "p99 (ms)".into(),
                series: series(&|t| t.to_string(), &p99),
                ..Chart::default()
            },
        ),
    ]
}

/// `f` of each sweep step's requests, against the step's concurrency (2^step).
fn per_step(records: &[Record], target: &str, f: &dyn Fn(&[&Record]) -> f64) -> Vec<(f64, f64)> {
    let mut steps: Vec<u32> = of(records, target).map(|r| r.phase).collect();
    steps.dedup();
    steps
        .iter()
        .map(|s| {
            let rs: Vec<&Record> = of(records, target).filter(|r| r.phase == *s).collect();
            (f64::from(1u32 << s), f(&rs))
        })
        .collect()
}

/// One of the sampler's figures over the run.
fn sampled(samples: &[Sample], name: &str, i: usize, mark: Mark, f: fn(&Sample) -> f64) -> Series {
    Series {
        name: name.into(),
        color: color(i),
        mark,
        points: samples.iter().map(|s| (s.t_s, f(s))).collect(),
        cold: Vec::new(),
    }
}

fn over_time(title: &str, y_label: &str, series: Vec<Series>) -> Chart {
    Chart {
        title: title.into(),
        x_label: "time since the start (s)".into(),
        y_label: y_label.into(),
        series,
        ..Chart::default()
    }
}

fn units(samples: &[Sample]) -> Chart {
    over_time(
        "Instances and execution environments",
        "count",
        vec![
            sampled(samples, "serverful instances", 0, Mark::Steps, |s| {
                s.instances as f64
            }),
            sampled(samples, "serverless environments", 1, Mark::Steps, |s| {
                s.environments as f64
            }),
        ],
    )
}

fn cpu(samples: &[Sample]) -> Chart {
    over_time(
        "Serverful CPU (average of the instances, % of their vCPUs)",
        "CPU %",
        vec![sampled(samples, "serverful", 0, Mark::Line, |s| {
            s.instance_cpu_pct
        })],
    )
}

fn memory(samples: &[Sample]) -> Chart {
    over_time(
        "Resident memory of all processes",
        "MB",
        vec![
            sampled(samples, "serverful instances", 0, Mark::Line, |s| {
                s.instance_rss_mb
            }),
            sampled(samples, "serverless environments", 1, Mark::Line, |s| {
                s.environment_rss_mb
            }),
        ],
    )
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// The summary table printed on stdout.
pub fn table(run: &Run, compare: Option<&Run>) -> String {
    let mut o = format!(
        "{:<11} {:>5} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>8} {:>9}\n",
        "target",
        "reqs",
        "ok",
        "req/s",
        "p50",
        "p90",
        "p99",
        "max",
        "cold",
        "cold ms",
        "warm ms",
        "init ms",
        "$/M req"
    );
    for s in &run.summaries {
        o.push_str(&row(s));
    }
    if let Some(old) = compare {
        o.push_str("previous run:\n");
        for s in &old.summaries {
            o.push_str(&row(s));
        }
    }
    if let Some(r) = run.break_even_rps {
        let _ = writeln!(
            o,
            "cost: the serverful side at its minimum costs the same as the serverless one at {r:.1} requests/s ({:.0} requests a day)",
            r * 86_400.0
        );
    }
    o.push_str(&models(run));
    for s in &run.summaries {
        if !s.errors.is_empty() {
            let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            let _ = writeln!(o, "{} errors: {}", s.target, errors.join(", "));
        }
        if !s.resources.cloudwatch.is_empty() {
            let m: Vec<String> = s
                .resources
                .cloudwatch
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect();
            let _ = writeln!(o, "{} CloudWatch: {}", s.target, m.join(", "));
        }
        if let Some((p99, max)) = s.send_lateness_ms {
            let _ = writeln!(
                o,
                "{} generator lateness: p99 {p99:.1} ms, max {max:.1} ms",
                s.target
            );
        }
    }
    o
}

/// Which model each target served, and a warning when they differ: the comparison is
/// then of the targets and the models together.
fn models(run: &Run) -> String {
    let served: Vec<&Summary> = run
        .summaries
        .iter()
        .filter(|s| !s.models.is_empty())
        .collect();
    let Some(first) = served.first() else {
        return String::new();
    };
    if first.models.len() == 1 && served.iter().all(|s| s.models == first.models) {
        return format!("model: {} on every target\n", first.models[0]);
    }
    let each: Vec<String> = served
        .iter()
        .map(|s| format!("{} {}", s.target, s.models.join(" and ")))
        .collect();
    format!(
        "warning: the targets did not serve the same model ({}); the comparison is of target and model together (`model.variant`)\n",
        each.join(", ")
    )
}

fn row(s: &Summary) -> String {
    let l = &s.latency_ms;
    format!(
        "{:<11} {:>5} {:>5.0}% {:>7.2} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>5} {:>8} {:>8} {:>8} {:>9}\n",
        s.target,
        s.requests,
        s.success_rate * 100.0,
        s.throughput_rps,
        l.p50,
        l.p90,
        l.p99,
        l.max,
        s.cold.count,
        opt(s.cold.cold_mean_ms, 0),
        opt(s.cold.warm_mean_ms, 0),
        opt(s.cold.init_ms.as_ref().map(|i| i.mean), 0),
        opt(s.cost.usd_per_million, 2),
    )
}

fn html(run: &Run, charts: &[(String, Chart)], compare: Option<&Run>) -> String {
    let mut o = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>deployer bench</title><style>\
         body{font-family:sans-serif;margin:2em;max-width:960px}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}\
         td:first-child,th:first-child{text-align:left}</style></head><body>",
    );
    let _ = write!(
        o,
        "<h1>Stack <code>{}</code>: {:?} protocol</h1>",
        run.stack, run.protocol
    );
    let _ = write!(
        o,
        "<h2>Summary</h2><pre>{}</pre>",
        escape(&table(run, compare))
    );
    o.push_str("<table><tr><th>target</th><th>requests</th><th>success</th><th>req/s</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>cold</th><th>server share</th><th>units</th><th>busy CPU %</th><th>busy RSS MB</th><th>$/M requests</th></tr>");
    for s in &run.summaries {
        let l = &s.latency_ms;
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{:.1} %</td><td>{:.2}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td title=\"{}\">{}</td></tr>",
            s.target,
            s.requests,
            s.success_rate * 100.0,
            s.throughput_rps,
            l.min,
            l.mean,
            l.p50,
            l.p90,
            l.p95,
            l.p99,
            l.p999,
            l.max,
            s.cold.count,
            opt(s.server_share.map(|x| x * 100.0), 0),
            s.resources.max_units.map_or("-".into(), |u| u.to_string()),
            opt(s.resources.busy_cpu_pct, 0),
            opt(s.resources.busy_rss_mb, 0),
            escape(&s.cost.how),
            opt(s.cost.usd_per_million, 2),
        );
    }
    o.push_str("</table><p>Latency in ms, from each request's intended send time. Cold: the first request of a process (instance or execution environment).</p>");
    for (file, chart) in charts {
        let _ = write!(
            o,
            "<h2>{}</h2><!-- {file} -->{}",
            escape(&chart.title),
            chart.svg()
        );
    }
    o.push_str("</body></html>\n");
    o
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::stats::summarize;
    use super::super::stats::tests::record;
    use super::*;

    /// The table of a run whose serverful and serverless answers came from these models.
    fn table_of(serverful: &str, serverless: &str) -> String {
        let records: Vec<Record> = [("serverful", serverful), ("serverless", serverless)]
            .iter()
            .map(|(target, model)| Record {
                model: Some(model.to_string()),
                ..record(target, 100.0, 200, 2)
            })
            .collect();
        let run = Run {
            stack: "s".into(),
            protocol: Protocol::Ab,
            started_unix_ms: 0,
            summaries: ["serverful", "serverless"]
                .iter()
                .map(|t| summarize(t, &records, false))
                .collect(),
            break_even_rps: None,
            prices: crate::manifest::Prices::default(),
            broken: Vec::new(),
        };
        table(&run, None)
    }

    #[test]
    fn the_table_names_the_model_and_warns_when_the_targets_differ() {
        let same = table_of("yolo11n-rect", "yolo11n-rect");
        assert!(
            same.contains("model: yolo11n-rect on every target\n"),
            "{same}"
        );
        assert!(!same.contains("warning"), "{same}");

        let differ = table_of("yolo11n-rect", "yolo11n-rect-int8");
        assert!(
            differ.contains(
                "warning: the targets did not serve the same model (serverful yolo11n-rect, serverless yolo11n-rect-int8)"
            ),
            "{differ}"
        );
    }
}
