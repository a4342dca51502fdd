//! `predictor`: the detection service's binary. `serve` answers HTTP (or, under Lambda,
//! the runtime API, detected from `AWS_LAMBDA_RUNTIME_API`); `detect` runs on files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use predictor::detector::{self, Detector, Settings};
use predictor::engine::Threading;
use predictor::postprocess::Thresholds;
use predictor::service::{self, Config};

#[derive(Parser)]
#[command(
    version,
    about = "YOLO object detection: one pipeline, served on ECS and on Lambda"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect objects in image files.
    Detect(DetectArgs),
    /// Serve the HTTP API; configured by environment variables (see README).
    Serve,
}

#[derive(Args)]
struct DetectArgs {
    /// Images to read (JPEG, PNG or WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Minimum score for a detection.
    #[arg(long, default_value_t = 0.25, value_parser = unit_interval)]
    conf: f32,
    /// IoU above which overlapping boxes of one class are suppressed.
    #[arg(long, default_value_t = 0.45, value_parser = unit_interval)]
    iou: f32,
    /// Write annotated JPEGs into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// One JSON object per image on stdout, instead of a line of text.
    #[arg(long)]
    json: bool,
    /// ONNX model file [default: the bundled yolo11n.onnx].
    #[arg(long, env = "MODEL_PATH")]
    model: Option<PathBuf>,
    /// ONNX Runtime intra-op threads [default: number of cores].
    #[arg(long, env = "ORT_THREADS")]
    threads: Option<usize>,
}

fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    (0.0..=1.0)
        .contains(&v)
        .then_some(v)
        .ok_or_else(|| format!("`{s}` is not between 0 and 1"))
}

fn main() -> ExitCode {
    // Under Lambda the image's entrypoint is the same binary: serve the runtime API.
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if lambda {
        return serve(true);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Detect(args) => detect(args),
        Command::Serve => serve(false),
    }
}

fn serve(lambda: bool) -> ExitCode {
    service::tune_allocator();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if lambda {
            service::lambda(config).await
        } else {
            service::serve(config).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn detect(args: DetectArgs) -> ExitCode {
    let Some(model) = args.model.clone().or_else(detector::bundled_model) else {
        eprintln!(
            "error: no model given and the bundled `{}` was not found",
            detector::BUNDLED_MODEL
        );
        eprintln!("hint: pass --model PATH or set MODEL_PATH");
        return ExitCode::FAILURE;
    };
    let mut threading = Threading::default();
    if let Some(n) = args.threads {
        threading.intra_threads = n.max(1);
    }
    let settings = Settings {
        thresholds: Thresholds {
            confidence: args.conf,
            iou: args.iou,
            ..Thresholds::default()
        },
        ..Settings::default()
    };
    let detector = match Detector::load(&model, threading, settings) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &args.out
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: creating `{}`: {e}", dir.display());
        return ExitCode::FAILURE;
    }

    let mut failed = 0usize;
    for path in &args.images {
        if let Err(e) = detect_one(&detector, path, &args) {
            eprintln!("error: {}: {e}", path.display());
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} images failed", args.images.len());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// One line of `detect --json`. Serialised from the struct, not through `serde_json::Value`,
/// so `f32` scores print as `0.94`, not as their widened `f64`.
#[derive(serde::Serialize)]
struct Report<'a> {
    image: String,
    width: u32,
    height: u32,
    detections: &'a [predictor::Found],
    timings_ms: predictor::Timings,
}

fn detect_one(detector: &Detector, path: &Path, args: &DetectArgs) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut outcome = detector.detect(&bytes).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.out {
        let jpeg = detector.annotate(&mut outcome);
        let stem = path
            .file_stem()
            .unwrap_or(path.as_os_str())
            .to_string_lossy();
        let dest = dir.join(format!("{stem}.jpg"));
        std::fs::write(&dest, jpeg).map_err(|e| format!("writing `{}`: {e}", dest.display()))?;
    }
    if args.json {
        let line = Report {
            image: path.display().to_string(),
            width: outcome.width,
            height: outcome.height,
            detections: &outcome.detections,
            timings_ms: outcome.timings.rounded(),
        };
        println!(
            "{}",
            serde_json::to_string(&line).map_err(|e| e.to_string())?
        );
    } else {
        let found: Vec<String> = outcome
            .detections
            .iter()
            .map(|d| format!("{} {:.2}", d.label, d.score))
            .collect();
        let found = if found.is_empty() {
            "nothing".to_string()
        } else {
            found.join(", ")
        };
        println!(
            "{}  {}x{}  {}  ({:.1} ms, inference {:.1} ms)",
            path.display(),
            outcome.width,
            outcome.height,
            found,
            outcome.timings.total,
            outcome.timings.infer
        );
    }
    Ok(())
}
