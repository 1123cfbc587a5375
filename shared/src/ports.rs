//! The ports: what the domain needs from the outside world, as traits the adapters implement.

use std::future::Future;
use std::sync::Arc;

use thiserror::Error;

use crate::domain::actor::{ActorId, ActorProfile};

/// A storage fault: the store could not answer. Says which operation failed; the detail is
/// for logs, never for callers.
#[derive(Debug, Error)]
#[error("{operation} failed: {detail}")]
pub struct StoreError {
    /// The operation that failed (e.g. `DynamoDB GetItem`).
    pub operation: &'static str,
    /// What the store or SDK said.
    pub detail: String,
}

/// Reads the actor profiles that operators write.
pub trait ActorProfiles: Send + Sync {
    /// The actor's profile, or `None` when the actor has none.
    fn profile(
        &self,
        actor_id: &ActorId,
    ) -> impl Future<Output = Result<Option<ActorProfile>, StoreError>> + Send;
}

/// What the image model is asked for: an edit of the input image following the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRequest {
    /// The full prompt text.
    pub prompt: String,
    /// The input image.
    pub input_image: InputImage,
    /// A seed for a reproducible result, when the caller gave one.
    pub seed: Option<u64>,
}

/// The image a generation edits: its bytes when they are small enough to send inline, or a
/// URL the model can fetch (a short-lived presigned S3 URL).
#[derive(Clone, PartialEq, Eq)]
pub enum InputImage {
    /// Sent as a `data:` URI.
    Inline {
        /// The MIME type, e.g. `image/jpeg`.
        content_type: String,
        /// The image file's bytes.
        bytes: Vec<u8>,
    },
    /// Sent as a URL.
    Url(String),
}

impl InputImage {
    /// The longest `data:` URI sent inline, in bytes; a larger image goes by URL.
    pub const MAX_DATA_URI_LEN: usize = 256 * 1024;

    /// The length of the `data:{content_type};base64,...` URI of an image of `byte_len` bytes,
    /// computed without encoding it.
    pub fn data_uri_len(content_type: &str, byte_len: usize) -> usize {
        "data:".len() + content_type.len() + ";base64,".len() + byte_len.div_ceil(3) * 4
    }

    /// Inline while the encoded URI is at most [`Self::MAX_DATA_URI_LEN`], otherwise by the URL
    /// that `url` makes (called only then).
    pub fn choose(content_type: &str, bytes: Vec<u8>, url: impl FnOnce() -> String) -> Self {
        if Self::data_uri_len(content_type, bytes.len()) <= Self::MAX_DATA_URI_LEN {
            Self::Inline {
                content_type: content_type.to_owned(),
                bytes,
            }
        } else {
            Self::Url(url())
        }
    }
}

impl std::fmt::Debug for InputImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline {
                content_type,
                bytes,
            } => write!(f, "Inline({content_type}, {} bytes)", bytes.len()),
            // A presigned URL is a credential for as long as it lives: never print it whole.
            Self::Url(url) => write!(f, "Url({})", url.split('?').next().unwrap_or_default()),
        }
    }
}

/// A generated image, downloaded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedImage {
    /// The prediction that made it (it was paid for).
    pub prediction_id: String,
    /// The model that made it, `owner/name`.
    pub model: String,
    /// The JPEG file's bytes.
    pub bytes: Vec<u8>,
}

