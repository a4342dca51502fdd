//! Per-stage timings of the detection pipeline, printed as a table.
//!
//! `cargo bench -p predictor --bench pipeline` (or `scripts/bench-predictor.sh`, which
//! also runs Python's onnxruntime on the same input and prints the ratio).
//! Environment: `BENCH_RUNS` (default 30), `ORT_THREADS` (default: cores).

use std::path::Path;
use std::time::{Duration, Instant};

use predictor::detector::{Detector, Settings};
use predictor::engine::{Engine, OrtEngine, Threading};
use predictor::{decode, draw, postprocess, preprocess};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    std::hint::black_box(f());
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn row(image: &str, stage: &str, ms: &[f64]) {
    println!(
        "| {image:<11} | {stage:<12} | {:>8.2} | {:>8.2} | {:>8.2} |",
        percentile(ms, 0.5),
        percentile(ms, 0.9),
        ms[0]
    );
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Images per second from `threads` threads sharing one detector for `window`.
fn throughput(detector: &Detector, bytes: &[u8], threads: usize, window: Duration) -> f64 {
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while start.elapsed() < window {
                        detector.detect(bytes).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `BENCH_MODEL=models/yolo11n-rect.onnx` times rect mode (or any other model).
    let model = root.join(std::env::var("BENCH_MODEL").unwrap_or("models/yolo11n.onnx".into()));
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut threading = Threading::default();
    if let Some(n) = std::env::var("ORT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        threading.intra_threads = n;
    }

    let t = Instant::now();
    let engine = OrtEngine::load(&model, threading).unwrap_or_else(|e| panic!("{e}"));
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let (w, h) = engine.input_size();
    let detector = Detector::new(Box::new(engine), Settings::default()).unwrap();
    // The footprint of a serving process: one session, both photographs through it.
    for file in ["zidane.jpg", "bus.jpg"] {
        let mut o = detector
            .detect(&std::fs::read(root.join("tests/images").join(file)).unwrap())
            .unwrap();
        detector.annotate(&mut o);
    }
    let serving_rss = peak_rss_mb();
    // Inference is timed through the detector's own session: a second live session's
    // spinning threads would slow the first by a quarter on two cores.
    let engine = detector.engine();

    println!(
        "predictor pipeline, {runs} runs per row, ONNX Runtime intra-op threads: {}",
        threading.intra_threads
    );
    println!();
    println!("| image       | stage        |  p50 ms  |  p90 ms  |  min ms  |");
    println!("|-------------|--------------|----------|----------|----------|");
    let mut non_inference = Vec::new();
    for (name, file) in [("1280x720", "zidane.jpg"), ("810x1080", "bus.jpg")] {
        let bytes = std::fs::read(root.join("tests/images").join(file)).unwrap();
        let decode = time(runs, || decode::decode(&bytes, u64::MAX).unwrap());
        let image = decode::decode(&bytes, u64::MAX).unwrap().pixels;
        let mut input = Vec::new();
        let rect = engine.rect();
        let pre = time(runs, || preprocess::prepare(&image, w, h, rect, &mut input));
        let (letterbox, iw, ih) = preprocess::prepare(&image, w, h, rect, &mut input);
        let infer = time(runs, || engine.run(&input, iw, ih).unwrap());
        let output = engine.run(&input, iw, ih).unwrap();
        let thresholds = postprocess::Thresholds::default();
        let post = time(runs, || {
            postprocess::detections(&output, &thresholds, &letterbox).unwrap()
        });
        let mut outcome = detector.detect(&bytes).unwrap();
        let annotations: Vec<draw::Annotation> = outcome
            .detections
            .iter()
            .map(|d| draw::Annotation {
                class_id: d.class_id,
                bbox: d.bbox,
                label: format!("{} {:.2}", d.label, d.score),
            })
            .collect();
        let clean = outcome.image.clone();
        let drawing = time(runs, || {
            outcome.image.clone_from(&clean);
            draw::draw(&mut outcome.image, &annotations)
        });
        let encode = time(runs, || draw::encode_jpeg(&outcome.image, 90));
        let end_to_end = time(runs, || {
            let mut o = detector.detect(&bytes).unwrap();
            detector.annotate(&mut o)
        });
        for (stage, ms) in [
            ("decode", &decode),
            ("preprocess", &pre),
            ("infer", &infer),
            ("postprocess", &post),
            ("draw", &drawing),
            ("encode", &encode),
            ("end to end", &end_to_end),
        ] {
            row(name, stage, ms);
        }
        let rest: f64 = [&decode, &pre, &post, &drawing, &encode]
            .iter()
            .map(|v| percentile(v, 0.5))
            .sum();
        non_inference.push((name, rest, percentile(&infer, 0.5)));
    }
    println!();
    println!("| measure                                   | value     |");
    println!("|-------------------------------------------|-----------|");
    println!("| model load (session + runtime), ms        | {load_ms:>9.1} |");
    for (name, rest, infer) in &non_inference {
        println!("| all stages but inference, {name}, ms | {rest:>9.2} |");
        println!("| inference p50, {name}, ms            | {infer:>9.2} |");
    }
    println!("| peak RSS, one detector, MB                | {serving_rss:>9.1} |");

    drop(detector);
    // Under concurrent callers: does letting idle intra-op threads spin help or hurt?
    let bytes = std::fs::read(root.join("tests/images/zidane.jpg")).unwrap();
    let window = Duration::from_secs(4);
    println!();
    println!("| spinning | callers | images/s |");
    println!("|----------|---------|----------|");
    for spinning in [true, false] {
        let threading = Threading {
            spinning,
            ..threading
        };
        let d = Detector::load(&model, threading, Settings::default()).unwrap();
        for callers in [1, 2] {
            println!(
                "| {:<8} | {callers:>7} | {:>8.2} |",
                spinning,
                throughput(&d, &bytes, callers, window)
            );
        }
    }
}
