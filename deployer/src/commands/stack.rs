//! The commands on the stack's resources: `plan`, `up`, `down` and `status`. Each
//! loads the stack (what the manifest wants and what the stack owns, observed), then
//! plans, applies or reports.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::Aws;
use crate::commands::build::{Source, build_image};
use crate::context;
use crate::endpoints::{endpoints, local_endpoints};
use crate::engine::{self, Outcome};
use crate::error::{Cause, Error};
use crate::inventory;
use crate::local;
use crate::manifest::Manifest;
use crate::output::{self, Format, Progress, Report, StatusRow};
use crate::plan::{self, Plan};
use crate::resources::{Kind, Node, Observation};
use crate::stack::{self, Account, Context, Push};

/// What a command needs loaded.
#[derive(Default)]
pub struct Load {
    /// Build the predictor image first (`up` without an `image.uri`).
    pub build: Option<Source>,
    /// Only what the stack owns (`down`, `plan --destroy`): no network, AMI or image
    /// lookups, so a stack whose subnets are gone can still be torn down.
    pub destroying: bool,
    /// Take the ECS-optimized AMI AWS recommends now.
    pub refresh_ami: bool,
}

/// The stack as observed: `nodes[..wanted]` are what the manifest asks for, the rest
/// what the stack owns and no longer wants.
pub struct Loaded {
    pub stack: String,
    pub ctx: Option<Context>,
    pub nodes: Vec<Box<dyn Node>>,
    pub seen: Vec<Observation>,
    pub wanted: usize,
}

pub async fn load(
    aws: &Aws,
    manifest: &Manifest,
    file: &Path,
    load: Load,
    progress: &Progress,
) -> Result<Loaded, Error> {
    let account = Account::of(aws, manifest).await?;
    let built = match load.build {
        Some(source) => Some(Arc::new(build_image(file, source, progress)?)),
        None => None,
    };
    let (ctx, nodes, wanted) = if load.destroying {
        let nodes = inventory::owned(aws, manifest, &account).await?;
        let all = nodes.len();
        (None, nodes, all)
    } else {
        // The image: built now (`up`), named by the manifest, or whatever the tag
        // points at (`plan`, `status`).
        let push = manifest.image.uri.is_none().then(|| Push {
            built,
            client: Arc::new(tokio::sync::OnceCell::new()),
        });
        let lookup = context::Lookup {
            refresh_ami: load.refresh_ami,
        };
        let ctx = context::context(aws, manifest, account.clone(), push, lookup).await?;
        for note in &ctx.notes {
            progress.info(note);
        }
        let mut nodes = stack::desired(manifest, &ctx);
        let wanted = nodes.len();
        let owned = inventory::owned(aws, manifest, &account).await?;
        nodes.extend(inventory::unwanted(&nodes, owned));
        (Some(ctx), nodes, wanted)
    };
    plan::check_graph(&nodes).map_err(|e| Error::Usage {
        message: format!("internal: the stack's resource graph is broken: {e}"),
        hint: Some("this is a bug in deployer: please report it with the manifest".into()),
    })?;
    let seen = engine::observe(aws, &manifest.name, &nodes).await?;
    Ok(Loaded {
        stack: manifest.name.clone(),
        ctx,
        nodes,
        seen,
        wanted,
    })
}

impl Loaded {
    /// What `up` does: the desired resources reconciled, then the unwanted deleted
    /// (buckets with objects kept unless `delete_buckets`).
    pub fn up_plan(&self, adopt: bool, delete_buckets: bool) -> Plan {
        let w = self.wanted;
        Plan::up(&self.stack, &self.nodes[..w], &self.seen[..w], adopt).remove_unwanted(
            &self.nodes,
            &self.seen,
            w,
            kept_by_down(delete_buckets),
        )
    }

    /// What `down` does: everything the stack owns deleted, the buckets emptied and kept
    /// unless `delete_buckets`.
    pub fn down_plan(&self, delete_buckets: bool) -> Plan {
        Plan::down(
            &self.stack,
            &self.nodes,
            &self.seen,
            kept_by_down(delete_buckets),
        )
    }
}

/// What `down` empties and keeps: the buckets, unless told to delete them.
fn kept_by_down(delete_buckets: bool) -> &'static [Kind] {
    if delete_buckets {
        &[]
    } else {
        &[Kind::S3Bucket]
    }
}

/// `deployer plan`: prints the plan; with `detailed_exitcode`, 2 when it changes anything.
pub fn plan(plan: &Plan, detailed_exitcode: bool, format: Format) -> Result<u8, Error> {
    output::print(format, output::plan_text(plan), output::plan_json(plan));
    Ok(if detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    })
}

/// How `up` or `down` runs.
pub struct Apply {
    pub command: &'static str,
    /// Do not ask.
    pub yes: bool,
    /// Start (or update) the local runtime once the stack is up.
    pub runtime: bool,
}

/// How long `up` waits for the local runtime to serve (a cold image pull and unpack,
/// then the health checks of the first instance).
const LOCAL_READY: Duration = Duration::from_secs(300);

