//! Every error the API answers: a status, a stable code and a message, as
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::decode::DecodeError;
use crate::detector::DetectError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 503s.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is over the {limit}-byte limit"),
        )
    }

    pub fn overloaded(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
        }
    }

    pub fn not_ready() -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the model is still loading",
            )
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> ApiError {
        let (status, code) = match &e {
            DecodeError::Empty => (StatusCode::BAD_REQUEST, "empty_body"),
            DecodeError::TooManyPixels { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_pixels"),
            DecodeError::UnsupportedFormat => (StatusCode::UNPROCESSABLE_ENTITY, "not_an_image"),
            DecodeError::ZeroSized { .. } | DecodeError::Corrupt(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<DetectError> for ApiError {
    fn from(e: DetectError) -> ApiError {
        match e {
            DetectError::Decode(d) => d.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_are_client_errors() {
        let status = |e: DecodeError| ApiError::from(e).status;
        assert_eq!(status(DecodeError::Empty), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(DecodeError::UnsupportedFormat),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(DecodeError::Corrupt("x".into())),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let bomb = DecodeError::TooManyPixels {
            width: 1,
            height: 1,
            pixels: 1,
            max_pixels: 0,
        };
        assert_eq!(status(bomb), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
