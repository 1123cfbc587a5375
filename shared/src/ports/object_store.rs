//! The bucket: base photos, training images and manifests.

use std::future::Future;
use std::sync::Arc;

use super::StoreError;

/// Facts about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its size in bytes.
    pub size: u64,
    /// What the service wrote with it, when it is an image (or an image's caption) the
    /// service stored.
    pub image: Option<ImageMetadata>,
    /// Its ETag, to write it back only if it is still this one.
    pub etag: String,
}

impl ObjectInfo {
    /// The prediction that wrote the object, when the service did.
    pub fn written_by(&self) -> Option<&str> {
        self.image
            .as_ref()
            .map(|image| image.prediction_id.as_str())
    }
}

/// What an image carries in its object metadata: its manifest entry's own fields, so that a
/// manifest can be rebuilt from the bucket alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMetadata {
    /// The prediction that made it.
    pub prediction_id: String,
    /// The preset's id, none for a custom prompt.
    pub prompt_id: Option<String>,
    /// The prompt sent, when it fits in object metadata (ASCII, at most
    /// [`ImageMetadata::MAX_PROMPT_LEN`] bytes; S3 keeps 2 KB of it in all).
    pub prompt: Option<String>,
    /// The seed, when given.
    pub seed: Option<u64>,
    /// The model, `owner/name`.
    pub model: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
}

impl ImageMetadata {
    /// The longest prompt kept in an image's metadata.
    pub const MAX_PROMPT_LEN: usize = 1024;

    /// The prompt as metadata keeps it: none when it does not fit.
    pub fn fitting_prompt(prompt: &str) -> Option<String> {
        (prompt.len() <= Self::MAX_PROMPT_LEN
            && prompt.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .then(|| prompt.to_owned())
    }
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
    /// How long a URL signed now can work, when the signing credentials expire (a
    /// function role's session credentials do); `None` when they do not say.
    fn signing_time_left(&self) -> impl Future<Output = Option<std::time::Duration>> + Send;
    /// The object's permanent URL (not signed).
    fn object_url(&self, key: &str) -> String;
    /// Every key under `prefix`.
    fn list_keys(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The whole object, or `None` when there is none.
    fn read(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// The object with its ETag, or `None` when there is none.
    fn read_versioned(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<VersionedObject>, StoreError>> + Send;
    /// Writes the object only if `condition` holds, with an image's metadata when given. The bytes are shared, not copied: an image written again
    /// under another name reuses them.
    fn write(
        &self,
        key: &str,
        bytes: Arc<Vec<u8>>,
        content_type: &str,
        condition: WriteCondition,
        image: Option<&ImageMetadata>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
}
