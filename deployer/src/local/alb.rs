//! The Application Load Balancer, locally: a listener on loopback that forwards each
//! request to one healthy instance (round robin, or least outstanding requests), with
//! the ALB's own answers: 503 with no target to send to, 502 when the target refuses
//! or breaks the connection, 504 after the 60 s idle timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::fleet::{Fleet, Instance};
use crate::manifest::Balancing;

/// The ALB's default idle timeout.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// What the ALB lets a request body be before it gives up (ours: the predictor's limit
/// decides; this only bounds memory).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Clone)]
struct Front {
    fleet: Arc<Fleet>,
    least_outstanding: bool,
}

pub fn router(fleet: Arc<Fleet>, balancing: Balancing) -> Router {
    Router::new().fallback(forward).with_state(Front {
        fleet,
        least_outstanding: balancing == Balancing::LeastOutstandingRequests,
    })
}

/// An ALB error page: small HTML, `Server: awselb/2.0`.
fn page(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html"),
            (header::SERVER, "awselb/2.0"),
        ],
        body,
    )
        .into_response()
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn forward(
    State(front): State<Front>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let Some(target) = front.fleet.pick(front.least_outstanding) else {
        return page(StatusCode::SERVICE_UNAVAILABLE);
    };
    // Counted from the moment it is chosen (a draining target with requests in flight
    // is not stopped), uncounted however the request ends.
    let _in_flight = InFlight::new(target.clone());
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return page(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let request = upstream(&front.fleet, &target, &parts, peer).body(body);
    let response = match request.send().await {
        Err(e) if e.is_timeout() => page(StatusCode::GATEWAY_TIMEOUT),
        Err(_) => page(StatusCode::BAD_GATEWAY),
        Ok(r) => relay(r).await,
    };
    target.served.fetch_add(1, Ordering::Relaxed);
    response
}

/// The request to `target`: the client's, without its hop-by-hop headers, with the
/// ALB's `x-forwarded-*` ones.
fn upstream(
    fleet: &Fleet,
    target: &Instance,
    parts: &axum::http::request::Parts,
    peer: SocketAddr,
) -> reqwest::RequestBuilder {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://127.0.0.1:{}{path}", target.port);
    let mut out = fleet
        .http()
        .request(parts.method.clone(), &url)
        .timeout(IDLE_TIMEOUT);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let listener_port = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .map_or("80", |(_, p)| p)
        .to_string();
    out.header("x-forwarded-for", peer.ip().to_string())
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-port", listener_port)
}

/// The target's answer to the client, without its hop-by-hop headers; 502 when its
/// body breaks off.
async fn relay(r: reqwest::Response) -> Response {
    let status = r.status();
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in r.headers() {
        if !HOP_BY_HOP.contains(&name.as_str())
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            headers.append(n, v);
        }
    }
    match r.bytes().await {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() =
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            *resp.headers_mut() = headers;
            resp
        }
        Err(_) => page(StatusCode::BAD_GATEWAY),
    }
}

struct InFlight(Arc<Instance>);

impl InFlight {
    fn new(target: Arc<Instance>) -> InFlight {
        target.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(target)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}
