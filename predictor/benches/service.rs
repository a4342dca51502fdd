//! The service under load, as a table: `cargo bench -p predictor --bench service`.
//!
//! Starts moto (S3) and `predictor serve` on loopback, then drives `POST /predict`
//! (`{"image": key}`: S3 download, detection, drawing, upload, presigned URL) at
//! concurrency 1, 2 and 9 (the study's batch size) and prints throughput, latency
//! percentiles, errors, the server's peak RSS and its time from start to ready. The engine
//! alone (back-to-back inferences, same threads) is measured first, as the ceiling.
//! Environment: `BENCH_REQUESTS` (per concurrency level, default 90).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predictor::engine::{Engine, OrtEngine, Threading};
use testkit::{Moto, free_port, http};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(90);
    let photo = std::fs::read(root.join("tests/images/zidane.jpg")).unwrap();

    // The ceiling: the engine alone, back to back, on the same letterboxed input.
    let engine = OrtEngine::load(&root.join("models/yolo11n.onnx"), Threading::default()).unwrap();
    let image = predictor::decode::decode(&photo, u64::MAX).unwrap().pixels;
    let mut input = Vec::new();
    let (w, h) = engine.input_size();
    predictor::preprocess::letterbox_into(&image, w, h, &mut input);
    engine.run(&input, w, h).unwrap();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(5) {
        engine.run(&input, w, h).unwrap();
        n += 1;
    }
    let engine_rate = n as f64 / started.elapsed().as_secs_f64();
    drop(engine);

    let moto = Moto::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s3 = moto.s3().await;
        for b in ["bench-in", "bench-out"] {
            s3.create_bucket().bucket(b).send().await.unwrap();
        }
        s3.put_object()
            .bucket("bench-in")
            .key("zidane.jpg")
            .body(photo.clone().into())
            .send()
            .await
            .unwrap();
    });

    let port = free_port();
    let spawned = Instant::now();
    let mut server = Command::new(env!("CARGO_BIN_EXE_predictor"))
        .arg("serve")
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("INPUT_BUCKET", "bench-in")
        .env("OUTPUT_BUCKET", "bench-out")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    while !http("GET", &format!("{base}/readyz"), &[], b"").is_ok_and(|r| r.status == 200) {
        assert!(
            spawned.elapsed() < Duration::from_secs(60),
            "server never became ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready_ms = spawned.elapsed().as_secs_f64() * 1e3;

    println!(
        "predictor service, {requests} requests per row, POST /predict, 1280x720 photo, moto S3 on the same machine"
    );
    println!();
    println!(
        "| request                  | concurrency | req/s | vs engine | p50 ms | p90 ms | p99 ms | p99 / (c / req/s) | errors |"
    );
    println!(
        "|--------------------------|-------------|-------|-----------|--------|--------|--------|-------------------|--------|"
    );
    // The full path (S3 in, draw, encode, S3 out), then the image in the body with
    // annotate=false: the gap between the two rows at c = 9 is what S3 and the JPEG
    // encoder cost on these two shared cores (the emulator runs on them too).
    let full = (
        "key, full path",
        "application/json",
        br#"{"image": "zidane.jpg"}"#.to_vec(),
        "/predict",
    );
    let bare = (
        "body, annotate=false",
        "image/jpeg",
        photo.clone(),
        "/predict?annotate=false",
    );
    let rows = [
        (&full, 1usize),
        (&full, 2),
        (&full, 9),
        (&bare, 1),
        (&bare, 9),
    ];
    for ((label, content_type, body, path), concurrency) in rows {
        let url = format!("{base}{path}");
        let started = Instant::now();
        let results: Vec<(f64, u16)> = testkit::closed_loop(requests, concurrency, || {
            let t = Instant::now();
            let r = http("POST", &url, &[("Content-Type", content_type)], body);
            (t.elapsed().as_secs_f64() * 1e3, r.map_or(0, |r| r.status))
        });
        let seconds = started.elapsed().as_secs_f64();
        let mut ms: Vec<f64> = results
            .iter()
            .filter(|(_, s)| *s == 200)
            .map(|(ms, _)| *ms)
            .collect();
        ms.sort_by(f64::total_cmp);
        let errors = results.len() - ms.len();
        let rate = ms.len() as f64 / seconds;
        // In a closed loop of c clients, Little's law gives the mean latency c / throughput
        // when nothing is wasted: the p99 is compared with that.
        let little = concurrency as f64 / rate * 1e3;
        println!(
            "| {label:<24} | {concurrency:>11} | {rate:>5.2} | {:>8.0} % | {:>6.1} | {:>6.1} | {:>6.1} | {:>17.2} | {errors:>6} |",
            rate / engine_rate * 100.0,
            percentile(&ms, 0.5),
            percentile(&ms, 0.9),
            percentile(&ms, 0.99),
            percentile(&ms, 0.99) / little,
        );
    }
    println!();
    println!("| measure                                   | value   |");
    println!("|-------------------------------------------|---------|");
    println!("| engine alone, inferences/s (same threads)  | {engine_rate:>7.2} |");
    println!("| server start to ready, ms                 | {ready_ms:>7.0} |");
    println!(
        "| server peak RSS, MB                       | {:>7.1} |",
        peak_rss_mb(server.id())
    );
    let _ = server.kill();
    let _ = server.wait();
}
