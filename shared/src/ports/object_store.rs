//! The bucket: base photos, training images and manifests.

use std::future::Future;
use std::sync::Arc;

use super::StoreError;

/// Facts about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its size in bytes.
    pub size: u64,
    /// The prediction that wrote it, when the service did (object metadata `prediction-id`).
    pub written_by: Option<String>,
}

/// The start of an object, and its whole size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStart {
    /// Its first bytes (all of them when the object is that small).
    pub bytes: Vec<u8>,
    /// Its size in bytes.
    pub size: u64,
}

/// An object as read, with the ETag to write it back against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedObject {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its ETag.
    pub etag: String,
}

/// The condition of a write that must not lose anyone else's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Only if there is no object yet (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object is still the one with this ETag (`If-Match`).
    IfMatch(String),
}

/// How a conditional write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written.
    Written,
    /// The condition did not hold (412): the object exists, or changed.
    PreconditionFailed,
    /// A concurrent write to the same key was in flight (409): try again.
    Conflict,
}

/// The bucket: base photos, training images and manifests.
pub trait ObjectStore: Send + Sync {
    /// The object's facts, or `None` when there is no such object.
    fn head(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send;
    /// The object's first `limit` bytes and its whole size, in one request, or `None` when
    /// there is no such object.
    fn read_start(
        &self,
        key: &str,
        limit: u64,
    ) -> impl Future<Output = Result<Option<ObjectStart>, StoreError>> + Send;
    /// A URL that lets anyone GET the object for `expires_in`.
    fn presigned_get(
        &self,
        key: &str,
        expires_in: std::time::Duration,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// The object's permanent URL (not signed).
    fn object_url(&self, key: &str) -> String;
    /// Every key under `prefix`.
    fn list_keys(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The object with its ETag, or `None` when there is none.
    fn read_versioned(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<VersionedObject>, StoreError>> + Send;
    /// Writes the object only if `condition` holds, recording `written_by` (a prediction id)
    /// in its metadata when given. The bytes are shared, not copied: an image written again
    /// under another name reuses them.
    fn write(
        &self,
        key: &str,
        bytes: Arc<Vec<u8>>,
        content_type: &str,
        condition: WriteCondition,
        written_by: Option<&str>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
}
