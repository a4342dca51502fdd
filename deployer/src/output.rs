//! What the user sees: data (plans, reports, status) on stdout as text or JSON;
//! progress and logs on stderr, timestamped when stderr is not a terminal.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use serde::Serialize;

use crate::aws::AwsError;
use crate::engine::{Applied, Outcome};
use crate::plan::{Action, Change, Plan};
use crate::resources::Id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Progress on stderr: a spinner per resource on a terminal, plain timestamped lines
/// otherwise (CI logs).
pub struct Progress {
    color: bool,
    spinners: Option<MultiProgress>,
    running: Mutex<HashMap<Id, ProgressBar>>,
}

impl Progress {
    pub fn new() -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            color: terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            spinners: terminal.then(MultiProgress::new),
            running: Mutex::new(HashMap::new()),
        }
    }

    fn text(&self, symbol: &str, color: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{color}m{symbol}\x1b[0m {text}")
        } else {
            format!("{symbol} {text}")
        }
    }

    fn line(&self, symbol: &str, color: &str, text: &str) {
        let line = self.text(symbol, color, text);
        match &self.spinners {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "[{}] {line}", utc_time());
            }
        }
    }

    /// Ends the spinner of `id` with `text`, or prints it when there is no spinner.
    fn finish(&self, id: &Id, symbol: &str, color: &str, text: &str) {
        let bar = self.running.lock().ok().and_then(|mut r| r.remove(id));
        match bar {
            Some(bar) => {
                if let Ok(style) = ProgressStyle::with_template("{msg}") {
                    bar.set_style(style);
                }
                bar.finish_with_message(self.text(symbol, color, text));
            }
            None => self.line(symbol, color, text),
        }
    }

    pub fn info(&self, text: &str) {
        self.line("·", "2", text);
    }

    pub fn started(&self, c: &Change) {
        let verb = match c.action {
            Action::Create => "creating",
            Action::Update => "updating",
            Action::Replace => "replacing",
            Action::Delete => "deleting",
            Action::Empty => "emptying",
        };
        let text = format!("{verb} {}", c.id);
        match &self.spinners {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.set_message(text);
                bar.enable_steady_tick(Duration::from_millis(100));
                if let Ok(mut running) = self.running.lock() {
                    running.insert(c.id.clone(), bar);
                }
            }
            None => self.line("…", "2", &text),
        }
    }

    pub fn finished(&self, c: &Change, seconds: f64) {
        let verb = match c.action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Replace => "replaced",
            Action::Delete => "deleted",
            Action::Empty => "emptied",
        };
        self.finish(
            &c.id,
            "✓",
            "32",
            &format!("{verb} {} ({seconds:.1} s)", c.id),
        );
    }

    pub fn failed(&self, c: &Change, e: &AwsError) {
        let hint = e
            .hint
            .as_ref()
            .map_or(String::new(), |h| format!("\n  hint: {h}"));
        self.finish(&c.id, "✗", "31", &format!("{} failed: {e}{hint}", c.id));
    }

    pub fn skipped(&self, id: &Id, because: &Id) {
        self.line(
            "-",
            "33",
            &format!("skipped {id}: depends on {because}, which failed"),
        );
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

fn utc_time() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn symbol(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::Empty => "0",
    }
}

