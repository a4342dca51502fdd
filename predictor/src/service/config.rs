//! The service's configuration, from environment variables, checked at start so a
//! misconfigured task or function fails at once with the variable's name.

use std::net::IpAddr;
use std::path::PathBuf;

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    File(PathBuf),
    /// Downloaded once at start, as the original study loaded its weights.
    S3 {
        bucket: String,
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub input_bucket: Option<String>,
    pub output_bucket: Option<String>,
    /// Further buckets `{"bucket": …}` requests may read.
    pub allowed_buckets: Vec<String>,
    pub output_public: bool,
    pub url_expiry_s: u64,
    pub model: Option<ModelSource>,
    pub confidence: f32,
    pub iou: f32,
    pub max_body_bytes: usize,
    pub max_pixels: u64,
    pub max_inflight: usize,
    pub queue_depth: usize,
    pub deadline_ms: u64,
    pub threads: Option<usize>,
    /// Whether ONNX Runtime's idle threads spin. On by default: measured with
    /// `cargo bench -p predictor --bench service`, turning it off slowed single requests
    /// from 82 to 116 ms (p50) and throughput at concurrency 9 from 10.2 to 8.6 req/s.
    pub spinning: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 8080,
            input_bucket: None,
            output_bucket: None,
            allowed_buckets: Vec::new(),
            output_public: false,
            url_expiry_s: contract::defaults::URL_EXPIRY_S.into(),
            model: None,
            confidence: contract::defaults::CONFIDENCE,
            iou: contract::defaults::IOU,
            // Lambda's event limit; the deployer sets the serverless one on both targets.
            max_body_bytes: 6 * 1024 * 1024,
            max_pixels: contract::defaults::MAX_PIXELS,
            max_inflight: contract::defaults::MAX_INFLIGHT as usize,
            queue_depth: contract::defaults::QUEUE_DEPTH as usize,
            deadline_ms: contract::defaults::DEADLINE_MS.into(),
            threads: None,
            spinning: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads the configuration through `get` (the environment, in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let var = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        };

        fn parse<T: std::str::FromStr>(
            (var, value): (&'static str, String),
            ok: impl Fn(&T) -> bool,
            expect: &str,
        ) -> Result<T, ConfigError> {
            match value.trim().parse::<T>() {
                Ok(v) if ok(&v) => Ok(v),
                _ => Err(ConfigError {
                    var,
                    value,
                    reason: format!("expected {expect}"),
                }),
            }
        }

        if let Some(v) = var("BIND_ADDRESS") {
            c.bind = parse(v, |_| true, "an IP address such as 0.0.0.0 or 127.0.0.1")?;
        }
        if let Some(v) = var("PORT") {
            c.port = parse(v, |_| true, "a port number 0..=65535")?;
        }
        c.input_bucket = var(contract::INPUT_BUCKET).map(|(_, v)| v);
        c.output_bucket = var(contract::OUTPUT_BUCKET).map(|(_, v)| v);
        c.allowed_buckets = var("ALLOWED_BUCKETS")
            .map(|(_, v)| {
                v.split(',')
                    .map(|b| b.trim().to_string())
                    .filter(|b| !b.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(v) = var(contract::OUTPUT_PUBLIC) {
            c.output_public = parse(v, |_| true, "true or false")?;
        }
        if let Some(v) = var(contract::URL_EXPIRY_S) {
            c.url_expiry_s = parse(v, |s| (1..=604_800).contains(s), "seconds in 1..=604800")?;
        }
        c.model = match (var(contract::MODEL_PATH), var(contract::MODEL_S3_URI)) {
            (Some(_), Some((name, value))) => {
                return Err(ConfigError {
                    var: name,
                    value,
                    reason: "set MODEL_PATH or MODEL_S3_URI, not both".into(),
                });
            }
            (Some((_, path)), None) => Some(ModelSource::File(path.into())),
            (None, Some((name, uri))) => {
                let parsed = uri.strip_prefix("s3://").and_then(|r| r.split_once('/'));
                match parsed {
                    Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                        Some(ModelSource::S3 {
                            bucket: bucket.into(),
                            key: key.into(),
                        })
                    }
                    _ => {
                        return Err(ConfigError {
                            var: name,
                            value: uri,
                            reason: "expected s3://bucket/key".into(),
                        });
                    }
                }
            }
            (None, None) => None,
        };
        let unit = |v: &f32| (0.0..=1.0).contains(v);
        if let Some(v) = var(contract::CONF) {
            c.confidence = parse(v, unit, "a number in 0..=1")?;
        }
        if let Some(v) = var(contract::IOU) {
            c.iou = parse(v, unit, "a number in 0..=1")?;
        }
        if let Some(v) = var(contract::MAX_BODY_BYTES) {
            c.max_body_bytes = parse(v, |b| *b > 0, "a positive number of bytes")?;
        }
        if let Some(v) = var(contract::MAX_PIXELS) {
            c.max_pixels = parse(v, |p| *p > 0, "a positive number of pixels")?;
        }
        if let Some(v) = var(contract::MAX_INFLIGHT) {
            c.max_inflight = parse(
                v,
                |n| (1..=256).contains(n),
                "1..=256 concurrent detections",
            )?;
        }
        if let Some(v) = var(contract::QUEUE_DEPTH) {
            c.queue_depth = parse(v, |n| *n <= 100_000, "0..=100000 waiting requests")?;
        }
        if let Some(v) = var(contract::DEADLINE_MS) {
            c.deadline_ms = parse(
                v,
                |d| (1..=900_000).contains(d),
                "milliseconds in 1..=900000",
            )?;
        }
        if let Some(v) = var("ORT_SPINNING") {
            c.spinning = parse(v, |_| true, "true or false")?;
        }
        if let Some(v) = var("ORT_THREADS") {
            c.threads = Some(parse(v, |n| (1..=256).contains(n), "1..=256 threads")?);
        }
        Ok(c)
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Whether a `{"bucket": …}` request may read `bucket`.
    pub fn may_read(&self, bucket: &str) -> bool {
        self.input_bucket.as_deref() == Some(bucket)
            || self.allowed_buckets.iter().any(|b| b == bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_any_variable() {
        assert_eq!(from(&[]).unwrap(), Config::default());
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("PORT", "9000"),
            ("INPUT_BUCKET", "in"),
            ("OUTPUT_BUCKET", "out"),
            ("ALLOWED_BUCKETS", "a, b"),
            ("OUTPUT_PUBLIC", "true"),
            ("MODEL_S3_URI", "s3://models/yolo/v1.onnx"),
            ("CONF", "0.5"),
            ("MAX_INFLIGHT", "3"),
            ("DEADLINE_MS", "1000"),
        ])
        .unwrap();
        assert_eq!(c.port, 9000);
        assert!(c.output_public && c.may_read("in") && c.may_read("b") && !c.may_read("out"));
        assert_eq!(
            c.model,
            Some(ModelSource::S3 {
                bucket: "models".into(),
                key: "yolo/v1.onnx".into()
            })
        );
        assert_eq!(
            (c.confidence, c.max_inflight, c.deadline_ms),
            (0.5, 3, 1000)
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = from(&[("CONF", "1.5")]).unwrap_err();
        assert_eq!(e.to_string(), "CONF=\"1.5\": expected a number in 0..=1");
        assert_eq!(from(&[("PORT", "http")]).unwrap_err().var, "PORT");
        assert_eq!(
            from(&[("MODEL_S3_URI", "bucket/key")]).unwrap_err().var,
            "MODEL_S3_URI"
        );
        assert!(from(&[("MODEL_PATH", "a"), ("MODEL_S3_URI", "s3://b/k")]).is_err());
        assert_eq!(
            from(&[("MAX_INFLIGHT", "0")]).unwrap_err().var,
            "MAX_INFLIGHT"
        );
    }

    /// The deployer sets these on both targets (`contract`): each must be read, so a
    /// value the predictor cannot take is refused naming it, and one it can changes the
    /// configuration.
    #[test]
    fn every_variable_the_deployer_sets_is_read() {
        for name in contract::SET_BY_DEPLOYER
            .iter()
            .chain([&contract::MODEL_S3_URI, &contract::MODEL_PATH])
        {
            let read = from(&[(name, "not-a-value")]);
            assert!(
                read.as_ref().is_err_and(|e| e.var == *name)
                    || read.as_ref().is_ok_and(|c| *c != Config::default()),
                "{name} is not read: {read:?}"
            );
        }
    }
}
