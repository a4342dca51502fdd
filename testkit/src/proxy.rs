//! A loopback HTTP proxy in front of a test server that makes its answers look like
//! AWS's where the emulator is kinder: each behaviour is switched on per test. In front
//! of Debian's registry: ECR's registry error envelopes. In front of moto (the SDK's
//! `AWS_ENDPOINT_URL` pointing at the proxy): AWS's eventual consistency windows, see
//! [`crate::consistency`], and random faults (throttling, 500, 503, latency), see
//! [`crate::faults`].
//!
//! Every request is forwarded on its own upstream connection (`Connection: close`), with
//! the client's `Host` kept so the upstream's `Location` headers point back at the
//! proxy; the answer is read whole, rewritten if a behaviour asks for it, and sent back
//! with a `Content-Length` on the client's kept-alive connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::consistency::{After, Call, Refusal, Window, Windows};
use crate::faults::{self, Dice, Fault, Faults, Protocol};

/// The account id ECR names in its messages.
pub const ECR_ACCOUNT: &str = "123456789012";

/// What the proxy does to the upstream's answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Registry 404s carry ECR's error envelopes instead of the upstream's:
    /// `MANIFEST_UNKNOWN` / `Requested image not found` for a missing tag,
    /// `NAME_UNKNOWN` / `The repository with name 'X' does not exist in the registry with
    /// id '…'` for a missing repository.
    pub ecr_errors: bool,
    /// After `CreateRole`: `PutRolePolicy`, `AttachRolePolicy`, `AddRoleToInstanceProfile`
    /// on the role answer `NoSuchEntity`.
    pub role_propagation: Option<Window>,
    /// After `CreateInstanceProfile`/`AddRoleToInstanceProfile`: `CreateAutoScalingGroup`
    /// with a launch template naming the profile answers `ValidationError ... Invalid IAM
    /// Instance Profile name`.
    pub profile_propagation: Option<Window>,
    /// After `CreateCapacityProvider`: the provider is `PROVISIONING` and
    /// `PutClusterCapacityProviders` with it answers `... is not in an ACTIVE state`.
    pub capacity_provider_provisioning: Option<Window>,
    /// ECS's service-linked role is missing until `CreateServiceLinkedRole`, and
    /// propagating for the window after: `CreateCluster`, `PutClusterCapacityProviders`,
    /// `CreateService` answer `Unable to assume the service linked role`.
    pub ecs_service_linked_role: Option<Window>,
    /// After `DeleteBucket`: `CreateBucket` of that name answers S3's `OperationAborted`
    /// (409), as AWS does for a while (it advises waiting up to 48-72 hours).
    pub deleted_bucket_names: Option<Window>,
    /// Throttling, 500, 503 and latency at random, from a seed.
    pub faults: Option<Faults>,
    /// Service Quotas answers EC2's `L-1216C47A` (running on-demand standard instances,
    /// vCPUs) with this value, as AWS does; moto knows only VPC quotas.
    pub ec2_vcpu_quota: Option<u32>,
}

impl Behaviour {
    /// Every eventual-consistency window of AWS on, each as long as `window`.
    pub fn aws_consistency(window: Window) -> Behaviour {
        Behaviour {
            ecr_errors: false,
            role_propagation: Some(window),
            profile_propagation: Some(window),
            capacity_provider_provisioning: Some(window),
            ecs_service_linked_role: Some(window),
            deleted_bucket_names: Some(window),
            faults: None,
            ec2_vcpu_quota: None,
        }
    }
}

/// Service Quotas' `GetServiceQuota` answer for EC2's standard on-demand vCPUs, in the
/// shape of the Service Quotas API reference.
fn vcpu_quota(vcpus: u32) -> Message {
    let body = format!(
        "{{\"Quota\":{{\"ServiceCode\":\"ec2\",\"ServiceName\":\"Amazon Elastic Compute Cloud (Amazon EC2)\",\
         \"QuotaArn\":\"arn:aws:servicequotas:us-east-1:123456789012:ec2/L-1216C47A\",\
         \"QuotaCode\":\"L-1216C47A\",\"QuotaName\":\"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances\",\
         \"Value\":{vcpus}.0,\"Unit\":\"None\",\"Adjustable\":true,\"GlobalQuota\":false}}}}"
    );
    Message {
        start: "HTTP/1.1 200 OK".into(),
        headers: vec![
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            (
                "x-amzn-RequestId".into(),
                "00000000-0000-4000-a000-000000000001".into(),
            ),
        ],
        body: body.into_bytes(),
    }
}

