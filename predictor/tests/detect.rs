//! The real model on real photographs, against reference detections from Python's
//! onnxruntime with the same preprocessing (`scripts/reference_detections.py`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{ImageFormat, RgbImage};
use predictor::detector::{Detector, Settings};
use predictor::engine::Threading;
use predictor::postprocess::iou;
use serde::Deserialize;

fn here(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| {
        Detector::load(
            &here("models/yolo11n.onnx"),
            Threading::default(),
            Settings::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    })
}

#[derive(Deserialize)]
struct Reference {
    image: String,
    width: u32,
    height: u32,
    detections: Vec<RefDetection>,
}

#[derive(Deserialize)]
struct RefDetection {
    label: String,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

/// The detections' labels in order equal the reference's, each score within 0.02.
fn same_labels_and_scores<'a>(
    image: &str,
    got: &[predictor::detector::Found],
    want: impl Iterator<Item = (&'a str, f32)>,
) {
    let want: Vec<(&str, f32)> = want.collect();
    let labels: Vec<&str> = got.iter().map(|d| d.label.as_str()).collect();
    let wanted: Vec<&str> = want.iter().map(|(l, _)| *l).collect();
    assert_eq!(labels, wanted, "{image}: labels");
    for (g, (label, score)) in got.iter().zip(&want) {
        assert!(
            (g.score - score).abs() <= 0.02,
            "{image}: {label} score {} vs {score}",
            g.score
        );
    }
}

#[test]
fn six_photographs_match_the_onnxruntime_reference() {
    let refs: Vec<Reference> = serde_json::from_str(
        &std::fs::read_to_string(here("tests/fixtures/reference.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(refs.len(), 6);
    for r in refs {
        let bytes = std::fs::read(here(&format!("tests/images/{}", r.image))).unwrap();
        let got = detector().detect(&bytes).unwrap();
        assert_eq!((got.width, got.height), (r.width, r.height), "{}", r.image);
        same_labels_and_scores(
            &r.image,
            &got.detections,
            r.detections.iter().map(|d| (d.label.as_str(), d.score)),
        );
        for (g, w) in got.detections.iter().zip(&r.detections) {
            let overlap = iou(&g.bbox, &w.bbox);
            assert!(
                overlap >= 0.9,
                "{}: {} box {:?} vs {:?} (IoU {overlap})",
                r.image,
                w.label,
                g.bbox,
                w.bbox
            );
        }
    }
}

fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn a_blank_image_has_no_detections() {
    let blank = RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
    let got = detector().detect(&png(&blank)).unwrap();
    assert!(got.detections.is_empty(), "{:?}", got.detections);
}

#[test]
fn tiny_and_extreme_aspect_images_are_handled() {
    for (w, h) in [(1, 1), (4000, 20), (20, 4000)] {
        let img = RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10]));
        let got = detector().detect(&png(&img)).unwrap();
        assert_eq!((got.width, got.height), (w, h));
        for d in &got.detections {
            let [x1, y1, x2, y2] = d.bbox;
            assert!(
                0.0 <= x1 && x1 <= x2 && x2 <= w as f32 && 0.0 <= y1 && y1 <= y2 && y2 <= h as f32,
                "{d:?}"
            );
        }
    }
}

#[test]
fn annotated_output_is_a_jpeg_of_the_input_size_with_boxes_drawn() {
    let bytes = std::fs::read(here("tests/images/zidane.jpg")).unwrap();
    let plain = predictor::decode::decode(&bytes, u64::MAX).unwrap().pixels;
    let mut outcome = detector().detect(&bytes).unwrap();
    let jpeg = detector().annotate(&mut outcome);
    let back = predictor::decode::decode(&jpeg, u64::MAX).unwrap();
    assert_eq!(back.format, ImageFormat::Jpeg);
    let back = back.pixels;
    assert_eq!(back.dimensions(), (1280, 720));
    assert!(outcome.timings.draw.is_some() && outcome.timings.encode.is_some());
    // The top edge of the best box now carries the person colour, which it did not before.
    let [x1, y1, x2, _] = outcome.detections[0].bbox;
    let (x, y) = (((x1 + x2) / 2.0) as u32, y1 as u32 + 1);
    let (before, after) = (plain.get_pixel(x, y).0, back.get_pixel(x, y).0);
    let person = predictor::draw::class_color(0).0;
    let dist = |a: [u8; 3], b: [u8; 3]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (*p as i32 - q as i32).abs())
            .sum::<i32>()
    };
    assert!(
        dist(after, person) < 60 && dist(before, person) > 60,
        "before {before:?} after {after:?}"
    );
}