/// A plan as text: one line per change, the differing fields under updates.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str(&format!(
            "No changes: stack `{}` matches its manifest.\n",
            plan.stack
        ));
    } else {
        out.push_str(&format!(
            "Plan for stack `{}`: {} to create, {} to update, {}{} to delete{}.\n\n",
            plan.stack,
            plan.count(Action::Create),
            plan.count(Action::Update),
            match plan.count(Action::Replace) {
                0 => String::new(),
                n => format!("{n} to replace, "),
            },
            plan.count(Action::Delete),
            match plan.count(Action::Empty) {
                0 => String::new(),
                n => format!(", {n} to empty and keep"),
            }
        ));
        for c in &plan.changes {
            let kept = match (&c.follows, c.action) {
                (_, Action::Empty) => " (emptied, kept)".to_string(),
                _ if c.unwanted => " (no longer in the manifest)".to_string(),
                (Some(r), Action::Replace) => format!(" (goes with {r})"),
                (Some(r), _) => format!(" (looked at again once {r} is replaced)"),
                (None, Action::Replace) => " (cannot change in place)".to_string(),
                (None, _) => String::new(),
            };
            out.push_str(&format!("  {} {}{kept}\n", symbol(c.action), c.id));
            for f in &c.fields {
                out.push_str(&format!("      {f}\n"));
            }
        }
    }
    for f in &plan.foreign {
        out.push_str(&format!(
            "  ! {} exists but is not tagged `deployer:stack = {}`: left alone\n",
            f.id, plan.stack
        ));
    }
    for k in &plan.kept {
        out.push_str(&format!(
            "  ! {} is no longer in the manifest and holds objects: kept (`--delete-buckets` deletes it)\n",
            k.id
        ));
    }
    out
}

#[derive(Serialize)]
struct PlanJson<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    summary: Summary,
}

#[derive(Serialize)]
struct Summary {
    create: usize,
    update: usize,
    replace: usize,
    delete: usize,
    empty: usize,
}

pub fn plan_json(plan: &Plan) -> String {
    let summary = Summary {
        create: plan.count(Action::Create),
        update: plan.count(Action::Update),
        replace: plan.count(Action::Replace),
        delete: plan.count(Action::Delete),
        empty: plan.count(Action::Empty),
    };
    serde_json::to_string_pretty(&PlanJson { plan, summary }).unwrap_or_default()
}

/// The result of `up` or `down`.
#[derive(Serialize)]
pub struct Report<'a> {
    pub stack: &'a str,
    pub command: &'a str,
    pub changes: &'a [Applied],
    pub seconds: f64,
    pub ok: bool,
    /// Where each target answers `POST /predict`, after `up`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
}

/// The URL of one target's `POST /predict`.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub target: &'static str,
    pub url: String,
}

pub fn report_text(r: &Report) -> String {
    let done = r
        .changes
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Done { .. }))
        .count();
    let failed: Vec<&Applied> = r
        .changes
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Failed { .. }))
        .collect();
    let skipped = r
        .changes
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Skipped { .. }))
        .count();
    let mut out = if r.changes.is_empty() {
        format!("Nothing to do: stack `{}` already matches.\n", r.stack)
    } else if failed.is_empty() {
        format!(
            "{} complete: {done} changes in {:.1} s.\n",
            r.command, r.seconds
        )
    } else {
        format!(
            "{} failed: {done} done, {} failed, {skipped} skipped ({:.1} s).\n",
            r.command,
            failed.len(),
            r.seconds
        )
    };
    for e in &r.endpoints {
        out.push_str(&format!("{:<10}  POST {}\n", e.target, e.url));
    }
    out
}

/// One row of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    #[serde(flatten)]
    pub id: Id,
    pub state: &'static str,
    pub detail: String,
}

pub fn status_text(stack: &str, rows: &[StatusRow]) -> String {
    let w_kind = rows
        .iter()
        .map(|r| r.id.kind.to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let w_name = rows
        .iter()
        .map(|r| r.id.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("Stack `{stack}`\n\n");
    out.push_str(&format!(
        "{:<w_kind$}  {:<w_name$}  {:<9}  DETAIL\n",
        "KIND", "NAME", "STATE"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<w_kind$}  {:<w_name$}  {:<9}  {}\n",
            r.id.kind.to_string(),
            r.id.name,
            r.state,
            r.detail
        ));
    }
    out
}

