//! `deployer build`, and the build `up` starts with: the predictor image made from this
//! repository without Docker, pushed to the stack's registry.

use std::path::PathBuf;
use std::time::Instant;

use crate::aws::Aws;
use crate::error::Error;
use crate::image;
use crate::manifest::Manifest;
use crate::output::{self, Format, Progress};

/// Where the image's pieces come from.
#[derive(clap::Args, Clone, Default)]
pub struct Source {
    /// A predictor binary to put in the image [default: `cargo build --release -p predictor`]
    #[arg(long, value_name = "PATH", env = "DEPLOYER_PREDICTOR_BIN")]
    pub predictor_bin: Option<PathBuf>,
}

/// Builds the predictor image from the repository that holds the manifest (or the
/// current directory).
pub fn build_image(
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
    let built = image::build(&inputs)?;
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
pub async fn push_built(
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
        output::print(
            format,
            format!("{}\n", built.digest),
            serde_json::json!({"digest": built.digest, "size": size, "layers": layers}).to_string(),
        );
        return Ok(0);
    }
    let registry =
        image::registry::Registry::connect(aws, manifest.image.registry.as_deref()).await?;
    let pushed = registry
        .push(&repository, &manifest.image.tag, built)
        .await?;
    progress.info(&format!(
        "pushed {}:{} in {:.2} s: {} blob(s) uploaded ({:.1} MB), {} already there",
        repository,
        pushed.tag,
        pushed.seconds,
        pushed.blobs_uploaded,
        pushed.bytes_uploaded as f64 / 1e6,
        pushed.blobs_skipped
    ));
    output::print(
        format,
        format!("{}\n", pushed.reference),
        serde_json::json!({"reference": pushed.reference, "push": pushed, "size": size, "layers": layers})
            .to_string(),
    );
    Ok(0)
}
