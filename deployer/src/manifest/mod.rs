//! The stack manifest: typed YAML, checked completely before any AWS call.
//!
//! Every field has a default, so a manifest only says what differs from the study's
//! deployment (t3a.xlarge 1–5 at 70 % CPU; Lambda 3000 MB / 30 s).

mod names;
mod regions;
mod spans;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use names::Names;
pub use spans::{Position, Spans};

/// The tag every resource of a stack carries; its value is the stack name. Nothing
/// without it is ever modified or deleted.
pub const OWNER_TAG: &str = "deployer:stack";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Prefix of every resource name and the value of the ownership tag.
    pub name: String,
    /// [default: `AWS_REGION`]
    #[serde(default)]
    pub region: String,
    /// An AWS-compatible endpoint (an emulator). `AWS_ENDPOINT_URL` overrides it.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Extra tags on every resource.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub image: Image,
    #[serde(default)]
    pub buckets: Buckets,
    #[serde(default)]
    pub model: Model,
    #[serde(default)]
    pub logs: Logs,
    #[serde(default)]
    pub serverful: Serverful,
    #[serde(default)]
    pub serverless: Serverless,
    #[serde(default)]
    pub predictor: Predictor,
    /// The local runtime: how both targets run on this machine when `endpoint` is an
    /// emulator on loopback.
    #[serde(default)]
    pub local: Local,
    /// What `bench` needs besides the stack: the price table of its cost figures.
    #[serde(default)]
    pub bench: Bench,
    /// How long each wait for AWS may take before the change fails.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// How long a wait for AWS may take, by what the change does (terraform's `timeouts`
/// block): a function becoming `Active`, provisioned concurrency becoming ready and a
/// capacity provider becoming `ACTIVE` while creating or updating; a load balancer, an
/// Auto Scaling group, a capacity provider or a service's tasks going away, and a
/// security group released by its network interfaces, while deleting. The serverful
/// rollout has its own, `serverful.wait_s`. The documented propagation windows (IAM,
/// service-linked roles) are AWS's, not settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    pub create_s: u32,
    pub update_s: u32,
    pub delete_s: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            create_s: 900,
            update_s: 900,
            delete_s: 1200,
        }
    }
}

impl Timeouts {
    pub fn create(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.create_s.into())
    }

    pub fn update(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.update_s.into())
    }

    pub fn delete(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.delete_s.into())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bench {
    pub prices: Prices,
}

/// Prices in US dollars [default: us-east-1, on demand, x86, as of 2026].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    /// Lambda compute, per GB-second.
    pub lambda_gb_second: f64,
    /// Lambda requests, per million.
    pub lambda_per_million: f64,
    /// HTTP API requests, per million.
    pub http_api_per_million: f64,
    /// One instance of `serverful.instance_type`, per hour.
    pub instance_hour: f64,
    pub alb_hour: f64,
    /// One ALB capacity unit, per hour.
    pub alb_lcu_hour: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            lambda_gb_second: 0.000_016_666_7,
            lambda_per_million: 0.20,
            http_api_per_million: 1.00,
            instance_hour: 0.1504,
            alb_hour: 0.0225,
            alb_lcu_hour: 0.008,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Image {
    /// ECR repository name [default: `<name>-predictor`].
    pub repository: Option<String>,
    /// A prebuilt image (`repo:tag` or `repo@sha256:…`) to deploy instead of building one.
    pub uri: Option<String>,
    /// Registry address overriding ECR's (a local registry, e.g. `127.0.0.1:5000`).
    pub registry: Option<String>,
    /// The tag `up` and `build` push; `plan` and `status` read what it points at.
    pub tag: String,
    /// Images kept by the repository's lifecycle policy.
    pub keep_last: u32,
    pub scan_on_push: bool,
}