#[test]
fn cli_reports_bad_files_and_still_processes_good_ones() {
    let dir = std::env::temp_dir().join(format!("predictor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("broken.jpg");
    let good = here("tests/images/bus.jpg");
    std::fs::write(&bad, &std::fs::read(&good).unwrap()[..2000]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_predictor"))
        .args(["detect", "--json", "--out"])
        .arg(dir.join("out"))
        .arg(&bad)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.jpg: image data is corrupt or truncated: JPEG is truncated"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["detections"][0]["label"], "bus");
    assert_eq!(lines[0]["width"], 810);
    assert!(dir.join("out/bus.jpg").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The rect-mode model (`scripts/export-rect.py`) against onnxruntime's detections with
/// the same model and preprocessing (`scripts/rect-agreement.py`, two decimals), and its
/// boxes against the square model's reference: the same objects, each box where the
/// square model puts it.
#[test]
fn rect_mode_matches_its_reference_and_finds_the_square_modes_objects() {
    #[derive(Deserialize)]
    struct Rect {
        image: String,
        detections: Vec<RectDetection>,
    }
    #[derive(Deserialize)]
    struct RectDetection {
        label: String,
        score: f32,
    }
    let rect = Detector::load(
        &here("models/yolo11n-rect.onnx"),
        Threading::default(),
        Settings::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(rect.engine().rect());
    assert_eq!(
        rect.class_names().len(),
        80,
        "the small warm-up run reads the output's layout as the real ones will"
    );
    let refs: Vec<Rect> = serde_json::from_str(
        &std::fs::read_to_string(here("tests/fixtures/reference-rect.json")).unwrap(),
    )
    .unwrap();
    let square: Vec<Reference> = serde_json::from_str(
        &std::fs::read_to_string(here("tests/fixtures/reference.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(refs.len(), 6);
    for r in refs {
        let bytes = std::fs::read(here(&format!("tests/images/{}", r.image))).unwrap();
        let got = rect.detect(&bytes).unwrap();
        same_labels_and_scores(
            &r.image,
            &got.detections,
            r.detections.iter().map(|d| (d.label.as_str(), d.score)),
        );
        let sq = square.iter().find(|s| s.image == r.image).unwrap();
        for s in &sq.detections {
            let best = got
                .detections
                .iter()
                .filter(|g| g.label == s.label)
                .map(|g| iou(&g.bbox, &s.bbox))
                .fold(0.0, f32::max);
            assert!(best >= 0.85, "{}: {} best IoU {best}", r.image, s.label);
        }
    }
}

/// INT8 rect mode (`models/yolo11n-rect-int8.onnx`, from `scripts/quantize-int8.py
/// --model predictor/models/yolo11n-rect.onnx`): every object the square FP32 reference
/// finds with a score of at least 0.5 is found with the same label, IoU at least 0.85.
#[test]
fn int8_rect_mode_finds_the_square_references_confident_objects() {
    let int8 = Detector::load(
        &here("models/yolo11n-rect-int8.onnx"),
        Threading::default(),
        Settings::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(int8.engine().rect());
    let square: Vec<Reference> = serde_json::from_str(
        &std::fs::read_to_string(here("tests/fixtures/reference.json")).unwrap(),
    )
    .unwrap();
    let mut found = 0;
    for sq in &square {
        let bytes = std::fs::read(here(&format!("tests/images/{}", sq.image))).unwrap();
        let got = int8.detect(&bytes).unwrap();
        for s in sq.detections.iter().filter(|d| d.score >= 0.5) {
            let best = got
                .detections
                .iter()
                .filter(|g| g.label == s.label)
                .map(|g| iou(&g.bbox, &s.bbox))
                .fold(0.0, f32::max);
            assert!(best >= 0.85, "{}: {} best IoU {best}", sq.image, s.label);
            found += 1;
        }
    }
    assert!(
        found >= 10,
        "only {found} confident objects in the reference"
    );
}
