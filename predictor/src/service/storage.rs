//! S3 for the service: read an input image, store an annotated result, and hand out a
//! URL for it (presigned, or plain when the output bucket is public).

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use axum::body::Bytes;
use axum::http::StatusCode;

use super::errors::ApiError;

#[derive(Clone)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    endpoint: Option<String>,
    region: String,
}

fn upstream(operation: &str, e: impl ProvideErrorMetadata + std::fmt::Display) -> ApiError {
    let code = e.code().unwrap_or("unreachable").to_string();
    let message = e
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string());
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        format!("S3 {operation}: {code}: {message}"),
    )
}

impl Storage {
    /// Credentials and region from the standard chain; `AWS_ENDPOINT_URL` for an emulator.
    pub async fn from_env() -> Storage {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|e| !e.is_empty());
        Storage::connect(endpoint).await
    }

    /// As `from_env`, with the endpoint given (tests point it at an emulator).
    pub async fn connect(endpoint: Option<String>) -> Storage {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(e) = &endpoint {
            loader = loader.endpoint_url(e);
        }
        let config = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(endpoint.is_some())
            .build();
        Storage {
            client: aws_sdk_s3::Client::from_conf(s3),
            endpoint,
            region: config
                .region()
                .map_or("us-east-1".to_string(), |r| r.to_string()),
        }
    }

    /// The object's bytes; 404 when absent, 413 when larger than `limit`. The body's
    /// chunks are gathered into one buffer once (none when it came in one chunk), and that
    /// buffer goes to the decoder as is.
    pub async fn get(&self, bucket: &str, key: &str, limit: usize) -> Result<Bytes, ApiError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_no_such_key())
                    || service.and_then(|s| s.code()) == Some("NoSuchBucket")
                {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "image_not_found",
                        format!("no object `{key}` in bucket `{bucket}`"),
                    )
                } else {
                    upstream("GetObject", e.into_service_error())
                }
            })?;
        if out
            .content_length()
            .is_some_and(|n| n as u64 > limit as u64)
        {
            return Err(ApiError::too_large(limit));
        }
        let bytes = out.body.collect().await.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                format!("S3 GetObject body: {e}"),
            )
        })?;
        Ok(bytes.into_bytes())
    }

    pub async fn put_jpeg(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), ApiError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("image/jpeg")
            .body(body.into())
            .send()
            .await
            .map_err(|e| upstream("PutObject", e.into_service_error()))?;
        Ok(())
    }

    /// A URL for the object: plain when the bucket is public, else presigned for `expiry`.
    pub async fn url(
        &self,
        bucket: &str,
        key: &str,
        public: bool,
        expiry: Duration,
    ) -> Result<String, ApiError> {
        if public {
            return Ok(match &self.endpoint {
                Some(e) => format!("{}/{bucket}/{key}", e.trim_end_matches('/')),
                None => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region),
            });
        }
        let presigning =
            PresigningConfig::expires_in(expiry).map_err(|e| ApiError::internal(e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| upstream("presign", e.into_service_error()))?;
        Ok(request.uri().to_string())
    }

    /// Downloads `s3://bucket/key` to `dest` (the model, once at start).
    pub async fn download(
        &self,
        bucket: &str,
        key: &str,
        dest: &std::path::Path,
    ) -> Result<(), ApiError> {
        let bytes = self.get(bucket, key, usize::MAX).await?;
        std::fs::write(dest, bytes)
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", dest.display())))
    }
}
