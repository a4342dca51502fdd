//! The HTTP API: `POST /predict`, `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json`,
//! and the middleware every request goes through (request id, metrics, panics to JSON).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::errors::ApiError;
use crate::detector::{Found, Timings};

/// Response headers naming the process that answered and its prediction count, so a
/// load generator can tell cold requests (`1`) from warm ones on any target.
pub const INSTANCE_HEADER: &str = "x-instance-id";
pub const SEQ_HEADER: &str = "x-instance-seq";

/// The request id of the current request, set by the middleware.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// `x-request-id` (the caller's, or a new one), metrics, and a last-resort conversion of
/// panics into a JSON 500 that names the request.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| state.instance.next_request_id(), str::to_string);
    req.extensions_mut().insert(RequestId(id.clone()));
    state.metrics.request_started();
    let mut response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(request_id = %id, "handler panicked: {what}");
            ApiError::internal(format!("internal error (request {id})")).into_response()
        }
    };
    state.metrics.request_finished(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.pool.get() {
        Some(_) => axum::Json(serde_json::json!({"status": "ready", "model": state.model_name}))
            .into_response(),
        None => ApiError::not_ready().into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

pub const OPENAPI: &str = include_str!("openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; see GET /openapi.json",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByKey {
    image: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
}

#[derive(Serialize)]
struct Prediction<'a> {
    request_id: &'a str,
    url: Option<String>,
    key: Option<String>,
    detections: &'a [Found],
    image: ImageSize,
    model: &'a str,
    timings_ms: Timings,
    instance: InstanceInfo<'a>,
}

#[derive(Serialize)]
struct ImageSize {
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct InstanceInfo<'a> {
    id: &'a str,
    /// The process's prediction count, this one included.
    seq: u64,
    cold: bool,
}

fn annotate_param(req: &Request) -> Result<bool, ApiError> {
    let query = req.uri().query().unwrap_or_default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "annotate" {
            return match v {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(ApiError::bad_request(
                    "bad_query",
                    format!("annotate must be true or false, not `{other}`"),
                )),
            };
        }
    }
    Ok(true)
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request("bad_body", e.to_string())
        }
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// The image bytes of a request, and how long fetching them from S3 took, if it did.
async fn image_of(state: &AppState, req: Request) -> Result<(Bytes, Option<f64>), ApiError> {
    let limit = state.config.max_body_bytes;
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(ApiError::too_large(limit));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => {
            let body = read_body(req.into_body(), limit).await?;
            let ask: ByKey = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request("bad_json", format!("invalid JSON body: {e}"))
            })?;
            let (bucket, key) = match ask {
                ByKey {
                    image: Some(key),
                    bucket: None,
                    key: None,
                } => {
                    let bucket = state.config.input_bucket.clone().ok_or_else(|| {
                        ApiError::bad_request(
                            "no_input_bucket",
                            "this service has no INPUT_BUCKET: send the image itself",
                        )
                    })?;
                    (bucket, key)
                }
                ByKey {
                    image: None,
                    bucket: Some(bucket),
                    key: Some(key),
                } => {
                    if !state.config.may_read(&bucket) {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "bucket_not_allowed",
                            format!(
                                "bucket `{bucket}` is not the input bucket nor in ALLOWED_BUCKETS"
                            ),
                        ));
                    }
                    (bucket, key)
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_json",
                        "send {\"image\": \"<key>\"} or {\"bucket\": \"...\", \"key\": \"...\"}",
                    ));
                }
            };
            if key.is_empty() {
                return Err(ApiError::bad_request("bad_json", "the key is empty"));
            }
            let started = Instant::now();
            let bytes = state.storage.get(&bucket, &key, limit).await?;
            Ok((bytes, Some(ms(started))))
        }
        "image/jpeg" | "image/png" | "image/webp" => {
            Ok((read_body(req.into_body(), limit).await?, None))
        }
        "multipart/form-data" => {
            let mut form = Multipart::from_request(req, &())
                .await
                .map_err(|e| ApiError::bad_request("bad_multipart", e.body_text()))?;
            while let Some(field) = form
                .next_field()
                .await
                .map_err(|e| multipart_error(e.status(), e.body_text(), limit))?
            {
                if field.name() == Some("file") {
                    let bytes = field
                        .bytes()
                        .await
                        .map_err(|e| multipart_error(e.status(), e.body_text(), limit))?;
                    return Ok((bytes, None));
                }
            }
            Err(ApiError::bad_request(
                "bad_multipart",
                "the form has no `file` part",
            ))
        }
        "" => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "set Content-Type: application/json, image/jpeg, image/png, image/webp or multipart/form-data",
        )),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "`{other}` is not accepted: use application/json, image/jpeg, image/png, image/webp or multipart/form-data"
            ),
        )),
    }
}

