//! The detection pipeline: decode → preprocess → infer → postprocess, then optionally
//! draw → encode, each stage timed. Owns the engine and the class names.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::decode::{self, DecodeError};
use crate::draw::{self, Annotation};
use crate::engine::{Engine, EngineError, OrtEngine, Threading};
use crate::labels;
use crate::postprocess::{self, LayoutError, Thresholds};
use crate::preprocess;

/// The default pixel budget: 40 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// The model file name shipped with the crate and the image.
pub const BUNDLED_MODEL: &str = "yolo11n.onnx";

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// One detection as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    pub label: String,
    pub class_id: usize,
    pub score: f32,
    /// `[x1, y1, x2, y2]` in original pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// Milliseconds spent in each stage. Stages that did not run are left out of the JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<f64>,
    pub decode: f64,
    pub preprocess: f64,
    pub infer: f64,
    pub postprocess: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<f64>,
    pub total: f64,
}

impl Timings {
    /// Every stage in pipeline order with its milliseconds (`None`: it did not run).
    pub fn stages(&self) -> [(&'static str, Option<f64>); 8] {
        [
            ("download", self.download),
            ("decode", Some(self.decode)),
            ("preprocess", Some(self.preprocess)),
            ("infer", Some(self.infer)),
            ("postprocess", Some(self.postprocess)),
            ("draw", self.draw),
            ("encode", self.encode),
            ("upload", self.upload),
        ]
    }

    /// The same timings to 0.01 ms, for output: finer digits are noise.
    pub fn rounded(self) -> Timings {
        let r = |v: f64| (v * 100.0).round() / 100.0;
        Timings {
            download: self.download.map(r),
            decode: r(self.decode),
            preprocess: r(self.preprocess),
            infer: r(self.infer),
            postprocess: r(self.postprocess),
            draw: self.draw.map(r),
            encode: self.encode.map(r),
            upload: self.upload.map(r),
            total: r(self.total),
        }
    }
}

/// The result of one detection, with the decoded image kept for annotation.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Found>,
    pub timings: Timings,
    pub image: RgbImage,
}

/// Settings that shape detection, independent of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Settings {
    pub thresholds: Thresholds,
    pub max_pixels: u64,
    pub jpeg_quality: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            thresholds: Thresholds::default(),
            max_pixels: DEFAULT_MAX_PIXELS,
            jpeg_quality: 90,
        }
    }
}

pub struct Detector {
    engine: Box<dyn Engine>,
    names: Vec<String>,
    settings: Settings,
}

thread_local! {
    /// The 640x640x3 float input is 4.9 MB: reused per thread instead of allocated per image.
    static INPUT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The side of a rect model's warm-up input. A run at any size sets up what the first
/// request would otherwise pay for (threads, kernels), so a small one keeps spawn to
/// ready short: 154 instead of 268 ms (median of six starts, `yolo11n-rect.onnx`), the
/// first request then 3-6 ms slower than the second. 128x128 still gives more anchors
/// (336) than an 80-class head has rows (84), so the output's layout reads as it will.
pub const RECT_WARM_UP: u32 = 128;

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

impl Detector {
    /// Loads `model` into ONNX Runtime and warms it up with one inference.
    pub fn load(
        model: &Path,
        threading: Threading,
        settings: Settings,
    ) -> Result<Self, DetectError> {
        let engine = OrtEngine::load(model, threading)?;
        Detector::new(Box::new(engine), settings)
    }

    /// Wraps any engine; runs one warm-up inference to learn the output layout and so that
    /// the first real request does not pay for lazy initialisation.
    pub fn new(engine: Box<dyn Engine>, settings: Settings) -> Result<Self, DetectError> {
        let (w, h) = if engine.rect() {
            (RECT_WARM_UP, RECT_WARM_UP)
        } else {
            engine.input_size()
        };
        let started = Instant::now();
        let warm = engine.run(&vec![0.0; 3 * (w * h) as usize], w, h)?;
        tracing::info!("warm-up inference in {:.0} ms", ms_since(started));
        let classes = postprocess::Layout::from_shape(&warm.shape)?.classes();
        let names = labels::resolve(engine.class_names(), classes);
        Ok(Detector {
            engine,
            names,
            settings,
        })
    }

    /// The engine, for callers that time inference alone (the benchmark).
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn class_names(&self) -> &[String] {
        &self.names
    }

    /// Decodes `bytes` and detects objects in it.
    pub fn detect(&self, bytes: &[u8]) -> Result<Outcome, DetectError> {
        let started = Instant::now();
        let mut t = Timings::default();

        let stage = Instant::now();
        let image = decode::decode(bytes, self.settings.max_pixels)?.pixels;
        t.decode = ms_since(stage);

        let (w, h) = self.engine.input_size();
        let (letterbox, output) = INPUT.with_borrow_mut(|input| {
            let stage = Instant::now();
            let (letterbox, w, h) = preprocess::prepare(&image, w, h, self.engine.rect(), input);
            t.preprocess = ms_since(stage);
            let stage = Instant::now();
            let output = self.engine.run(input, w, h);
            t.infer = ms_since(stage);
            output.map(|o| (letterbox, o))
        })?;

        let stage = Instant::now();
        let detections = postprocess::detections(&output, &self.settings.thresholds, &letterbox)?
            .into_iter()
            .map(|d| Found {
                label: self
                    .names
                    .get(d.class_id)
                    .cloned()
                    .unwrap_or_else(|| format!("class {}", d.class_id)),
                class_id: d.class_id,
                score: d.score,
                bbox: d.bbox.map(|v| (v * 10.0).round() / 10.0),
            })
            .collect();
        t.postprocess = ms_since(stage);
        t.total = ms_since(started);

        Ok(Outcome {
            width: image.width(),
            height: image.height(),
            detections,
            timings: t,
            image,
        })
    }

    /// Draws the detections on the outcome's image and encodes it as JPEG, adding the two
    /// stages to its timings.
    pub fn annotate(&self, outcome: &mut Outcome) -> Vec<u8> {
        let stage = Instant::now();
        let annotations: Vec<Annotation> = outcome
            .detections
            .iter()
            .map(|d| Annotation {
                class_id: d.class_id,
                bbox: d.bbox,
                label: format!("{} {:.2}", d.label, d.score),
            })
            .collect();
        draw::draw(&mut outcome.image, &annotations);
        let draw_ms = ms_since(stage);
        let stage = Instant::now();
        let jpeg = draw::encode_jpeg(&outcome.image, self.settings.jpeg_quality);
        let encode_ms = ms_since(stage);
        outcome.timings.draw = Some(draw_ms);
        outcome.timings.encode = Some(encode_ms);
        outcome.timings.total += draw_ms + encode_ms;
        jpeg
    }
}

/// Where the bundled model is looked for when none is named: next to the executable
/// (`models/` beside it or one level up, the image layout), then this crate's `models/`.
pub fn bundled_model() -> Option<PathBuf> {
    let exe_dir = crate::engine::exe_dir();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = exe_dir {
        candidates.push(dir.join("models").join(BUNDLED_MODEL));
        candidates.push(dir.join("../models").join(BUNDLED_MODEL));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(BUNDLED_MODEL),
    );
    candidates.into_iter().find(|p| p.is_file())
}
