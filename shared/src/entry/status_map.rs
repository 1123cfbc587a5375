//! The one map from a use case's error to an HTTP status and an error code (the API's, and
//! the direct invocations' error types): every route and every stored answer reads it here.

use lambda_http::http::StatusCode;

use crate::domain::curation::CurationError;
use crate::domain::export::ExportError;
use crate::domain::request::RequestError;
use crate::domain::training::TrainingError;
use crate::ports::{PredictionError, SpendRefusal};
use crate::usecases::UseCaseError;

/// The HTTP status of a use case's error.
pub fn status_of(error: &UseCaseError) -> StatusCode {
    match error {
        UseCaseError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        // Paid for (or maybe started): a blind retry could pay again, so no 503.
        UseCaseError::NotStored { .. } => StatusCode::BAD_GATEWAY,
        UseCaseError::OutOfTime { .. } => StatusCode::GATEWAY_TIMEOUT,
        UseCaseError::KeyInProgress => StatusCode::CONFLICT,
        UseCaseError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        UseCaseError::SetNotFound(_) => StatusCode::NOT_FOUND,
        UseCaseError::SetCanceled(_) => StatusCode::CONFLICT,
        UseCaseError::Curation(error) => match error {
            CurationError::Invalid(_) => StatusCode::BAD_REQUEST,
            CurationError::UnknownImage(_) => StatusCode::NOT_FOUND,
            // The manifest is not one the service may rewrite: an operator must look.
            CurationError::Manifest(_) => StatusCode::CONFLICT,
        },
        UseCaseError::Export(error) => match error {
            ExportError::Invalid(_) => StatusCode::BAD_REQUEST,
            ExportError::TooFewImages { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ExportError::NotFound(_) => StatusCode::NOT_FOUND,
        },
        UseCaseError::Training(error) => match error {
            TrainingError::Invalid(_) => StatusCode::BAD_REQUEST,
            TrainingError::NotFound(_) => StatusCode::NOT_FOUND,
            TrainingError::AlreadyRunning { .. }
            | TrainingError::ExportFailed(_)
            | TrainingError::BeingCreated(_)
            | TrainingError::Ended { .. } => StatusCode::CONFLICT,
            TrainingError::TrainerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        },
        UseCaseError::Spend(SpendRefusal::Disabled) => StatusCode::SERVICE_UNAVAILABLE,
        UseCaseError::Spend(SpendRefusal::Exhausted { .. }) => StatusCode::TOO_MANY_REQUESTS,
        UseCaseError::Refused(error) => match error {
            RequestError::Malformed(_)
            | RequestError::Identifier(_)
            | RequestError::UnknownPromptId(_)
            | RequestError::BadBaseImagePath { .. } => StatusCode::BAD_REQUEST,
            RequestError::UnknownActor(_) | RequestError::BaseImageNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            RequestError::ActorNameMismatch { .. }
            | RequestError::BaseImageNotAllowed { .. }
            | RequestError::BaseImageNotAnImage(_)
            | RequestError::BaseImageTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        },
        UseCaseError::Prediction(error) => match error {
            PredictionError::RateLimited { .. }
            | PredictionError::Unavailable {
                prediction_id: None,
                ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            PredictionError::Unavailable { .. } | PredictionError::Uncertain { .. } => {
                StatusCode::BAD_GATEWAY
            }
            PredictionError::Rejected { status: 422, .. }
            | PredictionError::Failed { .. }
            | PredictionError::Canceled { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PredictionError::Rejected { .. } | PredictionError::BadOutput { .. } => {
                StatusCode::BAD_GATEWAY
            }
            PredictionError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
        },
    }
}

/// The code of a use case's error.
pub fn code_of(error: &UseCaseError) -> &'static str {
    match error {
        UseCaseError::Store(_) => "store_unavailable",
        UseCaseError::NotStored { .. } => "image_not_stored",
        UseCaseError::OutOfTime { .. } => "image_pending",
        UseCaseError::KeyInProgress => "idempotency_in_progress",
        UseCaseError::KeyReused => "idempotency_key_reused",
        UseCaseError::SetNotFound(_) => "training_set_not_found",
        UseCaseError::SetCanceled(_) => "training_set_canceled",
        UseCaseError::Curation(error) => match error {
            CurationError::Invalid(_) => "invalid_request",
            CurationError::UnknownImage(_) => "image_not_found",
            CurationError::Manifest(_) => "manifest_unreadable",
        },
        UseCaseError::Export(error) => match error {
            ExportError::Invalid(_) => "invalid_request",
            ExportError::TooFewImages { .. } => "too_few_images",
            ExportError::NotFound(_) => "export_not_found",
        },
        UseCaseError::Training(error) => match error {
            TrainingError::Invalid(_) => "invalid_request",
            TrainingError::NotFound(_) => "training_not_found",
            TrainingError::AlreadyRunning { .. } => "training_running",
            TrainingError::ExportFailed(_) => "export_failed",
            TrainingError::BeingCreated(_) => "training_being_created",
            TrainingError::Ended { .. } => "training_ended",
            TrainingError::TrainerUnavailable => "trainer_unavailable",
        },
        UseCaseError::Spend(SpendRefusal::Disabled) => "generation_disabled",
        UseCaseError::Spend(SpendRefusal::Exhausted { .. }) => "budget_exhausted",
        UseCaseError::Refused(error) => match error {
            RequestError::Malformed(_) | RequestError::Identifier(_) => "invalid_request",
            RequestError::UnknownPromptId(_) => "unknown_prompt_id",
            RequestError::BadBaseImagePath { .. } => "invalid_base_image_path",
            RequestError::ActorNameMismatch { .. } => "actor_name_mismatch",
            RequestError::BaseImageNotAllowed { .. } => "base_image_not_allowed",
            RequestError::UnknownActor(_) => "actor_not_found",
            RequestError::BaseImageNotFound(_) => "base_image_not_found",
            RequestError::BaseImageNotAnImage(_) => "base_image_not_an_image",
            RequestError::BaseImageTooLarge { .. } => "base_image_too_large",
        },
        UseCaseError::Prediction(error) => match error {
            PredictionError::RateLimited { .. } => "rate_limited",
            PredictionError::Rejected { .. } => "model_rejected_request",
            PredictionError::Failed { .. } => "prediction_failed",
            PredictionError::Canceled { .. } => "prediction_canceled",
            PredictionError::TimedOut { .. } => "generation_timeout",
            PredictionError::Unavailable { .. } => "model_unavailable",
            PredictionError::BadOutput { .. } => "output_refused",
            PredictionError::Uncertain { .. } => "prediction_uncertain",
        },
    }
}
