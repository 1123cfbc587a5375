//! What every multipart upload of the service shares (an export's zip, a training's
//! weights): the longer timeouts of its parts, its completion (read back from the object
//! when the answer is lost) and its abort.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::operations;
use super::s3::fault;
use crate::ports::StoreError;
use crate::timing::RemoteCallExt;

/// The uploads' timeouts: a part is megabytes, not the few bytes of the other calls (whose
/// attempts get 3 s, `adapters/aws.rs`), and an export's run has minutes, not an HTTP
/// answer's seconds.
pub(super) fn part_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(90))
        .build()
}

/// A multipart upload under way, as S3 names it.
pub(super) struct MultipartUpload<'a> {
    /// The client it is sent with.
    pub(super) client: &'a Client,
    /// Its bucket.
    pub(super) bucket: &'a str,
    /// Its object's key.
    pub(super) key: &'a str,
    /// S3's id of it.
    pub(super) upload_id: &'a str,
}

impl MultipartUpload<'_> {
    /// Completes the upload of `parts` (`size` bytes in all) into its object; its size. A
    /// completion whose answer is lost or unreadable but whose object is there
    /// ([`completed_as_sent`]) is complete.
    pub(super) async fn complete(
        &self,
        parts: Vec<CompletedPart>,
        size: u64,
        operation: &'static str,
    ) -> Result<u64, StoreError> {
        let count = parts.len();
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .remote_call(operation)
            .await;
        match completed {
            Ok(_) => Ok(size),
            Err(error)
                if completed_as_sent(self.client, self.bucket, self.key, count, size).await =>
            {
                tracing::warn!(key = %self.key, error = %fault(operation, error), "the upload's completion was not read, but the object is there");
                Ok(size)
            }
            Err(error) => Err(fault(operation, error)),
        }
    }
}

/// Whether the object at `key` is a multipart upload's, complete: a
/// CompleteMultipartUpload whose answer was lost or could not be read may still have made it
/// (moto 5.2.1 also answers it under the wrong XML root, which the SDK cannot read). It is
/// when its size is all that was sent and its ETag is a multipart one of `parts` parts.
async fn completed_as_sent(
    client: &Client,
    bucket: &str,
    key: &str,
    parts: usize,
    size: u64,
) -> bool {
    let Ok(head) = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .remote_call(operations::OBJECT_HEAD)
        .await
    else {
        return false;
    };
    let multipart_etag = head
        .e_tag()
        .is_some_and(|etag| etag.trim_matches('"').ends_with(&format!("-{parts}")));
    multipart_etag && head.content_length().and_then(|n| u64::try_from(n).ok()) == Some(size)
}

/// Aborts the upload `upload_id` of `key`: its parts are discarded.
pub(super) async fn abort(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), StoreError> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .remote_call(operations::ARCHIVE_ABORT)
        .await
        .map_err(|error| fault(operations::ARCHIVE_ABORT, error))?;
    Ok(())
}
