//! Why a prediction did not give an image, as the image model's adapter reports it.

use thiserror::Error;

/// Why a prediction did not produce an image. Variants with a `prediction_id` mean a
/// prediction was created, so it may have been paid for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PredictionError {
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
    /// The deadline came first; a prediction that was started has been canceled, or left
    /// running for a later collector (`running`).
    #[error("the image model did not finish before the deadline{}", describe(.prediction_id))]
    TimedOut {
        /// The prediction, if one was started.
        prediction_id: Option<String>,
        /// Whether it was left running (a retry with the same idempotency key collects it).
        running: bool,
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

impl PredictionError {
    /// Whether the failure certainly paid for nothing: the API refused the create or was
    /// never reached, so no prediction exists. A create whose answer was lost, and anything
    /// after a prediction was made, may have been paid for.
    pub fn paid_nothing(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Rejected { .. } => true,
            Self::Unavailable { prediction_id, .. } | Self::TimedOut { prediction_id, .. } => {
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
                running,
            } => Self::TimedOut {
                prediction_id: Some(prediction_id.to_owned()),
                running,
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
            Self::TimedOut { prediction_id, .. } | Self::Unavailable { prediction_id, .. } => {
                prediction_id.as_deref()
            }
            Self::RateLimited { .. } | Self::Rejected { .. } | Self::Uncertain { .. } => None,
        }
    }
}
