//! The contract between `deployer` and `predictor`: the environment variables the
//! deployer sets on both targets and the predictor reads, with the defaults both use.
//! Each name and default is spelled here once; neither crate has its own. No
//! dependencies, so the predictor's build stays as small as it was.

/// Bucket the `{"image": key}` requests read from.
pub const INPUT_BUCKET: &str = "INPUT_BUCKET";
/// Bucket the annotated images are written to.
pub const OUTPUT_BUCKET: &str = "OUTPUT_BUCKET";
/// Whether the annotated image's URL is public (else presigned).
pub const OUTPUT_PUBLIC: &str = "OUTPUT_PUBLIC";
/// Lifetime of a presigned URL, in seconds.
pub const URL_EXPIRY_S: &str = "URL_EXPIRY_S";
/// Confidence threshold.
pub const CONF: &str = "CONF";
/// IoU threshold of non-maximum suppression.
pub const IOU: &str = "IOU";
/// Largest request body.
pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
/// Largest decoded image, in pixels.
pub const MAX_PIXELS: &str = "MAX_PIXELS";
/// Detections running at once.
pub const MAX_INFLIGHT: &str = "MAX_INFLIGHT";
/// Requests waiting for a detection slot before the service answers 503.
pub const QUEUE_DEPTH: &str = "QUEUE_DEPTH";
/// A request's deadline.
pub const DEADLINE_MS: &str = "DEADLINE_MS";
/// The model's S3 URI, when it is not a bundled one.
pub const MODEL_S3_URI: &str = "MODEL_S3_URI";
/// The model's file, when it is a bundled one (the image holds several).
pub const MODEL_PATH: &str = "MODEL_PATH";

/// Every variable the deployer sets on both targets, besides one of [`MODEL_PATH`] (a
/// bundled model) and [`MODEL_S3_URI`] (a model on S3).
pub const SET_BY_DEPLOYER: &[&str] = &[
    INPUT_BUCKET,
    OUTPUT_BUCKET,
    OUTPUT_PUBLIC,
    URL_EXPIRY_S,
    CONF,
    IOU,
    MAX_BODY_BYTES,
    MAX_PIXELS,
    MAX_INFLIGHT,
    QUEUE_DEPTH,
    DEADLINE_MS,
];

/// The defaults: the predictor's when a variable is unset, the manifest's when a
/// setting is left out.
pub mod defaults {
    pub const URL_EXPIRY_S: u32 = 3600;
    pub const CONFIDENCE: f32 = 0.25;
    pub const IOU: f32 = 0.45;
    pub const MAX_PIXELS: u64 = 40_000_000;
    /// Two detections at once: one decodes and encodes while the other infers
    /// (measured with `cargo bench -p predictor --bench service`).
    pub const MAX_INFLIGHT: u32 = 2;
    pub const QUEUE_DEPTH: u32 = 16;
    /// Under API Gateway's 30 s.
    pub const DEADLINE_MS: u32 = 25_000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_set_once() {
        let mut names = SET_BY_DEPLOYER.to_vec();
        names.extend([MODEL_S3_URI, MODEL_PATH]);
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
