//! The predictor's container image, built without a Docker daemon (as `ko` and `jib`
//! do): no base image, just layers holding the binary, the ONNX Runtime library it
//! loads, their shared-library closure from the build machine, the model and the few
//! files glibc and TLS need. The layout is the Dockerfile's, so either image behaves
//! the same on ECS and Lambda.

pub mod closure;
pub mod layer;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use serde_json::json;

use crate::manifest::Variant;
use layer::{Entry, Layer, sha256};

/// Where `variant`'s model is inside the image.
pub fn model_path(variant: Variant) -> String {
    format!("{MODELS_DIR}/{}", variant.file())
}

pub const BINARY: &str = "/opt/predictor/bin/predictor";
pub const ORT_LIB: &str = "/opt/predictor/bin/libonnxruntime.so";
/// The bundled models, one file per [`Variant`], the square one also where the
/// predictor looks by default (`../models/yolo11n.onnx` beside its binary).
pub const MODELS_DIR: &str = "/opt/predictor/models";
pub const PORT: u16 = 8080;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A manifest annotation with the sum of the uncompressed layers, for `status`.
pub const UNCOMPRESSED_ANNOTATION: &str = "dev.deployer.image.uncompressed-size";

/// The files an image is made of, on the build machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub binary: PathBuf,
    pub ort_lib: PathBuf,
    /// The directory holding every [`Variant`]'s file (`predictor/models`).
    pub models: PathBuf,
}

/// A built image, ready to push.
#[derive(Debug, Clone)]
pub struct Built {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    /// `sha256:` of the manifest: the image's identity.
    pub digest: String,
    /// The OCI name of the build machine's architecture (`amd64`, `arm64`).
    pub architecture: String,
}

/// Sizes of an image, as `build` and `status` report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Size {
    pub compressed: u64,
    pub uncompressed: u64,
}

impl Built {
    pub fn size(&self) -> Size {
        Size {
            compressed: self.layers.iter().map(|l| l.gzip.len() as u64).sum::<u64>()
                + self.config.len() as u64,
            uncompressed: self.layers.iter().map(|l| l.tar_size).sum(),
        }
    }
}

/// The OCI architecture name of this machine (what the binary was built for).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Lambda's name for an OCI architecture.
pub fn lambda_architecture(oci: &str) -> &'static str {
    match oci {
        "arm64" => "arm64",
        _ => "x86_64",
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The environment both targets start the predictor with (the manifest adds the rest).
pub fn env() -> Vec<String> {
    vec![
        format!("PORT={PORT}"),
        format!("ORT_DYLIB_PATH={ORT_LIB}"),
        // glibc's loader finds the libraries at their usual paths; nothing else is set.
        "PATH=/opt/predictor/bin".to_string(),
    ]
}

/// The three layers, least to most often changed: runtime libraries (and the files
/// glibc and TLS need), the model, the binary. A code change re-uploads only the last.
pub fn layers(inputs: &Inputs) -> Result<Vec<Layer>, BuildError> {
    let libs = closure::closure(&[&inputs.binary, &inputs.ort_lib])?;
    let mut runtime = vec![
        Entry::dir("/tmp", 0o1777),
        Entry::file(
            "/etc/hosts",
            0o644,
            b"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n".to_vec(),
        ),
        Entry::file("/etc/nsswitch.conf", 0o644, b"hosts: files dns\n".to_vec()),
        Entry::file(ORT_LIB, 0o755, read(&inputs.ort_lib)?),
    ];
    for lib in &libs {
        // Installed at the path the loader asked for, with the symlink's target's bytes.
        runtime.push(Entry::file(lib, 0o755, read(Path::new(lib))?));
    }
    // rustls in the AWS SDK reads the platform's roots when it has them.
    let roots = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if roots.is_file() {
        runtime.push(Entry::file(
            "/etc/ssl/certs/ca-certificates.crt",
            0o644,
            read(roots)?,
        ));
    }
    let mut model = Vec::new();
    for variant in Variant::ALL {
        let file = inputs.models.join(variant.file());
        model.push(Entry::file(&model_path(variant), 0o644, read(&file)?));
    }
    let binary = vec![Entry::file(BINARY, 0o755, read(&inputs.binary)?)];
    // Compressing is most of a build: one thread per layer.
    let parts = [
        ("runtime libraries, ONNX Runtime, /etc and /tmp", runtime),
        ("model", model),
        ("predictor binary", binary),
    ];
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(name, entries)| s.spawn(move || layer::layer(name, entries)))
            .collect();
        handles
            .into_iter()
            .zip(["runtime", "model", "binary"])
            .map(|(h, name)| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    .map_err(|source| BuildError::Layer { name, source })
            })
            .collect()
    })
}