/// `deployer up` and `deployer down`: runs `plan` and reports; a failure ends with its
/// root causes.
#[allow(clippy::too_many_arguments)] // each is one thing the command was given
pub async fn apply(
    aws: &Aws,
    manifest: &Manifest,
    file: &Path,
    loaded: &Loaded,
    plan: &Plan,
    how: Apply,
    format: Format,
    progress: &Progress,
) -> Result<u8, Error> {
    let stack = loaded.stack.as_str();
    refuse_foreign(stack, plan, how.command, progress)?;
    if !plan.is_empty() {
        eprint!("{}", output::plan_text(plan));
        confirm(
            &format!("Apply these {} changes?", plan.changes.len()),
            how.yes,
        )?;
    }
    let started = Instant::now();
    if how.command == "down" {
        stop_runtime(manifest, progress).await;
    }
    let applied = engine::execute(aws, plan, &loaded.nodes, &loaded.seen, progress).await;
    let causes = causes(&applied);
    let mut endpoints = if how.command == "up" {
        endpoints(aws, manifest).await?
    } else {
        Vec::new()
    };
    if how.runtime && causes.is_empty() {
        endpoints = start_runtime(manifest, file, loaded, progress).await?;
    }
    let report = Report {
        stack,
        command: how.command,
        changes: &applied,
        seconds: started.elapsed().as_secs_f64(),
        ok: causes.is_empty(),
        endpoints,
    };
    output::print(
        format,
        output::report_text(&report),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    if causes.is_empty() {
        return Ok(0);
    }
    Err(Error::Failed {
        command: how.command,
        total: applied.len(),
        skipped: applied
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Skipped { .. }))
            .count(),
        causes,
    })
}

/// `up` refuses to touch what exists under the stack's names without its tag; `down`
/// leaves it alone and says so.
fn refuse_foreign(
    stack: &str,
    plan: &Plan,
    command: &str,
    progress: &Progress,
) -> Result<(), Error> {
    if command == "up" && !plan.foreign.is_empty() {
        return Err(Error::Foreign {
            stack: stack.to_string(),
            ids: plan.foreign.iter().map(|f| f.id.clone()).collect(),
        });
    }
    for f in &plan.foreign {
        progress.info(&format!(
            "{} is not tagged for stack `{stack}`: left alone",
            f.id
        ));
    }
    Ok(())
}

/// The changes that failed, each with AWS's answer: the root causes (the skipped are not).
fn causes(applied: &[engine::Applied]) -> Vec<Cause> {
    applied
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Failed {
                error,
                code,
                hint,
                class,
            } => Some(Cause {
                id: a.change.id.clone(),
                action: a.change.action,
                error: error.clone(),
                code: code.clone(),
                hint: hint.clone(),
                class: *class,
            }),
            _ => None,
        })
        .collect()
}

/// Stops the local runtime: its processes use what `down` deletes.
async fn stop_runtime(manifest: &Manifest, progress: &Progress) {
    let stopped = local::stop(manifest).await;
    if stopped > 0 {
        progress.info(&format!("local runtime stopped ({stopped} processes)"));
    }
}

/// Starts (or updates) the local runtime on the image just deployed; its endpoints.
async fn start_runtime(
    manifest: &Manifest,
    file: &Path,
    loaded: &Loaded,
    progress: &Progress,
) -> Result<Vec<crate::output::Endpoint>, Error> {
    progress.info("starting the local runtime (both targets as processes on this machine)");
    let digest = loaded
        .ctx
        .as_ref()
        .and_then(|c| c.image.uri.split_once('@').map(|(_, d)| d));
    let state = local::start(manifest, file, digest, LOCAL_READY)
        .await
        .map_err(Error::Local)?;
    Ok(local_endpoints(manifest, &state))
}

/// Asks before changing anything, but only when a person is at a terminal.
fn confirm(question: &str, yes: bool) -> Result<(), Error> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Cancelled)
    }
}

/// `deployer status`: what the manifest asks for, then what the stack owns and no longer
/// wants (what the next `up` deletes), and the local runtime's state.
pub fn status(manifest: &Manifest, loaded: &Loaded, format: Format) -> Result<u8, Error> {
    let rows: Vec<StatusRow> = loaded
        .seen
        .iter()
        .enumerate()
        .filter(|(i, o)| *i < loaded.wanted || (o.exists && o.owned))
        .map(|(i, o)| StatusRow {
            id: o.id.clone(),
            state: match (o.exists, o.owned, o.diff.is_empty()) {
                _ if i >= loaded.wanted => "unwanted",
                (false, _, _) => "missing",
                (true, false, _) => "foreign",
                (true, true, false) => "drifted",
                (true, true, true) => "ok",
            },
            detail: o.detail.clone(),
        })
        .collect();
    let runtime = local::state(manifest);
    let mut text = output::status_text(&loaded.stack, &rows);
    if let Some(state) = &runtime {
        text.push_str(&output::runtime_text(state));
    } else if local::applies(manifest) {
        text.push_str("\nlocal runtime: not running (`deployer up` starts it)\n");
    }
    output::print(
        format,
        text,
        serde_json::json!({"stack": loaded.stack, "resources": rows, "runtime": runtime})
            .to_string(),
    );
    Ok(0)
}
