//! `predictor serve` as a real process against moto's S3 on loopback, and the same
//! router fed real API Gateway v2 and ALB events through the Lambda runtime's adapter.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{HttpResponse, Moto, free_port, http};

const INPUT: &str = "photos-in";
const OUTPUT: &str = "results-out";

fn image(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/images")
            .join(name),
    )
    .unwrap()
}

/// A `predictor serve` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the server with `env` and waits until it is ready.
    fn start(endpoint: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_predictor"));
        cmd.arg("serve")
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("INPUT_BUCKET", INPUT)
            .env("OUTPUT_BUCKET", OUTPUT)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let server = Server {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if server.get("/readyz").is_ok_and(|r| r.status == 200) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("predictor serve did not become ready");
    }

    fn get(&self, path: &str) -> std::io::Result<HttpResponse> {
        http("GET", &format!("{}{path}", self.base), &[], b"")
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
        let headers: Vec<(&str, &str)> = if content_type.is_empty() {
            vec![]
        } else {
            vec![("Content-Type", content_type)]
        };
        http("POST", &format!("{}{path}", self.base), &headers, body).unwrap()
    }

    fn predict_key(&self, key: &str) -> HttpResponse {
        self.post(
            "/predict",
            "application/json",
            format!("{{\"image\": \"{key}\"}}").as_bytes(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto_with_buckets() -> Moto {
    let moto = Moto::start();
    let s3 = moto.s3().await;
    for b in [INPUT, OUTPUT] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    for name in ["bus.jpg", "zidane.jpg"] {
        s3.put_object()
            .bucket(INPUT)
            .key(name)
            .body(image(name).into())
            .send()
            .await
            .unwrap();
    }
    moto
}

fn labels(r: &serde_json::Value) -> Vec<String> {
    r["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn predicts_an_image_named_in_the_input_bucket_and_stores_the_annotated_result() {
    let moto = moto_with_buckets().await;
    let server = Server::start(&moto.endpoint, &[]);

    let r = http(
        "POST",
        &format!("{}/predict", server.base),
        &[
            ("Content-Type", "application/json"),
            ("x-request-id", "trace-42"),
        ],
        br#"{"image": "bus.jpg"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    let timing = r.header("server-timing").unwrap();
    assert!(
        timing.contains("download;dur=")
            && timing.contains("infer;dur=")
            && timing.contains("upload;dur=")
    );
    let body = r.json();
    assert_eq!(
        labels(&body),
        ["bus", "person", "person", "person", "person"]
    );
    assert_eq!(
        body["image"],
        serde_json::json!({"width": 810, "height": 1080})
    );
    assert_eq!(body["model"], "yolo11n");
    assert_eq!(body["instance"]["cold"], true);
    assert_eq!(body["instance"]["seq"], 1);
    assert_eq!(r.header("x-instance-seq"), Some("1"));
    assert_eq!(
        r.header("x-instance-id"),
        body["instance"]["id"].as_str(),
        "the header names the same process as the body"
    );
    for stage in [
        "download",
        "decode",
        "preprocess",
        "infer",
        "postprocess",
        "draw",
        "encode",
        "upload",
        "total",
    ] {
        assert!(
            body["timings_ms"][stage].as_f64().is_some(),
            "{stage} missing: {body}"
        );
    }

    // The URL is a working presigned GET of the annotated JPEG.
    let url = body["url"].as_str().unwrap();
    let fetched = http("GET", url, &[], b"").unwrap();
    assert_eq!(fetched.status, 200);
    let annotated = predictor::decode::decode(&fetched.body, u64::MAX).unwrap();
    assert_eq!(annotated.format, image::ImageFormat::Jpeg);
    assert_eq!(annotated.pixels.dimensions(), (810, 1080));
    let key = body["key"].as_str().unwrap();
    moto.s3()
        .await
        .head_object()
        .bucket(OUTPUT)
        .key(key)
        .send()
        .await
        .expect("result stored");

    let again = server.predict_key("zidane.jpg");
    assert_eq!(again.header("x-instance-seq"), Some("2"));
    let again = again.json();
    assert_eq!(again["instance"]["cold"], false);
    assert_eq!(again["instance"]["seq"], 2);
    assert_eq!(again["instance"]["id"], body["instance"]["id"]);
    assert_eq!(labels(&again), ["person", "person", "tie"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn accepts_raw_and_multipart_bodies_and_can_skip_annotation() {
    let moto = moto_with_buckets().await;
    let server = Server::start(&moto.endpoint, &[]);

    let r = server.post("/predict", "image/png", &image("chelsea.png"));
    assert_eq!(labels(&r.json()), ["cat"]);

    let boundary = "XyZ123";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"z.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    form.extend(image("zidane.jpg"));
    form.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let r = server.post(
        "/predict",
        &format!("multipart/form-data; boundary={boundary}"),
        &form,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(labels(&r.json()), ["person", "person", "tie"]);

    let stored = || async {
        moto.s3()
            .await
            .list_objects_v2()
            .bucket(OUTPUT)
            .send()
            .await
            .unwrap()
            .key_count()
    };
    let before = stored().await;
    let r = server
        .post("/predict?annotate=false", "image/jpeg", &image("bus.jpg"))
        .json();
    assert_eq!(r["url"], serde_json::Value::Null);
    assert!(
        r["timings_ms"].get("draw").is_none() && r["timings_ms"].get("upload").is_none(),
        "{r}"
    );
    assert_eq!(stored().await, before, "annotate=false stores nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_gets_its_status_and_error_code_never_a_500() {
    let moto = moto_with_buckets().await;
    let server = Server::start(
        &moto.endpoint,
        &[("MAX_BODY_BYTES", "400000"), ("MAX_PIXELS", "500000")],
    );
    let bus = image("bus.jpg");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "/predict",
            "image/png",
            image("astronaut.png"),
            413,
            "body_too_large",
        ),
        (
            "/predict",
            "image/jpeg",
            bus.clone(),
            413,
            "too_many_pixels",
        ),
        (
            "/predict",
            "text/plain",
            b"hello".to_vec(),
            415,
            "unsupported_media_type",
        ),
        ("/predict", "", bus.clone(), 415, "unsupported_media_type"),
        (
            "/predict",
            "application/json",
            b"{\"image\": ".to_vec(),
            400,
            "bad_json",
        ),
        (
            "/predict",
            "application/json",
            b"{\"picture\": \"bus.jpg\"}".to_vec(),
            400,
            "bad_json",
        ),
        (
            "/predict",
            "application/json",
            b"{\"image\": \"missing.jpg\"}".to_vec(),
            404,
            "image_not_found",
        ),
        (
            "/predict",
            "application/json",
            br#"{"bucket": "elsewhere", "key": "a.jpg"}"#.to_vec(),
            403,
            "bucket_not_allowed",
        ),
        (
            "/predict",
            "image/jpeg",
            b"hello, not an image".to_vec(),
            422,
            "not_an_image",
        ),
        (
            "/predict",
            "image/jpeg",
            image("zidane.jpg")[..20_000].to_vec(),
            422,
            "corrupt_image",
        ),
        ("/predict", "image/png", Vec::new(), 400, "empty_body"),
        (
            "/predict?annotate=maybe",
            "image/jpeg",
            bus.clone(),
            400,
            "bad_query",
        ),
        (
            "/predict",
            "multipart/form-data; boundary=b",
            b"--b\r\n\r\n--b--\r\n".to_vec(),
            400,
            "bad_multipart",
        ),
        ("/nowhere", "image/jpeg", bus.clone(), 404, "no_route"),
    ];
    for (path, content_type, body, status, code) in cases {
        let r = server.post(path, content_type, &body);
        let json = r.json();
        assert_eq!(
            (r.status, json["error"]["code"].as_str().unwrap()),
            (status, code),
            "{path} {content_type}: {json}"
        );
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // The process survived all of it.
    assert_eq!(
        server
            .post("/predict", "image/png", &image("chelsea.png"))
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_can_come_from_s3_as_in_the_original_study() {
    let moto = moto_with_buckets().await;
    let model =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/yolo11n.onnx")).unwrap();
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("models").send().await.unwrap();
    s3.put_object()
        .bucket("models")
        .key("yolo/yolo11n.onnx")
        .body(model.into())
        .send()
        .await
        .unwrap();
    let server = Server::start(
        &moto.endpoint,
        &[("MODEL_S3_URI", "s3://models/yolo/yolo11n.onnx")],
    );
    assert_eq!(
        labels(&server.predict_key("zidane.jpg").json()),
        ["person", "person", "tie"]
    );
}

#[test]
fn a_bad_configuration_stops_the_process_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_predictor"))
        .arg("serve")
        .env("CONF", "1.5")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CONF=\"1.5\": expected a number in 0..=1"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_s3_is_a_502_with_the_upstream_error() {
    // Nothing listens at this endpoint.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let server = Server::start(&dead, &[]);
    let r = server.predict_key("bus.jpg");
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    let r = server.post("/predict", "image/jpeg", &image("zidane.jpg"));
    assert_eq!(r.status, 502, "storing the result fails the same way");
}

#[test]
fn a_request_over_the_deadline_is_a_504() {
    let server = Server::start("http://127.0.0.1:9", &[("DEADLINE_MS", "1")]);
    let r = server.post("/predict", "image/jpeg", &image("zidane.jpg"));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str().unwrap()),
        (504, "deadline_exceeded")
    );
}

/// Fires `n` requests from `concurrency` threads; returns the answers.
fn hammer(server: &Server, n: usize, concurrency: usize, body: &[u8]) -> Vec<HttpResponse> {
    let url = format!("{}/predict?annotate=false", server.base);
    testkit::closed_loop(n, concurrency, || {
        http("POST", &url, &[("Content-Type", "image/jpeg")], body).unwrap()
    })
}

#[test]
fn overload_is_refused_at_once_with_503_and_retry_after() {
    let server = Server::start(
        "http://127.0.0.1:9",
        &[("MAX_INFLIGHT", "1"), ("QUEUE_DEPTH", "1")],
    );
    let got = hammer(&server, 16, 8, &image("zidane.jpg"));
    let ok = got.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = got.iter().filter(|r| r.status == 503).collect();
    assert_eq!(
        ok + refused.len(),
        16,
        "only 200s and 503s: {:?}",
        got.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        ok >= 2 && !refused.is_empty(),
        "{ok} accepted, {} refused",
        refused.len()
    );
    for r in refused {
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.json()["error"]["code"], "overloaded");
    }
}

#[test]
fn two_hundred_requests_at_concurrency_nine_all_succeed() {
    let server = Server::start("http://127.0.0.1:9", &[]);
    let got = hammer(&server, 200, 9, &image("zidane.jpg"));
    assert_eq!(got.len(), 200);
    let failed: Vec<u16> = got.iter().map(|r| r.status).filter(|s| *s != 200).collect();
    assert_eq!(failed, Vec::<u16>::new());
    let metrics = String::from_utf8(server.get("/metrics").unwrap().body).unwrap();
    assert!(
        metrics.contains("predictor_requests_total{route=\"/predict\",status=\"200\"} 200"),
        "{metrics}"
    );
    assert!(metrics.contains("predictor_stage_duration_seconds_count{stage=\"infer\"} 200"));
}

#[test]
fn every_documented_route_exists_and_answers_as_documented() {
    let server = Server::start("http://127.0.0.1:9", &[]);
    let spec: serde_json::Value = server.get("/openapi.json").unwrap().json();
    let paths = spec["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 5);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let r = http(
                &method.to_uppercase(),
                &format!("{}{path}", server.base),
                &[],
                b"",
            )
            .unwrap();
            let documented: Vec<u16> = ops[method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            assert!(
                documented.contains(&r.status),
                "{method} {path} answered {} not in {documented:?}",
                r.status
            );
        }
    }
    assert_eq!(server.get("/healthz").unwrap().json()["status"], "ok");
    assert_eq!(server.get("/readyz").unwrap().json()["status"], "ready");
    assert_eq!(server.get("/not-documented").unwrap().status, 404);
}

#[test]
fn readiness_names_the_model_being_served() {
    let rect = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/yolo11n-rect.onnx");
    let server = Server::start(
        "http://127.0.0.1:9",
        &[("MODEL_PATH", rect.to_str().unwrap())],
    );
    assert_eq!(
        server.get("/readyz").unwrap().json()["model"],
        "yolo11n-rect"
    );
}

#[test]
fn sigterm_lets_the_requests_in_flight_finish() {
    let mut server = Server::start("http://127.0.0.1:9", &[]);
    let url = format!("{}/predict?annotate=false", server.base);
    let body = image("bus.jpg");
    let in_flight = std::thread::spawn(move || {
        http("POST", &url, &[("Content-Type", "image/jpeg")], &body).unwrap()
    });
    std::thread::sleep(Duration::from_millis(30));
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(in_flight.join().unwrap().status, 200);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

mod lambda {
    //! The router behind the Lambda runtime's adapter, fed event payloads as API Gateway
    //! (HTTP API, payload 2.0) and an ALB deliver them.

    use super::*;
    use lambda_http::request::LambdaRequest;
    use lambda_http::{Adapter, Context, LambdaEvent, Service};
    use predictor::service::{AppState, Config, app, storage::Storage};

    fn fixture(name: &str, body: Option<&[u8]>) -> LambdaRequest {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/lambda")
            .join(name);
        let mut event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        if let Some(b) = body {
            event["body"] = testkit::base64(b).into();
        }
        serde_json::from_value(event).unwrap()
    }

    async fn invoke(state: &AppState, request: LambdaRequest) -> serde_json::Value {
        let mut adapter = Adapter::from(app(state.clone()));
        let response = adapter
            .call(LambdaEvent::new(request, Context::default()))
            .await
            .unwrap();
        serde_json::to_value(response).unwrap()
    }

    async fn state() -> AppState {
        let storage = Storage::connect(Some("http://127.0.0.1:9".into())).await;
        let model = predictor::detector::bundled_model().unwrap();
        let state = AppState::new(Config::default(), storage, &model);
        tokio::task::block_in_place(|| state.load(model)).unwrap();
        state
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn api_gateway_v2_events_reach_the_same_router() {
        let state = state().await;
        let health = invoke(&state, fixture("apigw_v2_healthz.json", None)).await;
        assert_eq!(health["statusCode"], 200);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(health["body"].as_str().unwrap()).unwrap()["status"],
            "ok"
        );

        // A base64 image body, as API Gateway delivers binary payloads.
        let r = invoke(
            &state,
            fixture("apigw_v2_predict.json", Some(&image("chelsea.png"))),
        )
        .await;
        assert_eq!(r["statusCode"], 200, "{r}");
        assert_eq!(r["isBase64Encoded"], false, "JSON answers are text");
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert_eq!(r["headers"]["x-request-id"], "from-the-caller");
        let body: serde_json::Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(labels(&body), ["cat"]);
        assert_eq!(body["instance"]["cold"], true);

        let bad = invoke(
            &state,
            fixture("apigw_v2_predict.json", Some(b"GIF89a not supported")),
        )
        .await;
        assert_eq!(bad["statusCode"], 422);
        let body: serde_json::Value = serde_json::from_str(bad["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "not_an_image");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn alb_events_reach_the_same_router() {
        let state = state().await;
        let r = invoke(
            &state,
            fixture("alb_predict.json", Some(&image("zidane.jpg"))),
        )
        .await;
        assert_eq!(r["statusCode"], 200, "{r}");
        assert!(
            r["statusDescription"]
                .as_str()
                .is_some_and(|s| s.starts_with("200")),
            "{r}"
        );
        let body: serde_json::Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(labels(&body), ["person", "person", "tie"]);
        assert_eq!(
            body["url"],
            serde_json::Value::Null,
            "no output bucket: detections only"
        );
    }
}
