//! Faults AWS gives at random, reproduced in front of moto: throttling in each
//! service's own protocol shape, 500 and 503, and added latency, each at its own rate.
//!
//! Whether a call gets a fault is decided from the seed, the call itself (method,
//! path, `X-Amz-Target`, body) and how many times that same call was seen before, so a
//! seed gives the same faults to the same calls whatever order concurrent requests
//! arrive in, and a retry of a call draws again.
//!
//! Most faults answer instead of forwarding: the call never happened. A 500 may also
//! come after the upstream answered: the call happened (a create committed) and the
//! client sees an error, as AWS does now and then; a retried create must then find what
//! it made instead of making a second one.
//!
//! The shapes, per protocol (AWS's API references, "Common Errors", and each service's
//! own throttling error):
//! - query (IAM, STS, Auto Scaling, ELBv2, CloudWatch): `<ErrorResponse><Error>` with
//!   `Throttling`, 400;
//! - EC2's query: `<Response><Errors><Error>` with `RequestLimitExceeded`, 503;
//! - JSON (ECS, ECR, Logs, SSM, Application Auto Scaling): `{"__type":
//!   "ThrottlingException"}`, 400;
//! - REST JSON: Lambda and API Gateway `TooManyRequestsException`, 429;
//! - S3: `<Error><Code>SlowDown</Code>`, 503;
//! - everywhere: `InternalFailure` 500 and `ServiceUnavailable` 503 (S3 and EC2 name
//!   them `InternalError` and `ServiceUnavailable`/`Unavailable`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How often each fault is injected, out of 1000 calls; a call gets at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    pub seed: u64,
    /// The service's throttling answer, instead of forwarding.
    pub throttle: u16,
    /// 500 instead of forwarding: the call never happened.
    pub error_before: u16,
    /// 500 after forwarding: the call happened, the client sees an error.
    pub error_after: u16,
    /// 503 instead of forwarding.
    pub unavailable: u16,
    /// The call is forwarded after a delay of up to `max_latency`.
    pub latency: u16,
    pub max_latency: Duration,
}

impl Faults {
    /// `percent` of the calls get a fault, the same share of each kind; added latency
    /// is up to 300 ms.
    pub fn percent(seed: u64, percent: u16) -> Faults {
        let each = percent * 10 / 5;
        Faults {
            seed,
            throttle: each,
            error_before: each,
            error_after: each,
            unavailable: each,
            latency: each,
            max_latency: Duration::from_millis(300),
        }
    }
}

/// One fault, as decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    Throttle,
    ErrorBefore,
    ErrorAfter,
    Unavailable,
    Latency(Duration),
}

impl Fault {
    /// The kind, without its latency, for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::ErrorBefore => "500 before",
            Fault::ErrorAfter => "500 after",
            Fault::Unavailable => "503",
            Fault::Latency(_) => "latency",
        }
    }
}

/// The protocol family of a service, from its signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Query,
    Ec2,
    Json,
    /// REST JSON with `TooManyRequestsException` 429 (Lambda, API Gateway).
    RestJson,
    S3,
}

impl Protocol {
    /// `None` for what is not a signed AWS call (the registry, moto's own API).
    pub fn of(signing_name: &str) -> Option<Protocol> {
        Some(match signing_name {
            "iam" | "sts" | "autoscaling" | "elasticloadbalancing" | "monitoring" => {
                Protocol::Query
            }
            "ec2" => Protocol::Ec2,
            "ecs" | "ecr" | "logs" | "ssm" | "application-autoscaling" => Protocol::Json,
            "lambda" | "apigateway" => Protocol::RestJson,
            "s3" => Protocol::S3,
            _ => return None,
        })
    }
}

/// The service a signed request is for: the signing name in its SigV4 credential scope
/// (`Credential=AKID/20260101/us-east-1/ecs/aws4_request`).
pub(crate) fn signing_name(authorization: &str) -> Option<&str> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    scope.split('/').nth(3)
}

/// An error answer: status, headers, body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// AWS's answer for `fault` (not latency) in `protocol`'s shape.
pub(crate) fn answer(protocol: Protocol, fault: Fault, request_id: &str) -> Answer {
    use Protocol::*;
    let (status, code, message) = match (fault, protocol) {
        (Fault::Throttle, Query) => (400, "Throttling", "Rate exceeded"),
        (Fault::Throttle, Ec2) => (503, "RequestLimitExceeded", "Request limit exceeded."),
        (Fault::Throttle, Json) => (400, "ThrottlingException", "Rate exceeded"),
        (Fault::Throttle, RestJson) => (429, "TooManyRequestsException", "Rate exceeded"),
        (Fault::Throttle, S3) => (503, "SlowDown", "Please reduce your request rate."),
        (Fault::Unavailable, Ec2) => (
            503,
            "Unavailable",
            "The server is overloaded and can't handle the request.",
        ),
        (Fault::Unavailable, _) => (
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ),
        (_, Ec2) => (500, "InternalError", "An internal error has occurred."),
        (_, S3) => (
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        _ => (
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        ),
    };
    let reason = match status {
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let xml = |s: String| ("text/xml".to_string(), s.into_bytes());
    let (content_type, body) = match protocol {
        Query => {
            let kind = if status == 400 { "Sender" } else { "Receiver" };
            xml(format!(
                "<ErrorResponse>\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    \
                 <Message>{message}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n\
                 </ErrorResponse>\n"
            ))
        }
        Ec2 => xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )),
        S3 => (
            "application/xml".to_string(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>{message}</Message><RequestId>{request_id}</RequestId>\
                 <HostId>{request_id}</HostId></Error>"
            )
            .into_bytes(),
        ),
        Json => (
            "application/x-amz-json-1.1".to_string(),
            serde_json::json!({"__type": code, "message": message})
                .to_string()
                .into_bytes(),
        ),
        RestJson => (
            "application/json".to_string(),
            serde_json::json!({"message": message})
                .to_string()
                .into_bytes(),
        ),
    };
    let mut headers = vec![
        ("Content-Type".to_string(), content_type),
        ("x-amzn-RequestId".to_string(), request_id.to_string()),
    ];
    if protocol == RestJson || protocol == Json {
        headers.push(("x-amzn-ErrorType".to_string(), code.to_string()));
    }
    if protocol == S3 {
        headers.push(("x-amz-request-id".to_string(), request_id.to_string()));
    }
    Answer {
        status,
        reason,
        headers,
        body,
    }
}

