//! HTTP glue shared by the API functions: routes, JSON responses, and the one place where an
//! error becomes a status code.

use lambda_http::http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::domain::actor::{ActorId, ValidationError};
use crate::domain::generate_single::GenerateError;
use crate::domain::generation::RequestError;
use crate::ports::{GenerationError, SpendRefusal, StoreError};

/// Everything an API request can fail with. [`ApiError::status`] and [`ApiError::code`] are
/// the only mapping from errors to HTTP.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The caller sent something the domain refuses.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No route of this function matches the path.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not for this method.
    #[error("method {method} is not allowed here; use {allowed}")]
    MethodNotAllowed {
        /// The method the caller used.
        method: String,
        /// The methods the route serves, as the `Allow` header says them.
        allowed: &'static str,
    },
    /// A store the request needs did not answer.
    #[error("a backing store is unavailable; try again shortly")]
    StoreUnavailable(#[from] StoreError),
    /// The request body is larger than the cap.
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The generation request was refused before anything happened.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The image model did not produce an image.
    #[error(transparent)]
    Generation(#[from] GenerationError),
    /// The `Idempotency-Key` (or `idempotency_key`) is not 1 to 255 printable ASCII characters.
    #[error("the idempotency key must be 1 to 255 printable ASCII characters")]
    InvalidIdempotencyKey,
    /// A run with this idempotency key is still in progress.
    #[error("a request with this idempotency key is still running; try again shortly")]
    IdempotencyInProgress,
    /// The idempotency key was used with another payload.
    #[error("this idempotency key was used with another request body")]
    IdempotencyKeyReused,
    /// The spend guard refused the generation.
    #[error(transparent)]
    Spend(SpendRefusal),
    /// The image was paid for but could not be stored.
    #[error("prediction {prediction_id} succeeded but its image could not be stored")]
    NotStored {
        /// The paid prediction.
        prediction_id: String,
        /// What failed.
        source: StoreError,
    },
}

impl From<GenerateError> for ApiError {
    fn from(error: GenerateError) -> Self {
        match error {
            GenerateError::Request(error) => Self::Request(error),
            GenerateError::Store(error) => Self::StoreUnavailable(error),
            GenerateError::Generation(error) => Self::Generation(error),
            GenerateError::NotStored {
                prediction_id,
                source,
            } => Self::NotStored {
                prediction_id,
                source,
            },
        }
    }
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // Paid for (or maybe started): a blind retry could pay again, so no 503.
            Self::NotStored { .. } => StatusCode::BAD_GATEWAY,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            Self::IdempotencyInProgress => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Spend(SpendRefusal::Disabled) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Spend(SpendRefusal::Exhausted { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Self::Request(error) => match error {
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
            Self::Generation(error) => match error {
                GenerationError::RateLimited { .. }
                | GenerationError::Unavailable {
                    prediction_id: None,
                    ..
                } => StatusCode::SERVICE_UNAVAILABLE,
                GenerationError::Unavailable { .. } | GenerationError::Uncertain { .. } => {
                    StatusCode::BAD_GATEWAY
                }
                GenerationError::Rejected { status: 422, .. }
                | GenerationError::Failed { .. }
                | GenerationError::Canceled { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                GenerationError::Rejected { .. } | GenerationError::BadOutput { .. } => {
                    StatusCode::BAD_GATEWAY
                }
                GenerationError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            },
        }
    }

    /// The stable, machine-readable code in the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::RouteNotFound(_) => "route_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::IdempotencyInProgress => "idempotency_in_progress",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Spend(SpendRefusal::Disabled) => "generation_disabled",
            Self::Spend(SpendRefusal::Exhausted { .. }) => "budget_exhausted",
            Self::NotStored { .. } => "image_not_stored",
            Self::Request(error) => match error {
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
            Self::Generation(error) => match error {
                GenerationError::RateLimited { .. } => "rate_limited",
                GenerationError::Rejected { .. } => "model_rejected_request",
                GenerationError::Failed { .. } => "prediction_failed",
                GenerationError::Canceled { .. } => "prediction_canceled",
                GenerationError::TimedOut { .. } => "generation_timeout",
                GenerationError::Unavailable { .. } => "model_unavailable",
                GenerationError::BadOutput { .. } => "output_refused",
                GenerationError::Uncertain { .. } => "prediction_uncertain",
            },
        }
    }

    /// Whether the request was refused before anything ran (validation, routing, size).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_)
                | Self::RouteNotFound(_)
                | Self::MethodNotAllowed { .. }
                | Self::BodyTooLarge { .. }
                | Self::InvalidIdempotencyKey
                | Self::Request(_)
        )
    }

    /// Whether a prediction was made (and may be billed) but no image was stored: the store
    /// failed, the output was refused, or it could not be read or fetched.
    pub fn paid_not_stored(&self) -> bool {
        matches!(
            self,
            Self::NotStored { .. }
                | Self::Generation(
                    GenerationError::BadOutput { .. }
                        | GenerationError::Unavailable {
                            prediction_id: Some(_),
                            ..
                        }
                )
        )
    }

    /// Whether a create reached the API and its answer was lost: a prediction may exist.
    pub fn outcome_uncertain(&self) -> bool {
        matches!(self, Self::Generation(GenerationError::Uncertain { .. }))
    }

    /// The paid prediction this error is about, if any.
    pub fn prediction_id(&self) -> Option<&str> {
        match self {
            Self::Generation(error) => error.prediction_id(),
            Self::NotStored { prediction_id, .. } => Some(prediction_id),
            _ => None,
        }
    }

    /// The JSON body: `{"success": false, "error": {"code", "message"[, "prediction_id"]}}`.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let Some(prediction_id) = self.prediction_id() {
            error["prediction_id"] = json!(prediction_id);
        }
        json!({ "success": false, "error": error })
    }

    /// The JSON error response: `{"success": false, "error": {"code", "message"}}`. Faults are
    /// logged here with their detail; the caller gets only the message.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        match &self {
            Self::StoreUnavailable(fault) | Self::NotStored { source: fault, .. } => {
                tracing::error!(operation = fault.operation, detail = %fault.detail, prediction_id = self.prediction_id(), "store fault");
            }
            _ if status.is_server_error() => {
                tracing::error!(status = status.as_u16(), error = %self, "request failed");
            }
            _ => tracing::info!(status = status.as_u16(), error = %self, "request refused"),
        }
        let mut response = json_response(status, &self.body());
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed { allowed, .. } => {
                headers.insert(ALLOW, HeaderValue::from_static(allowed));
            }
            Self::StoreUnavailable(_)
            | Self::Generation(GenerationError::Unavailable {
                prediction_id: None,
                ..
            }) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::IdempotencyInProgress => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
            }
            Self::Spend(SpendRefusal::Exhausted { .. }) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds_to_utc_midnight()));
            }
            Self::Generation(GenerationError::RateLimited { retry_after, .. }) => {
                let seconds = retry_after
                    .map_or(5, |d| d.as_secs_f64().ceil() as u64)
                    .max(1);
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}

