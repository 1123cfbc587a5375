//! The exports' zips, streamed into S3 as a multipart upload: the zip is written (stored
//! entries: JPEGs do not compress) into a buffer that is sent as a part once it holds
//! [`PART_BYTES`], while the next files are written; at most one part is in flight and one
//! being filled, so a zip of any size needs about two parts of memory. The object appears
//! only when the upload completes; a failure aborts it, and a new upload to a key first
//! aborts what a killed run left there.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedPart;
use bytes::Bytes;
use tokio::task::JoinHandle;
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

use super::operations;
use super::s3::fault;
use super::s3_multipart::{MultipartUpload, abort, part_timeouts};
use crate::ports::{ArchiveUpload, ArchiveUploads, StoreError};
use crate::timing::RemoteCallExt;

/// The least size S3 takes for a part other than the last.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// What the buffer has room for past a part: one image of the usual size (larger ones grow it).
const IMAGE_ROOM: usize = 4 * 1024 * 1024;

/// The size from which the buffered zip is sent as a part.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

const _: () = assert!(PART_BYTES >= MIN_PART_BYTES, "S3 refuses smaller parts");

/// Part buffers given back once a part is sent: an upload fills the same two or three
/// allocations for all its parts, instead of a new part-sized one each (freed blocks that size
/// stay resident under glibc once its mmap threshold has risen: docs/benchmark.md).
#[derive(Debug, Clone, Default)]
struct PartBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl PartBuffers {
    /// An empty buffer with room for a part and an image.
    fn fresh(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(PART_BYTES + IMAGE_ROOM))
    }

    /// `bytes` as a part's body, its buffer given back when the SDK drops it.
    fn body(&self, bytes: Vec<u8>) -> ByteStream {
        ByteStream::from(Bytes::from_owner(SentPart {
            bytes,
            buffers: self.clone(),
        }))
    }
}

/// A part's bytes on their way to S3.
struct SentPart {
    bytes: Vec<u8>,
    buffers: PartBuffers,
}

impl AsRef<[u8]> for SentPart {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for SentPart {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.bytes);
        buffer.clear();
        let mut kept = self
            .buffers
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if kept.len() < 2 {
            kept.push(buffer);
        }
    }
}

/// The zip's bytes not sent yet: the zip writer appends, the upload takes them as a part.
#[derive(Debug, Clone, Default)]
struct Unsent {
    buffer: Arc<Mutex<Vec<u8>>>,
    buffers: PartBuffers,
}

impl Unsent {
    /// Everything buffered, when it is at least `least` bytes; the buffer goes on in a
    /// fresh (or given back) one with room for a part and an image, so that filling it does
    /// not grow it by doubling.
    fn take(&self, least: usize) -> Option<Vec<u8>> {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        (buffer.len() >= least).then(|| std::mem::replace(&mut *buffer, self.buffers.fresh()))
    }
}

impl Write for Unsent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bucket's zips.
#[derive(Debug, Clone)]
pub struct S3Archives {
    client: Client,
    bucket: String,
}

impl S3Archives {
    /// The zips of `bucket`, reached with `client`'s configuration and longer timeouts.
    pub fn new(client: &Client, bucket: impl Into<String>) -> Self {
        let config = client
            .config()
            .to_builder()
            .timeout_config(part_timeouts())
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// Aborts every upload open on `key` (a run killed before it could abort its own).
    async fn abort_left_uploads(&self, key: &str) -> Result<(), StoreError> {
        let listed = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .remote_call(operations::ARCHIVE_LEFT_UPLOADS)
            .await
            .map_err(|error| fault(operations::ARCHIVE_LEFT_UPLOADS, error))?;
        for upload in listed.uploads() {
            let (Some(upload_key), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if upload_key == key {
                tracing::warn!(key, upload_id, "aborting an upload a run left open");
                abort(&self.client, &self.bucket, key, upload_id).await?;
            }
        }
        Ok(())
    }
}

impl ArchiveUploads for S3Archives {
    type Upload = S3ArchiveUpload;

    async fn begin(&self, key: &str) -> Result<S3ArchiveUpload, StoreError> {
        self.abort_left_uploads(key).await?;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/zip")
            .send()
            .remote_call(operations::ARCHIVE_BEGIN)
            .await
            .map_err(|error| fault(operations::ARCHIVE_BEGIN, error))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let buffers = PartBuffers::default();
        let unsent = Unsent {
            buffer: Arc::new(Mutex::new(buffers.fresh())),
            buffers,
        };
        Ok(S3ArchiveUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            zip: Some(ZipWriter::new_stream(unsent.clone())),
            unsent,
            sent: Vec::new(),
            in_flight: None,
            size: 0,
        })
    }
}

/// One zip being uploaded.
#[derive(Debug)]
pub struct S3ArchiveUpload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    /// The zip writer, until its directory is written.
    zip: Option<ZipWriter<StreamWriter<Unsent>>>,
    unsent: Unsent,
    sent: Vec<CompletedPart>,
    in_flight: Option<JoinHandle<Result<CompletedPart, StoreError>>>,
    size: u64,
}

