//! `deployer build` against a real registry (Debian's `docker-registry`, with htpasswd
//! Basic auth as ECR uses), checked with real image tools: `skopeo` reads what was
//! pushed, `umoci` unpacks it (and checks every diff id), and the unpacked root runs
//! the predictor as a non-root user in an empty, read-only root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Moto, deployer, deployer_command, local_manifest_with_image, predictor_bin};
use sha2::Digest;
use testkit::{Behaviour, Proxy, Registry, free_port, http};

fn manifest(dir: &Path, registry: &Registry) -> PathBuf {
    let file = dir.join("image.yaml");
    std::fs::write(
        &file,
        format!(
            "name: yolo-img\nregion: us-east-1\nimage:\n  registry: {}\n",
            registry.host
        ),
    )
    .unwrap();
    file
}

fn build(moto: &Moto, registry: &Registry, manifest: &Path, binary: &Path) -> serde_json::Value {
    let (user, password) = registry.credentials.clone().unwrap();
    let out = deployer_command(&[
        "-f",
        manifest.to_str().unwrap(),
        "build",
        "-o",
        "json",
        "--predictor-bin",
        binary.to_str().unwrap(),
    ])
    .env("AWS_ENDPOINT_URL", &moto.endpoint)
    .env("DEPLOYER_REGISTRY_USERNAME", user)
    .env("DEPLOYER_REGISTRY_PASSWORD", password)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprint!("{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn skopeo(registry: &Registry, args: &[&str]) -> String {
    let (user, password) = registry.credentials.clone().unwrap();
    let out = Command::new("skopeo")
        .args(args)
        .arg(if args[0] == "copy" {
            "--src-creds"
        } else {
            "--creds"
        })
        .arg(format!("{user}:{password}"))
        .output()
        .expect("skopeo (run scripts/setup-test-tools.sh)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test(flavor = "multi_thread")]
async fn build_pushes_an_image_that_skopeo_reads_umoci_unpacks_and_runs_in_an_empty_root() {
    let moto = Moto::start();
    let registry = Registry::start(true);
    let work = tempdir("image");
    let manifest = manifest(&work, &registry);
    let binary = predictor_bin();

    let first = build(&moto, &registry, &manifest, &binary);
    let reference = first["reference"].as_str().unwrap().to_string();
    let digest = first["push"]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        reference,
        format!("{}/yolo-img-predictor@{digest}", registry.host)
    );
    assert_eq!(first["push"]["blobs_uploaded"], 4, "{first:#}");
    let uploads = registry.blob_uploads();
    assert_eq!(uploads, 4, "{}", registry.log());
    eprintln!(
        "image: {} compressed, {} uncompressed; push {:.2} s",
        first["size"]["compressed"], first["size"]["uncompressed"], first["push"]["seconds"]
    );

    // The same inputs give the same digest, and a second push transfers no blob.
    let second = build(&moto, &registry, &manifest, &binary);
    assert_eq!(second["push"]["digest"], digest.as_str());
    assert_eq!(second["push"]["blobs_uploaded"], 0);
    assert_eq!(second["push"]["unchanged"], true);
    assert_eq!(
        registry.blob_uploads(),
        uploads,
        "a second push uploaded blobs"
    );

    // A code change re-uploads only the binary's layer.
    let changed = work.join("predictor");
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"\0changed");
    std::fs::write(&changed, bytes).unwrap();
    set_executable(&changed);
    let third = build(&moto, &registry, &manifest, &changed);
    assert_ne!(third["push"]["digest"], digest.as_str());
    // The binary's layer and the config (its diff ids changed); runtime and model stay.
    assert_eq!(third["push"]["blobs_uploaded"], 2, "{third:#}");
    assert_eq!(third["push"]["blobs_skipped"], 2, "{third:#}");
    // Put the original back for what follows.
    build(&moto, &registry, &manifest, &binary);

    let src = format!("docker://{}/yolo-img-predictor:latest", registry.host);
    let raw: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["inspect", "--raw", "--tls-verify=false", &src],
    ))
    .unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(
        raw.get("manifests").is_none(),
        "an index: Lambda refuses those"
    );
    let layers = raw["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    let config: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["inspect", "--config", "--tls-verify=false", &src],
    ))
    .unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/opt/predictor/bin/predictor", "serve"])
    );
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    // umoci checks every layer against its diff id while unpacking.
    let layout = work.join("layout");
    skopeo(
        &registry,
        &[
            "copy",
            "--src-tls-verify=false",
            &src,
            &format!("oci:{}:latest", layout.display()),
        ],
    )
    .lines()
    .for_each(drop);
    let bundle = work.join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci (run scripts/setup-test-tools.sh)");
    assert!(
        out.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = bundle.join("rootfs");
    assert_eq!(mode(&root.join("opt/predictor/bin/predictor")), 0o755);
    assert_eq!(
        mode(&root.join("opt/predictor/bin/libonnxruntime.so")),
        0o755
    );
    for model in [
        "yolo11n.onnx",
        "yolo11n-rect.onnx",
        "yolo11n-rect-int8.onnx",
    ] {
        let bundled = root.join("opt/predictor/models").join(model);
        assert_eq!(mode(&bundled), 0o644, "{model}");
        assert_eq!(
            std::fs::read(&bundled).unwrap(),
            std::fs::read(common::repo_root().join("predictor/models").join(model)).unwrap(),
            "{model}"
        );
    }
    assert_eq!(mode(&root.join("tmp")), 0o1777);
    assert!(root.join("lib64/ld-linux-x86-64.so.2").is_file());
    assert!(root.join("etc/hosts").is_file());
    let entries = count_files(&root);
    assert!(
        entries < 40,
        "the image holds {entries} files: more than its closure"
    );

    // The unpacked root runs the predictor: empty root, read-only, non-root user.
    let port = free_port();
    let env: Vec<(String, String)> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e.as_str()?
                .split_once('=')
                .map(|(k, v)| (k.into(), v.into()))
        })
        .collect();
    let mut child = run_in_root(&root, port, &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(r) = http("GET", &format!("http://127.0.0.1:{port}/readyz"), &[], &[])
            && r.status == 200
        {
            break r;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the predictor exited in the unpacked root: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the predictor never became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ready.status, 200);
    let health = http("GET", &format!("http://127.0.0.1:{port}/healthz"), &[], &[]).unwrap();
    assert_eq!(health.status, 200);
    kill_tree(child.id());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_clear_error_and_pushes_nothing() {
    let moto = Moto::start();
    let registry = Registry::start(true);
    let work = tempdir("image-auth");
    let manifest = manifest(&work, &registry);
    let out = deployer_command(&[
        "-f",
        manifest.to_str().unwrap(),
        "build",
        "--predictor-bin",
        predictor_bin().to_str().unwrap(),
    ])
    .env("AWS_ENDPOINT_URL", &moto.endpoint)
    .env("DEPLOYER_REGISTRY_USERNAME", "pusher")
    .env("DEPLOYER_REGISTRY_PASSWORD", "wrong")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("error: image:"), "{stderr}");
    assert!(stderr.contains(&registry.host), "{stderr}");
    assert_eq!(registry.blob_uploads(), 0);
    let _ = std::fs::remove_dir_all(&work);
}

