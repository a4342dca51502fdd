//! `deployer`: reconciles AWS to a YAML manifest: one ML inference service, deployed
//! serverful (ECS on EC2 behind an ALB) and serverless (Lambda behind an HTTP API).

mod aws;
mod engine;
mod error;
mod manifest;
mod output;
mod plan;
mod resources;
mod stack;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{ArgAction, Parser, Subcommand};

use crate::aws::Aws;
use crate::engine::Outcome;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::output::{Format, Progress, Report, StatusRow};
use crate::plan::Plan;
use crate::stack::Account;

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
    /// Show the changes `up` (or `down`, with --destroy) would make.
    Plan {
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan the deletion of the stack instead.
        #[arg(long)]
        destroy: bool,
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
    },
    /// Delete every resource of the stack that carries its ownership tag.
    Down {
        /// Do not ask for confirmation (never asked without a terminal).
        #[arg(short, long)]
        yes: bool,
    },
    /// Show every resource of the stack and its state; changes nothing.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
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
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
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
    let file = manifest_path(cli.file)?;
    let manifest = Manifest::load(&file)?;
    if let Command::Validate = cli.command {
        print(
            cli.output,
            format!("{}: ok (stack `{}`)\n", file.display(), manifest.name),
            serde_json::json!({"file": file, "stack": manifest.name, "ok": true}).to_string(),
        );
        return Ok(0);
    }

    let progress = Progress::new();
    let aws = Aws::connect(&manifest).await;
    let account = Account {
        id: aws.account().await?.to_string(),
        partition: aws.partition().to_string(),
        region: manifest.region.clone(),
    };
    let nodes = stack::desired(&manifest, &account);
    let stack = manifest.name.as_str();
    let seen = engine::observe(&aws, stack, &nodes).await?;

    match cli.command {
        Command::Validate => unreachable!("handled above"),
        Command::Plan {
            detailed_exitcode,
            destroy,
        } => {
            let plan = if destroy {
                Plan::down(stack, &nodes, &seen)
            } else {
                Plan::up(stack, &nodes, &seen, false)
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
        Command::Up { yes, .. } | Command::Down { yes } => {
            let (plan, command) = match cli.command {
                Command::Up { adopt, .. } => (Plan::up(stack, &nodes, &seen, adopt), "up"),
                _ => (Plan::down(stack, &nodes, &seen), "down"),
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
            let applied = engine::execute(&aws, &plan, &nodes, &seen, &progress).await;
            let failed = applied
                .iter()
                .filter(|a| matches!(a.outcome, Outcome::Failed { .. }))
                .count();
            let report = Report {
                stack,
                command,
                changes: &applied,
                seconds: started.elapsed().as_secs_f64(),
                ok: failed == 0,
            };
            print(
                cli.output,
                output::report_text(&report),
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            );
            if failed > 0 {
                return Err(Error::Failed {
                    failed,
                    total: applied.len(),
                });
            }
            Ok(0)
        }
        Command::Status => {
            let rows: Vec<StatusRow> = seen
                .iter()
                .map(|o| StatusRow {
                    id: o.id.clone(),
                    state: match (o.exists, o.owned, o.diff.is_empty()) {
                        (false, _, _) => "missing",
                        (true, false, _) => "foreign",
                        (true, true, false) => "drifted",
                        (true, true, true) => "ok",
                    },
                    detail: o.detail.clone(),
                })
                .collect();
            print(
                cli.output,
                output::status_text(stack, &rows),
                serde_json::json!({"stack": stack, "resources": rows}).to_string(),
            );
            Ok(0)
        }
    }
}
