//! `deployer`'s command line: the arguments, and each command handed to its module in
//! the library (`commands/`, `bench`, `predict`, `tail`, `local`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgAction, Parser, Subcommand};

use deployer::aws::{self, Aws};
use deployer::commands::build::{self, Source};
use deployer::commands::stack::{self, Load};
use deployer::commands::{check, policy};
use deployer::endpoints::live_endpoints;
use deployer::error::Error;
use deployer::manifest::Manifest;
use deployer::output::{self, Format, Progress};
use deployer::{bench, local, predict, tail, wait};

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
        /// Exit 0 when there are no changes, 2 when there are; an error in the input exits
        /// 1 (the other errors keep their codes).
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
            // The error's whole chain (the SDK's own errors under AWS's answer), for `-v`.
            tracing::info!(error = %aws::chain(&e), class = ?e.class(), "failed");
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
            ExitCode::from(if detailed {
                e.detailed_exit_code()
            } else {
                e.exit_code()
            })
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
    let format = cli.output;
    if let Command::Validate = cli.command {
        output::print(
            format,
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
        let built = build::build_image(&file, source, &progress)?;
        let aws = Aws::connect(&manifest).await;
        return build::push_built(&aws, &manifest, &built, no_push, format, &progress).await;
    }
    let aws = Aws::connect(&manifest).await;
    match cli.command {
        Command::Check => check::run(&aws, &manifest, format).await,
        Command::Policy => policy::run(&aws, &manifest, format).await,
        Command::Runtime => runtime(&aws, &manifest).await,
        Command::Bench(options) => bench::run(&aws, &manifest, &options, format).await,
        Command::Predict {
            target,
            body,
            inputs,
        } => predict_on(&aws, &manifest, target, body, &inputs, format).await,
        Command::Logs {
            target,
            follow,
            since,
        } => {
            let targets = match target {
                Some(t) => vec![t],
                None => vec![tail::Target::Serverful, tail::Target::Serverless],
            };
            tail::run(&aws, &manifest, &targets, since, follow, format).await?;
            Ok(0)
        }
        command => on_stack(command, &aws, &manifest, &file, format, &progress).await,
    }
}

/// `deployer runtime`: the local runtime in the foreground, for a stack on loopback.
async fn runtime(aws: &Aws, manifest: &Manifest) -> Result<u8, Error> {
    if !local::endpoint(manifest).is_some_and(|e| aws::is_loopback(&e)) {
        return Err(Error::Usage {
            message: format!(
                "stack `{}` is not on a local emulator: the local runtime runs only against a loopback `endpoint`",
                manifest.name
            ),
            hint: Some(
                "use `-f manifests/local.yaml`, or set `endpoint: http://127.0.0.1:4566`".into(),
            ),
        });
    }
    local::run(manifest, aws).await.map_err(Error::Local)?;
    Ok(0)
}

/// `deployer predict`: the photos through one target's live endpoint.
async fn predict_on(
    aws: &Aws,
    manifest: &Manifest,
    target: tail::Target,
    body: bool,
    inputs: &[String],
    format: output::Format,
) -> Result<u8, Error> {
    let name = match target {
        tail::Target::Serverful => "serverful",
        tail::Target::Serverless => "serverless",
    };
    let url = live_endpoints(aws, manifest)
        .await?
        .into_iter()
        .find(|e| e.target == name)
        .map(|e| e.url)
        .ok_or_else(|| Error::Usage {
            message: format!("stack `{}` has no {name} endpoint running", manifest.name),
            hint: Some("`deployer up` creates it".into()),
        })?;
    predict::run(aws, manifest, name, &url, inputs, body, format).await
}

/// `plan`, `up`, `down` and `status`: the stack loaded as each needs it, then the command.
async fn on_stack(
    command: Command,
    aws: &Aws,
    manifest: &Manifest,
    file: &std::path::Path,
    format: output::Format,
    progress: &Progress,
) -> Result<u8, Error> {
    let loaded = stack::load(aws, manifest, file, load_for(&command, manifest), progress).await?;
    let (plan, how) = match command {
        Command::Plan {
            detailed_exitcode,
            destroy,
            delete_buckets,
            ..
        } => {
            let plan = match destroy {
                true => loaded.down_plan(delete_buckets),
                false => loaded.up_plan(false, delete_buckets),
            };
            return stack::plan(&plan, detailed_exitcode, format);
        }
        Command::Status => return stack::status(manifest, &loaded, format),
        Command::Up {
            yes,
            adopt,
            delete_buckets,
            no_runtime,
            ..
        } => (
            loaded.up_plan(adopt, delete_buckets),
            stack::Apply {
                command: "up",
                yes,
                runtime: !no_runtime && local::applies(manifest),
            },
        ),
        Command::Down {
            yes,
            delete_buckets,
        } => (
            loaded.down_plan(delete_buckets),
            stack::Apply {
                command: "down",
                yes,
                runtime: false,
            },
        ),
        _ => unreachable!("the other commands are run by run_stack"),
    };
    stack::apply(aws, manifest, file, &loaded, &plan, how, format, progress).await
}

/// What `command` needs loaded: `up` builds the image unless told not to (or given one),
/// `down` and `plan --destroy` only what the stack owns.
fn load_for(command: &Command, manifest: &Manifest) -> Load {
    match command {
        Command::Plan {
            destroy,
            refresh_ami,
            ..
        } => Load {
            build: None,
            destroying: *destroy,
            refresh_ami: *refresh_ami,
        },
        Command::Up {
            source,
            skip_build,
            refresh_ami,
            ..
        } => Load {
            build: (!skip_build && manifest.image.uri.is_none()).then(|| source.clone()),
            destroying: false,
            refresh_ami: *refresh_ami,
        },
        Command::Down { .. } => Load {
            destroying: true,
            ..Load::default()
        },
        _ => Load::default(),
    }
}