/// ECR answers a missing image with its own envelopes, whose messages say neither
/// "unknown" nor "404": `NAME_UNKNOWN` before the repository holds anything,
/// `MANIFEST_UNKNOWN` for a tag it lacks. `plan` and `status` must see a missing image
/// there, not fail (on a fresh account, every command did).
#[tokio::test(flavor = "multi_thread")]
async fn ecr_not_found_answers_are_a_missing_image_not_an_error() {
    let moto = Moto::start();
    let registry = Registry::start(false);
    let proxy = Proxy::start(&registry.host);
    proxy.set(Behaviour {
        ecr_errors: true,
        ..Behaviour::default()
    });
    let m = local_manifest_with_image(&format!("  registry: {}\n", proxy.host));
    let m = m.to_str().unwrap();
    let url = format!(
        "http://{}/v2/yolo-local-predictor/manifests/latest",
        proxy.host
    );

    for (code, message) in [
        (
            "NAME_UNKNOWN",
            "The repository with name 'yolo-local-predictor' does not exist in the registry with id '123456789012'",
        ),
        ("MANIFEST_UNKNOWN", "Requested image not found"),
    ] {
        if code == "MANIFEST_UNKNOWN" {
            push_config_only_image(&registry, "yolo-local-predictor", "other");
        }
        // The harness answers as ECR does.
        let raw = http("GET", &url, &[], &[]).unwrap();
        assert_eq!(raw.status, 404);
        assert_eq!(
            raw.json(),
            serde_json::json!({"errors": [{"code": code, "message": message}]})
        );

        let plan = deployer(&moto, &["-f", m, "plan", "-o", "json"])
            .expect(0)
            .json();
        let image = plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "image")
            .unwrap_or_else(|| panic!("no image change with {code}: {plan:#}"));
        assert_eq!(image["action"], "create", "{code}");
        let status = deployer(&moto, &["-f", m, "status", "-o", "json"])
            .expect(0)
            .json();
        let image = status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "image")
            .unwrap();
        assert_eq!(image["state"], "missing", "{code}: {status:#}");
    }
}