/// The image config: platform, entrypoint, environment, port, layer diff ids, history.
pub fn config(layers: &[Layer], architecture: &str) -> Vec<u8> {
    let epoch = "1970-01-01T00:00:00Z";
    let config = json!({
        "created": epoch,
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Entrypoint": [BINARY, "serve"],
            "Env": env(),
            "ExposedPorts": {format!("{PORT}/tcp"): {}},
            "WorkingDir": "/",
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|l| json!({
            "created": epoch,
            "created_by": format!("deployer build: {}", l.name),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&config).expect("JSON values serialize")
}

/// A single-platform OCI image manifest (never an index: Lambda refuses those).
pub fn manifest(layers: &[Layer], config: &[u8]) -> Vec<u8> {
    let uncompressed: u64 = layers.iter().map(|l| l.tar_size).sum();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": CONFIG_TYPE,
            "digest": sha256(config),
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": LAYER_TYPE,
            "digest": l.digest,
            "size": l.gzip.len(),
        })).collect::<Vec<_>>(),
        "annotations": {UNCOMPRESSED_ANNOTATION: uncompressed.to_string()},
    });
    serde_json::to_vec(&manifest).expect("JSON values serialize")
}

/// Builds the image from `inputs`.
pub fn build(inputs: &Inputs) -> Result<Built, BuildError> {
    let layers = layers(inputs)?;
    let architecture = host_architecture().to_string();
    let config = config(&layers, &architecture);
    let manifest = manifest(&layers, &config);
    Ok(Built {
        digest: sha256(&manifest),
        layers,
        config,
        manifest,
        architecture,
    })
}

/// Where the predictor's sources, model and ONNX Runtime are: the repository that holds
/// `dir` (or one of its parents).
pub fn source_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            d.join("predictor/models/yolo11n.onnx").is_file() && d.join("Cargo.toml").is_file()
        })
        .map(Path::to_path_buf)
}

/// Why the image's inputs could not be made: what the user reads, with the command
/// or the path involved.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `cargo` could not be started.
    #[error("cannot run `{program}` to build the predictor: {reason}")]
    NoCargo { program: String, reason: String },
    /// The build ran and failed: its command and last error lines.
    #[error("`{command}` failed:{}", .lines.iter().map(|l| format!("\n  {l}")).collect::<String>())]
    Failed { command: String, lines: Vec<String> },
    /// ONNX Runtime's library is not where it was looked for.
    #[error("ONNX Runtime is not at `{}` ({origin})", .path.display())]
    OrtMissing { path: PathBuf, origin: &'static str },
    /// The predictor binary given (or built) is not there.
    #[error("the predictor binary `{}` does not exist", .path.display())]
    NoBinary { path: PathBuf },
    /// `cargo metadata` did not say where the build went.
    #[error("`cargo metadata`: {reason}")]
    Metadata { reason: String },
    /// A shared library the binaries need is not on this machine.
    #[error("`{}` needs `{library}`, which is not on this machine", .binary.display())]
    MissingLibrary { binary: PathBuf, library: String },
    /// `ldd` could not tell the binaries' libraries.
    #[error("`ldd {}` failed: {reason}", .binary.display())]
    Ldd { binary: PathBuf, reason: String },
    /// A file of the image could not be read.
    #[error("cannot read `{}`: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A layer could not be written.
    #[error("building the {name} layer: {source}")]
    Layer {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// A tool or library missing from this machine is a precondition; a binary that is
    /// not where the arguments say is the input; the rest is a failed build.
    pub fn class(&self) -> crate::error::Class {
        use crate::error::Class;
        match self {
            BuildError::NoCargo { .. }
            | BuildError::OrtMissing { .. }
            | BuildError::MissingLibrary { .. }
            | BuildError::Ldd { .. } => Class::Precondition,
            BuildError::NoBinary { .. } => Class::Input,
            BuildError::Failed { .. }
            | BuildError::Metadata { .. }
            | BuildError::Read { .. }
            | BuildError::Layer { .. } => Class::Failed,
        }
    }
}

/// The inputs of a build: the given predictor binary, or a fresh release build of it.
pub fn locate(root: &Path, binary: Option<PathBuf>) -> Result<Inputs, BuildError> {
    let binary = match binary {
        Some(b) => b,
        None => cargo_build(root)?,
    };
    if !binary.is_file() {
        return Err(BuildError::NoBinary { path: binary });
    }
    let (ort_lib, origin) = match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => (PathBuf::from(p), "`ORT_DYLIB_PATH`"),
        None => (
            root.join(".ort/lib/libonnxruntime.so"),
            "where `scripts/setup-ort.sh` puts it",
        ),
    };
    if !ort_lib.is_file() {
        return Err(BuildError::OrtMissing {
            path: ort_lib,
            origin,
        });
    }
    Ok(Inputs {
        binary,
        ort_lib,
        models: root.join("predictor/models"),
    })
}

