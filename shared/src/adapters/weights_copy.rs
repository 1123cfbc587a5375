//! A trained model's weights copied from Replicate into the bucket as they download: up to
//! one part ([`PART_BYTES`]) in memory, sent as one PutObject when the file is that small,
//! else as a multipart upload whose parts go one after another. A failed copy aborts its
//! upload; nothing is left at the key but a whole file.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedPart;

use super::operations;
use super::replicate::{ReplicateClient, download_fault};
use super::s3::fault;
use super::s3_archive::PART_BYTES;
use super::s3_multipart::{MultipartUpload, abort, part_timeouts};
use crate::ports::{CopyError, StoreError, WeightsCopier};
use crate::timing::RemoteCallExt;

/// The largest weights file copied (a LoRA of rank 128 is well under it).
const MAX_WEIGHTS_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Copies weights from Replicate's output hosts into the bucket.
#[derive(Debug, Clone)]
pub struct S3WeightsCopier {
    replicate: ReplicateClient,
    s3: Client,
    bucket: String,
}

impl S3WeightsCopier {
    /// Downloads with `replicate` (its allowed hosts), uploads into `bucket` with `s3`'s
    /// configuration and a part's longer timeouts.
    pub fn new(replicate: ReplicateClient, s3: &Client, bucket: impl Into<String>) -> Self {
        let config = s3
            .config()
            .to_builder()
            .timeout_config(part_timeouts())
            .build();
        Self {
            replicate,
            s3: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// One PutObject of a small file.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<u64, StoreError> {
        let size = bytes.len() as u64;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-tar")
            .body(ByteStream::from(bytes))
            .send()
            .remote_call(operations::WEIGHTS_STORE)
            .await
            .map_err(|error| fault(operations::WEIGHTS_STORE, error))?;
        Ok(size)
    }
}

/// A multipart upload of weights, part after part.
struct PartUpload<'a> {
    copier: &'a S3WeightsCopier,
    key: &'a str,
    upload_id: String,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl PartUpload<'_> {
    /// Sends `bytes` as the next part.
    async fn send(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        self.size += bytes.len() as u64;
        let sent = self
            .copier
            .s3
            .upload_part()
            .bucket(&self.copier.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .remote_call(operations::WEIGHTS_STORE)
            .await
            .map_err(|error| fault(operations::WEIGHTS_STORE, error))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Completes the upload into the object; its size.
    async fn complete(&mut self) -> Result<u64, StoreError> {
        let upload = MultipartUpload {
            client: &self.copier.s3,
            bucket: &self.copier.bucket,
            key: self.key,
            upload_id: &self.upload_id,
        };
        upload
            .complete(
                std::mem::take(&mut self.parts),
                self.size,
                operations::WEIGHTS_STORE,
            )
            .await
    }
}

impl WeightsCopier for S3WeightsCopier {
    async fn copy(&self, url: &str, key: &str) -> Result<u64, CopyError> {
        let mut response = self.replicate.open_weights(url).await?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_WEIGHTS_BYTES)
        {
            return Err(CopyError::Gone(format!(
                "the weights are larger than {MAX_WEIGHTS_BYTES} bytes"
            )));
        }
        let mut buffer = Vec::with_capacity(PART_BYTES);
        let mut upload: Option<PartUpload<'_>> = None;
        let copied = async {
            let mut total = 0u64;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|error| download_fault(error.to_string()))?
            {
                total += chunk.len() as u64;
                if total > MAX_WEIGHTS_BYTES {
                    return Err(CopyError::Gone(format!(
                        "the weights are larger than {MAX_WEIGHTS_BYTES} bytes"
                    )));
                }
                buffer.extend_from_slice(&chunk);
                if buffer.len() >= PART_BYTES {
                    let part = std::mem::replace(&mut buffer, Vec::with_capacity(PART_BYTES));
                    let upload = match &mut upload {
                        Some(upload) => upload,
                        None => upload.insert(self.begin(key).await?),
                    };
                    upload.send(part).await?;
                }
            }
            match &mut upload {
                None => Ok(self.put(key, std::mem::take(&mut buffer)).await?),
                Some(upload) => {
                    if !buffer.is_empty() {
                        upload.send(std::mem::take(&mut buffer)).await?;
                    }
                    Ok(upload.complete().await?)
                }
            }
        }
        .await;
        if let (Err(_), Some(upload)) = (&copied, &upload)
            && let Err(error) = abort(&self.s3, &self.bucket, key, &upload.upload_id).await
        {
            tracing::error!(key, %error, "weights upload not aborted: the bucket's lifecycle rule removes it");
        }
        copied
    }
}

impl S3WeightsCopier {
    /// Starts the multipart upload of `key`.
    async fn begin<'a>(&'a self, key: &'a str) -> Result<PartUpload<'a>, StoreError> {
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-tar")
            .send()
            .remote_call(operations::WEIGHTS_STORE)
            .await
            .map_err(|error| fault(operations::WEIGHTS_STORE, error))?;
        Ok(PartUpload {
            copier: self,
            key,
            upload_id: created.upload_id().unwrap_or_default().to_owned(),
            parts: Vec::new(),
            size: 0,
        })
    }
}