/// A proxy on a free loopback port, stopped when dropped.
pub struct Proxy {
    /// `127.0.0.1:<port>`
    pub host: String,
    behaviour: Arc<Mutex<Behaviour>>,
    refused: Arc<Mutex<Vec<String>>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

/// A fault the proxy injected: the call (`Operation` or `METHOD /path`) and what it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub call: String,
    pub fault: Fault,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`host:port`), passing everything through.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            behaviour: behaviour.clone(),
            windows: Windows::default(),
            refused: refused.clone(),
            dice: Dice::default(),
            injected: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
        });
        let stopping = stop.clone();
        let accepting = shared.clone();
        std::thread::spawn(move || {
            let shared = accepting;
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    // A broken connection ends that connection only.
                    let _ = shared.serve(client);
                });
            }
        });
        Proxy {
            host,
            behaviour,
            refused,
            shared,
            stop,
        }
    }

    /// Switches behaviours for every request from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.host)
    }

    /// Every answer a window changed, in order: `Operation: Code` for AWS's errors
    /// answered instead of the upstream's, `Operation: STATUS` for a status rewritten. A
    /// test shows with it that each window was hit.
    pub fn altered(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    /// Capacity provider `name` answers as if just created: `PROVISIONING` for the
    /// window of [`Behaviour::capacity_provider_provisioning`].
    pub fn provisioning(&self, name: &str) {
        self.shared.windows.provisioning(name);
    }

    /// How many requests the proxy has received so far: a test's measure of how far a
    /// run has got, whatever the machine's speed.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<Injected> {
        self.shared.injected.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

struct Shared {
    upstream: String,
    behaviour: Arc<Mutex<Behaviour>>,
    windows: Windows,
    refused: Arc<Mutex<Vec<String>>>,
    dice: Dice,
    injected: Mutex<Vec<Injected>>,
    /// Requests received so far.
    calls: AtomicUsize,
}

/// A request or a response: its first line, headers, and whole body.
#[derive(Debug, Clone)]
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Writes the message with its body framed by `Content-Length` (`length` overrides
    /// it: a HEAD answer keeps the upstream's), hop-by-hop headers replaced.
    fn write(
        &self,
        to: &mut impl Write,
        extra: &[(&str, &str)],
        length: Option<&str>,
    ) -> std::io::Result<()> {
        let mut head = format!("{}\r\n", self.start);
        let hop = [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "content-length",
            "expect",
        ];
        for (k, v) in &self.headers {
            if !hop.contains(&k.to_ascii_lowercase().as_str()) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let length = length.map_or_else(|| self.body.len().to_string(), str::to_string);
        head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
        to.write_all(head.as_bytes())?;
        to.write_all(&self.body)?;
        to.flush()
    }
}

/// Reads a head (start line and headers; the body is left to read); `None` at a clean
/// end of stream.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some(Message {
        start: start.trim_end().to_string(),
        headers,
        body: Vec::new(),
    }))
}

