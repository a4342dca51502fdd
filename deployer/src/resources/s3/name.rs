//! A bucket's name is global across all AWS accounts: what S3 answers when the name is
//! not this stack's to use (another account's, in another region, deleted recently),
//! told with the name, why, and what to do.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::head_bucket::{HeadBucketError, HeadBucketOutput};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use super::Bucket;
use crate::aws::{AwsError, FoundExt, Service, error};

impl Bucket {
    /// The hint for a name that is not ours to use.
    fn rename_hint(&self) -> String {
        format!(
            "bucket names are global across all AWS accounts: set `{}` to another name, or change the stack's `name`",
            self.setting
        )
    }

    /// What `HeadBucket` answered: whether the bucket exists. It has no body, so only its
    /// 404 carries a code (`NotFound`); a 403 (the name is another account's) and a 301
    /// (the bucket is in another region) arrive as bare statuses, read here.
    pub(super) fn head_bucket(
        &self,
        answer: Result<HeadBucketOutput, SdkError<HeadBucketError, HttpResponse>>,
    ) -> Result<bool, AwsError> {
        const OP: &str = "s3:HeadBucket";
        let bare = match &answer {
            Err(SdkError::ServiceError(s)) if s.err().code().is_none() => Some(s.raw()),
            _ => None,
        };
        let b = &self.name;
        match bare.map(|r| (r.status().as_u16(), r)) {
            Some((403, _)) => Err(AwsError::new(
                OP,
                format!(
                    "bucket `{b}` exists and belongs to another account (or these credentials may not read it)"
                ),
            )
            .with_hint(self.rename_hint())),
            Some((301, raw)) => {
                let region = raw
                    .headers()
                    .get("x-amz-bucket-region")
                    .unwrap_or("another region");
                Err(AwsError::new(
                    OP,
                    format!(
                        "bucket `{b}` exists in `{region}`, not in the stack's region `{}`",
                        self.region
                    ),
                )
                .with_hint(format!(
                    "{}; if it is this stack's, set `region: {region}`",
                    self.rename_hint()
                )))
            }
            _ => Ok(answer.found(Service::S3, OP)?.is_some()),
        }
    }

    /// `CreateBucket`'s refusals that need explaining.
    pub(super) fn create_error(&self, e: SdkError<CreateBucketError, HttpResponse>) -> AwsError {
        let b = &self.name;
        let e = error("s3:CreateBucket")(e);
        match e.code.as_deref() {
            Some("OperationAborted") => AwsError {
                message: format!(
                    "bucket `{b}` was deleted recently: AWS keeps a deleted bucket's name from \
                     being re-created for a while (it advises waiting up to 48-72 hours), and \
                     any account may take the name meanwhile ({})",
                    e.message
                ),
                hint: Some(format!(
                    "run `up` again later, or set `{}` to another name; \
                     `down` keeps the buckets (emptied) to avoid this unless given `--delete-buckets`",
                    self.setting
                )),
                ..e
            },
            Some("BucketAlreadyExists") => AwsError {
                message: format!("bucket `{b}` belongs to another account"),
                hint: Some(self.rename_hint()),
                ..e
            },
            _ => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::{aws, bucket, recording};
    use crate::resources::Resource;

    #[tokio::test]
    async fn head_bucket_403_and_301_name_the_bucket_and_what_to_do() {
        let b = bucket(false, 0);
        let (taken, _) =
            recording("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let e = b.find(&aws(&taken).await).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "s3:HeadBucket: bucket `s-results` exists and belongs to another account \
             (or these credentials may not read it)"
        );
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("set `buckets.output.name`"),
            "{e:?}"
        );

        let (elsewhere, _) = recording(
            "HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: eu-west-1\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let e = b.find(&aws(&elsewhere).await).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "s3:HeadBucket: bucket `s-results` exists in `eu-west-1`, not in the stack's region `us-east-1`"
        );
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("set `region: eu-west-1`"),
            "{e:?}"
        );

        // 404 is still "absent", not an error.
        let (absent, _) =
            recording("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        assert_eq!(b.find(&aws(&absent).await).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_recently_deleted_bucket_name_is_explained() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>OperationAborted</Code>\
            <Message>A conflicting conditional operation is currently in progress against this resource. \
            Please try again.</Message><BucketName>s-results</BucketName><RequestId>R</RequestId>\
            <HostId>H</HostId></Error>";
        let response = format!(
            "HTTP/1.1 409 Conflict\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let (endpoint, _) = recording(response.leak());
        let aws = aws(&endpoint).await;
        let e = bucket(false, 0).apply(&aws, None, &[]).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("OperationAborted"));
        assert!(
            e.message
                .starts_with("bucket `s-results` was deleted recently")
                && e.message.contains("48-72 hours")
                && e.message.contains("any account may take the name"),
            "{e}"
        );
        assert!(
            e.hint.as_deref().unwrap().contains("--delete-buckets"),
            "{e:?}"
        );
    }
}
