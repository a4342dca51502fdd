//! Manifest checks: YAML and type errors from serde, then every rule AWS would
//! otherwise reject halfway through an `up` (ranges, name rules, lengths after prefixing).

use super::{Manifest, Names, Position, Problem, Spans, Variants};

/// Deserialises `source`, turning serde's error into a positioned problem with the
/// field's path and, for a mistyped key, the closest valid one.
pub(super) fn deserialize(source: &str) -> Result<Manifest, Problem> {
    if source
        .trim()
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Problem {
            position: Position { line: 1, column: 1 },
            path: String::new(),
            message: "the manifest is empty".into(),
            hint: Some(
                "start from `manifests/local.yaml`, or see the manifest reference in README.md"
                    .into(),
            ),
        });
    }
    serde_yaml::from_str::<Manifest>(source).map_err(|e| from_serde(&e))
}

fn from_serde(e: &serde_yaml::Error) -> Problem {
    let position = e
        .location()
        .map(|l| Position {
            line: l.line(),
            column: l.column(),
        })
        .unwrap_or(Position { line: 1, column: 1 });
    let text = e.to_string();
    // serde_yaml appends " at line L column C"; the position is reported separately.
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    // Nested errors read "path.to.field: message"; top-level ones have no path.
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') && !p.is_empty() => (p.to_string(), m.to_string()),
        _ => (String::new(), text),
    };
    if let Some((field, expected)) = unknown_field(&message) {
        let path = if path.is_empty() {
            field.clone()
        } else {
            format!("{path}.{field}")
        };
        let hint = suggest(&field, &expected)
            .map(|s| format!("did you mean `{s}`?"))
            .or_else(|| Some(format!("expected one of: {}", expected.join(", "))));
        return Problem {
            position,
            path,
            message: format!("unknown field `{field}`"),
            hint,
        };
    }
    let message =
        if message.starts_with("invalid type: string") && position.line == 1 && path.is_empty() {
            "not a YAML mapping: a manifest is a set of `key: value` lines".to_string()
        } else {
            message
        };
    Problem {
        position,
        path,
        message,
        hint: None,
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [a, b]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}

/// The closest candidate within a small edit distance, as `just` and `cargo` suggest.
pub fn suggest(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

struct Checker<'a> {
    spans: &'a Spans,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            position: self.spans.locate(path),
            path: path.to_string(),
            message: message.into(),
            hint: None,
        });
    }

    fn hint(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.fail(path, message);
        if let Some(p) = self.problems.last_mut() {
            p.hint = Some(hint.into());
        }
    }

    fn range<T: PartialOrd + std::fmt::Display + Copy>(&mut self, path: &str, v: T, lo: T, hi: T) {
        if v < lo || v > hi {
            self.fail(path, format!("{v} is out of range {lo}..={hi}"));
        }
    }
}

/// How long a presigned URL signed with role credentials can work, seconds.
const ROLE_URL_EXPIRY_S: u32 = 6 * 3600;

/// The longest wait a timeout may set: three hours, past any wait AWS documents.
const MAX_TIMEOUT_S: u32 = 3 * 3600;

/// Every semantic problem in `m`, positioned with `spans`, section by section.
pub(super) fn check(m: &Manifest, spans: &Spans) -> Vec<Problem> {
    let mut c = Checker {
        spans,
        problems: Vec::new(),
    };
    let names = m.names();
    let name_ok = stack_name(&mut c, m, &names);
    region_endpoint_tags(&mut c, m);
    image(&mut c, m, &names, name_ok);
    buckets(&mut c, m, &names, name_ok);
    model_logs_timeouts(&mut c, m);
    serverful(&mut c, m);
    local(&mut c, m);
    prices(&mut c, m);
    serverless(&mut c, m);
    predictor(&mut c, m);
    c.problems
}