/// Why a generation did not produce an image. Variants with a `prediction_id` mean a
/// prediction was created, so it may have been paid for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GenerationError {
    /// The model's API refused to start a prediction for now (429 after the retries).
    #[error("rate limited by the image model's API: {message}")]
    RateLimited {
        /// When the API says to try again, if it said.
        retry_after: Option<std::time::Duration>,
        /// What the API said.
        message: String,
    },
    /// The API refused the request itself (bad token, no credit, invalid input): nothing was
    /// made, and sending it again would fail again.
    #[error("the image model's API refused the request ({status}): {message}")]
    Rejected {
        /// The HTTP status (400, 401, 402, 404, 422, ...).
        status: u16,
        /// What the API said.
        message: String,
    },
    /// The prediction ran and failed.
    #[error("prediction {prediction_id} failed: {message}")]
    Failed {
        /// The prediction.
        prediction_id: String,
        /// The model's error message.
        message: String,
    },
    /// The prediction was canceled by someone else.
    #[error("prediction {prediction_id} was canceled")]
    Canceled {
        /// The prediction.
        prediction_id: String,
    },
    /// The deadline came first; a prediction that was started has been canceled.
    #[error("the image model did not finish before the deadline{}", describe(.prediction_id))]
    TimedOut {
        /// The prediction, if one was started.
        prediction_id: Option<String>,
    },
    /// The create reached the API but its answer was lost (a timeout after sending, a 5xx
    /// other than 503, an unreadable answer): a prediction may exist, unknown to us. Not
    /// retried, and not to be retried blindly.
    #[error("the image model's API may have started a prediction whose answer was lost: {message}")]
    Uncertain {
        /// What went wrong.
        message: String,
    },
    /// The API could not be reached or kept failing (5xx, connection errors) after retries.
    #[error("the image model's API is unavailable{}: {message}", describe(.prediction_id))]
    Unavailable {
        /// The prediction, if one was started.
        prediction_id: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The prediction succeeded but its output was refused (host not allowed, redirect, too
    /// large, not a JPEG, gone).
    #[error("output of prediction {prediction_id} refused: {reason}")]
    BadOutput {
        /// The prediction.
        prediction_id: String,
        /// Why the output was refused.
        reason: String,
    },
}

fn describe(prediction_id: &Option<String>) -> String {
    prediction_id
        .as_deref()
        .map(|id| format!(" (prediction {id})"))
        .unwrap_or_default()
}

impl GenerationError {
    /// Whether the failure certainly paid for nothing: the API refused the create or was
    /// never reached, so no prediction exists. A create whose answer was lost, and anything
    /// after a prediction was made, may have been paid for.
    pub fn paid_nothing(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Rejected { .. } => true,
            Self::Unavailable { prediction_id, .. } | Self::TimedOut { prediction_id } => {
                prediction_id.is_none()
            }
            Self::Uncertain { .. }
            | Self::Failed { .. }
            | Self::Canceled { .. }
            | Self::BadOutput { .. } => false,
        }
    }

    /// The error of a step that ran after `prediction_id` was created: it names the
    /// prediction even where the adapter could not (a malformed id, a read that failed), so
    /// it is never taken for a failure that paid nothing.
    pub fn after_create(self, prediction_id: &str) -> Self {
        match self {
            Self::Unavailable {
                prediction_id: None,
                message,
            } => Self::Unavailable {
                prediction_id: Some(prediction_id.to_owned()),
                message,
            },
            Self::TimedOut {
                prediction_id: None,
            } => Self::TimedOut {
                prediction_id: Some(prediction_id.to_owned()),
            },
            other => other,
        }
    }

    /// The prediction this error is about, when one was created.
    pub fn prediction_id(&self) -> Option<&str> {
        match self {
            Self::Failed { prediction_id, .. }
            | Self::Canceled { prediction_id }
            | Self::BadOutput { prediction_id, .. } => Some(prediction_id),
            Self::TimedOut { prediction_id } | Self::Unavailable { prediction_id, .. } => {
                prediction_id.as_deref()
            }
            Self::RateLimited { .. } | Self::Rejected { .. } | Self::Uncertain { .. } => None,
        }
    }
}

/// A prediction that was started (and so may be paid for), with what the adapter needs to
/// finish it.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedPrediction {
    /// The prediction's id.
    pub prediction_id: String,
    /// The adapter's own view of the prediction when it was started.
    pub state: serde_json::Value,
}

/// A prediction that succeeded, its output not fetched yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SucceededPrediction {
    /// The prediction's id.
    pub prediction_id: String,
    /// Where its output is, already checked against the allowed hosts.
    pub output_url: String,
}

/// What to do with a prediction still running at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtDeadline {
    /// Cancel it: nobody can pick it up later.
    Cancel,
    /// Leave it running: a retry with the same idempotency key will resume it.
    KeepRunning,
}

/// Makes images with an image-editing model.
pub trait ImageGenerator: Send + Sync {
    /// Starts a prediction: the call that costs money.
    fn start(
        &self,
        request: &GenerationRequest,
        deadline: std::time::Instant,
    ) -> impl Future<Output = Result<StartedPrediction, GenerationError>> + Send;

    /// Waits for a started prediction until `deadline`; it must succeed with an output from
    /// an allowed place.
    fn finish(
        &self,
        started: StartedPrediction,
        deadline: std::time::Instant,
        at_deadline: AtDeadline,
    ) -> impl Future<Output = Result<SucceededPrediction, GenerationError>> + Send;

    /// Picks up a prediction started earlier (by a run that did not finish), without paying
    /// for another, and waits for it as [`ImageGenerator::finish`] does.
    fn resume(
        &self,
        prediction_id: &str,
        deadline: std::time::Instant,
        at_deadline: AtDeadline,
    ) -> impl Future<Output = Result<SucceededPrediction, GenerationError>> + Send;