impl Default for Image {
    fn default() -> Self {
        Image {
            repository: None,
            uri: None,
            registry: None,
            tag: "latest".into(),
            keep_last: 10,
            scan_on_push: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Buckets {
    pub input: InputBucket,
    pub output: OutputBucket,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputBucket {
    /// [default: `<name>-input`]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputBucket {
    /// [default: `<name>-results`]
    pub name: Option<String>,
    /// Results readable by anyone with the URL; otherwise presigned URLs.
    pub public: bool,
    /// Lifetime of presigned result URLs, seconds.
    pub url_expiry_s: u32,
    /// Results are deleted after this many days; 0 keeps them.
    pub expire_after_days: u32,
}

impl Default for OutputBucket {
    fn default() -> Self {
        OutputBucket {
            name: None,
            public: false,
            url_expiry_s: contract::defaults::URL_EXPIRY_S,
            expire_after_days: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Model {
    /// `bundled` (the models inside the image) or `s3://bucket/key` (downloaded at start,
    /// as the original study did).
    pub source: String,
    /// Which bundled model each target serves.
    pub variant: Variants,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            source: "bundled".into(),
            variant: Variants::default(),
        }
    }
}

/// The bundled model of each target. Both default to `rect`: the same model on both
/// sides keeps the comparison fair, and rect mode finds what the square model finds
/// with a third less work on a 16:9 photograph, on any x86-64 CPU. INT8 pays off on
/// CPUs with VNNI, which the serverful target's t3a.xlarge (AMD Zen 1) lacks and Lambda
/// does not promise, so it is a choice, not a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Variants {
    pub serverful: Variant,
    pub serverless: Variant,
}

impl Default for Variants {
    fn default() -> Self {
        Variants {
            serverful: Variant::Rect,
            serverless: Variant::Rect,
        }
    }
}

/// One of the models in the predictor's image (`predictor/models/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// FP32, 640x640 input: the study's model, and the reference tests' contract.
    Square,
    /// FP32 with dynamic height and width: each photo letterboxed to the smallest
    /// stride-32 rectangle (1280x720 -> 640x384).
    Rect,
    /// `rect`, statically quantized to 8 bits: fastest where the CPU has VNNI.
    RectInt8,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Square, Variant::Rect, Variant::RectInt8];

    /// The model's file name, in `predictor/models/` and in the image's models directory.
    pub fn file(self) -> &'static str {
        match self {
            Variant::Square => "yolo11n.onnx",
            Variant::Rect => "yolo11n-rect.onnx",
            Variant::RectInt8 => "yolo11n-rect-int8.onnx",
        }
    }
}

impl Model {
    /// `(bucket, key)` when the model comes from S3.
    pub fn s3(&self) -> Option<(&str, &str)> {
        self.source.strip_prefix("s3://")?.split_once('/')
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logs {
    pub retention_days: u32,
}

impl Default for Logs {
    fn default() -> Self {
        Logs { retention_days: 14 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Serverful {
    pub enabled: bool,
    pub instance_type: String,
    pub min: u32,
    pub max: u32,
    /// Target average CPU of the service's task scaling, percent; the instances follow
    /// the tasks one to one.
    pub cpu_target: u32,
    pub scale_in_cooldown_s: u32,
    pub container_insights: bool,
    pub container: Container,
    pub load_balancer: LoadBalancer,
    pub network: Network,
    /// How long `up` waits for tasks and healthy targets (0: do not wait).
    pub wait_s: u32,
}

impl Default for Serverful {
    fn default() -> Self {
        Serverful {
            enabled: true,
            instance_type: "t3a.xlarge".into(),
            min: 1,
            max: 5,
            cpu_target: 70,
            scale_in_cooldown_s: 60,
            container_insights: false,
            container: Container::default(),
            load_balancer: LoadBalancer::default(),
            network: Network::default(),
            wait_s: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Container {
    /// CPU units (1024 = one vCPU).
    pub cpu: u32,
    pub memory_mb: u32,
    pub port: u16,
}

impl Default for Container {
    fn default() -> Self {
        // A t3a.xlarge has 4 vCPUs and 16 GiB; the ECS agent keeps some memory back.
        Container {
            cpu: 4096,
            memory_mb: 15000,
            port: 8080,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadBalancer {
    pub port: u16,
    pub health_path: String,
    /// Who may reach the listener.
    pub cidrs: Vec<String>,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer {
            port: 80,
            health_path: "/readyz".into(),
            cidrs: vec!["0.0.0.0/0".into()],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// [default: the region's default VPC]
    pub vpc_id: Option<String>,
    /// [default: the VPC's subnets]
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Serverless {
    pub enabled: bool,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// `METHOD /path` of the HTTP API route to the function.
    pub route: String,
    pub reserved_concurrency: Option<u32>,
    pub provisioned_concurrency: Option<u32>,
}

impl Default for Serverless {
    fn default() -> Self {
        Serverless {
            enabled: true,
            memory_mb: 3000,
            timeout_s: 30,
            route: "POST /predict".into(),
            reserved_concurrency: None,
            provisioned_concurrency: None,
        }
    }
}

/// Lambda's limit on a synchronous invocation's event, bytes (AWS's "6 MB").
pub const LAMBDA_EVENT_BYTES: u64 = 6 * 1024 * 1024;
/// What an HTTP API event carries besides the body (headers, request context), kept free.
const EVENT_ENVELOPE_BYTES: u64 = 16 * 1024;
/// The largest binary body that reaches the function through an HTTP API: the API
/// base64-encodes a binary body into the event, 4 bytes for every 3 (4 706 304 bytes).
/// A larger photo goes by S3 key, which has no such limit.
pub const SERVERLESS_BINARY_BODY_BYTES: u64 = (LAMBDA_EVENT_BYTES - EVENT_ENVELOPE_BYTES) / 4 * 3;

/// The predictor's settings, passed to both targets as environment variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Predictor {
    pub confidence: f32,
    pub iou: f32,
    pub max_body_bytes: u64,
    pub max_pixels: u64,
    pub max_inflight: u32,
    pub queue_depth: u32,
    pub deadline_ms: u32,
}

impl Default for Predictor {
    fn default() -> Self {
        Predictor {
            confidence: contract::defaults::CONFIDENCE,
            iou: contract::defaults::IOU,
            // The same limit on both targets: the serverless side's.
            max_body_bytes: SERVERLESS_BINARY_BODY_BYTES,
            max_pixels: contract::defaults::MAX_PIXELS,
            max_inflight: contract::defaults::MAX_INFLIGHT,
            queue_depth: contract::defaults::QUEUE_DEPTH,
            deadline_ms: contract::defaults::DEADLINE_MS,
        }
    }
}

/// The local runtime's settings. It runs only against an emulator on loopback, and it
/// reads everything else (image, memory, timeout, environment, scaling bounds, health
/// check) from what `up` provisioned there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Local {
    /// Start the local runtime after `up` (a loopback endpoint only).
    pub enabled: bool,
    /// Loopback port of the load balancer in front of the instances; 0 picks a free one.
    pub serverful_port: u16,
    /// Loopback port of the HTTP API in front of the function; 0 picks a free one.
    pub serverless_port: u16,
    /// `aws`: AWS's periods (one-minute metrics, health checks as the target group
    /// says); `fast`: the same rules in seconds, for tests and quick experiments.
    pub timing: Timing,
    /// How the load balancer picks an instance.
    pub balancing: Balancing,
    /// Concurrent execution environments when the function has no reserved concurrency.
    pub concurrency: u32,
    /// An execution environment idle this long is reclaimed (the next request is cold).
    pub reclaim_after_s: u32,
    /// Cores of this machine per AWS vCPU, the same for both targets (a t3a.xlarge has
    /// 4 vCPU, a Lambda function memory/1769 MB); 0: this machine's cores / 4.
    pub cpu_scale: f64,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            enabled: true,
            serverful_port: 8081,
            serverless_port: 8082,
            timing: Timing::Aws,
            balancing: Balancing::RoundRobin,
            concurrency: 10,
            reclaim_after_s: 600,
            cpu_scale: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    Aws,
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    /// The ALB's default.
    RoundRobin,
    LeastOutstandingRequests,
}

/// One thing wrong with a manifest, at a position (line 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub position: Position,
    /// Dotted path of the field (`serverless.memory_mb`); empty for the whole document.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

/// Everything wrong with a manifest file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl std::error::Error for ManifestError {}

/// A manifest that cannot be read: the path and the system's reason, by its kind.
fn unreadable(file: &Path, e: &std::io::Error) -> Problem {
    use std::io::ErrorKind;
    let (reason, hint) = match e.kind() {
        ErrorKind::NotFound => (
            "no such file".to_string(),
            "the example manifests are `manifests/local.yaml` (the local emulator) and `manifests/aws.yaml`",
        ),
        ErrorKind::IsADirectory => (
            "it is a directory".to_string(),
            "pass the manifest file itself, e.g. `-f manifests/local.yaml`",
        ),
        ErrorKind::PermissionDenied => (
            "permission denied".to_string(),
            "check the file's permissions (`ls -l`)",
        ),
        ErrorKind::InvalidData => (
            "it is not UTF-8 text".to_string(),
            "a manifest is a YAML text file, e.g. `manifests/local.yaml`",
        ),
        _ => (e.to_string(), "check the path given with `-f`"),
    };
    Problem {
        position: Position { line: 0, column: 0 },
        path: String::new(),
        message: format!("cannot read the manifest `{}`: {reason}", file.display()),
        hint: Some(hint.into()),
    }
}

impl ManifestError {
    /// The fix of a file that could not be read at all (printed as the error's `hint:`);
    /// the hints of problems inside the file stay next to each problem.
    pub fn hint(&self) -> Option<&str> {
        match self.problems.as_slice() {
            [p] if p.position.line == 0 => p.hint.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let Position { line, column } = p.position;
            if line == 0 {
                // The file as a whole (it could not be read): the message names it.
                write!(f, "{}", p.message)?;
                continue;
            }
            write!(f, "{}:{line}:{column}: ", self.file.display())?;
            if !p.path.is_empty() {
                write!(f, "{}: ", p.path)?;
            }
            write!(f, "{}", p.message)?;
            if let Some(hint) = &p.hint {
                write!(f, "\n  hint: {hint}")?;
            }
        }
        Ok(())
    }
}

impl Manifest {
    /// Reads, parses and validates `file`.
    pub fn load(file: &Path) -> Result<Manifest, ManifestError> {
        let source = std::fs::read_to_string(file).map_err(|e| ManifestError {
            file: file.to_path_buf(),
            problems: vec![unreadable(file, &e)],
        })?;
        Manifest::parse(file, &source)
    }

    /// Parses and validates `source`; `file` only names it in errors.
    pub fn parse(file: &Path, source: &str) -> Result<Manifest, ManifestError> {
        let fail = |problems: Vec<Problem>| ManifestError {
            file: file.to_path_buf(),
            problems,
        };
        let spans = Spans::of(source);
        // serde_yaml refuses duplicate keys without saying where: the span map knows.
        if !spans.duplicates().is_empty() {
            let problems = spans
                .duplicates()
                .iter()
                .map(|(path, position)| Problem {
                    position: *position,
                    path: path.clone(),
                    message: "duplicate key: it is already set above".into(),
                    hint: None,
                })
                .collect();
            return Err(fail(problems));
        }
        let mut manifest = validate::deserialize(source).map_err(|p| fail(vec![p]))?;
        if manifest.region.is_empty() {
            // As the AWS CLI and SDKs do; the manifest's own `region` wins.
            manifest.region = std::env::var("AWS_REGION").unwrap_or_default();
        }
        let mut problems = validate::check(&manifest, &spans);
        if problems.is_empty() {
            Ok(manifest)
        } else {
            problems.sort_by_key(|p| p.position);
            Err(fail(problems))
        }
    }

    /// The largest photo a target takes as a request body: the manifest's limit, and on
    /// the serverless side no more than an HTTP API can put in Lambda's event.
    pub fn body_limit(&self, serverless: bool) -> u64 {
        if serverless {
            self.predictor
                .max_body_bytes
                .min(SERVERLESS_BINARY_BODY_BYTES)
        } else {
            self.predictor.max_body_bytes
        }
    }

    pub fn names(&self) -> Names {
        Names::of(self)
    }

    /// Every resource's tags: the manifest's, then the ownership tag.
    pub fn resource_tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(OWNER_TAG.into(), self.name.clone());
        tags
    }
}