/// The stack's name, and the names AWS would refuse that derive from it; whether
/// the name itself is valid.
fn stack_name(c: &mut Checker, m: &Manifest, names: &Names) -> bool {
    let name_ok = is_stack_name(&m.name);
    if !name_ok {
        c.hint(
            "name",
            format!("`{}` is not a valid stack name", m.name),
            "use lowercase letters, digits and hyphens, starting with a letter",
        );
    } else {
        // Prefixes AWS refuses in names this stack derives from its own.
        let reserved: &[(&str, &String, &[&str])] = &[
            (
                "capacity provider",
                &names.capacity_provider,
                &["aws", "ecs", "fargate"],
            ),
            ("security group", &names.alb_security_group, &["sg-"]),
            ("load balancer", &names.load_balancer, &["internal-"]),
        ];
        for (what, name, prefixes) in reserved.iter().filter(|_| m.serverful.enabled) {
            if let Some(p) = prefixes.iter().find(|p| name.starts_with(**p)) {
                c.hint(
                    "name",
                    format!("the {what} name `{name}` would start with `{p}`, which AWS refuses"),
                    "choose a stack name that does not start with `aws`, `ecs`, `fargate`, `sg-` or `internal-`",
                );
            }
        }
        for (what, name, max) in [
            ("load balancer", &names.load_balancer, 32),
            ("target group", &names.target_group, 32),
            ("IAM role", &names.task_execution_role, 64),
            ("Lambda function", &names.function, 64),
        ] {
            if name.len() > max {
                c.hint(
                    "name",
                    format!(
                        "the {what} name `{name}` would be {} characters, over AWS's {max}",
                        name.len()
                    ),
                    "choose a shorter stack name",
                );
            }
        }
    }
    name_ok
}

/// Where the stack goes and what it is tagged with.
fn region_endpoint_tags(c: &mut Checker, m: &Manifest) {
    if m.region.is_empty() {
        c.hint(
            "region",
            "no region: the manifest has no `region` and `AWS_REGION` is not set",
            "add `region: us-east-1` (or the region to deploy to) to the manifest, or set `AWS_REGION`",
        );
    } else {
        match super::regions::check(&m.region) {
            Ok(()) => {}
            Err(Some(close)) => c.hint(
                "region",
                format!("region `{}` is not an AWS region", m.region),
                format!("did you mean `{close}`?"),
            ),
            Err(None) => c.fail(
                "region",
                format!(
                    "region `{}` is not an AWS region name (like `us-east-1`)",
                    m.region
                ),
            ),
        }
    }
    if let Some(endpoint) = &m.endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        c.fail(
            "endpoint",
            format!("`{endpoint}` must be an http:// or https:// URL"),
        );
    }
    for (k, v) in &m.tags {
        let path = format!("tags.{k}");
        if k.starts_with("aws:") || k == super::OWNER_TAG {
            c.fail(&path, format!("tag key `{k}` is reserved"));
        } else if k.is_empty() || k.len() > 128 {
            c.fail(&path, "tag keys are 1 to 128 characters");
        } else if v.len() > 256 {
            c.fail(&path, "tag values are at most 256 characters");
        }
    }
}

/// The repository and the image. Names derived from an invalid stack name were
/// reported with it.
fn image(c: &mut Checker, m: &Manifest, names: &Names, name_ok: bool) {
    // Image. Names derived from an invalid stack name were reported with it.
    if (name_ok || m.image.repository.is_some()) && !is_ecr_repository(&names.repository) {
        c.hint(
            "image.repository",
            format!("`{}` is not a valid ECR repository name", names.repository),
            "use 2 to 256 lowercase letters, digits and `._-/` separators, e.g. `team/predictor`",
        );
    }
    c.range("image.keep_last", m.image.keep_last, 1, 1000);
    if let Some(uri) = &m.image.uri
        && !(uri.contains(':') || uri.contains('@'))
    {
        c.fail(
            "image.uri",
            format!("`{uri}` names no tag or digest (`repo:tag` or `repo@sha256:…`)"),
        );
    }
}