fn multipart_error(status: StatusCode, text: String, limit: usize) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::bad_request("bad_multipart", text)
    }
}

/// `POST /predict`, bounded by the configured deadline.
pub async fn predict(State(state): State<AppState>, req: Request) -> Response {
    let deadline = Duration::from_millis(state.config.deadline_ms);
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.clone());
    match tokio::time::timeout(deadline, predict_within_deadline(state, req, &id)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!("the request took longer than {} ms", deadline.as_millis()),
        )
        .into_response(),
    }
}

async fn predict_within_deadline(
    state: AppState,
    req: Request,
    id: &str,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let pool = state.pool.get().ok_or_else(ApiError::not_ready)?;
    let annotate = annotate_param(&req)?;
    let (bytes, download) = image_of(&state, req).await?;

    let (mut outcome, jpeg) = pool
        .run(move |detector| {
            let mut outcome = detector.detect(&bytes)?;
            let jpeg = annotate.then(|| detector.annotate(&mut outcome));
            Ok::<_, crate::detector::DetectError>((outcome, jpeg))
        })
        .await??;

    let mut t = outcome.timings;
    t.download = download;
    let (mut url, mut key) = (None, None);
    if let (Some(jpeg), Some(bucket)) = (jpeg, state.config.output_bucket.as_deref()) {
        let object = format!("results/{id}.jpg");
        let upload = Instant::now();
        let expiry = Duration::from_secs(state.config.url_expiry_s);
        // The URL needs only the key, so it is signed while the upload is in flight; the
        // answer still waits for the upload, so a client never gets a URL that 404s and an
        // upload failure is the request's error.
        let (stored, signed) = tokio::join!(
            state.storage.put_jpeg(bucket, &object, jpeg),
            state
                .storage
                .url(bucket, &object, state.config.output_public, expiry)
        );
        stored?;
        url = Some(signed?);
        t.upload = Some(ms(upload));
        key = Some(object);
    }
    t.total = ms(started);
    outcome.timings = t;
    state.metrics.stages(&t);

    let seq = state.instance.next_seq();
    let body = Prediction {
        request_id: id,
        url,
        key,
        detections: &outcome.detections,
        image: ImageSize {
            width: outcome.width,
            height: outcome.height,
        },
        model: &state.model_name,
        timings_ms: t.rounded(),
        instance: InstanceInfo {
            id: &state.instance.id,
            seq,
            cold: seq == 1,
        },
    };
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&server_timing(&t)) {
        headers.insert("server-timing", v);
    }
    if let Ok(v) = HeaderValue::from_str(&state.instance.id) {
        headers.insert(INSTANCE_HEADER, v);
    }
    headers.insert(SEQ_HEADER, HeaderValue::from(seq));
    Ok(response)
}

/// `Server-Timing: decode;dur=4.1, infer;dur=70.2, …` for browser dev tools and load testers.
pub fn server_timing(t: &Timings) -> String {
    t.stages()
        .into_iter()
        .chain([("total", Some(t.total))])
        .filter_map(|(name, ms)| ms.map(|ms| format!("{name};dur={ms:.1}")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::service::{AppState, Config, storage::Storage};

    async fn boom() -> &'static str {
        panic!("index out of bounds")
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_json_500_naming_the_request() {
        let state = AppState::new(
            Config::default(),
            Storage::connect(Some("http://127.0.0.1:9".into())).await,
            std::path::Path::new("yolo11n.onnx"),
        );
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
            .with_state(state.clone());
        let request = Request::builder()
            .uri("/boom")
            .header("x-request-id", "r-1")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-request-id"], "r-1");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal");
        assert_eq!(json["error"]["message"], "internal error (request r-1)");
        assert!(state.metrics.render().contains("status=\"500\"} 1"));
    }

    #[test]
    fn server_timing_lists_the_stages_that_ran() {
        let t = Timings {
            decode: 1.0,
            infer: 70.25,
            total: 80.0,
            upload: Some(3.0),
            ..Timings::default()
        };
        assert_eq!(
            server_timing(&t),
            "decode;dur=1.0, preprocess;dur=0.0, infer;dur=70.2, postprocess;dur=0.0, upload;dur=3.0, total;dur=80.0"
        );
    }
}
