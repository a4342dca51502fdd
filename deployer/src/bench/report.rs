//! A run's files: `requests.csv` (one row per request), `events.jsonl`, `samples.csv`,
//! `summary.json`, the charts (`latency.svg`, `percentiles.svg`, `units.svg`,
//! `resources.svg`, `sweep.svg`) and `report.html`, which embeds tables and charts.

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
    std::fs::write(dir.join("requests.csv"), csv)?;
    let jsonl: String = events
        .iter()
        .filter_map(|e| serde_json::to_string(e).ok())
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.join("events.jsonl"), jsonl)?;
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
    std::fs::write(dir.join("samples.csv"), s)?;
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
    let mut out = Vec::new();
    // Every request's latency over time: the studies' figure, with cold starts marked.
    // Each target on its own clock (time since its first request), so the same
    // schedule lines up when the targets ran one after the other.
    let origin = |t: &str| {
        records
            .iter()
            .filter(|r| r.target == t)
            .map(|r| r.intended_s)
            .fold(f64::INFINITY, f64::min)
    };
    let mut guides = Vec::new();
    if o.protocol == Protocol::Study {
        for t in names.iter().take(1) {
            let zero = origin(t);
            let mut phase = None;
            for r in records.iter().filter(|r| &r.target == t) {
                if phase != Some(r.phase) {
                    phase = Some(r.phase);
                    guides.push((r.intended_s - zero, format!("batch {}", r.phase + 1)));
                }
            }
        }
    }
    out.push((
        "latency.svg".to_string(),
        Chart {
            title: format!("Response time of every request ({:?})", run.protocol).to_lowercase(),
            x_label: "time since the target's first request (s), at the intended send time".into(),
            y_label: "response time (ms)".into(),
            guides,
            series: names
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mine: Vec<&Record> = records.iter().filter(|r| &r.target == t).collect();
                    let zero = origin(t);
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
        },
    ));
    out.push((
        "percentiles.svg".to_string(),
        Chart {
            title: "Latency distribution".into(),
            x_label: "percentile".into(),
            y_label: "response time (ms)".into(),
            series: names
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut v: Vec<f64> = records
                        .iter()
                        .filter(|r| &r.target == t && r.status == 200)
                        .map(|r| r.latency_ms)
                        .collect();
                    v.sort_by(f64::total_cmp);
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
        },
    ));
    if o.protocol == Protocol::Sweep {
        let per_step = |t: &str, f: &dyn Fn(&[&Record]) -> f64| -> Vec<(f64, f64)> {
            let mut steps: Vec<u32> = records
                .iter()
                .filter(|r| r.target == t)
                .map(|r| r.phase)
                .collect();
            steps.dedup();
            steps
                .iter()
                .map(|s| {
                    let rs: Vec<&Record> = records
                        .iter()
                        .filter(|r| r.target == t && r.phase == *s)
                        .collect();
                    (f64::from(1u32 << s), f(&rs))
                })
                .collect()
        };
        let rps = |rs: &[&Record]| {
            let (start, end) = super::stats::span(rs.iter().copied());
            rs.iter().filter(|r| r.status == 200).count() as f64 / (end - start).max(1e-3)
        };
        let p99 = |rs: &[&Record]| {
            let mut v: Vec<f64> = rs
                .iter()
                .filter(|r| r.status == 200)
                .map(|r| r.latency_ms)
                .collect();
            v.sort_by(f64::total_cmp);
            super::stats::percentile(&v, 99.0)
        };
        let mut series = Vec::new();
        for (i, t) in names.iter().enumerate() {
            series.push(Series {
                name: format!("{t} throughput (requests/s)"),
                color: color(i),
                mark: Mark::Line,
                points: per_step(t, &rps),
                cold: Vec::new(),
            });
        }
        out.push((
            "sweep.svg".into(),
            Chart {
                title: "Throughput against offered concurrency".into(),
                x_label: "concurrency".into(),
                y_label: "requests/s".into(),
                series,
                ..Chart::default()
            },
        ));
        out.push((
            "sweep-p99.svg".into(),
            Chart {
                title: "p99 latency against offered concurrency".into(),
                x_label: "concurrency".into(),
                y_label: "p99 (ms)".into(),
                series: names
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Series {
                        name: t.clone(),
                        color: color(i),
                        mark: Mark::Line,
                        points: per_step(t, &p99),
                        cold: Vec::new(),
                    })
                    .collect(),
                ..Chart::default()
            },
        ));
    }
    if !samples.is_empty() {
        let line = |name: &str, i: usize, f: &dyn Fn(&Sample) -> f64, mark: Mark| Series {
            name: name.into(),
            color: color(i),
            mark,
            points: samples.iter().map(|s| (s.t_s, f(s))).collect(),
            cold: Vec::new(),
        };
        out.push((
            "units.svg".into(),
            Chart {
                title: "Instances and execution environments".into(),
                x_label: "time since the start (s)".into(),
                y_label: "count".into(),
                series: vec![
                    line(
                        "serverful instances",
                        0,
                        &|s| s.instances as f64,
                        Mark::Steps,
                    ),
                    line(
                        "serverless environments",
                        1,
                        &|s| s.environments as f64,
                        Mark::Steps,
                    ),
                ],
                ..Chart::default()
            },
        ));
        out.push((
            "cpu.svg".into(),
            Chart {
                title: "Serverful CPU (average of the instances, % of their vCPUs)".into(),
                x_label: "time since the start (s)".into(),
                y_label: "CPU %".into(),
                series: vec![line("serverful", 0, &|s| s.instance_cpu_pct, Mark::Line)],
                ..Chart::default()
            },
        ));
        out.push((
            "memory.svg".into(),
            Chart {
                title: "Resident memory of all processes".into(),
                x_label: "time since the start (s)".into(),
                y_label: "MB".into(),
                series: vec![
                    line("serverful instances", 0, &|s| s.instance_rss_mb, Mark::Line),
                    line(
                        "serverless environments",
                        1,
                        &|s| s.environment_rss_mb,
                        Mark::Line,
                    ),
                ],
                ..Chart::default()
            },
        ));
    }
    out
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