/// The buckets' names and the results' lifetime and links.
fn buckets(c: &mut Checker, m: &Manifest, names: &Names, name_ok: bool) {
    let explicit = [
        m.buckets.input.name.is_some(),
        m.buckets.output.name.is_some(),
    ];
    let buckets = [
        ("buckets.input.name", &names.input_bucket),
        ("buckets.output.name", &names.output_bucket),
    ];
    for ((path, name), explicit) in buckets.into_iter().zip(explicit) {
        if !(name_ok || explicit) {
            continue;
        }
        if let Err(why) = check_bucket_name(name) {
            let at = if c.spans.locate(path) == c.spans.locate("") {
                "name"
            } else {
                path
            };
            c.fail(at, format!("bucket name `{name}` is invalid: {why}"));
        }
    }
    if names.input_bucket == names.output_bucket {
        c.fail(
            "buckets.output.name",
            "the input and output buckets must differ",
        );
    }
    // Both targets sign with their role's temporary credentials, and a presigned URL
    // stops working when the credentials that signed it expire, whatever it says: for
    // role sessions that is at most 6 hours (AWS knowledge center, "presigned URL
    // expires early"); SigV4's own 7 days applies to long-term keys only.
    if m.buckets.output.url_expiry_s > ROLE_URL_EXPIRY_S && !m.buckets.output.public {
        c.hint(
            "buckets.output.url_expiry_s",
            format!(
                "{} s outlives the role credentials that sign the URL (at most {ROLE_URL_EXPIRY_S} s)",
                m.buckets.output.url_expiry_s
            ),
            "at most 21600; for longer-lived links make the output bucket public (`buckets.output.public: true`)",
        );
    } else if !m.buckets.output.public {
        c.range(
            "buckets.output.url_expiry_s",
            m.buckets.output.url_expiry_s,
            1,
            ROLE_URL_EXPIRY_S,
        );
    }
    c.range(
        "buckets.output.expire_after_days",
        m.buckets.output.expire_after_days,
        0,
        36_500,
    );
}

/// Where the model comes from, how long logs are kept, how long waits may take.
fn model_logs_timeouts(c: &mut Checker, m: &Manifest) {
    if m.model.source != "bundled" {
        match m.model.s3() {
            Some((bucket, key)) if check_bucket_name(bucket).is_ok() && !key.is_empty() => {}
            _ => c.hint(
                "model.source",
                format!("`{}` is neither `bundled` nor an S3 URI", m.model.source),
                "use `bundled`, or `s3://bucket/path/model.onnx`",
            ),
        }
        if m.model.variant != Variants::default() {
            c.hint(
                "model.variant",
                "chooses among the bundled models, but `model.source` is not `bundled`",
                "remove `model.variant`: a model from S3 is served as it is (rect mode when its input has dynamic height and width)",
            );
        }
    }
    const RETENTION: [u32; 22] = [
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
        2922, 3288, 3653,
    ];
    if !RETENTION.contains(&m.logs.retention_days) {
        c.fail(
            "logs.retention_days",
            format!(
                "{} is not a CloudWatch Logs retention period ({RETENTION:?})",
                m.logs.retention_days
            ),
        );
    }
    let t = &m.timeouts;
    c.range("timeouts.create_s", t.create_s, 1, MAX_TIMEOUT_S);
    c.range("timeouts.update_s", t.update_s, 1, MAX_TIMEOUT_S);
    c.range("timeouts.delete_s", t.delete_s, 1, MAX_TIMEOUT_S);
}

