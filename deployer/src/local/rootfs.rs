//! The image as the local runtime runs it: pulled by digest from the registry `up`
//! pushed to, its layers kept by digest, unpacked once per image into a root filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_client::Reference;
use sha2::{Digest, Sha256};

use crate::image::registry::Registry;

/// An unpacked image and what its config says about starting it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rootfs {
    /// `sha256:…` of the image manifest.
    pub digest: String,
    pub dir: PathBuf,
    pub entrypoint: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl Rootfs {
    /// The image's dynamic loader, for running without a chroot.
    pub fn loader(&self) -> Option<PathBuf> {
        ["lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1"]
            .iter()
            .map(|p| self.dir.join(p))
            .find(|p| p.exists())
    }

    /// Every directory of the image holding shared libraries, `:`-joined.
    pub fn library_path(&self) -> String {
        let mut dirs = Vec::new();
        for d in [
            "lib64",
            "lib",
            "lib/x86_64-linux-gnu",
            "lib/aarch64-linux-gnu",
            "usr/lib",
            "usr/lib64",
            "usr/lib/x86_64-linux-gnu",
            "usr/lib/aarch64-linux-gnu",
            "opt/predictor/bin",
        ] {
            let p = self.dir.join(d);
            if p.is_dir() {
                dirs.push(p.display().to_string());
            }
        }
        dirs.join(":")
    }

    /// The image's default model (where the predictor looks beside its binary), if it
    /// has one.
    pub fn model(&self) -> Option<PathBuf> {
        let path = crate::image::model_path(crate::manifest::Variant::Square);
        Some(super::process::inside(&self.dir, &path)).filter(|p| p.is_file())
    }
}

/// `host/repository@sha256:…` split into the registry host and the reference.
pub fn parse(uri: &str) -> Result<(String, Reference), String> {
    let reference: Reference = uri
        .parse()
        .map_err(|e| format!("`{uri}` is not an image reference: {e}"))?;
    Ok((reference.registry().to_string(), reference))
}

/// Pulls `uri` (missing blobs only) and unpacks it under `cache`, once per digest.
pub async fn prepare(registry: &Registry, uri: &str, cache: &Path) -> Result<Rootfs, String> {
    let (_, reference) = parse(uri)?;
    let (manifest, digest, config) = registry
        .client
        .pull_manifest_and_config(&reference, &registry.auth)
        .await
        .map_err(|e| format!("pulling {uri}: {e}"))?;
    let config: serde_json::Value =
        serde_json::from_str(&config).map_err(|e| format!("the config of {uri}: {e}"))?;
    let hex = digest.trim_start_matches("sha256:");
    let dir = cache.join("rootfs").join(hex);
    let blobs = cache.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| format!("creating {}: {e}", blobs.display()))?;
    if !dir.is_dir() {
        let started = std::time::Instant::now();
        let mut paths = Vec::new();
        for layer in &manifest.layers {
            let path = blobs.join(layer.digest.trim_start_matches("sha256:"));
            if !path.is_file() {
                let mut bytes = Vec::with_capacity(layer.size.max(0) as usize);
                registry
                    .client
                    .pull_blob(&reference, layer, &mut bytes)
                    .await
                    .map_err(|e| format!("pulling layer {} of {uri}: {e}", layer.digest))?;
                if format!("sha256:{}", hex::encode(Sha256::digest(&bytes))) != layer.digest {
                    return Err(format!(
                        "layer {} of {uri} does not match its digest",
                        layer.digest
                    ));
                }
                write_atomically(&path, &bytes)?;
            }
            paths.push(path);
        }
        let cache = cache.to_path_buf();
        let target = dir.clone();
        tokio::task::spawn_blocking(move || unpack(&paths, &cache, &target))
            .await
            .map_err(|e| format!("unpacking {uri}: {e}"))??;
        tracing::info!(
            "pulled and unpacked {uri} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Rootfs {
        digest,
        dir,
        entrypoint: strings(&config["config"]["Entrypoint"])
            .into_iter()
            .chain(strings(&config["config"]["Cmd"]))
            .collect(),
        env: strings(&config["config"]["Env"])
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("part-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Unpacks gzip layers in order into a fresh directory, then renames it to `target`, so
/// a half-unpacked image is never used.
fn unpack(layers: &[PathBuf], cache: &Path, target: &Path) -> Result<(), String> {
    let tmp = cache
        .join("rootfs")
        .join(format!(".unpacking-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    for layer in layers {
        let file = std::fs::File::open(layer).map_err(|e| format!("{}: {e}", layer.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(false);
        archive.set_overwrite(true);
        for entry in archive
            .entries()
            .map_err(|e| format!("{}: {e}", layer.display()))?
        {
            let mut entry = entry.map_err(|e| format!("{}: {e}", layer.display()))?;
            let path = entry.path().map_err(|e| e.to_string())?.into_owned();
            // OCI whiteouts: `.wh.name` deletes `name` from the layers below.
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && let Some(hidden) = name.strip_prefix(".wh.")
            {
                let victim = tmp.join(path.with_file_name(hidden));
                let _ = std::fs::remove_dir_all(&victim).or_else(|_| std::fs::remove_file(&victim));
                continue;
            }
            entry
                .unpack_in(&tmp)
                .map_err(|e| format!("unpacking {}: {e}", path.display()))?;
        }
    }
    match std::fs::rename(&tmp, target) {
        Ok(()) => Ok(()),
        // Another process unpacked the same image meanwhile: theirs is as good.
        Err(_) if target.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(format!("moving the image into {}: {e}", target.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::{Entry, layer};

    #[test]
    fn layers_unpack_in_order_with_whiteouts() {
        let dir = std::env::temp_dir().join(format!("deployer-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        let one = layer(
            "one",
            vec![
                Entry::file("/etc/a", 0o644, b"first".to_vec()),
                Entry::file("/etc/gone", 0o644, b"x".to_vec()),
                Entry::file("/bin/tool", 0o755, b"#!".to_vec()),
            ],
        )
        .unwrap();
        let two = layer(
            "two",
            vec![
                Entry::file("/etc/a", 0o644, b"second".to_vec()),
                Entry::file("/etc/.wh.gone", 0o644, Vec::new()),
            ],
        )
        .unwrap();
        let paths: Vec<PathBuf> = [&one, &two]
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let p = dir.join(format!("layer{i}"));
                std::fs::write(&p, &l.gzip).unwrap();
                p
            })
            .collect();
        let target = dir.join("rootfs/img");
        unpack(&paths, &dir, &target).unwrap();
        assert_eq!(std::fs::read(target.join("etc/a")).unwrap(), b"second");
        assert!(!target.join("etc/gone").exists(), "the whiteout removed it");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(target.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn references_split_into_host_and_digest() {
        let (host, r) = parse(&format!(
            "127.0.0.1:5000/s-predictor@sha256:{}",
            "a".repeat(64)
        ))
        .unwrap();
        assert_eq!(host, "127.0.0.1:5000");
        assert_eq!(r.repository(), "s-predictor");
        assert!(r.digest().is_some());
    }
}
