//! S3 adapter for the bucket: base photos, training images and manifests.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::s3_metadata::{image_of, metadata_of};
use crate::adapters::operations;
use crate::ports::{
    ImageMetadata, ObjectInfo, ObjectStart, ObjectStore, StoreError, VersionedObject,
    WriteCondition, WriteOutcome,
};
use crate::timing::RemoteCallExt;

/// The service's bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    region: String,
    signing_credentials: Option<SharedCredentialsProvider>,
}

impl S3ObjectStore {
    /// The bucket `bucket`, in `region` (for object URLs), reached with `client`.
    pub fn new(client: Client, bucket: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            region: region.into(),
            signing_credentials: None,
        }
    }

    /// The same, telling how long its presigned URLs can work from `credentials` (the
    /// client's own; the SDK client does not give them back).
    pub fn with_signing_credentials(
        mut self,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        self.signing_credentials = credentials;
        self
    }

    /// An S3 client for this SDK configuration: path-style when `AWS_ENDPOINT_URL` points the
    /// SDK at a local server.
    pub fn client_for(sdk: &aws_config::SdkConfig) -> Client {
        let local = sdk.endpoint_url().is_some();
        Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(local)
                .build(),
        )
    }
}

/// Whether a GET failed because there is no such object: a 404, or (without s3:ListBucket,
/// which the policies do not grant) S3's 403 `AccessDenied`. Other 403s (an expired token, a
/// skewed clock) are faults.
fn is_missing<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match http_status(error) {
        Some(404) => true,
        Some(403) => error.code() == Some("AccessDenied"),
        _ => false,
    }
}

/// A fault of the named call, with the SDK's whole error chain as its detail (for logs).
pub(super) fn fault<E, R>(operation: &'static str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError {
        operation,
        detail: DisplayErrorContext(error).to_string(),
    }
}

/// The HTTP status S3 answered with, when it answered.
pub(super) fn http_status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
}

