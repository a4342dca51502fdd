//! YOLO object detection: each stage of the pipeline is its own module with plain-data
//! boundaries, so each can be tested and benchmarked alone.

pub mod decode;
pub mod detector;
pub mod draw;
pub mod engine;
pub mod labels;
pub mod postprocess;
pub mod preprocess;
pub mod service;

pub use detector::{Detector, Found, Outcome, Settings, Timings};
