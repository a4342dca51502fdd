//! The shared libraries an executable needs at run time: its `ldd` closure on the build
//! machine, each to be installed at the path the dynamic loader looks for it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::BuildError;

/// A library `ldd` could not find on this machine.
#[derive(Debug, PartialEq, Eq)]
pub struct Missing {
    pub library: String,
}

/// The libraries `ldd` prints for one executable or library: absolute paths, the
/// dynamic loader included, the kernel's vDSO left out.
pub fn parse_ldd(output: &str) -> Result<BTreeSet<String>, Missing> {
    let mut libs = BTreeSet::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("statically linked") || line.contains("not a dynamic executable") {
            continue;
        }
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(Missing {
                        library: name.trim().to_string(),
                    });
                }
                rest.split_whitespace().next().unwrap_or_default()
            }
            // The loader, or the vDSO (which has no path).
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libs.insert(path.to_string());
        }
    }
    Ok(libs)
}

/// The shared-library closure of every file in `binaries` (`ldd` already follows
/// dependencies of dependencies).
pub fn closure(binaries: &[&Path]) -> Result<BTreeSet<String>, BuildError> {
    let mut all = BTreeSet::new();
    for b in binaries {
        let failed = |reason: String| BuildError::Ldd {
            binary: b.to_path_buf(),
            reason,
        };
        let out = Command::new("ldd")
            .arg(b)
            .output()
            .map_err(|e| failed(e.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() && !text.contains("statically linked") {
            return Err(failed(String::from_utf8_lossy(&out.stderr).trim().into()));
        }
        all.extend(parse_ldd(&text).map_err(|m| BuildError::MissingLibrary {
            binary: b.to_path_buf(),
            library: m.library,
        })?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_and_loader_are_found_and_the_vdso_is_not() {
        let out = "\tlinux-vdso.so.1 (0x00007ffc8a5f2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0c1c9e0000)\n\
                   \tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0c1c600000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1c41f000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1ca2f000)\n";
        let libs: Vec<String> = parse_ldd(out).unwrap().into_iter().collect();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libstdc++.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }

    #[test]
    fn a_missing_library_is_an_error_naming_it() {
        let out = "\tlibonnxruntime.so.1 => not found\n";
        assert_eq!(
            parse_ldd(out).unwrap_err(),
            Missing {
                library: "libonnxruntime.so.1".into()
            }
        );
    }

    #[test]
    fn the_closure_of_this_test_binary_includes_libc_and_the_loader() {
        let me = std::env::current_exe().unwrap();
        let libs = closure(&[&me]).unwrap();
        assert!(libs.iter().any(|l| l.ends_with("/libc.so.6")), "{libs:?}");
        assert!(libs.iter().any(|l| l.contains("ld-linux")), "{libs:?}");
    }
}