/// A zip writer's failure, as a store fault (it writes into memory: this is not expected).
fn zip_fault(error: impl std::fmt::Display) -> StoreError {
    StoreError {
        operation: "zip write",
        detail: error.to_string(),
    }
}

impl S3ArchiveUpload {
    /// Waits for the part in flight, if any, and keeps its receipt.
    async fn settle(&mut self) -> Result<(), StoreError> {
        let Some(part) = self.in_flight.take() else {
            return Ok(());
        };
        let part = part.await.map_err(|error| StoreError {
            operation: operations::ARCHIVE_PART,
            detail: error.to_string(),
        })??;
        self.sent.push(part);
        Ok(())
    }

    /// Sends `bytes` as the next part, once the one before it is sent.
    async fn send(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.settle().await?;
        let number = i32::try_from(self.sent.len() + 1).unwrap_or(i32::MAX);
        self.size += bytes.len() as u64;
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(self.unsent.buffers.body(bytes));
        self.in_flight = Some(tokio::spawn(async move {
            let sent = request
                .send()
                .await
                .map_err(|error| fault(operations::ARCHIVE_PART, error))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_owned))
                .build())
        }));
        Ok(())
    }

    /// Writes the zip's directory, sends the rest and completes the upload.
    async fn complete(&mut self) -> Result<u64, StoreError> {
        let zip = self.zip.take().ok_or_else(|| zip_fault("finished twice"))?;
        zip.finish().map_err(zip_fault)?;
        let rest = self.unsent.take(0).unwrap_or_default();
        if !rest.is_empty() || (self.sent.is_empty() && self.in_flight.is_none()) {
            self.send(rest).await?;
        }
        self.settle().await?;
        let parts = std::mem::take(&mut self.sent);
        let upload = MultipartUpload {
            client: &self.client,
            bucket: &self.bucket,
            key: &self.key,
            upload_id: &self.upload_id,
        };
        upload
            .complete(parts, self.size, operations::ARCHIVE_COMPLETE)
            .await
    }
}

impl ArchiveUpload for S3ArchiveUpload {
    async fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .unix_permissions(0o644);
        let zip = self.zip.as_mut().ok_or_else(|| zip_fault("finished"))?;
        zip.start_file(name, options).map_err(zip_fault)?;
        zip.write_all(bytes).map_err(zip_fault)?;
        match self.unsent.take(PART_BYTES) {
            Some(part) => self.send(part).await,
            None => Ok(()),
        }
    }

    async fn finish(mut self) -> Result<u64, StoreError> {
        match self.complete().await {
            Ok(size) => Ok(size),
            Err(error) => {
                if let Err(abort_error) = self.abort().await {
                    tracing::error!(error = %abort_error, "zip upload not aborted");
                }
                Err(error)
            }
        }
    }

    async fn abort(mut self) -> Result<(), StoreError> {
        // A part still uploading could outlive an abort and be kept: let it end first.
        if let Some(part) = self.in_flight.take() {
            let _ = part.await;
        }
        abort(&self.client, &self.bucket, &self.key, &self.upload_id).await
    }
}
