//! What a new user reads first when something around the tool is missing: one line
//! saying what failed, then the fix (issue: first contact). Exact stderr.

mod common;

use common::{deployer_command, local_manifest};

#[test]
fn a_local_endpoint_that_is_not_listening_says_so_and_how_to_start_it() {
    let port = testkit::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let manifest = local_manifest();
    let out = deployer_command(&["-f", manifest.to_str().unwrap(), "plan"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: nothing answers at `{endpoint}` (`AWS_ENDPOINT_URL`)\n\
             hint: start the local emulator and registry: `scripts/local-stack.sh start`\n"
        )
    );

    // The same from the manifest's own `endpoint`, for every command that calls AWS.
    let file = std::env::temp_dir().join(format!(
        "deployer-first-contact-{}.yaml",
        std::process::id()
    ));
    std::fs::write(
        &file,
        format!("name: fc\nregion: us-east-1\nendpoint: {endpoint}\n"),
    )
    .unwrap();
    for command in ["plan", "status", "up", "down"] {
        let out = deployer_command(
            &["-f", file.to_str().unwrap(), command, "--yes"][..if command == "up"
                || command == "down"
            {
                4
            } else {
                3
            }],
        )
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "error: nothing answers at `{endpoint}` (the manifest's `endpoint`)\n\
                 hint: start the local emulator and registry: `scripts/local-stack.sh start`\n"
            ),
            "{command}"
        );
    }
    let _ = std::fs::remove_file(file);
}
