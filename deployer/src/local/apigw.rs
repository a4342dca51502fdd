//! The HTTP API's `$default` stage, locally: a request becomes a payload-format 2.0
//! event, the function's 2.0 response becomes the HTTP response, and the gateway's own
//! answers are AWS's: 404 `Not Found` for no route, 500 `Internal Server Error` when the
//! invocation fails or is throttled, 503 `Service Unavailable` after the 30 s
//! integration timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::base64;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::lambda::{Invoked, Pool, request_id};
use super::logs::now_ms;

/// API Gateway's limit on how long it waits for the integration.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Lambda's limit on a synchronous invocation's payload.
pub const EVENT_LIMIT: usize = 6 * 1024 * 1024;
/// HTTP API's limit on a request body.
pub const BODY_LIMIT: usize = 10 * 1024 * 1024;
/// The header naming why the gateway answered by itself (Lambda's error type), so a
/// load generator can tell a throttle from a failure: AWS sends both as a 500.
pub const ERROR_TYPE: &str = "x-local-lambda-error";

pub fn router(pool: Arc<Pool>) -> Router {
    Router::new().fallback(handle).with_state(pool)
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

fn failed(error_type: &str) -> Response {
    let mut r = message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    if let Ok(v) = HeaderValue::from_str(error_type) {
        r.headers_mut().insert(ERROR_TYPE, v);
    }
    r
}

/// The route key `method path` matches, if any (`$default` matches everything).
pub fn route<'a>(routes: &'a [String], method: &Method, path: &str) -> Option<&'a str> {
    routes
        .iter()
        .find(|r| match r.split_once(' ') {
            Some((m, p)) => (m == "ANY" || m == method.as_str()) && p == path,
            None => false,
        })
        .or_else(|| routes.iter().find(|r| r.as_str() == "$default"))
        .map(String::as_str)
}

async fn handle(
    State(pool): State<Arc<Pool>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let id = request_id();
    let mut response = serve(&pool, peer, req, &id).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("apigw-requestid", v);
    }
    response
}

async fn serve(pool: &Arc<Pool>, peer: SocketAddr, req: Request, id: &str) -> Response {
    let Some(version) = pool.version() else {
        return failed("ResourceNotFoundException");
    };
    let (parts, body) = req.into_parts();
    let Some(route) = route(&version.function.routes, &parts.method, parts.uri.path()) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let event = event(route, &parts, &body, peer, id);
    let event = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
    if event.len() > EVENT_LIMIT {
        // Lambda refuses the invocation (RequestTooLargeException); a binary body is
        // base64 in the event, so the limit is about 4.5 MB of image.
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    match tokio::time::timeout(INTEGRATION_TIMEOUT, pool.invoke(event)).await {
        Err(_) => message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Ok(Invoked::Ok { payload, .. }) => respond(&payload),
        Ok(Invoked::Failed { reason, .. }) => {
            tracing::info!("invocation failed: {reason}");
            failed("Unhandled")
        }
        Ok(Invoked::Throttled) => failed("TooManyRequestsException"),
        Ok(Invoked::Missing) => failed("ResourceNotFoundException"),
    }
}

/// Whether API Gateway passes a body of `content_type` as text (else base64).
fn is_text(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.starts_with("text/")
        || [
            "application/json",
            "application/xml",
            "application/javascript",
        ]
        .contains(&t.as_str())
}

/// The payload-format 2.0 event of a request.
pub fn event(
    route: &str,
    parts: &axum::http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    request_id: &str,
) -> Value {
    let (headers, cookies) = headers_and_cookies(&parts.headers);
    let query = parts.uri.query().unwrap_or("");
    let params = query_parameters(query);
    let text = is_text(header_str(&parts.headers, header::CONTENT_TYPE, ""))
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    let host = header_str(&parts.headers, header::HOST, "localhost").to_string();
    let epoch = now_ms();
    let mut e = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": parts.uri.path(),
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": header_str(&parts.headers, header::USER_AGENT, ""),
            },
            "requestId": request_id,
            "routeKey": route,
            "stage": "$default",
            "time": clf_time(epoch),
            "timeEpoch": epoch,
        },
        "isBase64Encoded": text.is_none() && !body.is_empty(),
    });
    if !cookies.is_empty() {
        e["cookies"] = json!(cookies);
    }
    if !params.is_empty() {
        e["queryStringParameters"] = Value::Object(params);
    }
    if !body.is_empty() {
        e["body"] = match text {
            Some(t) => json!(t),
            None => json!(base64::encode(body)),
        };
    }
    e
}

/// A header's value as text, `default` when it is absent or not text.
fn header_str<'a>(headers: &'a HeaderMap, name: HeaderName, default: &'a str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default)
}