/// ECS on EC2 behind the load balancer.
fn serverful(c: &mut Checker, m: &Manifest) {
    let s = &m.serverful;
    if !is_instance_type(&s.instance_type) {
        c.fail(
            "serverful.instance_type",
            format!("`{}` is not an EC2 instance type", s.instance_type),
        );
    }
    c.range("serverful.max", s.max, 1, 100);
    if s.min > s.max {
        c.fail(
            "serverful.min",
            format!("min {} is greater than max {}", s.min, s.max),
        );
    }
    c.range("serverful.cpu_target", s.cpu_target, 1, 100);
    c.range(
        "serverful.scale_in_cooldown_s",
        s.scale_in_cooldown_s,
        0,
        86_400,
    );
    c.range("serverful.container.cpu", s.container.cpu, 128, 196_608);
    c.range(
        "serverful.container.memory_mb",
        s.container.memory_mb,
        128,
        786_432,
    );
    c.range("serverful.container.port", s.container.port, 1, 65535);
    c.range(
        "serverful.load_balancer.port",
        s.load_balancer.port,
        1,
        65535,
    );
    if !s.load_balancer.health_path.starts_with('/') {
        c.fail("serverful.load_balancer.health_path", "must start with `/`");
    }
    if s.load_balancer.cidrs.is_empty() {
        c.fail(
            "serverful.load_balancer.cidrs",
            "at least one CIDR must be allowed to reach the load balancer",
        );
    }
    for (i, cidr) in s.load_balancer.cidrs.iter().enumerate() {
        if !is_ipv4_cidr(cidr) {
            c.fail(
                &format!("serverful.load_balancer.cidrs[{i}]"),
                format!("`{cidr}` is not an IPv4 CIDR"),
            );
        }
    }
    if !s.network.subnets.is_empty() && s.network.subnets.len() < 2 {
        c.fail(
            "serverful.network.subnets",
            "an Application Load Balancer needs subnets in at least two zones",
        );
    }
    c.range("serverful.wait_s", s.wait_s, 0, 3600);
}

/// The local runtime.
fn local(c: &mut Checker, m: &Manifest) {
    let local = &m.local;
    c.range("local.concurrency", local.concurrency, 1, 1000);
    c.range("local.reclaim_after_s", local.reclaim_after_s, 1, 86_400);
    if local.cpu_scale != 0.0 {
        c.range("local.cpu_scale", local.cpu_scale, 0.01, 64.0);
    }
    if local.serverful_port != 0 && local.serverful_port == local.serverless_port {
        c.fail(
            "local.serverless_port",
            format!(
                "port {} is already the serverful port",
                local.serverless_port
            ),
        );
    }
}

/// `bench`'s price table.
fn prices(c: &mut Checker, m: &Manifest) {
    let p = &m.bench.prices;
    for (field, v) in [
        ("lambda_gb_second", p.lambda_gb_second),
        ("lambda_per_million", p.lambda_per_million),
        ("http_api_per_million", p.http_api_per_million),
        ("instance_hour", p.instance_hour),
        ("alb_hour", p.alb_hour),
        ("alb_lcu_hour", p.alb_lcu_hour),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            c.fail(
                &format!("bench.prices.{field}"),
                format!("{v} is not a price in dollars"),
            );
        }
    }
}

/// Lambda behind the HTTP API.
fn serverless(c: &mut Checker, m: &Manifest) {
    let l = &m.serverless;
    c.range("serverless.memory_mb", l.memory_mb, 128, 10_240);
    if (1..=900).contains(&l.timeout_s) && l.timeout_s > 30 {
        c.hint(
            "serverless.timeout_s",
            format!(
                "{} s exceeds API Gateway's 30 s integration timeout",
                l.timeout_s
            ),
            "the HTTP API in front of the function gives up after 30 s: use at most 30",
        );
    } else {
        c.range("serverless.timeout_s", l.timeout_s, 1, 900);
    }
    match l.route.split_once(' ') {
        Some((method, path))
            if ["GET", "POST", "PUT", "ANY"].contains(&method)
                && path.starts_with('/')
                && !path.contains(' ') => {}
        _ => c.fail(
            "serverless.route",
            format!("`{}` is not `METHOD /path`", l.route),
        ),
    }
    if let Some(r) = l.reserved_concurrency {
        c.range("serverless.reserved_concurrency", r, 0, 10_000);
    }
    if let Some(p) = l.provisioned_concurrency {
        c.range("serverless.provisioned_concurrency", p, 1, 10_000);
        if let Some(r) = l.reserved_concurrency
            && p > r
        {
            c.fail(
                "serverless.provisioned_concurrency",
                format!("{p} is more than the reserved concurrency {r}"),
            );
        }
    }
}