/// The local runtime's part of `status`: both fronts, every instance and environment.
pub fn runtime_text(state: &serde_json::Value) -> String {
    let mut out = format!(
        "\nlocal runtime (pid {}): processes run by {}, CPU caps: {} ({:.2} cores per vCPU), timing `{}`\n",
        state["pid"],
        state["isolation"].as_str().unwrap_or("?"),
        state["cpu_model"].as_str().unwrap_or("?"),
        num(&state["cpu_scale"]),
        state["timing"]["profile"].as_str().unwrap_or("?"),
    );
    out.push_str(&serverful_text(&state["serverful"]));
    out.push_str(&serverless_text(&state["serverless"]));
    if let Some(p) = state["problem"].as_str() {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The load balancer's line, then one per instance.
fn serverful_text(f: &serde_json::Value) -> String {
    let mut out = format!(
        "serverful   {}  desired {} (min {}, max {}, target {} % CPU)\n",
        f["url"].as_str().unwrap_or("-"),
        f["desired"],
        f["min"],
        f["max"],
        f["cpu_target"]
    );
    for i in f["instances"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  instance {:<3} pid {:<7} {:<10} cpu {:>5.1} %  rss {:>6.1} MB  served {:<6} {}\n",
            i["id"],
            i["pid"],
            i["state"].as_str().unwrap_or("?"),
            num(&i["cpu_pct"]),
            num(&i["rss_mb"]),
            i["served"],
            short(i["digest"].as_str().unwrap_or("")),
        ));
    }
    out
}

