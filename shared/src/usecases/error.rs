//! The use cases' one error: why a generation did not end with a stored image, and what that
//! means for its money and its idempotency record. Entry maps it to a status (HTTP) or an
//! error type (direct invocations); the decisions about budget and records are made here.

use thiserror::Error;

use crate::domain::curation::CurationError;
use crate::domain::export::ExportError;
use crate::domain::request::RequestError;
use crate::domain::training::TrainingError;
use crate::ports::{PredictionError, SpendRefusal, StoreError};

/// Why a generation did not produce a stored image.
#[derive(Debug, Error)]
pub enum UseCaseError {
    /// The request was refused before anything was read for it or paid.
    #[error(transparent)]
    Refused(#[from] RequestError),
    /// A store failed before anything was paid for. The message says no more (the fault's
    /// detail is for logs, never for callers).
    #[error("a backing store is unavailable; try again shortly")]
    Store(#[from] StoreError),
    /// The image model did not produce an image.
    #[error(transparent)]
    Prediction(#[from] PredictionError),
    /// The image was paid for but could not be stored (the fault's detail is for logs).
    #[error("prediction {prediction_id} succeeded but its image could not be stored")]
    NotStored {
        /// The paid prediction.
        prediction_id: String,
        /// What failed.
        source: StoreError,
    },
    /// The run's time was up before the paid prediction's image was stored: a retry with the
    /// same idempotency key, or else the reconciler, stores it.
    #[error(
        "prediction {prediction_id} is paid for but its image was not stored in time; it will be stored shortly"
    )]
    OutOfTime {
        /// The paid prediction.
        prediction_id: String,
    },
    /// The spend guard refused the generation (kill switch, daily cap).
    #[error(transparent)]
    Spend(SpendRefusal),
    /// A run with this idempotency key is still in progress.
    #[error("a request with this idempotency key is still running; try again shortly")]
    KeyInProgress,
    /// The idempotency key was used with another request.
    #[error("this idempotency key was used with another request body")]
    KeyReused,
    /// No training set of this actor has this id (another actor's is not told apart).
    #[error("training set {0} not found")]
    SetNotFound(String),
    /// The training set was canceled: its items are not queued again.
    #[error("training set {0} was canceled")]
    SetCanceled(String),
    /// A curation decision was refused, or names no listed image, or the manifest cannot
    /// take it.
    #[error(transparent)]
    Curation(#[from] CurationError),
    /// An export was refused (malformed, too few images) or is not this actor's.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A training was refused (malformed, one running, its export failed, Replicate
    /// refused it) or is not this actor's.
    #[error(transparent)]
    Training(#[from] TrainingError),
}

impl UseCaseError {
    /// Whether the generation certainly paid for nothing, so its budget unit goes back.
    pub fn paid_nothing(&self) -> bool {
        match self {
            Self::Refused(_)
            | Self::Store(_)
            | Self::Spend(_)
            | Self::KeyInProgress
            | Self::KeyReused
            | Self::SetNotFound(_)
            | Self::SetCanceled(_)
            | Self::Curation(_)
            | Self::Export(_)
            | Self::Training(_) => true,
            Self::Prediction(error) => error.paid_nothing(),
            Self::NotStored { .. } | Self::OutOfTime { .. } => false,
        }
    }

    /// Whether this outcome is final: a repeat with the same idempotency key must get this
    /// same answer rather than run again. A refusal of the request or by the model stays
    /// refused; a create whose answer was lost, or an output refused for good, must not be
    /// paid again. Faults, spend refusals (a cap resets, a switch is turned off) and paid
    /// predictions a repeat can still collect are not final.
    pub fn is_final(&self) -> bool {
        match self {
            Self::Refused(_)
            | Self::SetNotFound(_)
            | Self::SetCanceled(_)
            | Self::Curation(_)
            | Self::Export(_)
            | Self::Training(_) => true,
            Self::Prediction(error) => matches!(
                error,
                PredictionError::Rejected { status: 422, .. }
                    | PredictionError::Failed { .. }
                    | PredictionError::Canceled { .. }
                    | PredictionError::Uncertain { .. }
                    | PredictionError::BadOutput { .. }
            ),
            Self::Store(_)
            | Self::NotStored { .. }
            | Self::OutOfTime { .. }
            | Self::Spend(_)
            | Self::KeyInProgress
            | Self::KeyReused => false,
        }
    }

    /// Whether the request was refused before anything ran.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused(_)
                | Self::SetNotFound(_)
                | Self::SetCanceled(_)
                | Self::Curation(_)
                | Self::Export(_)
                | Self::Training(_)
        )
    }

    /// Whether a prediction was made (and may be billed) but no image was stored: the store
    /// failed, the output was refused, or it could not be read or fetched.
    pub fn paid_not_stored(&self) -> bool {
        matches!(
            self,
            Self::NotStored { .. }
                | Self::OutOfTime { .. }
                | Self::Prediction(
                    PredictionError::BadOutput { .. }
                        | PredictionError::Unavailable {
                            prediction_id: Some(_),
                            ..
                        }
                )
        )
    }

    /// Whether a create reached the API and its answer was lost: a prediction may exist.
    pub fn outcome_uncertain(&self) -> bool {
        matches!(self, Self::Prediction(PredictionError::Uncertain { .. }))
    }

    /// The paid prediction this error is about, if any.
    pub fn prediction_id(&self) -> Option<&str> {
        match self {
            Self::Prediction(error) => error.prediction_id(),
            Self::NotStored { prediction_id, .. } | Self::OutOfTime { prediction_id } => {
                Some(prediction_id)
            }
            _ => None,
        }
    }

    /// Why the paid prediction ended for good without an image (it failed, was canceled,
    /// or its output was refused), so its record is closed; `None` while a later collector
    /// may still store it (still running, a fault, out of time).
    pub fn ended_without_image(&self) -> Option<String> {
        match self {
            Self::Prediction(
                error @ (PredictionError::Failed { .. }
                | PredictionError::Canceled { .. }
                | PredictionError::BadOutput { .. }),
            ) => Some(error.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(error: PredictionError) -> UseCaseError {
        UseCaseError::Prediction(error)
    }

    #[test]
    fn a_lost_create_and_a_refused_output_are_final_a_fault_is_not() {
        let uncertain = prediction(PredictionError::Uncertain {
            message: "lost".to_owned(),
        });
        assert!(uncertain.is_final() && !uncertain.paid_nothing());
        let refused_output = prediction(PredictionError::BadOutput {
            prediction_id: "p1".to_owned(),
            reason: "not a JPEG".to_owned(),
        });
        assert!(refused_output.is_final() && refused_output.paid_not_stored());
        let fault = UseCaseError::Store(StoreError {
            operation: "S3 GetObject",
            detail: "503".to_owned(),
        });
        assert!(!fault.is_final() && fault.paid_nothing());
        assert!(!fault.to_string().contains("503"), "internals in {fault}");
        let not_stored = UseCaseError::NotStored {
            prediction_id: "p2".to_owned(),
            source: StoreError {
                operation: "S3 PutObject",
                detail: "503".to_owned(),
            },
        };
        assert!(!not_stored.is_final() && !not_stored.paid_nothing());
        assert_eq!(not_stored.prediction_id(), Some("p2"));
        assert!(
            !not_stored.to_string().contains("PutObject"),
            "{not_stored}"
        );
    }

    #[test]
    fn a_spend_refusal_is_not_final_so_a_repeat_may_run_once_the_cap_resets() {
        let capped = UseCaseError::Spend(SpendRefusal::Exhausted {
            scope: "generations for the service".to_owned(),
            cap: 1,
        });
        assert!(!capped.is_final() && capped.paid_nothing());
        let unauthorized = prediction(PredictionError::Rejected {
            status: 401,
            message: "token".to_owned(),
        });
        assert!(!unauthorized.is_final(), "a rotated token may work later");
        let invalid = prediction(PredictionError::Rejected {
            status: 422,
            message: "input".to_owned(),
        });
        assert!(invalid.is_final());
    }
}