/// Bytes shared with the caller, handed to the SDK without a copy.
struct SharedBody(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The whole size of an object of which a ranged GET for its first `limit` bytes received
/// `received` bytes: from `Content-Range` (`bytes 0-99/5242880`), or the bytes received when
/// there is no range (the answer is the whole object) or the range ended short of `limit`.
/// `None` when the size is unknown (`bytes 0-99/*`) and the object may go on.
fn object_size(content_range: Option<&str>, received: usize, limit: u64) -> Option<u64> {
    let received = received as u64;
    match content_range {
        None => Some(received),
        Some(range) => match range
            .rsplit_once('/')
            .map(|(_, total)| total.parse::<u64>())
        {
            Some(Ok(total)) => Some(total),
            _ if received < limit => Some(received),
            _ => None,
        },
    }
}

/// The most a body's announced size reserves up front (larger ones grow as they come).
const MAX_PREALLOCATED_BODY: usize = 32 * 1024 * 1024;

/// Reads a GetObject body whole, timed as the remote call `name`, into one buffer of its
/// announced `size`.
async fn read_body(
    mut body: ByteStream,
    size: Option<i64>,
    name: &'static str,
) -> Result<Vec<u8>, StoreError> {
    // Chunks are appended to one buffer of the announced size: one copy of the object.
    let announced = size
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(announced.min(MAX_PREALLOCATED_BODY));
    async {
        while let Some(chunk) = body.try_next().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok::<(), aws_sdk_s3::primitives::ByteStreamError>(())
    }
    .remote_call(name)
    .await
    .map_err(|error| StoreError {
        operation: name,
        detail: error.to_string(),
    })?;
    Ok(bytes)
}

impl S3ObjectStore {
    /// The whole object and its ETag, or `None` when there is none; timed as `calls` (the
    /// GET, its body).
    async fn get(
        &self,
        key: &str,
        (get, body): (&'static str, &'static str),
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .remote_call(get)
            .await
        {
            Ok(output) => output,
            Err(error) if is_missing(&error) => return Ok(None),
            Err(error) => return Err(fault(get, error)),
        };
        let etag = output.e_tag().unwrap_or_default().to_owned();
        let size = output.content_length();
        Ok(Some((read_body(output.body, size, body).await?, etag)))
    }
}

impl ObjectStore for S3ObjectStore {
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .remote_call(operations::OBJECT_HEAD)
            .await
        {
            Ok(output) => Ok(Some(ObjectInfo {
                size: output.content_length().unwrap_or(0).max(0) as u64,
                image: image_of(output.metadata()),
                etag: output.e_tag().unwrap_or_default().to_owned(),
            })),
            // Without s3:ListBucket on the prefix S3 answers a missing object with 403: the
            // policy grants GetObject under system_actors/, so a 403 here means "not there".
            Err(error) if matches!(http_status(&error), Some(404 | 403)) => Ok(None),
            Err(error) => Err(fault(operations::OBJECT_HEAD, error)),
        }
    }

    async fn read_start(&self, key: &str, limit: u64) -> Result<Option<ObjectStart>, StoreError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", limit.saturating_sub(1)));
        let output = match request.send().remote_call(operations::PHOTO_READ).await {
            Ok(output) => output,
            // 403 as for HeadObject: without s3:ListBucket a missing object is a 403.
            Err(error) if matches!(http_status(&error), Some(404 | 403)) => return Ok(None),
            // No byte to give: the object is empty.
            Err(error) if http_status(&error) == Some(416) => {
                return Ok(Some(ObjectStart {
                    bytes: Vec::new(),
                    size: 0,
                }));
            }
            Err(error) => return Err(fault(operations::PHOTO_READ, error)),
        };
        let range = output.content_range().map(str::to_owned);
        let size = output.content_length();
        let bytes = read_body(output.body, size, operations::PHOTO_BODY).await?;
        let size = object_size(range.as_deref(), bytes.len(), limit).ok_or_else(|| StoreError {
            operation: operations::PHOTO_READ,
            detail: format!("the size of {key} is not given and it is longer than {limit} bytes"),
        })?;
        Ok(Some(ObjectStart { size, bytes }))
    }

    async fn presigned_get(&self, key: &str, expires_in: Duration) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(expires_in).map_err(|error| StoreError {
            operation: operations::PRESIGN,
            detail: error.to_string(),
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|error| fault(operations::PRESIGN, error))?;
        Ok(request.uri().to_owned())
    }

    async fn signing_time_left(&self) -> Option<Duration> {
        let provider = self.signing_credentials.as_ref()?;
        let credentials = provider.provide_credentials().await.ok()?;
        let expiry = credentials.expiry()?;
        Some(
            expiry
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    }

    fn object_url(&self, key: &str) -> String {
        format!(
            "https://{}.s3.{}.amazonaws.com/{key}",
            self.bucket, self.region
        )
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(continuation)
                .send()
                .remote_call(operations::FOLDER_LIST)
                .await
                .map_err(|error| fault(operations::FOLDER_LIST, error))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_owned());
                }
                _ => return Ok(keys),
            }
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let calls = (operations::OBJECT_READ, operations::OBJECT_BODY);
        Ok(self.get(key, calls).await?.map(|(bytes, _)| bytes))
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<VersionedObject>, StoreError> {
        let calls = (operations::MANIFEST_READ, operations::MANIFEST_BODY);
        Ok(self
            .get(key, calls)
            .await?
            .map(|(bytes, etag)| VersionedObject { bytes, etag }))
    }

    async fn write(
        &self,
        key: &str,
        bytes: Arc<Vec<u8>>,
        content_type: &str,
        condition: WriteCondition,
        image: Option<&ImageMetadata>,
    ) -> Result<WriteOutcome, StoreError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(Bytes::from_owner(SharedBody(bytes))));
        if let Some(image) = image {
            request = request.set_metadata(Some(metadata_of(image)));
        }
        // Timed by its condition: a new object (an image, a first manifest) or a rewrite.
        let (request, call) = match condition {
            WriteCondition::IfAbsent => (request.if_none_match("*"), operations::OBJECT_CREATE),
            WriteCondition::IfMatch(etag) => (request.if_match(etag), operations::OBJECT_REWRITE),
        };
        match request.send().remote_call(call).await {
            Ok(_) => Ok(WriteOutcome::Written),
            Err(error) => match (http_status(&error), error.code()) {
                (Some(412), _) | (_, Some("PreconditionFailed")) => {
                    Ok(WriteOutcome::PreconditionFailed)
                }
                (Some(409), _) | (_, Some("ConditionalRequestConflict")) => {
                    Ok(WriteOutcome::Conflict)
                }
                _ => Err(fault(call, error)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::object_size;

    #[test]
    fn the_size_comes_from_the_range_or_from_a_whole_answer_never_from_a_cut_one() {
        assert_eq!(
            object_size(Some("bytes 0-99/5242880"), 100, 100),
            Some(5_242_880)
        );
        // No range: the server sent the whole object, whatever its length.
        assert_eq!(object_size(None, 300, 100), Some(300));
        // Unknown total, but the range ended short: that was all of it.
        assert_eq!(object_size(Some("bytes 0-41/*"), 42, 100), Some(42));
        // Unknown total and a full range: the object may go on, so there is no size.
        assert_eq!(object_size(Some("bytes 0-99/*"), 100, 100), None);
    }
}