/// Pushes `repository:tag` straight to the registry: an image of an empty config and no
/// layers, enough for the repository to exist.
fn push_config_only_image(registry: &Registry, repository: &str, tag: &str) {
    let config = b"{}";
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(config)));
    let base = format!("http://{}", registry.host);
    let upload = http(
        "POST",
        &format!("{base}/v2/{repository}/blobs/uploads/"),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(upload.status, 202, "{}", registry.log());
    let location = upload.header("location").unwrap();
    let location = if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{base}{location}")
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = http(
        "PUT",
        &format!("{location}{separator}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        config,
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": config.len()},
        "layers": [],
    })
    .to_string();
    let put = http(
        "PUT",
        &format!("{base}/v2/{repository}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    )
    .unwrap();
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deployer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

/// The image's entrypoint in `root` as its only filesystem, mounted read-only, as
/// uid/gid 65534 (root in a user namespace when the test itself is not root).
fn run_in_root(root: &Path, port: u16, env: &[(String, String)]) -> std::process::Child {
    let r = root.display();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let (unshare, chroot) = if is_root {
        (
            vec!["--mount", "--fork", "--kill-child"],
            "chroot --userspec=65534:65534",
        )
    } else {
        (
            vec![
                "--user",
                "--map-root-user",
                "--mount",
                "--fork",
                "--kill-child",
            ],
            "chroot",
        )
    };
    let script = format!(
        "mount --bind {r} {r} && mount -o remount,bind,ro {r} && exec {chroot} {r} /opt/predictor/bin/predictor serve"
    );
    Command::new("unshare")
        .args(unshare)
        .args(["sh", "-c", &script])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare")
}

/// Kills `pid` and every process below it, found through `/proc`. (`unshare
/// --kill-child` is not enough: the predictor changes its uid, which clears the
/// parent-death signal.)
fn kill_tree(pid: u32) {
    let parent_of = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        // `pid (comm) state ppid …`: the command name may hold spaces.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut tree = vec![pid];
    loop {
        let before = tree.len();
        for &p in &all {
            if !tree.contains(&p) && parent_of(p).is_some_and(|parent| tree.contains(&parent)) {
                tree.push(p);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    for p in tree.iter().rev().filter(|p| **p > 1) {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
}