    /// Downloads a succeeded prediction's output and checks it; retries may run a little
    /// past `deadline`, as the image is already paid for.
    fn download(
        &self,
        succeeded: &SucceededPrediction,
        deadline: std::time::Instant,
    ) -> impl Future<Output = Result<GeneratedImage, GenerationError>> + Send;

    /// Starts a prediction, waits for it and downloads its output.
    fn generate(
        &self,
        request: &GenerationRequest,
        deadline: std::time::Instant,
    ) -> impl Future<Output = Result<GeneratedImage, GenerationError>> + Send {
        async move {
            let started = self.start(request, deadline).await?;
            let succeeded = self.finish(started, deadline, AtDeadline::Cancel).await?;
            self.download(&succeeded, deadline).await
        }
    }
}

/// Learns the id of a prediction as soon as it is started (so a retry can resume it instead
/// of paying again).
pub trait PredictionLog: Send + Sync {
    /// Records that `prediction_id` was started. Failures are the recorder's to log.
    fn started(&self, prediction_id: &str) -> impl Future<Output = ()> + Send;
    /// Whether a later run can resume the prediction (so it is left running at the deadline).
    fn resumable(&self) -> bool;
}

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

/// The per-actor image counter.
pub trait IndexCounter: Send + Sync {
    /// Takes the next index atomically, or `None` when the counter was never seeded.
    fn take_next(
        &self,
        actor_name: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
    /// Seeds the counter so the next index is `highest + 1`, unless it is seeded already.
    fn seed(
        &self,
        actor_name: &str,
        highest: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Time, for timestamps and pauses.
pub trait Clock: Send + Sync {
    /// Now, as RFC 3339 in UTC.
    fn now_rfc3339(&self) -> String;
    /// Waits for `duration` before a retry (recorded as waiting, not as our own code).
    fn sleep(&self, duration: std::time::Duration) -> impl Future<Output = ()> + Send;
}

/// What an idempotency key's record says when a request tries to begin with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request now owns the key. `resume` names a prediction an earlier, interrupted run
    /// paid for: continue it rather than start another.
    Owned {
        /// The prediction to resume, if any.
        resume: Option<String>,
    },
    /// A run with this key finished: here is its answer.
    Completed {
        /// The stored HTTP status.
        status: u16,
        /// The stored JSON body.
        body: String,
    },
    /// A run with this key is still in progress.
    InProgress,
    /// The key was used with another payload.
    PayloadMismatch,
}

/// Records of idempotency keys (one per key and caller), kept 24 hours.
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for a run whose payload hashes to `payload_hash`, held until
    /// `in_progress_until_ms` (epoch milliseconds), unless a live record says otherwise.
    fn begin(
        &self,
        key: &str,
        payload_hash: &str,
        in_progress_until_ms: u64,
    ) -> impl Future<Output = Result<IdempotencyBegin, StoreError>> + Send;
    /// Notes the prediction the run paid for.
    fn record_prediction(
        &self,
        key: &str,
        prediction_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores the run's answer for repeats.
    fn complete(
        &self,
        key: &str,
        status: u16,
        body: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets the key: the run paid for nothing, so a repeat may start afresh.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ends the run's hold on the key but keeps its prediction (written here too, in case its
    /// first recording failed), so a repeat resumes it.
    fn interrupt(
        &self,
        key: &str,
        prediction_id: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why the spend guard refuses a generation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpendRefusal {
    /// The kill switch is on.
    #[error("image generation is switched off by the operators")]
    Disabled,
    /// A daily cap is used up.
    #[error("the daily cap of {cap} generations {scope} is used up; it resets at 00:00 UTC")]
    Exhausted {
        /// Which cap ("for the service", "for actor X").
        scope: String,
        /// The cap.
        cap: u64,
    },
}

/// A generation the spend guard counted: the UTC day and the actor it was counted for, so
/// that a refund gives the unit back where it was taken, even after midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The day counted, `yyyy-mm-dd` (UTC).
    pub day: String,
    /// The actor's name (the folder the generation writes).
    pub actor_name: String,
    /// Names the one refund this admission may get, however often it is tried.
    pub refund_token: String,
}

/// Admits generations against the kill switch and the daily caps, counting each admitted one.
pub trait SpendGuard: Send + Sync {
    /// Counts one generation for the actor named `actor_name` (the folder it writes), or
    /// says why not.
    fn admit(
        &self,
        actor_name: &str,
    ) -> impl Future<Output = Result<Result<Admission, SpendRefusal>, StoreError>> + Send;
    /// Gives back one admitted generation that paid for nothing, on the day it was counted.
    fn refund(&self, admission: &Admission) -> impl Future<Output = Result<(), StoreError>> + Send;
}