/// Reads a chunked body up to and including its trailers.
fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        let at = body.len();
        body.resize(at + size, 0);
        r.read_exact(&mut body[at..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

fn read_body(r: &mut impl BufRead, m: &Message) -> std::io::Result<Vec<u8>> {
    if m.has_token("transfer-encoding", "chunked") {
        return read_chunked(r);
    }
    let length: usize = m
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)?;
    Ok(body)
}

impl Shared {
    /// Serves one client connection until it closes.
    fn serve(&self, client: TcpStream) -> std::io::Result<()> {
        let mut writer = client.try_clone()?;
        let mut reader = BufReader::new(client);
        while let Some(mut request) = read_head(&mut reader)? {
            if request.has_token("expect", "100-continue") {
                writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            request.body = read_body(&mut reader, &request)?;
            let close = request.has_token("connection", "close");
            let response = self.answer(&request)?;
            let head = request.start.starts_with("HEAD ");
            let length = if head {
                response.header("content-length").map(str::to_string)
            } else {
                None
            };
            let extra: &[(&str, &str)] = if close {
                &[("Connection", "close")]
            } else {
                &[]
            };
            response.write(&mut writer, extra, length.as_deref())?;
            if close {
                break;
            }
        }
        let _ = writer.shutdown(Shutdown::Both);
        Ok(())
    }

    /// Sends `request` upstream on a new connection and reads the whole answer.
    fn forward(&self, request: &Message) -> std::io::Result<Message> {
        let mut upstream = TcpStream::connect(&self.upstream)?;
        upstream.set_read_timeout(Some(Duration::from_secs(300)))?;
        request.write(&mut upstream, &[("Connection", "close")], None)?;
        let mut reader = BufReader::new(upstream);
        let mut response = read_head(&mut reader)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let status = status(&response);
        let bodiless = request.start.starts_with("HEAD ") || status == 204 || status == 304;
        if !bodiless {
            response.body = if response.has_token("transfer-encoding", "chunked") {
                read_chunked(&mut reader)?
            } else if response.header("content-length").is_some() {
                read_body(&mut reader, &response)?
            } else {
                let mut all = Vec::new();
                reader.read_to_end(&mut all)?;
                all
            };
        }
        Ok(response)
    }

    /// The answer to `request`: a fault when one is drawn, AWS's error when a window
    /// refuses it, else the upstream's, rewritten where AWS's differs. A 500 drawn for
    /// after the call replaces the upstream's success: the call happened.
    fn answer(&self, request: &Message) -> std::io::Result<Message> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap();
        let fault = self.draw(&behaviour, request);
        match fault {
            Some((p, f @ (Fault::Throttle | Fault::ErrorBefore | Fault::Unavailable))) => {
                return Ok(self.fault(request, p, f));
            }
            Some((_, Fault::Latency(d))) => std::thread::sleep(d),
            _ => {}
        }
        let response = self.respond(&behaviour, request)?;
        if let Some((p, Fault::ErrorAfter)) = fault
            && (200..300).contains(&status(&response))
        {
            return Ok(self.fault(request, p, Fault::ErrorAfter));
        }
        Ok(response)
    }

    /// The fault for `request`, if faults are on and the dice say so; recorded.
    fn draw(&self, behaviour: &Behaviour, request: &Message) -> Option<(Protocol, Fault)> {
        let f = behaviour.faults?;
        let protocol = Protocol::of(faults::signing_name(request.header("authorization")?)?)?;
        let target = request.header("x-amz-target").unwrap_or_default();
        let fault = self.dice.roll(
            &f,
            &[request.start.as_bytes(), target.as_bytes(), &request.body],
        )?;
        let call = request
            .start
            .starts_with("POST ")
            .then(|| Call::parse(request.header("x-amz-target"), &request.body))
            .flatten()
            .map(|c| c.operation)
            .unwrap_or_else(|| {
                let mut words = request.start.split_whitespace();
                let method = words.next().unwrap_or_default();
                let path = words.next().unwrap_or_default();
                format!("{method} {}", path.split('?').next().unwrap_or_default())
            });
        self.injected.lock().unwrap().push(Injected { call, fault });
        Some((protocol, fault))
    }

    fn fault(&self, request: &Message, protocol: Protocol, fault: Fault) -> Message {
        let n = self.injected.lock().unwrap().len();
        let a = faults::answer(protocol, fault, &format!("00000000-0000-4000-9000-{n:012}"));
        Message {
            start: format!("HTTP/1.1 {} {}", a.status, a.reason),
            headers: a.headers,
            body: if request.start.starts_with("HEAD ") {
                Vec::new()
            } else {
                a.body
            },
        }
    }

    /// The answer without faults.
    fn respond(&self, behaviour: &Behaviour, request: &Message) -> std::io::Result<Message> {
        let behaviour = *behaviour;
        if let Some(bucket) = bucket_path(request) {
            return self.bucket(&behaviour, request, bucket);
        }
        if let Some(vcpus) = behaviour.ec2_vcpu_quota
            && request.header("x-amz-target") == Some("ServiceQuotasV20190624.GetServiceQuota")
            && String::from_utf8_lossy(&request.body).contains("L-1216C47A")
        {
            return Ok(vcpu_quota(vcpus));
        }
        let call = request
            .start
            .starts_with("POST ")
            .then(|| Call::parse(request.header("x-amz-target"), &request.body))
            .flatten();
        let Some(call) = call else {
            let response = self.forward(request)?;
            return Ok(self.rewrite(request, response));
        };
        if let Some(refusal) = self.windows.before(&behaviour, &call) {
            return Ok(self.refuse(&call, &refusal));
        }
        let mut response = self.forward(request)?;
        match self
            .windows
            .after(&behaviour, &call, status(&response), &response.body)
        {
            After::Keep => {}
            After::Body(body, why) => {
                self.refused
                    .lock()
                    .unwrap()
                    .push(format!("{}: {why}", call.operation));
                response.body = body;
            }
            After::Refuse(refusal) => return Ok(self.refuse(&call, &refusal)),
        }
        Ok(response)
    }

    fn refuse(&self, call: &Call, refusal: &Refusal) -> Message {
        let mut refused = self.refused.lock().unwrap();
        refused.push(format!("{}: {}", call.operation, refusal.code()));
        let request_id = format!("00000000-0000-4000-8000-{:012}", refused.len());
        let (content_type, body) = refusal.render(&request_id);
        let (code, reason) = refusal.status();
        Message {
            start: format!("HTTP/1.1 {code} {reason}"),
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("x-amzn-RequestId".into(), request_id),
            ],
            body,
        }
    }

    /// S3's `CreateBucket` and `DeleteBucket` (path style: `PUT /name`, `DELETE /name`):
    /// a deleted name is refused for the window of
    /// [`Behaviour::deleted_bucket_names`].
    fn bucket(
        &self,
        behaviour: &Behaviour,
        request: &Message,
        bucket: &str,
    ) -> std::io::Result<Message> {
        let create = request.start.starts_with("PUT ");
        if create && let Some(refusal) = self.windows.create_bucket(behaviour, bucket) {
            let call = Call {
                operation: "CreateBucket".into(),
                params: Default::default(),
                json: serde_json::Value::Null,
            };
            return Ok(self.refuse(&call, &refusal));
        }
        let response = self.forward(request)?;
        let ok = (200..300).contains(&status(&response));
        if !create && ok {
            self.windows.bucket_deleted(bucket);
        }
        if create && ok {
            self.tag_bucket(request, bucket)?;
        }
        Ok(response)
    }

    /// AWS applies the tags `CreateBucket` carries with the bucket; moto ignores them,
    /// so a client killed right after the create would leave an untagged bucket that
    /// AWS never shows. The proxy puts them before answering.
    fn tag_bucket(&self, create: &Message, bucket: &str) -> std::io::Result<()> {
        let body = String::from_utf8_lossy(&create.body);
        let Some(tags) = body
            .split_once("<Tags>")
            .and_then(|(_, rest)| rest.split_once("</Tags>"))
            .map(|(tags, _)| tags)
        else {
            return Ok(());
        };
        let mut put = create.clone();
        put.start = format!("PUT /{bucket}?tagging HTTP/1.1");
        put.body = format!("<Tagging><TagSet>{tags}</TagSet></Tagging>").into_bytes();
        put.headers.retain(|(k, _)| {
            !k.eq_ignore_ascii_case("content-md5")
                && !k.eq_ignore_ascii_case("x-amz-content-sha256")
                && !k.to_ascii_lowercase().starts_with("x-amz-checksum")
                && !k.eq_ignore_ascii_case("x-amz-sdk-checksum-algorithm")
        });
        self.forward(&put).map(|_| ())
    }

    fn rewrite(&self, request: &Message, response: Message) -> Message {
        let behaviour = *self.behaviour.lock().unwrap();
        if behaviour.ecr_errors {
            return self.ecr_errors(request, response);
        }
        response
    }

    /// ECR's answer to a manifest that is not there: which envelope depends on whether
    /// the repository exists, which Debian's registry never says on this path (it
    /// answers `MANIFEST_UNKNOWN` for both), so it is asked through the tag list. A
    /// repository counts as existing once it holds a tag (on ECR, once it is created).
    fn ecr_errors(&self, request: &Message, mut response: Message) -> Message {
        let Some(path) = request.start.split_whitespace().nth(1) else {
            return response;
        };
        let Some(name) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.rsplit_once("/manifests/"))
            .map(|(name, _)| name.to_string())
        else {
            return response;
        };
        if status(&response) != 404 {
            return response;
        }
        let mut tags = request.clone();
        tags.start = format!("GET /v2/{name}/tags/list HTTP/1.1");
        tags.body.clear();
        let repository_exists = self.forward(&tags).is_ok_and(|t| status(&t) == 200);
        let (code, message) = if repository_exists {
            ("MANIFEST_UNKNOWN", "Requested image not found".to_string())
        } else {
            (
                "NAME_UNKNOWN",
                format!(
                    "The repository with name '{name}' does not exist in the registry with id '{ECR_ACCOUNT}'"
                ),
            )
        };
        if !request.start.starts_with("HEAD ") {
            response.body = serde_json::json!({"errors": [{"code": code, "message": message}]})
                .to_string()
                .into_bytes();
        }
        response
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        response.headers.push((
            "Content-Type".into(),
            "application/json; charset=utf-8".into(),
        ));
        response
    }
}

/// The bucket of a path-style `PUT /name` or `DELETE /name` (no sub-resource, no
/// key), signed for S3.
fn bucket_path(request: &Message) -> Option<&str> {
    let mut words = request.start.split_whitespace();
    let method = words.next()?;
    if method != "PUT" && method != "DELETE" {
        return None;
    }
    let path = words.next()?;
    if path.contains('?') {
        return None;
    }
    let name = path.strip_prefix('/')?.trim_end_matches('/');
    let s3 = request
        .header("authorization")
        .and_then(faults::signing_name)
        == Some("s3");
    (s3 && !name.is_empty() && !name.contains('/')).then_some(name)
}

fn status(m: &Message) -> u16 {
    m.start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
