//! The function's test fixtures, and its `apply` replayed against a recording endpoint:
//! the calls an update makes and their order (configuration, wait, code, wait, then
//! reserved and provisioned concurrency, then tags), which moto cannot show (it has no
//! provisioned concurrency and settles at once).

use std::sync::{Arc, Mutex};

use super::{Function, Observed};
use crate::aws::Aws;
use crate::resources::Resource;

pub(super) fn desired() -> Function {
    Function {
        name: "s-predictor".into(),
        role_name: "s-lambda".into(),
        role_arn: "arn:aws:iam::123456789012:role/s-lambda".into(),
        log_group: "/aws/lambda/s-predictor".into(),
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/s-predictor@sha256:aa".into(),
        architecture: "x86_64".into(),
        memory_mb: 3000,
        timeout_s: 30,
        environment: [("CONF".to_string(), "0.25".to_string())].into(),
        reserved_concurrency: None,
        provisioned_concurrency: None,
        image_push: None,
        tags: [("deployer:stack".to_string(), "s".to_string())].into(),
    }
}

pub(super) fn in_sync(f: &Function) -> Observed {
    Observed {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:s-predictor".into(),
        image: Some(f.image.clone()),
        architecture: f.architecture.clone(),
        memory_mb: f.memory_mb,
        timeout_s: f.timeout_s,
        role_arn: f.role_arn.clone(),
        environment: f.environment.clone(),
        reserved_concurrency: None,
        alias_version: None,
        provisioned_concurrency: None,
        state: "Active".into(),
        last_update: "Successful".into(),
        tags: f.tags.clone(),
        last_init_ms: None,
    }
}

/// A loopback endpoint answering every request with `body` (JSON, 200) and recording
/// each request's method and path: enough of Lambda for the order of `apply`'s calls.
fn recording(body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if request.is_empty() {
                    let mut words = line.split_whitespace();
                    let (method, path) = (words.next().unwrap_or(""), words.next());
                    let path = path.unwrap_or("").split('?').next().unwrap_or("");
                    request = format!("{method} {path}");
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut rest = vec![0; length];
            let _ = reader.read_exact(&mut rest);
            log.lock().unwrap().push(request);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.get_mut().write_all(response.as_bytes());
        }
    });
    (endpoint, seen)
}

/// Every call of an update, answered as a settled function with a published version
/// and ready provisioned concurrency.
const SETTLED: &str =
    r#"{"State": "Active", "LastUpdateStatus": "Successful", "Version": "7", "Status": "READY"}"#;

async fn calls(f: &Function, o: &Observed) -> Vec<String> {
    let (endpoint, seen) = recording(SETTLED);
    let manifest = crate::manifest::Manifest::parse(
        "t.yaml".as_ref(),
        &format!("name: t\nregion: us-east-1\nendpoint: {endpoint}\n"),
    )
    .unwrap();
    let aws = Aws::connect(&manifest).await;
    f.apply(&aws, Some(o), &f.diff(o)).await.unwrap();
    let fun = format!("/functions/{}", f.name);
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.replace(&fun, "/functions/F")
                .replace(&o.arn.replace(':', "%3A"), "ARN")
        })
        .collect()
}

#[tokio::test]
async fn configuration_then_code_each_waited_for() {
    let f = desired();
    let mut o = in_sync(&f);
    o.image = Some(f.image.replace("sha256:aa", "sha256:bb"));
    o.memory_mb = 1024;
    o.reserved_concurrency = Some(5);
    o.tags.clear();
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/configuration",
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/code",
            "GET /2015-03-31/functions/F/configuration",
            "DELETE /2017-10-31/functions/F/concurrency",
            "POST /2017-03-31/tags/ARN",
        ]
    );
}

#[tokio::test]
async fn new_code_reaches_the_alias_as_a_new_version() {
    let mut f = desired();
    f.provisioned_concurrency = Some(2);
    let mut o = in_sync(&f);
    o.alias_version = Some("6".into());
    o.provisioned_concurrency = Some(2);
    o.image = Some(f.image.replace("sha256:aa", "sha256:bb"));
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2015-03-31/functions/F/code",
            "GET /2015-03-31/functions/F/configuration",
            "POST /2015-03-31/functions/F/versions",
            "PUT /2015-03-31/functions/F/aliases/live",
            "PUT /2019-09-30/functions/F/provisioned-concurrency",
            "GET /2019-09-30/functions/F/provisioned-concurrency",
        ]
    );
    // Only the number changed: no new version.
    o.image = Some(f.image.clone());
    o.provisioned_concurrency = Some(1);
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "PUT /2019-09-30/functions/F/provisioned-concurrency",
            "GET /2019-09-30/functions/F/provisioned-concurrency",
        ]
    );
    // None wanted: the configuration and the alias go.
    f.provisioned_concurrency = None;
    assert_eq!(
        calls(&f, &o).await,
        [
            "GET /2015-03-31/functions/F/configuration",
            "DELETE /2019-09-30/functions/F/provisioned-concurrency",
            "DELETE /2015-03-31/functions/F/aliases/live",
        ]
    );
}
