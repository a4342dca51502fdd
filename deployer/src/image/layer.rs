//! Deterministic image layers: a tar of explicit entries (parent directories included,
//! sorted, mtime 0, owner 0:0), gzip-compressed with no name or time in its header.
//! The same entries always give the same bytes, so the same digest.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// What a path in the image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Dir,
    File(Vec<u8>),
}

/// One entry of a layer, at an absolute path inside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub content: Content,
}

impl Entry {
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry {
            path: path.to_string(),
            mode,
            content: Content::Dir,
        }
    }

    pub fn file(path: &str, mode: u32, bytes: Vec<u8>) -> Entry {
        Entry {
            path: path.to_string(),
            mode,
            content: Content::File(bytes),
        }
    }
}

/// A finished layer: the compressed blob and the digests the manifest and config need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// What it holds, for the image history (`runtime libraries`, `model`, …).
    pub name: String,
    pub gzip: Vec<u8>,
    /// `sha256:` of the compressed blob (the manifest's layer digest).
    pub digest: String,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    pub tar_size: u64,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Every entry with its parent directories added (mode 0755 unless given), keyed and
/// so sorted by path.
pub fn with_parents(entries: Vec<Entry>) -> BTreeMap<String, Entry> {
    let mut all: BTreeMap<String, Entry> = BTreeMap::new();
    for e in entries {
        let mut parent = std::path::Path::new(&e.path).parent();
        while let Some(p) = parent {
            let s = p.to_string_lossy().to_string();
            if s == "/" || s.is_empty() {
                break;
            }
            all.entry(s.clone())
                .or_insert_with(|| Entry::dir(&s, 0o755));
            parent = p.parent();
        }
        all.insert(e.path.clone(), e);
    }
    all
}

/// The uncompressed tar of `entries` (and their parents), sorted, owned by root, mtime 0.
pub fn tar(entries: Vec<Entry>) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, e) in with_parents(entries) {
        let name = path.trim_start_matches('/');
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(e.mode);
        match &e.content {
            Content::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
            }
            Content::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, name, bytes.as_slice())?;
            }
        }
    }
    builder.into_inner()
}

/// Builds a layer from `entries`.
pub fn layer(name: &str, entries: Vec<Entry>) -> std::io::Result<Layer> {
    let tar = tar(entries)?;
    // The default GzEncoder header has no file name and mtime 0.
    let mut gz = GzEncoder::new(Vec::with_capacity(tar.len() / 2), Compression::new(6));
    gz.write_all(&tar)?;
    let gzip = gz.finish()?;
    Ok(Layer {
        name: name.to_string(),
        digest: sha256(&gzip),
        diff_id: sha256(&tar),
        tar_size: tar.len() as u64,
        gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry::file("/opt/predictor/bin/predictor", 0o755, b"\x7fELF".to_vec()),
            Entry::dir("/tmp", 0o1777),
            Entry::file("/etc/hosts", 0o644, b"127.0.0.1 localhost\n".to_vec()),
        ]
    }

    fn listing(tar_bytes: &[u8]) -> Vec<(String, u32, u64, u64, u64, bool)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.entry_type().is_dir(),
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_with_explicit_parents_owned_by_root_at_time_zero() {
        let got = listing(&tar(entries()).unwrap());
        let paths: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/hosts",
                "opt/",
                "opt/predictor/",
                "opt/predictor/bin/",
                "opt/predictor/bin/predictor",
                "tmp/"
            ]
        );
        for (path, mode, mtime, uid, gid, is_dir) in &got {
            assert_eq!((*mtime, *uid, *gid), (0, 0, 0), "{path}");
            // Lambda runs as a non-root user: everything must be world-readable.
            assert_eq!(mode & 0o004, 0o004, "{path} is not world-readable");
            if *is_dir {
                assert_eq!(mode & 0o001, 0o001, "{path} is not world-searchable");
            }
        }
        let tmp = got.iter().find(|e| e.0 == "tmp/").unwrap();
        assert_eq!(tmp.1, 0o1777);
    }

    #[test]
    fn the_same_entries_give_the_same_digests() {
        let a = layer("x", entries()).unwrap();
        let mut shuffled = entries();
        shuffled.reverse();
        let b = layer("x", shuffled).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.diff_id, b.diff_id);
        assert_ne!(a.digest, a.diff_id);
        let mut changed = entries();
        changed[0] = Entry::file("/opt/predictor/bin/predictor", 0o755, b"\x7fELF2".to_vec());
        assert_ne!(layer("x", changed).unwrap().digest, a.digest);
    }

    #[test]
    fn the_gzip_header_carries_no_time_or_name() {
        let l = layer("x", entries()).unwrap();
        // RFC 1952: bytes 4..8 are MTIME, byte 3 FLG (FNAME is bit 3).
        assert_eq!(&l.gzip[4..8], &[0, 0, 0, 0]);
        assert_eq!(l.gzip[3] & 0x08, 0);
        assert_eq!(l.diff_id, sha256(&tar(entries()).unwrap()));
    }
}