/// Seconds from now to the next 00:00 UTC, when the daily caps reset.
fn seconds_to_utc_midnight() -> u64 {
    let now = crate::timing::epoch_ms() / 1000;
    86_400 - now % 86_400
}

/// A JSON response with this status and body.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|error| {
        tracing::error!(%error, "response body could not be serialized");
        r#"{"success":false,"error":{"code":"internal","message":"response could not be encoded"}}"#
            .to_owned()
    });
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A route of the form `/api/actors/{actorId}/{action}` served for one method.
#[derive(Debug, Clone)]
pub struct ActorRoute {
    /// The path segments after the actor id (`["training-prompts"]`,
    /// `["training-data", "generate-single"]`).
    pub action: &'static [&'static str],
    /// The one method the route serves.
    pub method: Method,
    /// That method as the `Allow` header says it.
    pub allow: &'static str,
}

impl ActorRoute {
    /// Matches the request against the route and returns the validated actor id.
    ///
    /// The path must end with `/api/actors/{actorId}/{action...}`; anything may come before it,
    /// such as a REST API's stage. The id is taken from the `actorId` path parameter that API
    /// Gateway sets, and from the path where there is none (as under `cargo lambda watch`).
    pub fn actor_id(&self, request: &Request) -> Result<ActorId, ApiError> {
        let path = request.uri().path();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route_len = 3 + self.action.len();
        let id_in_path = segments
            .len()
            .checked_sub(route_len)
            .map(|start| &segments[start..])
            .filter(|tail| tail[0] == "api" && tail[1] == "actors" && tail[3..] == *self.action)
            .map(|tail| tail[2])
            .ok_or_else(|| ApiError::RouteNotFound(path.to_owned()))?;
        if request.method() != self.method {
            return Err(ApiError::MethodNotAllowed {
                method: request.method().to_string(),
                allowed: self.allow,
            });
        }
        let parameters = request.path_parameters();
        let id = parameters.first("actorId").unwrap_or(id_in_path);
        Ok(ActorId::parse(id)?)
    }
}