/// The predictor's settings, with the serverless target's limits when it is on.
fn predictor(c: &mut Checker, m: &Manifest) {
    let l = &m.serverless;
    let p = &m.predictor;
    c.range("predictor.confidence", p.confidence, 0.0, 1.0);
    c.range("predictor.iou", p.iou, 0.0, 1.0);
    let body_max = if l.enabled {
        super::SERVERLESS_BINARY_BODY_BYTES
    } else {
        1 << 30
    };
    if p.max_body_bytes > body_max && l.enabled {
        c.hint(
            "predictor.max_body_bytes",
            format!(
                "{} is more than a binary body can be on the serverless target: the HTTP API \
                 base64-encodes it into Lambda's 6 MB event",
                p.max_body_bytes
            ),
            "at most 4706304 (larger photos go by S3 key, with no such limit)",
        );
    } else {
        c.range("predictor.max_body_bytes", p.max_body_bytes, 1, body_max);
    }
    c.range("predictor.max_pixels", p.max_pixels, 1, 1_000_000_000);
    c.range("predictor.max_inflight", p.max_inflight, 1, 64);
    c.range("predictor.queue_depth", p.queue_depth, 0, 10_000);
    if l.enabled && u64::from(p.deadline_ms) >= u64::from(l.timeout_s) * 1000 {
        c.fail(
            "predictor.deadline_ms",
            format!(
                "{} ms must be shorter than the function timeout ({} s)",
                p.deadline_ms, l.timeout_s
            ),
        );
    } else {
        c.range("predictor.deadline_ms", p.deadline_ms, 100, 900_000);
    }
}

/// Lowercase, digits and hyphens; the length limit comes from the names derived from it
/// (checked separately, so the error names the resource that would be too long).
fn is_stack_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(super) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        && parts[0].len() == 2
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn is_instance_type(s: &str) -> bool {
    s.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && size
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

/// ECR: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2 to 256 long.
fn is_ecr_repository(s: &str) -> bool {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.split(['.', '_', '-']).all(|w| {
                !w.is_empty()
                    && w.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            })
    };
    (2..=256).contains(&s.len()) && s.split('/').all(component_ok)
}

/// S3 general purpose bucket naming rules.
pub fn check_bucket_name(s: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&s.len()) {
        return Err("bucket names are 3 to 63 characters");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err("only lowercase letters, digits, `-` and `.` are allowed");
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(s.chars().next()) || !edge_ok(s.chars().last()) {
        return Err("it must begin and end with a letter or digit");
    }
    if s.contains("..") {
        return Err("it must not contain two adjacent dots");
    }
    if s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("it must not look like an IP address");
    }
    if s.starts_with("xn--")
        || s.starts_with("sthree-")
        || s.ends_with("-s3alias")
        || s.ends_with("--ol-s3")
    {
        return Err("it uses a prefix or suffix reserved by S3");
    }
    Ok(())
}

fn is_ipv4_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields: Vec<String> = ["memory_mb", "timeout_s", "enabled"]
            .map(String::from)
            .to_vec();
        assert_eq!(suggest("memroy_mb", &fields).as_deref(), Some("memory_mb"));
        assert_eq!(suggest("timeout", &fields).as_deref(), Some("timeout_s"));
        assert_eq!(suggest("colour", &fields), None);
    }

    #[test]
    fn bucket_rules() {
        assert!(check_bucket_name("yolo-study-input").is_ok());
        for bad in [
            "ab",
            "Upper-case",
            "-leading",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "x_y",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ecr_and_other_name_rules() {
        assert!(is_ecr_repository("team/predictor-v1.2"));
        assert!(!is_ecr_repository("Team/predictor"));
        assert!(!is_ecr_repository("a//b"));
        assert!(is_region("us-east-1") && is_region("ap-southeast-2") && !is_region("useast1"));
        assert!(is_instance_type("t3a.xlarge") && !is_instance_type("t3a"));
        assert!(is_ipv4_cidr("0.0.0.0/0") && !is_ipv4_cidr("10.0.0.0/33") && !is_ipv4_cidr("nope"));
        assert!(is_stack_name("yolo-study") && !is_stack_name("Yolo") && !is_stack_name("a-"));
    }
}
