//! `deployer`: reconciles AWS to a YAML manifest: one ML inference service, deployed
//! serverful (ECS on EC2 behind an ALB) and serverless (Lambda behind an HTTP API).

mod aws;
mod bench;
mod commands;
mod context;
mod engine;
mod error;
mod image;
mod inventory;
mod local;
mod manifest;
mod output;
mod plan;
mod predict;
mod resources;
mod stack;
mod tail;
mod wait;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{ArgAction, Parser, Subcommand};

use crate::aws::Aws;
use crate::engine::Outcome;
use crate::error::{Cause, Error};
use crate::manifest::Manifest;
use crate::output::{Endpoint, Format, Progress, Report, StatusRow};
use crate::plan::Plan;
use crate::stack::{Account, Push};

#[derive(Parser)]
#[command(name = "deployer", version, about, max_term_width = 100)]
struct Cli {
    /// Manifest file [default: deployer.yaml]
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Output format of the data printed on stdout.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Log AWS SDK activity on stderr (-v: info, -vv: debug).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the manifest; makes no AWS call.
    Validate,
    /// Build the predictor image (no Docker needed) and push it; prints `repo@sha256:…`.
    Build {
        #[command(flatten)]
        source: Source,
        /// Build only: write nothing to any registry.
        #[arg(long)]
        no_push: bool,
    },
    /// Show the changes `up` (or `down`, with --destroy) would make.
    Plan {
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan the deletion of the stack instead.
        #[arg(long)]
        destroy: bool,
        /// Plan the move of the instances to the ECS-optimized AMI AWS recommends now
        /// (without it they keep the one they run).
        #[arg(long, conflicts_with = "destroy")]
        refresh_ami: bool,
        /// Plan the deletion of buckets with objects in them too: with --destroy, the
        /// stack's; without, those the manifest no longer names.
        #[arg(long)]
        delete_buckets: bool,
    },
    /// Create or update the stack's resources to match the manifest.
    Up {
        /// Do not ask for confirmation (never asked without a terminal).
        #[arg(short, long)]
        yes: bool,
        /// Claim existing resources with the stack's names that lack its ownership tag
        /// (tag them, then reconcile them), like `terraform import`.
        #[arg(long)]
        adopt: bool,
        #[command(flatten)]
        source: Source,
        /// Deploy the image the tag already points at instead of building one.
        #[arg(long)]
        skip_build: bool,
        /// Move the instances to the ECS-optimized AMI AWS recommends now (without it
        /// they keep the one they run).
        #[arg(long)]
        refresh_ami: bool,
        /// Delete the buckets the manifest no longer names (renamed) even when they hold
        /// objects; without it they are kept and named.
        #[arg(long)]
        delete_buckets: bool,
        /// On a local stack, provision only: do not start (or update) the local runtime.
        #[arg(long, env = "DEPLOYER_NO_RUNTIME", value_parser = clap::builder::FalseyValueParser::new())]
        no_runtime: bool,
    },
    /// Delete every resource of the stack that carries its ownership tag; the buckets
    /// are emptied and kept.
    Down {
        /// Do not ask for confirmation (never asked without a terminal).
        #[arg(short, long)]
        yes: bool,
        /// Delete the buckets too. AWS keeps a deleted bucket's name from being re-created
        /// for a while (up to 48-72 hours), and any account may take it meanwhile.
        #[arg(long)]
        delete_buckets: bool,
    },
    /// Show every resource of the stack and its state; changes nothing.
    Status,
    /// Check the account before a first `up`, writing nothing: credentials, zones that
    /// offer the instance type, Lambda and EC2 quotas, service-linked roles, bucket names.
    Check,
    /// Print the least-privilege IAM policy (JSON) the principal running `deployer`
    /// needs for this manifest.
    Policy,
    /// Print the targets' logs (their CloudWatch log groups, locally the emulator's).
    Logs {
        /// One target [default: both]
        #[arg(value_enum)]
        target: Option<tail::Target>,
        /// Keep printing new lines.
        #[arg(long)]
        follow: bool,
        /// How far back to start: `30s`, `10m`, `2h`, `1d`.
        #[arg(long, default_value = "10m", value_parser = tail::parse_since)]
        since: std::time::Duration,
    },
    /// Run the serverless-versus-serverful experiment: the same load against both
    /// targets, every request recorded, summarised, charted (`report.html`).
    Bench(Box<bench::Options>),
    /// Send photos (files, or keys in the input bucket) through a target and print the
    /// detections.
    Predict {
        /// Which target.
        #[arg(long, value_enum, default_value_t = tail::Target::Serverless)]
        target: tail::Target,
        /// Send files as the request body instead of uploading them first.
        #[arg(long)]
        body: bool,
        /// Photo files or keys.
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// Run the local runtime in the foreground (what `up` starts in the background
    /// against a local emulator): both targets as real processes on this machine.
    Runtime,
}

/// Where the image's pieces come from.
#[derive(clap::Args, Clone, Default)]
struct Source {
    /// A predictor binary to put in the image [default: `cargo build --release -p predictor`]
    #[arg(long, value_name = "PATH", env = "DEPLOYER_PREDICTOR_BIN")]
    predictor_bin: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The local runtime's supervisor writes to its own log: what it does is its output.
    let verbose = match cli.command {
        Command::Runtime => cli.verbose.max(1),
        _ => cli.verbose,
    };
    init_logging(verbose);
    let detailed = matches!(
        cli.command,
        Command::Plan {
            detailed_exitcode: true,
            ..
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let format = cli.output;
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            match format {
                Format::Text => {
                    eprintln!("error: {e}");
                    if let Some(hint) = e.hint() {
                        eprintln!("hint: {hint}");
                    }
                }
                // The data a script reads is on stdout: the error too.
                Format::Json => {
                    let mut error = serde_json::json!({"code": e.code(), "message": e.to_string(), "hint": e.hint()});
                    if let Error::Failed { causes, .. } = &e {
                        error["causes"] = serde_json::json!(causes);
                    }
                    println!("{}", serde_json::json!({ "error": error }));
                }
            }
            // With --detailed-exitcode, 2 means "changes": every error is 1.
            ExitCode::from(if detailed { 1 } else { e.exit_code() })
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
}

fn manifest_path(file: Option<PathBuf>) -> Result<PathBuf, Error> {
    match file {
        Some(f) => Ok(f),
        None if PathBuf::from("deployer.yaml").is_file() => Ok("deployer.yaml".into()),
        None => Err(Error::Usage {
            message: "no manifest given and there is no `deployer.yaml` here".into(),
            hint: Some("pass one with `-f`, e.g. `deployer -f manifests/local.yaml plan`".into()),
        }),
    }
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

fn print(format: Format, text: String, json: String) {
    match format {
        Format::Text => print!("{text}"),
        Format::Json => println!("{json}"),
    }
}

async fn run(cli: Cli) -> Result<u8, Error> {
    let file = manifest_path(cli.file.clone())?;
    let manifest = Manifest::load(&file)?;
    match run_stack(cli, file, &manifest).await {
        Ok(code) => Ok(code),
        Err(e) => Err(e.explain(&manifest).await),
    }
}

async fn run_stack(cli: Cli, file: PathBuf, manifest: &Manifest) -> Result<u8, Error> {
    let manifest = manifest.clone();
    if let Command::Validate = cli.command {
        print(
            cli.output,
            format!("{}: ok (stack `{}`)\n", file.display(), manifest.name),
            serde_json::json!({"file": file, "stack": manifest.name, "ok": true}).to_string(),
        );
        return Ok(0);
    }

    let progress = Arc::new(Progress::new());
    {
        let progress = progress.clone();
        wait::report_to(move |operation, why| {
            progress.info(&format!("{operation}: waiting: {why}"));
        });
    }
    if let Command::Build { source, no_push } = cli.command {
        // Building needs no AWS; only pushing to ECR does.
        let built = build_image(&file, source, &progress)?;
        let aws = Aws::connect(&manifest).await;
        return push_built(&aws, &manifest, &built, no_push, cli.output, &progress).await;
    }
    let aws = Aws::connect(&manifest).await;
    match cli.command {
        Command::Check => return commands::check::run(&aws, &manifest, cli.output).await,
        Command::Policy => return commands::policy::run(&aws, &manifest, cli.output).await,
        Command::Runtime => {
            if !local::endpoint(&manifest).is_some_and(|e| aws::is_loopback(&e)) {
                return Err(Error::Usage {
                    message: format!(
                        "stack `{}` is not on a local emulator: the local runtime runs only against a loopback `endpoint`",
                        manifest.name
                    ),
                    hint: Some(
                        "use `-f manifests/local.yaml`, or set `endpoint: http://127.0.0.1:4566`"
                            .into(),
                    ),
                });
            }
            local::run(&manifest, &aws).await.map_err(Error::Local)?;
            return Ok(0);
        }
        Command::Bench(options) => return bench::run(&aws, &manifest, &options, cli.output).await,
        Command::Predict {
            target,
            body,
            inputs,
        } => {
            let name = match target {
                tail::Target::Serverful => "serverful",
                tail::Target::Serverless => "serverless",
            };
            let endpoints = live_endpoints(&aws, &manifest).await?;
            let url = endpoints
                .iter()
                .find(|e| e.target == name)
                .map(|e| e.url.clone())
                .ok_or_else(|| Error::Usage {
                    message: format!("stack `{}` has no {name} endpoint running", manifest.name),
                    hint: Some("`deployer up` creates it".into()),
                })?;
            return predict::run(&aws, &manifest, name, &url, &inputs, body, cli.output).await;
        }
        Command::Logs {
            target,
            follow,
            since,
        } => {
            let targets = match target {
                Some(t) => vec![t],
                None => vec![tail::Target::Serverful, tail::Target::Serverless],
            };
            tail::run(&aws, &manifest, &targets, since, follow, cli.output).await?;
            return Ok(0);
        }
        _ => {}
    }
    let account = Account {
        id: aws.account().await?.to_string(),
        partition: aws.partition().to_string(),
        region: manifest.region.clone(),
    };

    // The image: named by the manifest, built now (`up`), or whatever the tag points at
    // (`plan`, `status`). `down` needs none.
    let builds = match &cli.command {
        Command::Up {
            source,
            skip_build: false,
            ..
        } if manifest.image.uri.is_none() => Some(source.clone()),
        _ => None,
    };
    let built = match builds {
        Some(source) => Some(Arc::new(build_image(&file, source, &progress)?)),
        None => None,
    };
    let destroying = matches!(
        cli.command,
        Command::Down { .. } | Command::Plan { destroy: true, .. }
    );
    let push = (manifest.image.uri.is_none() && !destroying).then(|| Push {
        built: built.clone(),
        client: Arc::new(tokio::sync::OnceCell::new()),
    });
    let refresh_ami = matches!(
        cli.command,
        Command::Up {
            refresh_ami: true,
            ..
        } | Command::Plan {
            refresh_ami: true,
            ..
        }
    );
    // `down` reads only what the stack owns: no network, AMI or image lookups, so a
    // stack whose subnets are gone can still be torn down.
    let (ctx, nodes, wanted) = if destroying {
        let nodes = inventory::owned(&aws, &manifest, &account).await?;
        let all = nodes.len();
        (None, nodes, all)
    } else {
        let lookup = context::Lookup { refresh_ami };
        let ctx = context::context(&aws, &manifest, account.clone(), push, lookup).await?;
        for note in &ctx.notes {
            progress.info(note);
        }
        let mut nodes = stack::desired(&manifest, &ctx);
        let wanted = nodes.len();
        let owned = inventory::owned(&aws, &manifest, &account).await?;
        nodes.extend(inventory::unwanted(&nodes, owned));
        (Some(ctx), nodes, wanted)
    };
    plan::check_graph(&nodes).map_err(|e| Error::Usage {
        message: format!("internal: the stack's resource graph is broken: {e}"),
        hint: Some("this is a bug in deployer: please report it with the manifest".into()),
    })?;
    let stack = manifest.name.as_str();
    let seen = engine::observe(&aws, stack, &nodes).await?;
    // What `up` plans: the desired resources reconciled, then the unwanted deleted
    // (buckets with objects kept unless told otherwise).
    let up_plan = |adopt: bool, delete_buckets: bool| {
        Plan::up(stack, &nodes[..wanted], &seen[..wanted], adopt).remove_unwanted(
            &nodes,
            &seen,
            wanted,
            kept_by_down(delete_buckets),
        )
    };

    match cli.command {
        Command::Validate
        | Command::Build { .. }
        | Command::Runtime
        | Command::Logs { .. }
        | Command::Bench(_)
        | Command::Check
        | Command::Policy
        | Command::Predict { .. } => {
            unreachable!("handled above")
        }
        Command::Plan {
            detailed_exitcode,
            destroy,
            delete_buckets,
            ..
        } => {
            let plan = if destroy {
                Plan::down(stack, &nodes, &seen, kept_by_down(delete_buckets))
            } else {
                up_plan(false, delete_buckets)
            };
            print(
                cli.output,
                output::plan_text(&plan),
                output::plan_json(&plan),
            );
            Ok(if detailed_exitcode && !plan.is_empty() {
                2
            } else {
                0
            })
        }
        Command::Up { yes, .. } | Command::Down { yes, .. } => {
            let (plan, command, runtime) = match cli.command {
                Command::Up {
                    adopt,
                    no_runtime,
                    delete_buckets,
                    ..
                } => (
                    up_plan(adopt, delete_buckets),
                    "up",
                    !no_runtime && local::applies(&manifest),
                ),
                Command::Down { delete_buckets, .. } => (
                    Plan::down(stack, &nodes, &seen, kept_by_down(delete_buckets)),
                    "down",
                    false,
                ),
                _ => unreachable!("matched above"),
            };
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
            if !plan.is_empty() {
                eprint!("{}", output::plan_text(&plan));
                confirm(&format!("Apply these {} changes?", plan.changes.len()), yes)?;
            }
            let started = Instant::now();
            if command == "down" {
                // The local runtime's processes use what `down` deletes: stop them first.
                let stopped = local::stop(&manifest).await;
                if stopped > 0 {
                    progress.info(&format!("local runtime stopped ({stopped} processes)"));
                }
            }
            let applied = engine::execute(&aws, &plan, &nodes, &seen, &progress).await;
            let failed = applied
                .iter()
                .filter(|a| matches!(a.outcome, Outcome::Failed { .. }))
                .count();
            let mut endpoints = if command == "up" {
                endpoints(&aws, &manifest).await?
            } else {
                Vec::new()
            };
            if runtime && failed == 0 {
                progress
                    .info("starting the local runtime (both targets as processes on this machine)");
                let digest = ctx
                    .as_ref()
                    .and_then(|c| c.image.uri.split_once('@').map(|(_, d)| d));
                let state = local::start(&manifest, &file, digest, LOCAL_READY)
                    .await
                    .map_err(Error::Local)?;
                endpoints = local_endpoints(&manifest, &state);
            }
            let report = Report {
                stack,
                command,
                changes: &applied,
                seconds: started.elapsed().as_secs_f64(),
                ok: failed == 0,
                endpoints,
            };
            print(
                cli.output,
                output::report_text(&report),
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            );
            if failed > 0 {
                return Err(Error::Failed {
                    command,
                    total: applied.len(),
                    skipped: applied
                        .iter()
                        .filter(|a| matches!(a.outcome, Outcome::Skipped { .. }))
                        .count(),
                    causes: applied
                        .iter()
                        .filter_map(|a| match &a.outcome {
                            Outcome::Failed { error, code, hint } => Some(Cause {
                                id: a.change.id.clone(),
                                action: a.change.action,
                                error: error.clone(),
                                code: code.clone(),
                                hint: hint.clone(),
                            }),
                            _ => None,
                        })
                        .collect(),
                });
            }
            Ok(0)
        }
        Command::Status => {
            // What the manifest asks for, then what the stack owns and no longer wants
            // (what the next `up` deletes).
            let rows: Vec<StatusRow> = seen
                .iter()
                .enumerate()
                .filter(|(i, o)| *i < wanted || (o.exists && o.owned))
                .map(|(i, o)| StatusRow {
                    id: o.id.clone(),
                    state: match (o.exists, o.owned, o.diff.is_empty()) {
                        _ if i >= wanted => "unwanted",
                        (false, _, _) => "missing",
                        (true, false, _) => "foreign",
                        (true, true, false) => "drifted",
                        (true, true, true) => "ok",
                    },
                    detail: o.detail.clone(),
                })
                .collect();
            let runtime = local::state(&manifest);
            let mut text = output::status_text(stack, &rows);
            if let Some(state) = &runtime {
                text.push_str(&output::runtime_text(state));
            } else if local::applies(&manifest) {
                text.push_str("\nlocal runtime: not running (`deployer up` starts it)\n");
            }
            print(
                cli.output,
                text,
                serde_json::json!({"stack": stack, "resources": rows, "runtime": runtime})
                    .to_string(),
            );
            Ok(0)
        }
    }
}

/// What `down` empties and keeps: the buckets, unless told to delete them.
fn kept_by_down(delete_buckets: bool) -> &'static [resources::Kind] {
    if delete_buckets {
        &[]
    } else {
        &[resources::Kind::S3Bucket]
    }
}

/// Builds the predictor image from the repository that holds the manifest (or the
/// current directory).
fn build_image(
    manifest_file: &std::path::Path,
    source: Source,
    progress: &Progress,
) -> Result<image::Built, Error> {
    let here = std::env::current_dir().unwrap_or_default();
    let from = manifest_file
        .canonicalize()
        .ok()
        .and_then(|f| f.parent().map(std::path::Path::to_path_buf))
        .unwrap_or(here.clone());
    let root = image::source_root(&from)
        .or_else(|| image::source_root(&here))
        .ok_or_else(|| Error::Usage {
            message: "cannot find the predictor sources (a directory with `predictor/models/yolo11n.onnx`)".into(),
            hint: Some("run from the deployer repository, or set `image.uri` to a prebuilt image".into()),
        })?;
    let started = Instant::now();
    if source.predictor_bin.is_none() {
        progress.info("building the predictor (cargo build --release -p predictor)");
    }
    let inputs = image::locate(&root, source.predictor_bin)?;
    let built = image::build(&inputs).map_err(Error::Image)?;
    let size = built.size();
    progress.info(&format!(
        "built image {} in {:.1} s: {} layers, {:.1} MB compressed, {:.1} MB uncompressed",
        built.digest,
        started.elapsed().as_secs_f64(),
        built.layers.len(),
        size.compressed as f64 / 1e6,
        size.uncompressed as f64 / 1e6
    ));
    Ok(built)
}

/// `deployer build`: pushes (unless `no_push`) and prints the pinned reference.
async fn push_built(
    aws: &Aws,
    manifest: &Manifest,
    built: &image::Built,
    no_push: bool,
    format: Format,
    progress: &Progress,
) -> Result<u8, Error> {
    let repository = manifest.names().repository;
    let size = built.size();
    let layers: Vec<serde_json::Value> = built
        .layers
        .iter()
        .map(|l| serde_json::json!({"name": l.name, "digest": l.digest, "compressed": l.gzip.len(), "uncompressed": l.tar_size}))
        .collect();
    if no_push {
        print(
            format,
            format!("{}\n", built.digest),
            serde_json::json!({"digest": built.digest, "size": size, "layers": layers}).to_string(),
        );
        return Ok(0);
    }
    let registry = image::registry::Registry::connect(aws, manifest.image.registry.as_deref())
        .await
        .map_err(Error::Image)?;
    let pushed = registry
        .push(&repository, &manifest.image.tag, built)
        .await
        .map_err(Error::Image)?;
    progress.info(&format!(
        "pushed {}:{} in {:.2} s: {} blob(s) uploaded ({:.1} MB), {} already there",
        repository,
        pushed.tag,
        pushed.seconds,
        pushed.blobs_uploaded,
        pushed.bytes_uploaded as f64 / 1e6,
        pushed.blobs_skipped
    ));
    print(
        format,
        format!("{}\n", pushed.reference),
        serde_json::json!({"reference": pushed.reference, "push": pushed, "size": size, "layers": layers})
            .to_string(),
    );
    Ok(0)
}

/// How long `up` waits for the local runtime to serve (a cold image pull and unpack,
/// then the health checks of the first instance).
const LOCAL_READY: std::time::Duration = std::time::Duration::from_secs(300);

/// The local runtime's URLs of both targets' `POST /predict`.
fn local_endpoints(m: &Manifest, state: &serde_json::Value) -> Vec<Endpoint> {
    let path = m
        .serverless
        .route
        .split_once(' ')
        .map_or("/predict", |(_, p)| p);
    let mut out = Vec::new();
    for (target, enabled) in [
        ("serverful", m.serverful.enabled),
        ("serverless", m.serverless.enabled),
    ] {
        if let Some(url) = state[target]["url"].as_str().filter(|_| enabled) {
            let path = if target == "serverful" {
                "/predict"
            } else {
                path
            };
            out.push(Endpoint {
                target,
                url: format!("{url}{path}"),
            });
        }
    }
    out
}

/// The URLs requests go to now: the local runtime's for a local stack (which must be
/// running), else the stack's on AWS.
async fn live_endpoints(aws: &Aws, m: &Manifest) -> Result<Vec<Endpoint>, Error> {
    if !local::applies(m) {
        return endpoints(aws, m).await;
    }
    let state = local::state(m).ok_or_else(|| Error::Usage {
        message: format!("the local runtime of `{}` is not running", m.name),
        hint: Some("`deployer -f <manifest> up` starts it".into()),
    })?;
    Ok(local_endpoints(m, &state))
}

/// The URLs of both targets' `POST /predict`, as they are now (two reads).
async fn endpoints(aws: &Aws, manifest: &Manifest) -> Result<Vec<Endpoint>, Error> {
    let n = manifest.names();
    let mut out = Vec::new();
    if manifest.serverful.enabled
        && let Some(lb) = resources::elb::find_load_balancer(aws, &n.load_balancer).await?
    {
        let port = manifest.serverful.load_balancer.port;
        let host = lb.dns_name().unwrap_or_default();
        out.push(Endpoint {
            target: "serverful",
            url: if port == 80 {
                format!("http://{host}/predict")
            } else {
                format!("http://{host}:{port}/predict")
            },
        });
    }
    if manifest.serverless.enabled
        && let Some(api) = resources::apigw::find_api(aws, &n.http_api).await?
    {
        let path = manifest
            .serverless
            .route
            .split_once(' ')
            .map_or("/predict", |(_, p)| p);
        out.push(Endpoint {
            target: "serverless",
            url: format!("{}{path}", api.api_endpoint().unwrap_or_default()),
        });
    }
    Ok(out)
}
