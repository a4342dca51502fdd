//! What a new user reads first when something around the tool is missing: one line
//! saying what failed, then the fix (issue: first contact). Each case pins the whole
//! stderr (temp paths, ports and progress timestamps normalised) and the exit code.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Moto, deployer_command, local_manifest, local_manifest_with_image};

/// A directory of this test, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        let dir = std::env::temp_dir().join(format!(
            "deployer-first-contact-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }

    fn write(&self, path: &str, text: &str) -> PathBuf {
        let file = self.0.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        file
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stack on AWS itself (no endpoint): the first call is STS's.
const AWS_MANIFEST: &str = "name: fc\nregion: us-east-1\n";

/// `deployer` with nothing of the user's AWS setup: a home of its own, no credentials,
/// no endpoint, no proxy, no instance metadata (which would otherwise be waited on).
fn bare(home: &Path, args: &[&str]) -> Command {
    let mut c = deployer_command(args);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_ENDPOINT_URL",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c.env_remove(var);
    }
    c.env("HOME", home).env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `c`; its output with `replace`'s values written as their names and progress
/// lines' timestamps as `[time]`.
fn run(c: &mut Command, replace: &[(&str, &str)]) -> Out {
    let out = c.output().unwrap();
    let normal = |bytes: &[u8]| {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for (value, name) in replace {
            text = text.replace(value, name);
        }
        text.lines()
            .map(
                |l| match l.strip_prefix('[').and_then(|r| r.split_once("] ")) {
                    Some((_, rest)) => format!("[time] {rest}\n"),
                    None => format!("{l}\n"),
                },
            )
            .collect()
    };
    Out {
        code: out.status.code(),
        stdout: normal(&out.stdout),
        stderr: normal(&out.stderr),
    }
}

/// A loopback HTTP server answering each request with `answer(body)` (status, XML).
fn serve(answer: impl Fn(&str) -> (u16, String) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, xml) = answer(&String::from_utf8_lossy(&body));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}",
                xml.len()
            );
        }
    });
    endpoint
}

/// STS's answer to a key it does not know or a signature that does not match (query
/// protocol: 403, `ErrorResponse`/`Error`/`Code`), as AWS sends it.
fn sts_error(code: &str, message: &str) -> (u16, String) {
    (
        403,
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
             <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  \
             <RequestId>4c2a5a4e-8f5b-4c4e-9f6a-2f1d1b1e0c9a</RequestId>\n</ErrorResponse>\n"
        ),
    )
}

