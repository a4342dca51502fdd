//! Broken manifests: each gets the exact error text in `bad/<name>.stderr` (a snapshot;
//! `UPDATE_SNAPSHOTS=1` rewrites them), exit code 2, and no connection to AWS at all.

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::deployer_command;

#[test]
fn broken_manifests_are_refused_with_their_position_and_no_aws_call() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/bad");
    // Anything the deployer tried to reach would connect here.
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", trap.local_addr().unwrap());
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();

    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the corpus shrank: {cases:?}");
    let mut mismatches = Vec::new();
    for case in &cases {
        let file = case.file_name().unwrap().to_str().unwrap();
        for command in ["validate", "plan", "up"] {
            let out = deployer_command(&["-f", file, command])
                .current_dir(&dir)
                .env("AWS_ENDPOINT_URL", &endpoint)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(2),
                "{file} {command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout.is_empty(), "{file}: nothing on stdout");
            let stderr = String::from_utf8(out.stderr).unwrap();
            let snapshot = case.with_extension("stderr");
            if update && command == "validate" {
                std::fs::write(&snapshot, &stderr).unwrap();
            }
            let want = std::fs::read_to_string(&snapshot).unwrap_or_default();
            if stderr != want {
                mismatches.push(format!(
                    "{file} ({command}):\n--- want\n{want}--- got\n{stderr}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(
        trap.accept().is_err(),
        "a broken manifest must not lead to any AWS request"
    );
}

#[test]
fn manifest_flag_goes_before_or_after_the_command_and_defaults_to_deployer_yaml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let local = root.join("manifests/local.yaml");
    let local = local.to_str().unwrap();
    for args in [["-f", local, "validate"], ["validate", "-f", local]] {
        let out = deployer_command(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let dir = std::env::temp_dir().join(format!("deployer-default-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = deployer_command(&["validate"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `deployer.yaml` here"));
    std::fs::copy(root.join("manifests/aws.yaml"), dir.join("deployer.yaml")).unwrap();
    let out = deployer_command(&["validate", "-o", "json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stack"], "yolo-study");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plan_with_detailed_exitcode_reports_manifest_errors_as_1() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/bad");
    let out = deployer_command(&["-f", "empty.yaml", "plan", "--detailed-exitcode"])
        .current_dir(&dir)
        .output()
        .unwrap();
    // 2 would mean "changes pending" to a pipeline.
    assert_eq!(out.status.code(), Some(1));
}
