//! The detection service: one axum `Router`, served by `axum::serve` (ECS, local) or by
//! the Lambda runtime through `lambda_http` (API Gateway HTTP API and ALB events).

pub mod api;
pub mod config;
pub mod errors;
pub mod metrics;
pub mod pool;
pub mod storage;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use config::{Config, ModelSource};
use metrics::Metrics;
use pool::Pool;
use storage::Storage;

use crate::detector::{self, Detector, Settings};
use crate::engine::Threading;
use crate::postprocess::Thresholds;

/// This process, as responses report it: an id, and how many predictions it has served
/// (`seq == 1` is the cold one, the same on ECS, on Lambda and locally).
pub struct Instance {
    pub id: String,
    served: AtomicU64,
    pub started: Instant,
    requests: AtomicU64,
}

impl Instance {
    pub fn new() -> Instance {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Instance {
            id: format!("{:08x}-{:x}", nanos as u32, std::process::id()),
            served: AtomicU64::new(0),
            started: Instant::now(),
            requests: AtomicU64::new(0),
        }
    }

    /// The sequence number of the prediction being served: 1 for the process's first.
    pub fn next_seq(&self) -> u64 {
        self.served.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn next_request_id(&self) -> String {
        format!(
            "{}-{}",
            self.id,
            self.requests.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl Default for Instance {
    fn default() -> Self {
        Instance::new()
    }
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// Set once the model is loaded and warmed up; `/readyz` answers 200 from then on.
    pub pool: Arc<OnceLock<Pool>>,
    pub storage: Storage,
    pub metrics: Arc<Metrics>,
    pub instance: Arc<Instance>,
    pub model_name: String,
}

impl AppState {
    /// The state of a service that will serve `model` (loaded later by [`AppState::load`]).
    /// The model's name is known now, so every clone of the state (the router's) has it.
    pub fn new(config: Config, storage: Storage, model: &Path) -> AppState {
        AppState {
            config: Arc::new(config),
            pool: Arc::new(OnceLock::new()),
            storage,
            metrics: Arc::new(Metrics::default()),
            instance: Arc::new(Instance::new()),
            model_name: model
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
        }
    }

    /// Loads the detector (blocking: call it from a blocking thread or before serving)
    /// and makes the service ready.
    pub fn load(&self, model: PathBuf) -> Result<(), detector::DetectError> {
        let c = &self.config;
        let mut threading = Threading {
            spinning: c.spinning,
            ..Threading::default()
        };
        if let Some(n) = c.threads {
            threading.intra_threads = n;
        }
        let settings = Settings {
            thresholds: Thresholds {
                confidence: c.confidence,
                iou: c.iou,
                ..Thresholds::default()
            },
            max_pixels: c.max_pixels,
            ..Settings::default()
        };
        let detector = Detector::load(&model, threading, settings)?;
        let _ = self
            .pool
            .set(Pool::new(detector, c.max_inflight, c.queue_depth));
        Ok(())
    }
}

/// The one router both targets serve.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/predict", post(api::predict))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(api::openapi))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::observe,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Resolves the model: a file, the bundled one, or a download from S3 into /tmp.
pub async fn resolve_model(config: &Config, storage: &Storage) -> anyhow::Result<PathBuf> {
    match &config.model {
        Some(ModelSource::File(path)) => Ok(path.clone()),
        Some(ModelSource::S3 { bucket, key }) => {
            let dest = std::env::temp_dir().join("predictor-model.onnx");
            storage.download(bucket, key, &dest).await.map_err(|e| {
                anyhow::anyhow!("downloading the model s3://{bucket}/{key}: {}", e.message)
            })?;
            Ok(dest)
        }
        None => detector::bundled_model().ok_or_else(|| {
            anyhow::anyhow!("the bundled model was not found: set MODEL_PATH or MODEL_S3_URI")
        }),
    }
}

/// glibc's allocator, set before any thread starts: two arenas instead of eight per core
/// (the blocking pool's threads each took one and kept what they freed), and a fixed
/// threshold above which blocks are mapped and unmapped on free (by default it rises to
/// the largest block freed, so the 3-5 MB image buffers stayed in the heap after use).
/// Together about 25 MB less serving RSS; the cost, page faults on those buffers, is
/// well under a millisecond per request.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads run.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Serves HTTP until SIGTERM or Ctrl-C, then finishes the requests in flight.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let storage = Storage::from_env().await;
    let listener = tokio::net::TcpListener::bind((config.bind, config.port)).await?;
    let model = resolve_model(&config, &storage).await?;
    let state = AppState::new(config, storage, &model);
    let router = app(state.clone());
    eprintln!("listening on http://{}", listener.local_addr()?);

    // Listen first, load next: health checks answer while the model loads, readiness
    // only once it has run one inference.
    let started = state.instance.started;
    tokio::task::spawn_blocking(move || match state.load(model) {
        Ok(()) => eprintln!("ready in {:.0} ms", started.elapsed().as_secs_f64() * 1e3),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: finishing requests in flight");
}

/// Serves the same router through the Lambda runtime. The model is loaded in the init
/// phase, before the first event.
pub async fn lambda(config: Config) -> anyhow::Result<()> {
    let storage = Storage::from_env().await;
    let model = resolve_model(&config, &storage).await?;
    let state = AppState::new(config, storage, &model);
    let started = state.instance.started;
    state.load(model)?;
    eprintln!("ready in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    lambda_http::run(app(state))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}
