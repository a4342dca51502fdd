//! The inference engine behind a small trait, and its ONNX Runtime implementation.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from, in order:
//! `ORT_DYLIB_PATH`, the directory of the running executable, then the repository's
//! `.ort/lib/` (filled by `scripts/setup-ort.sh`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorRef, ValueType};

/// A model's output tensor as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Runs a detection model on a letterboxed NCHW float input.
pub trait Engine: Send + Sync {
    /// Input width and height the model expects; for a model with dynamic height and
    /// width, the largest (the size it was exported for).
    fn input_size(&self) -> (u32, u32);
    /// Whether the model takes any height and width that are multiples of 32: a photo is
    /// then letterboxed to the smallest such rectangle ("rect" mode) instead of the square.
    fn rect(&self) -> bool {
        false
    }
    /// Class names from the model's metadata, when it carries them.
    fn class_names(&self) -> Option<Vec<String>>;
    /// Runs one inference on `input` (3 x `height` x `width` floats).
    fn run(&self, input: &[f32], width: u32, height: u32) -> Result<Tensor, EngineError>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(
        "ONNX Runtime's shared library was not found (looked in: {searched})\n\
         hint: run `scripts/setup-ort.sh`, or set ORT_DYLIB_PATH to a libonnxruntime.so 1.32"
    )]
    RuntimeMissing { searched: String },
    #[error("loading ONNX Runtime from `{path}`: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("loading model `{path}`: {message}")]
    Model { path: PathBuf, message: String },
    #[error(
        "model input must be a float tensor [1, 3, H, W] with H and W both fixed or both dynamic, found {0}"
    )]
    UnsupportedInput(String),
    #[error("inference failed: {0}")]
    Run(String),
}

/// The long side a model with dynamic height and width is letterboxed to (what it was
/// exported and trained for).
pub const RECT_LONG_SIDE: u32 = 640;

/// How ONNX Runtime should use the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Threading {
    /// Threads inside one operator; defaults to the number of cores.
    pub intra_threads: usize,
    /// Whether idle intra-op threads spin before sleeping.
    pub spinning: bool,
}

impl Default for Threading {
    fn default() -> Self {
        Threading {
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            spinning: true,
        }
    }
}

/// The directory of the running executable: from `/proc/self/exe`, or from an absolute
/// `argv[0]` where `/proc` is not mounted (an empty container root).
pub fn exe_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok().or_else(|| {
        std::env::args_os()
            .next()
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    })?;
    exe.parent().map(Path::to_path_buf)
}

const LIB_NAMES: [&str; 2] = ["libonnxruntime.so", "libonnxruntime.so.1.32.0"];

/// Where ONNX Runtime is looked for, in order.
pub fn runtime_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = exe_dir() {
        out.extend(LIB_NAMES.iter().map(|n| dir.join(n)));
        out.extend(LIB_NAMES.iter().map(|n| dir.join("lib").join(n)));
    }
    let repo_lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ort/lib");
    out.extend(LIB_NAMES.iter().map(|n| repo_lib.join(n)));
    out
}

static RUNTIME: OnceLock<Result<ort::environment::Environment, EngineError>> = OnceLock::new();

/// Loads ONNX Runtime once per process; a failure is remembered and reported to every caller.
fn runtime() -> Result<&'static ort::environment::Environment, EngineError> {
    let loaded = RUNTIME.get_or_init(|| {
        let candidates = runtime_candidates();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            let searched = candidates.iter().map(|p| p.display().to_string());
            return Err(EngineError::RuntimeMissing {
                searched: searched.collect::<Vec<_>>().join(", "),
            });
        };
        let load_err = |message: String| EngineError::RuntimeLoad {
            path: path.clone(),
            message,
        };
        ort::init_from(path)
            .map_err(|e| load_err(e.to_string()))?
            .with_telemetry(false)
            .build()
            .map_err(|e| load_err(e.to_string()))
    });
    loaded.as_ref().map_err(Clone::clone)
}

/// ONNX Runtime on the CPU. One session, built once; runs are serialised because a run
/// already spreads over every intra-op thread.
pub struct OrtEngine {
    session: Mutex<Session>,
    input_size: (u32, u32),
    rect: bool,
    names: Option<Vec<String>>,
}

impl OrtEngine {
    pub fn load(model: &Path, threading: Threading) -> Result<Self, EngineError> {
        let env = runtime()?;
        let model_err = |e: &dyn std::fmt::Display| EngineError::Model {
            path: model.to_path_buf(),
            message: e.to_string(),
        };
        let started = std::time::Instant::now();
        // ONNX Runtime's CPU memory arena stays on: without it serving RSS fell from ~170
        // to ~130 MB, but every run then mapped and faulted in its activations afresh,
        // 12-20 % slower per request (same-load A/B, `scripts/bench-predictor.sh`).
        let session = Session::builder(env)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(Into::into)
            })
            .and_then(|b| {
                b.with_intra_threads(threading.intra_threads)
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|b| {
                b.with_intra_op_spinning(threading.spinning)
                    .map_err(Into::into)
            })
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| model_err(&e))?;

        let (input_size, rect) = match session.inputs().first().map(|i| i.dtype()) {
            Some(ValueType::Tensor { shape, .. })
                if shape.len() == 4 && shape[0] <= 1 && shape[1] == 3 =>
            {
                match (shape[2], shape[3]) {
                    (h, w) if h > 0 && w > 0 => ((w as u32, h as u32), false),
                    // Dynamic: `scripts/export-rect.py`'s model, exported for 640.
                    (h, w) if h < 0 && w < 0 => ((RECT_LONG_SIDE, RECT_LONG_SIDE), true),
                    _ => return Err(EngineError::UnsupportedInput(format!("{shape:?}"))),
                }
            }
            other => return Err(EngineError::UnsupportedInput(format!("{other:?}"))),
        };
        tracing::info!(
            "ONNX Runtime session for `{}` in {:.0} ms",
            model.display(),
            started.elapsed().as_secs_f64() * 1e3
        );
        let names = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("names"))
            .and_then(|raw| crate::labels::parse_names(&raw));
        Ok(OrtEngine {
            session: Mutex::new(session),
            input_size,
            rect,
            names,
        })
    }
}

impl Engine for OrtEngine {
    fn input_size(&self) -> (u32, u32) {
        self.input_size
    }

    fn rect(&self) -> bool {
        self.rect
    }

    fn class_names(&self) -> Option<Vec<String>> {
        self.names.clone()
    }

    fn run(&self, input: &[f32], w: u32, h: u32) -> Result<Tensor, EngineError> {
        let shape = [1usize, 3, h as usize, w as usize];
        let tensor = TensorRef::from_array_view((shape, input))
            .map_err(|e| EngineError::Run(e.to_string()))?;
        // A poisoned lock only means another run panicked; the session itself is intact.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![tensor])
            .map_err(|e| EngineError::Run(e.to_string()))?;
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| EngineError::Run(e.to_string()))?;
        Ok(Tensor {
            shape: shape.iter().map(|&d| d as usize).collect(),
            data: data.to_vec(),
        })
    }
}