#[test]
fn a_local_endpoint_that_is_not_listening_says_so_and_how_to_start_it() {
    let port = testkit::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let manifest = local_manifest();
    let out = deployer_command(&["-f", manifest.to_str().unwrap(), "plan"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
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
        assert_eq!(out.status.code(), Some(3), "{command}");
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

#[test]
fn no_credentials_names_every_source_tried_for_every_command() {
    let home = Temp::new("no-credentials");
    let manifest = home.write("fc.yaml", AWS_MANIFEST);
    let m = manifest.to_str().unwrap();
    let expected = "error: no AWS credentials found (tried `AWS_ACCESS_KEY_ID`, profile `default` in \
                    `~/.aws/config` and `~/.aws/credentials`, `AWS_WEB_IDENTITY_TOKEN_FILE`, the ECS \
                    container endpoint, EC2 instance metadata)\n\
                    hint: sign in with `aws configure sso` and select the profile with \
                    `AWS_PROFILE=<profile>`, or set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`\n";
    let report = home.0.join("bench");
    for args in [
        &["-f", m, "plan"][..],
        &["-f", m, "status"],
        &["-f", m, "up", "--yes"],
        &["-f", m, "down", "--yes"],
        &["-f", m, "bench", "--out", report.to_str().unwrap()],
    ] {
        let out = run(&mut bare(&home.0, args), &[]);
        assert_eq!(out.code, Some(3), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr, expected, "{args:?}");
    }
    // `build` meets it pushing to ECR, after building the image (its progress first).
    let predictor = common::predictor_bin();
    let out = run(
        &mut bare(
            &home.0,
            &[
                "-f",
                m,
                "build",
                "--predictor-bin",
                predictor.to_str().unwrap(),
            ],
        ),
        &[],
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let (progress, error) = out.stderr.split_at(out.stderr.find("error: ").unwrap());
    assert!(
        progress.starts_with("[time] · built image sha256:") && progress.lines().count() == 1,
        "{progress}"
    );
    assert_eq!(error, expected);

    // `-o json`: the same error as data on stdout, the same exit code.
    let out = run(&mut bare(&home.0, &["-f", m, "-o", "json", "plan"]), &[]);
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stderr, "");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["error"]["code"], "no_credentials");
    assert_eq!(
        format!(
            "error: {}\nhint: {}\n",
            json["error"]["message"].as_str().unwrap(),
            json["error"]["hint"].as_str().unwrap()
        ),
        expected
    );
}

#[test]
fn an_expired_sso_session_says_which_profile_and_how_to_sign_in() {
    let home = Temp::new("sso");
    home.write(
        ".aws/config",
        "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Deployer\nregion = us-east-1\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n\
         sso_region = us-east-1\nsso_registration_scopes = sso:account:access\n",
    );
    // What `aws sso login` caches, named by the SHA-1 of the session name (`corp`);
    // it expired long ago and has no refresh token.
    home.write(
        ".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json",
        r#"{"startUrl": "https://corp.awsapps.com/start", "region": "us-east-1",
            "accessToken": "expired-token", "expiresAt": "2024-01-01T00:00:00Z"}"#,
    );
    let manifest = home.write("fc.yaml", AWS_MANIFEST);
    let out = run(
        bare(&home.0, &["-f", manifest.to_str().unwrap(), "plan"]).env("AWS_PROFILE", "dev"),
        &[],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: the SSO session of profile `dev` has expired (or was never signed in)\n\
         hint: `aws sso login --profile dev`\n"
    );
}

#[test]
fn credentials_aws_rejects_name_the_key_and_where_it_came_from() {
    // InvalidClientTokenId: a key AWS does not know, from the environment.
    let endpoint = serve(|_| {
        sts_error(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    });
    let home = Temp::new("rejected");
    let manifest = home.write(
        "fc.yaml",
        &format!("name: fc\nregion: us-east-1\nendpoint: {endpoint}\n"),
    );
    let m = manifest.to_str().unwrap();
    let out = run(
        bare(&home.0, &["-f", m, "plan"])
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        &[],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: AWS rejected the access key `AKIA…MPLE` from `AWS_ACCESS_KEY_ID` (`InvalidClientTokenId`)\n\
         hint: check the key and its secret (`aws configure list` shows which are used), or choose \
         another profile with `AWS_PROFILE=<profile>`; a region the account has not opted in to \
         answers the same\n"
    );

    // SignatureDoesNotMatch: a wrong secret, from a profile.
    let endpoint = serve(|_| {
        sts_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
    });
    home.write(
        ".aws/credentials",
        "[dev]\naws_access_key_id = AKIAI44QH8DHBEXAMPLE\n\
         aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY\n",
    );
    let manifest = home.write(
        "fc.yaml",
        &format!("name: fc\nregion: us-east-1\nendpoint: {endpoint}\n"),
    );
    let out = run(
        bare(&home.0, &["-f", manifest.to_str().unwrap(), "status"]).env("AWS_PROFILE", "dev"),
        &[],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: AWS rejected the access key `AKIA…MPLE` from profile `dev` (`SignatureDoesNotMatch`)\n\
         hint: check the key and its secret (`aws configure list` shows which are used), or choose \
         another profile with `AWS_PROFILE=<profile>`; a region the account has not opted in to \
         answers the same\n"
    );
}

#[test]
fn expired_session_credentials_say_where_they_came_from() {
    let endpoint = serve(|_| {
        sts_error(
            "ExpiredToken",
            "The security token included in the request is expired",
        )
    });
    let home = Temp::new("expired");
    let manifest = home.write(
        "fc.yaml",
        &format!("name: fc\nregion: us-east-1\nendpoint: {endpoint}\n"),
    );
    let out = run(
        bare(&home.0, &["-f", manifest.to_str().unwrap(), "plan"])
            .env("AWS_ACCESS_KEY_ID", "ASIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLE"),
        &[],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: the AWS credentials from `AWS_ACCESS_KEY_ID` have expired\n\
         hint: get new session credentials (`AWS_SESSION_TOKEN` and its keys), or use a profile: \
         `AWS_PROFILE=<profile>`\n"
    );
}

#[test]
fn aws_out_of_reach_names_its_host_and_the_proxy_in_the_way() {
    let home = Temp::new("proxy");
    let manifest = home.write("fc.yaml", AWS_MANIFEST);
    let proxy = format!("http://127.0.0.1:{}", testkit::free_port());
    let out = run(
        bare(&home.0, &["-f", manifest.to_str().unwrap(), "plan"])
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            )
            .env("HTTPS_PROXY", &proxy),
        &[(&proxy, "http://127.0.0.1:<port>")],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: could not reach `sts.us-east-1.amazonaws.com` through the proxy `http://127.0.0.1:<port>`\n\
         hint: check the network and any proxy (`HTTPS_PROXY`), or set `AWS_ENDPOINT_URL` to an \
         endpoint that answers\n"
    );
}

#[test]
fn a_mistyped_or_missing_region_is_caught_before_any_call() {
    let home = Temp::new("region");
    let manifest = home.write("fc.yaml", "name: fc\nregion: us-esat-1\n");
    let m = manifest.to_str().unwrap();
    let dir = home.0.to_str().unwrap();
    let out = run(&mut bare(&home.0, &["-f", m, "plan"]), &[(dir, "<tmp>")]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "error: <tmp>/fc.yaml:2:1: region: region `us-esat-1` is not an AWS region\n  \
         hint: did you mean `us-east-1`?\n"
    );

    let manifest = home.write("fc.yaml", "name: fc\n");
    let out = run(&mut bare(&home.0, &["-f", m, "plan"]), &[(dir, "<tmp>")]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "error: <tmp>/fc.yaml:1:1: region: no region: the manifest has no `region` and `AWS_REGION` \
         is not set\n  hint: add `region: us-east-1` (or the region to deploy to) to the manifest, \
         or set `AWS_REGION`\n"
    );
    // `AWS_REGION` fills a missing `region`.
    let out = run(
        bare(&home.0, &["-f", manifest.to_str().unwrap(), "validate"])
            .env("AWS_REGION", "eu-west-1"),
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn access_denied_names_the_principal_and_the_action() {
    // STS answers who the caller is; EC2 refuses, as AWS does, with 403 and its own
    // envelope (`Response`/`Errors`/`Error`).
    let endpoint = serve(|body| {
        let action = body
            .split('&')
            .find_map(|p| p.strip_prefix("Action="))
            .unwrap_or("")
            .to_string();
        if action == "GetCallerIdentity" {
            return (
                200,
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
                 <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::123456789012:user/dev</Arn>\n    \
                 <UserId>AIDASAMPLEUSERID</UserId>\n    <Account>123456789012</Account>\n  \
                 </GetCallerIdentityResult>\n  <ResponseMetadata>\n    \
                 <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>\n  </ResponseMetadata>\n\
                 </GetCallerIdentityResponse>\n"
                    .to_string(),
            );
        }
        (
            403,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
                 <Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this \
                 operation. User: arn:aws:iam::123456789012:user/dev is not authorized to perform: \
                 ec2:{action} because no identity-based policy allows the ec2:{action} action\
                 </Message></Error></Errors><RequestID>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestID>\
                 </Response>"
            ),
        )
    });
    let home = Temp::new("denied");
    let manifest = home.write(
        "fc.yaml",
        &format!(
            "name: fc\nregion: us-east-1\nendpoint: {endpoint}\n\
             image:\n  uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/fc@sha256:{}\n\
             serverless:\n  enabled: false\n",
            "a".repeat(64)
        ),
    );
    let out = run(
        bare(&home.0, &["-f", manifest.to_str().unwrap(), "plan"])
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        &[],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: `arn:aws:iam::123456789012:user/dev` may not `ec2:DescribeInstanceTypes` (`UnauthorizedOperation`)\n\
         hint: `deployer policy` prints the permissions deployer needs\n"
    );
}

#[test]
fn a_local_registry_that_is_not_running_says_so_and_how_to_start_it() {
    let moto = Moto::start();
    let port = testkit::free_port();
    let manifest = local_manifest_with_image(&format!("  registry: 127.0.0.1:{port}\n"));
    let m = manifest.to_str().unwrap();
    for command in ["plan", "status"] {
        let out = run(
            deployer_command(&["-f", m, command]).env("AWS_ENDPOINT_URL", &moto.endpoint),
            &[(&port.to_string(), "<port>")],
        );
        assert_eq!(out.code, Some(5), "{command}: {}", out.stderr);
        assert_eq!(
            out.stderr,
            "error: nothing answers at `127.0.0.1:<port>` (the manifest's `image.registry`)\n\
             hint: start the local emulator and registry: `scripts/local-stack.sh start`\n",
            "{command}"
        );
    }
    let _ = std::fs::remove_file(manifest);
}

#[test]
fn a_missing_onnx_runtime_says_where_it_was_looked_for() {
    let home = Temp::new("ort");
    let binary = home.write("predictor", "not really a binary");
    let missing = home.0.join("lib/libonnxruntime.so");
    let dir = home.0.to_str().unwrap();
    let out = run(
        deployer_command(&[
            "-f",
            local_manifest().to_str().unwrap(),
            "build",
            "--no-push",
            "--predictor-bin",
            binary.to_str().unwrap(),
        ])
        .env("ORT_DYLIB_PATH", &missing),
        &[(dir, "<tmp>")],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        "error: ONNX Runtime is not at `<tmp>/lib/libonnxruntime.so` (`ORT_DYLIB_PATH`)\n\
         hint: run `scripts/setup-ort.sh`, or set `ORT_DYLIB_PATH` to a `libonnxruntime.so`\n"
    );
}

#[test]
fn a_build_without_cargo_or_that_fails_shows_the_command_and_its_errors() {
    let fix = "hint: build the predictor yourself and pass it with `--predictor-bin <path>`, or \
               deploy a prebuilt image with the manifest's `image.uri`\n";
    // No `cargo` on the `PATH`.
    let empty = Temp::new("no-cargo");
    let out = run(
        deployer_command(&[
            "-f",
            local_manifest().to_str().unwrap(),
            "build",
            "--no-push",
        ])
        .env_remove("CARGO")
        .env("PATH", &empty.0),
        &[],
    );
    assert_eq!(out.code, Some(3));
    assert_eq!(
        out.stderr,
        format!(
            "[time] · building the predictor (cargo build --release -p predictor)\n\
             error: cannot run `cargo` to build the predictor: not found\n{fix}"
        )
    );

    // A predictor that does not compile: a workspace of its own (its manifest's directory
    // is where the sources are looked for), built into a target directory of its own.
    let ws = Temp::new("broken-build");
    ws.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"predictor\"]\nresolver = \"3\"\n",
    );
    ws.write(
        "Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"predictor\"\nversion = \"0.1.0\"\n",
    );
    ws.write(
        "predictor/Cargo.toml",
        "[package]\nname = \"predictor\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    ws.write(
        "predictor/src/main.rs",
        "fn main() {\n    let _ = undefined_value;\n}\n",
    );
    ws.write("predictor/models/yolo11n.onnx", "");
    let manifest = ws.write(
        "local.yaml",
        &std::fs::read_to_string(local_manifest()).unwrap(),
    );
    let out = run(
        deployer_command(&["-f", manifest.to_str().unwrap(), "build", "--no-push"])
            .env("CARGO_TARGET_DIR", ws.0.join("target")),
        &[],
    );
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "[time] · building the predictor (cargo build --release -p predictor)\n\
             error: `cargo build --release --locked -p predictor` failed:\n  \
             predictor/src/main.rs:2:13: error[E0425]: cannot find value `undefined_value` in this scope: not found in this scope\n{fix}"
        )
    );
}

#[test]
fn a_manifest_that_cannot_be_read_says_which_and_why() {
    let home = Temp::new("unreadable");
    let dir = home.0.to_str().unwrap();
    let missing = home.0.join("nope.yaml");
    let binary = home.0.join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x9f]).unwrap();
    for (path, expected) in [
        (
            missing.as_path(),
            "error: cannot read the manifest `<tmp>/nope.yaml`: no such file\n\
             hint: the example manifests are `manifests/local.yaml` (the local emulator) and \
             `manifests/aws.yaml`\n",
        ),
        (
            home.0.as_path(),
            "error: cannot read the manifest `<tmp>`: it is a directory\n\
             hint: pass the manifest file itself, e.g. `-f manifests/local.yaml`\n",
        ),
        (
            binary.as_path(),
            "error: cannot read the manifest `<tmp>/binary.yaml`: it is not UTF-8 text\n\
             hint: a manifest is a YAML text file, e.g. `manifests/local.yaml`\n",
        ),
    ] {
        let out = run(
            &mut deployer_command(&["-f", path.to_str().unwrap(), "plan"]),
            &[(dir, "<tmp>")],
        );
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert_eq!(out.stderr, expected);
    }
}