/// The command `up` and `build` run, as the user would type it.
const BUILD_COMMAND: &str = "cargo build --release --locked -p predictor";

/// How many of a failed build's error lines are shown.
const ERROR_LINES: usize = 5;

/// `cargo build --release -p predictor` in `root`; the path of the binary it made.
fn cargo_build(root: &Path) -> Result<PathBuf, BuildError> {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The compiler's diagnostics as JSON on stdout (their level is a field), one short
    // line each; cargo's own errors (a stale lock file, a missing package) on stderr.
    let out = Command::new(&program)
        .args(BUILD_COMMAND.split(' ').skip(1))
        .args(["--quiet", "--message-format=json-diagnostic-short"])
        .current_dir(root)
        .output()
        .map_err(|e| BuildError::NoCargo {
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => "not found".into(),
                _ => e.to_string(),
            },
            program: program.clone(),
        })?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            command: BUILD_COMMAND.into(),
            lines: error_lines(&out.stdout, &out.stderr),
        });
    }
    let meta = Command::new(&program)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .map_err(|e| BuildError::Metadata {
            reason: e.to_string(),
        })?;
    let meta: serde_json::Value =
        serde_json::from_slice(&meta.stdout).map_err(|e| BuildError::Metadata {
            reason: e.to_string(),
        })?;
    let target = meta["target_directory"]
        .as_str()
        .ok_or_else(|| BuildError::Metadata {
            reason: "no `target_directory` in its answer".into(),
        })?;
    Ok(Path::new(target).join("release/predictor"))
}

/// The last error lines of a failed build: the compiler's errors (level `error`), else
/// the end of what cargo printed.
fn error_lines(stdout: &[u8], stderr: &[u8]) -> Vec<String> {
    let compiler: Vec<String> = String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-message" && m["message"]["level"] == "error")
        .filter_map(|m| {
            m["message"]["rendered"]
                .as_str()
                .map(|r| r.trim().to_string())
        })
        .collect();
    let lines = if compiler.is_empty() {
        String::from_utf8_lossy(stderr)
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    } else {
        compiler
    };
    lines[lines.len().saturating_sub(ERROR_LINES)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fake_layers() -> Vec<Layer> {
        vec![
            layer::layer("runtime", vec![Entry::dir("/tmp", 0o1777)]).unwrap(),
            layer::layer("binary", vec![Entry::file(BINARY, 0o755, b"bin".to_vec())]).unwrap(),
        ]
    }

    #[test]
    fn config_names_platform_entrypoint_and_diff_ids() {
        let layers = fake_layers();
        let c: Value = serde_json::from_slice(&config(&layers, "amd64")).unwrap();
        assert_eq!(c["architecture"], "amd64");
        assert_eq!(c["os"], "linux");
        assert_eq!(c["config"]["Entrypoint"], json!([BINARY, "serve"]));
        assert!(
            c["config"]["Entrypoint"][0]
                .as_str()
                .unwrap()
                .starts_with('/')
        );
        assert_eq!(c["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
        assert!(
            c["config"]["Env"]
                .as_array()
                .unwrap()
                .contains(&json!("PORT=8080"))
        );
        assert_eq!(c["rootfs"]["type"], "layers");
        assert_eq!(
            c["rootfs"]["diff_ids"],
            json!([layers[0].diff_id, layers[1].diff_id])
        );
        assert_eq!(c["history"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn manifest_is_a_single_platform_oci_manifest() {
        let layers = fake_layers();
        let config = config(&layers, "amd64");
        let m: Value = serde_json::from_slice(&manifest(&layers, &config)).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], MANIFEST_TYPE);
        assert!(
            m.get("manifests").is_none(),
            "an index, which Lambda refuses"
        );
        assert_eq!(m["config"]["digest"], json!(sha256(&config)));
        assert_eq!(m["config"]["size"], json!(config.len()));
        assert_eq!(m["layers"][1]["digest"], json!(layers[1].digest));
        assert_eq!(m["layers"][1]["mediaType"], LAYER_TYPE);
    }

    #[test]
    fn architectures_map_to_lambda_names() {
        assert_eq!(lambda_architecture("amd64"), "x86_64");
        assert_eq!(lambda_architecture("arm64"), "arm64");
    }
}
