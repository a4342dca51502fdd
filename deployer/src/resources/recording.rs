//! For replay tests: a loopback endpoint that answers every request with one canned
//! HTTP response and records each request, to pin the order of `apply`'s calls on paths
//! the emulator cannot run and to feed the SDK answers moto never gives.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use crate::aws::Aws;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path with its query.
    pub target: String,
    pub body: String,
}

impl Request {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
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

/// Starts the endpoint answering `response` (a whole HTTP response); returns its URL
/// and the requests it receives.
pub fn recording(response: impl Into<String>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let response: String = response.into();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let (mut method, mut target, mut length) = (String::new(), String::new(), 0);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if method.is_empty() {
                    let mut words = line.split_whitespace();
                    method = words.next().unwrap_or("").to_string();
                    target = words.next().unwrap_or("").to_string();
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push(Request {
                method,
                target,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
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