/// The event's `headers`, and its `cookies` (which the 2.0 format takes out of them).
fn headers_and_cookies(request: &HeaderMap) -> (Map<String, Value>, Vec<String>) {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in request {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        // Repeated headers are joined with commas.
        join(&mut headers, name.as_str(), &value);
    }
    (headers, cookies)
}

/// The event's `queryStringParameters`: repeated ones joined with commas.
fn query_parameters(query: &str) -> Map<String, Value> {
    let mut params = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        join(&mut params, k, v);
    }
    params
}

/// Sets `key` to `value`, or appends `,value` when it is set already.
fn join(map: &mut Map<String, Value>, key: &str, value: &str) {
    match map.get_mut(key) {
        Some(Value::String(s)) => {
            s.push(',');
            s.push_str(value);
        }
        _ => {
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
}

/// `30/Nov/2026:16:05:20 +0000`
fn clf_time(epoch_ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms.div_euclid(1000);
    let (y, m, d) = super::lambda::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// The HTTP response of a function's 2.0 response: `statusCode`, `headers`, `cookies`,
/// `body`, `isBase64Encoded`; anything else is a 200 with the payload as JSON.
pub fn respond(payload: &[u8]) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    let Some(obj) = parsed
        .as_ref()
        .and_then(Value::as_object)
        .filter(|o| o.contains_key("statusCode"))
    else {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            payload.to_vec(),
        )
            .into_response();
    };
    let status = obj["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    for (k, v) in obj
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let (Ok(k), Some(Ok(v))) = (
            HeaderName::from_bytes(k.as_bytes()),
            v.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(k, v);
        }
    }
    for c in obj
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(Ok(v)) = c.as_str().map(HeaderValue::from_str) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    let body = obj.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> axum::http::request::Parts {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn routes_match_method_and_path_then_default() {
        let routes = vec!["POST /predict".to_string()];
        assert_eq!(
            route(&routes, &Method::POST, "/predict"),
            Some("POST /predict")
        );
        assert_eq!(route(&routes, &Method::GET, "/predict"), None);
        assert_eq!(route(&routes, &Method::POST, "/other"), None);
        let routes = vec!["ANY /predict".to_string(), "$default".to_string()];
        assert_eq!(
            route(&routes, &Method::GET, "/predict"),
            Some("ANY /predict")
        );
        assert_eq!(route(&routes, &Method::GET, "/x"), Some("$default"));
    }

    #[test]
    fn binary_bodies_are_base64_and_headers_lowercase_and_joined() {
        let p = parts(
            "POST",
            "/predict?annotate=false&a=1&a=2",
            &[
                ("Content-Type", "image/jpeg"),
                ("X-Thing", "one"),
                ("x-thing", "two"),
                ("Cookie", "a=1; b=2"),
            ],
        );
        let e = event(
            "POST /predict",
            &p,
            &[0xff, 0xd8, 0xff],
            "127.0.0.1:5555".parse().unwrap(),
            "r1",
        );
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], base64::encode([0xff, 0xd8, 0xff]));
        assert_eq!(e["headers"]["x-thing"], "one,two");
        assert_eq!(e["headers"]["content-type"], "image/jpeg");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(
            e["queryStringParameters"],
            json!({"annotate": "false", "a": "1,2"})
        );
        assert_eq!(e["rawQueryString"], "annotate=false&a=1&a=2");
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["requestContext"]["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(e["requestContext"]["stage"], "$default");
        assert!(e["requestContext"]["timeEpoch"].as_i64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn json_bodies_stay_text() {
        let p = parts(
            "POST",
            "/predict",
            &[("content-type", "application/json; charset=utf-8")],
        );
        let e = event(
            "POST /predict",
            &p,
            br#"{"image":"bus.jpg"}"#,
            "127.0.0.1:1".parse().unwrap(),
            "r",
        );
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["body"], r#"{"image":"bus.jpg"}"#);
        assert!(e.get("cookies").is_none() && e.get("queryStringParameters").is_none());
    }

    #[tokio::test]
    async fn responses_map_status_headers_cookies_and_base64() {
        let r = respond(
            br#"{"statusCode":400,"headers":{"content-type":"application/json"},"cookies":["s=1"],"body":"eyJhIjoxfQ==","isBase64Encoded":true}"#,
        );
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["set-cookie"], "s=1");
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"a":1}"#);
        // No statusCode: the payload itself, as JSON, with 200.
        let r = respond(br#"{"hello":"world"}"#);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn request_times_are_in_common_log_format() {
        assert_eq!(clf_time(1_796_054_720_000), "30/Nov/2026:16:05:20 +0000");
    }
}