/// The function's counters, then one line per execution environment.
fn serverless_text(l: &serde_json::Value) -> String {
    let mut out = format!(
        "serverless  {}  {} invocations, {} cold starts, {} throttles, {} errors ({} timeouts), limit {}\n",
        l["url"].as_str().unwrap_or("-"),
        l["invocations"],
        l["cold_starts"],
        l["throttles"],
        l["errors"],
        l["timeouts"],
        l["concurrency_limit"],
    );
    for e in l["environments"].as_array().into_iter().flatten() {
        let init = e["init_ms"]
            .as_f64()
            .map_or("-".to_string(), |ms| format!("{ms:.0} ms"));
        out.push_str(&format!(
            "  environment {:<3} pid {:<7} {:<12} invocations {:<5} init {:<8} rss {:>6.1} MB  {}\n",
            e["id"],
            e["pid"],
            e["state"].as_str().unwrap_or("?"),
            e["invocations"],
            init,
            num(&e["rss_mb"]),
            short(e["digest"].as_str().unwrap_or("")),
        ));
    }
    out
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// Prints a command's data on stdout, as text or JSON.
pub fn print(format: Format, text: String, json: String) {
    match format {
        Format::Text => print!("{text}"),
        Format::Json => println!("{json}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Foreign;
    use crate::resources::{Field, Kind};

    fn change(kind: Kind, name: &str, action: Action) -> Change {
        Change {
            id: Id::new(kind, name),
            action,
            fields: Vec::new(),
            after: Vec::new(),
            unwanted: false,
            follows: None,
            node: 0,
        }
    }

    /// The plan as a person reads it, every kind of line once (a snapshot: any change to
    /// the wording or layout shows here).
    #[test]
    fn a_plan_reads_as_text() {
        let mut update = change(Kind::LambdaFunction, "s-fn", Action::Update);
        update.fields = vec![
            Field::new("memory_mb", Some(2048), 3000),
            Field::new("role", None::<String>, "arn:aws:iam::1:role/r"),
        ];
        let mut replace = change(Kind::TargetGroup, "s-tg", Action::Replace);
        replace.fields = vec![Field::new("port_or_vpc (replace)", Some(8080), 9090)];
        let mut listener = change(Kind::Listener, "s-alb:80", Action::Replace);
        listener.follows = Some(Id::new(Kind::TargetGroup, "s-tg"));
        let mut service = change(Kind::EcsService, "s-svc", Action::Update);
        service.follows = Some(Id::new(Kind::Listener, "s-alb:80"));
        let mut gone = change(Kind::HttpApi, "s-api", Action::Delete);
        gone.unwanted = true;
        let plan = Plan {
            stack: "s".into(),
            changes: vec![
                change(Kind::S3Bucket, "s-input", Action::Create),
                update,
                replace,
                listener,
                service,
                gone,
            ],
            foreign: vec![Foreign {
                id: Id::new(Kind::IamRole, "s-exec"),
            }],
            kept: vec![Foreign {
                id: Id::new(Kind::S3Bucket, "s-old"),
            }],
        };
        assert_eq!(
            plan_text(&plan),
            "Plan for stack `s`: 1 to create, 2 to update, 2 to replace, 1 to delete.\n\
             \n  + s3 bucket `s-input`\
             \n  ~ lambda function `s-fn`\
             \n      memory_mb: 2048 → 3000\
             \n      role: (none) → arn:aws:iam::1:role/r\
             \n  -/+ target group `s-tg` (cannot change in place)\
             \n      port_or_vpc (replace): 8080 → 9090\
             \n  -/+ listener `s-alb:80` (goes with target group `s-tg`)\
             \n  ~ ecs service `s-svc` (looked at again once listener `s-alb:80` is replaced)\
             \n  - http api `s-api` (no longer in the manifest)\
             \n  ! iam role `s-exec` exists but is not tagged `deployer:stack = s`: left alone\
             \n  ! s3 bucket `s-old` is no longer in the manifest and holds objects: kept (`--delete-buckets` deletes it)\n"
        );
        assert_eq!(
            plan_text(&Plan {
                stack: "s".into(),
                changes: Vec::new(),
                foreign: Vec::new(),
                kept: Vec::new(),
            }),
            "No changes: stack `s` matches its manifest.\n"
        );
    }

    #[test]
    fn status_reads_as_aligned_columns() {
        let row = |kind, name: &str, state, detail: &str| StatusRow {
            id: Id::new(kind, name),
            state,
            detail: detail.into(),
        };
        let rows = [
            row(Kind::S3Bucket, "s-input", "ok", "3 objects"),
            row(Kind::LambdaFunction, "s-fn", "drifted", "3000 MB, 30 s"),
            row(Kind::HttpApi, "s-api", "unwanted", ""),
        ];
        assert_eq!(
            status_text("s", &rows),
            "Stack `s`\n\n\
             KIND             NAME     STATE      DETAIL\n\
             s3 bucket        s-input  ok         3 objects\n\
             lambda function  s-fn     drifted    3000 MB, 30 s\n\
             http api         s-api    unwanted   \n"
        );
    }

    /// `up`'s report on stdout: the summary and the endpoints, never the errors (those
    /// end stderr, see `error::Error::Failed`).
    #[test]
    fn a_report_reads_as_text() {
        let applied = |action, outcome| Applied {
            change: change(Kind::LogGroup, "/s", action),
            outcome,
        };
        let done = [
            applied(Action::Create, Outcome::Done { seconds: 1.0 }),
            applied(Action::Update, Outcome::Done { seconds: 0.5 }),
        ];
        let report = Report {
            stack: "s",
            command: "up",
            changes: &done,
            seconds: 12.34,
            ok: true,
            endpoints: vec![Endpoint {
                target: "serverless",
                url: "https://a.execute-api.us-east-1.amazonaws.com/predict".into(),
            }],
        };
        assert_eq!(
            report_text(&report),
            "up complete: 2 changes in 12.3 s.\n\
             serverless  POST https://a.execute-api.us-east-1.amazonaws.com/predict\n"
        );
        let failed = [
            applied(Action::Create, Outcome::Done { seconds: 1.0 }),
            applied(
                Action::Create,
                Outcome::Failed {
                    error: "logs:CreateLogGroup: boom".into(),
                    code: None,
                    hint: None,
                    class: crate::error::Class::Failed,
                },
            ),
            applied(
                Action::Create,
                Outcome::Skipped {
                    because: Id::new(Kind::LogGroup, "/s"),
                },
            ),
        ];
        let report = Report {
            changes: &failed,
            ok: false,
            endpoints: Vec::new(),
            ..report
        };
        assert_eq!(
            report_text(&report),
            "up failed: 1 done, 1 failed, 1 skipped (12.3 s).\n"
        );
    }
}
