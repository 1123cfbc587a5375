//! The image model: start a prediction (the call that costs money), wait for it, download its output.

use std::future::Future;

use super::PredictionError;

/// What the image model is asked for: an edit of the input image following the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionRequest {
    /// The full prompt text.
    pub prompt: String,
    /// The input image.
    pub input_image: InputImage,
    /// A seed for a reproducible result, when the caller gave one.
    pub seed: Option<u64>,
    /// Where the model's API posts the finished prediction. A create with a webhook is
    /// answered at once: whoever set one learns of the end from it, not by waiting.
    pub webhook: Option<String>,
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

/// A prediction that was started (and so may be paid for), with what the adapter needs to
/// finish it.
#[derive(Debug, Clone, PartialEq)]
pub struct StartedPrediction<S> {
    /// The prediction's id.
    pub prediction_id: String,
    /// The adapter's own view of the prediction when it was started (Replicate's answer to
    /// the create, so that finishing it needs no read when it is done already).
    pub state: S,
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
    /// What the adapter keeps of a started prediction.
    type State: Send + Sync;

    /// The model predictions are made with, `owner/name` (kept on each prediction's record).
    fn model(&self) -> &str;

    /// Starts a prediction: the call that costs money.
    fn start(
        &self,
        request: &PredictionRequest,
        deadline: std::time::Instant,
    ) -> impl Future<Output = Result<StartedPrediction<Self::State>, PredictionError>> + Send;

    /// Waits for a started prediction until `deadline`; it must succeed with an output from
    /// an allowed place.
    fn finish(
        &self,
        started: StartedPrediction<Self::State>,
        deadline: std::time::Instant,
        at_deadline: AtDeadline,
    ) -> impl Future<Output = Result<SucceededPrediction, PredictionError>> + Send;

    /// Picks up a prediction started earlier (by a run that did not finish), without paying
    /// for another, and waits for it as [`ImageGenerator::finish`] does.
    fn resume(
        &self,
        prediction_id: &str,
        deadline: std::time::Instant,
        at_deadline: AtDeadline,
    ) -> impl Future<Output = Result<SucceededPrediction, PredictionError>> + Send;

    /// Downloads a succeeded prediction's output and checks it, retrying until `finish_by`
    /// at the latest.
    fn download(
        &self,
        succeeded: &SucceededPrediction,
        finish_by: std::time::Instant,
    ) -> impl Future<Output = Result<GeneratedImage, PredictionError>> + Send;
}