/// A small deterministic PRNG (SplitMix64), for faults and for tests that need seeded
/// randomness (kill points).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// FNV-1a, to key a call by its content.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separates the parts.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What the faults of one proxy have seen and done.
#[derive(Debug, Default)]
pub(crate) struct Dice {
    /// How many times each call (by content) was seen.
    seen: Mutex<HashMap<u64, u64>>,
}

impl Dice {
    /// The fault for this call, if any. `parts` identify the call (method, path,
    /// target, body); a repeat of the same call draws again.
    pub fn roll(&self, f: &Faults, parts: &[&[u8]]) -> Option<Fault> {
        let total = u64::from(f.throttle)
            + u64::from(f.error_before)
            + u64::from(f.error_after)
            + u64::from(f.unavailable)
            + u64::from(f.latency);
        if total == 0 {
            return None;
        }
        let key = fnv(parts);
        let nth = {
            let mut seen = self.seen.lock().unwrap();
            let n = seen.entry(key).or_default();
            *n += 1;
            *n
        };
        let mut rng = Rng::new(f.seed ^ key ^ nth.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let mut draw = rng.below(1000);
        for (rate, fault) in [
            (f.throttle, Fault::Throttle),
            (f.error_before, Fault::ErrorBefore),
            (f.error_after, Fault::ErrorAfter),
            (f.unavailable, Fault::Unavailable),
        ] {
            if draw < u64::from(rate) {
                return Some(fault);
            }
            draw -= u64::from(rate);
        }
        if draw < u64::from(f.latency) {
            let ms = f.max_latency.as_millis() as u64;
            return Some(Fault::Latency(Duration::from_millis(rng.below(ms + 1))));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_read_from_the_credential_scope() {
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/ecs/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(signing_name(auth), Some("ecs"));
        assert_eq!(Protocol::of("ecs"), Some(Protocol::Json));
        assert_eq!(Protocol::of("elasticloadbalancing"), Some(Protocol::Query));
        assert_eq!(signing_name("Basic cHVzaGVy"), None);
    }

    #[test]
    fn a_seed_gives_the_same_faults_to_the_same_calls_at_its_rate() {
        let f = Faults::percent(7, 20);
        let run = || {
            let dice = Dice::default();
            (0..2000)
                .map(|i| dice.roll(&f, &[b"POST", format!("/call/{}", i % 500).as_bytes()]))
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        let hit = a.iter().filter(|x| x.is_some()).count();
        assert!((320..480).contains(&hit), "{hit} of 2000");
        let other = Dice::default();
        let c: Vec<_> = (0..2000)
            .map(|i| {
                other.roll(
                    &Faults::percent(8, 20),
                    &[b"POST", format!("/call/{}", i % 500).as_bytes()],
                )
            })
            .collect();
        assert_ne!(a, c, "another seed, other faults");
        for kind in ["throttle", "500 before", "500 after", "503", "latency"] {
            assert!(a.iter().flatten().any(|x| x.kind() == kind), "{kind}");
        }
    }

    #[test]
    fn each_protocol_throttles_in_its_own_shape() {
        let cases = [
            (Protocol::Query, 400, "<Code>Throttling</Code>"),
            (Protocol::Ec2, 503, "<Code>RequestLimitExceeded</Code>"),
            (Protocol::Json, 400, "\"__type\":\"ThrottlingException\""),
            (Protocol::RestJson, 429, "Rate exceeded"),
            (Protocol::S3, 503, "<Code>SlowDown</Code>"),
        ];
        for (p, status, needle) in cases {
            let a = answer(p, Fault::Throttle, "r-1");
            let body = String::from_utf8(a.body).unwrap();
            assert_eq!(a.status, status, "{p:?}");
            assert!(body.contains(needle), "{p:?}: {body}");
        }
        let lambda = answer(Protocol::RestJson, Fault::Throttle, "r-1");
        assert!(
            lambda
                .headers
                .contains(&("x-amzn-ErrorType".into(), "TooManyRequestsException".into()))
        );
        let s3 = answer(Protocol::S3, Fault::ErrorAfter, "r-1");
        assert_eq!(s3.status, 500);
        assert!(
            String::from_utf8(s3.body)
                .unwrap()
                .contains("InternalError")
        );
    }
}
