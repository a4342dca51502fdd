//! For replay tests: a loopback endpoint that answers requests with canned HTTP
//! responses (one for every request, or a list served in order) and records each
//! request, to pin the order of `apply`'s calls on paths the emulator cannot run and to
//! feed the SDK answers moto never gives.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use crate::aws::Aws;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path with its query.
    pub target: String,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The operation of a JSON 1.0/1.1 call (`X-Amz-Target: Service.Operation`) or a
    /// query-protocol call (`Action=Operation` in the form body); `None` for REST calls,
    /// which their method and path name.
    pub fn action(&self) -> Option<&str> {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next();
        }
        self.body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
    }
}

/// `200 OK` with a JSON `body`.
pub fn json_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `200 OK` with a JSON body, as the JSON 1.1 services (ECS) answer.
pub fn amz_json_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `200 OK` with an XML body, as the query-protocol services (Auto Scaling, Elastic Load
/// Balancing) answer.
pub fn xml_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An error as the REST-JSON services (Lambda) answer it: the code in
/// `x-amzn-ErrorType`, the message in the body.
pub fn rest_json_error(status: u16, code: &str, message: &str) -> String {
    let body = serde_json::json!({"Type": "User", "message": message}).to_string();
    format!(
        "HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\n\
         x-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Starts the endpoint answering `response` (a whole HTTP response) to every request;
/// returns its URL and the requests it receives.
pub fn recording(response: impl Into<String>) -> (String, Arc<Mutex<Vec<Request>>>) {
    recording_each(vec![response.into()])
}

/// Starts the endpoint answering the n-th request with the n-th of `responses` (whole
/// HTTP responses), and every request after the last with the last; returns its URL and
/// the requests it receives.
pub fn recording_each(responses: Vec<String>) -> (String, Arc<Mutex<Vec<Request>>>) {
    assert!(!responses.is_empty(), "at least one response");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().flatten().enumerate() {
            let mut reader = BufReader::new(conn);
            let (mut method, mut target, mut length) = (String::new(), String::new(), 0);
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if method.is_empty() {
                    let mut words = line.split_whitespace();
                    method = words.next().unwrap_or("").to_string();
                    target = words.next().unwrap_or("").to_string();
                } else if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push(Request {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let response = &responses[n.min(responses.len() - 1)];
            let _ = reader.get_mut().write_all(response.as_bytes());
        }
    });
    (endpoint, seen)
}

/// Clients for every service pointed at `endpoint`.
pub async fn aws(endpoint: &str) -> Aws {
    let manifest = crate::manifest::Manifest::parse(
        "t.yaml".as_ref(),
        &format!("name: t\nregion: us-east-1\nendpoint: {endpoint}\n"),
    )
    .unwrap();
    Aws::connect(&manifest).await
}
