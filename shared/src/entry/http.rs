//! HTTP glue shared by the API functions: routes, JSON responses, and the API error (its
//! status and code from the one map in `status_map.rs`).

use lambda_http::http::header::{ALLOW, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::adapters::replicate::webhook_signature::SignatureError;
use crate::domain::actor::{ActorId, ValidationError};
use crate::domain::request::RequestError;
use crate::ports::{PredictionError, SpendRefusal, StoreError, StoredAnswer};
use crate::usecases::UseCaseError;

pub use super::status_map::{code_of, status_of};

/// Everything an API request can fail with. [`ApiError::status`] and [`ApiError::code`] are
/// the only mapping from errors to HTTP (and to direct invocations' error types).
#[derive(Debug, Error)]
pub enum ApiError {
    /// The caller sent an identifier the domain refuses.
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
    /// The request body is larger than the cap.
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The `Idempotency-Key` (or `idempotency_key`) is not 1 to 255 printable ASCII characters.
    #[error("the idempotency key must be 1 to 255 printable ASCII characters")]
    InvalidIdempotencyKey,
    /// A webhook delivery that is not Replicate's: unsigned, forged, tampered or stale.
    #[error("not a delivery from Replicate: {0}")]
    Unsigned(#[from] SignatureError),
    /// The use case did not end with a stored image.
    #[error(transparent)]
    UseCase(#[from] UseCaseError),
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        Self::UseCase(error.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::UseCase(error.into())
    }
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsigned(_) => StatusCode::UNAUTHORIZED,
            Self::UseCase(error) => status_of(error),
        }
    }

    /// The stable, machine-readable code in the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::RouteNotFound(_) => "route_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::Unsigned(_) => "invalid_signature",
            Self::UseCase(error) => code_of(error),
        }
    }

    /// Whether the request was refused before anything ran (validation, routing, size).
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::UseCase(error) => error.is_refusal(),
            _ => true,
        }
    }

    /// The use case's error, when the request got that far.
    pub fn use_case(&self) -> Option<&UseCaseError> {
        match self {
            Self::UseCase(error) => Some(error),
            _ => None,
        }
    }

    /// The paid prediction this error is about, if any.
    pub fn prediction_id(&self) -> Option<&str> {
        self.use_case().and_then(UseCaseError::prediction_id)
    }

    /// The JSON body: `{"success": false, "error": {"code", "message"[, "prediction_id"]}}`;
    /// for a paid prediction a later request with the same key collects (still running, or
    /// its image not stored in time), also `prediction_id`, `status` and
    /// `retry_after_seconds` at the top.
    pub fn body(&self) -> serde_json::Value {
        let mut body = error_body(self.code(), self, self.prediction_id());
        if let Some((status, seconds)) = self.pending() {
            body["prediction_id"] = json!(self.prediction_id());
            body["status"] = json!(status);
            body["retry_after_seconds"] = json!(seconds);
        }
        body
    }

    /// A paid prediction still on its way: its status and when to ask again.
    fn pending(&self) -> Option<(&'static str, u64)> {
        match self.use_case()? {
            UseCaseError::Prediction(PredictionError::TimedOut {
                prediction_id: Some(_),
                running: true,
            }) => Some(("running", RETRY_RUNNING_SECONDS)),
            UseCaseError::OutOfTime { .. } => Some(("storing", RETRY_STORING_SECONDS)),
            _ => None,
        }
    }

    /// The JSON error response: `{"success": false, "error": {"code", "message"}}`. Faults are
    /// logged here with their detail; the caller gets only the message.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        match &self {
            Self::UseCase(
                UseCaseError::Store(fault) | UseCaseError::NotStored { source: fault, .. },
            ) => {
                tracing::error!(operation = fault.operation, detail = %fault.detail, prediction_id = self.prediction_id(), "store fault");
            }
            _ if status.is_server_error() => {
                tracing::error!(status = status.as_u16(), error = %self, "request failed");
            }
            _ => tracing::info!(status = status.as_u16(), error = %self, "request refused"),
        }
        let mut response = json_response(status, &self.body());
        let pending = self.pending();
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed { allowed, .. } => {
                headers.insert(ALLOW, HeaderValue::from_static(allowed));
            }
            Self::UseCase(
                UseCaseError::Store(_)
                | UseCaseError::Prediction(PredictionError::Unavailable {
                    prediction_id: None,
                    ..
                }),
            ) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::UseCase(UseCaseError::KeyInProgress) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
            }
            _ if pending.is_some() => {
                let seconds = pending.map_or(RETRY_RUNNING_SECONDS, |(_, seconds)| seconds);
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            Self::UseCase(UseCaseError::Spend(SpendRefusal::Exhausted { .. })) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds_to_utc_midnight()));
            }
            Self::UseCase(UseCaseError::Prediction(PredictionError::RateLimited {
                retry_after,
                ..
            })) => {
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

/// When to ask again for a prediction left running at the deadline (the model takes 5 to
/// 30 s).
const RETRY_RUNNING_SECONDS: u64 = 10;
/// When to ask again for an image that was not stored in time.
const RETRY_STORING_SECONDS: u64 = 5;

/// Seconds from now to the next 00:00 UTC, when the daily caps reset.
fn seconds_to_utc_midnight() -> u64 {
    let now = crate::timing::epoch_ms() / 1000;
    86_400 - now % 86_400
}

/// An error's JSON body: `{"success": false, "error": {"code", "message"[, "prediction_id"]}}`.
pub fn error_body(
    code: &str,
    message: &impl std::fmt::Display,
    prediction_id: Option<&str>,
) -> serde_json::Value {
    let mut error = json!({ "code": code, "message": message.to_string() });
    if let Some(prediction_id) = prediction_id {
        error["prediction_id"] = json!(prediction_id);
    }
    json!({ "success": false, "error": error })
}

/// An HTTP body read as JSON, within `limit` bytes: too large is a 413, empty or not JSON a
/// 400 that says so.
pub fn json_body(body: &Body, limit: usize) -> Result<serde_json::Value, ApiError> {
    let bytes: &[u8] = match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(ApiError::BodyTooLarge { limit });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(
            RequestError::Malformed("the body is empty; send a JSON object".to_owned()).into(),
        );
    }
    Ok(serde_json::from_slice(bytes)
        .map_err(|error| RequestError::Malformed(format!("the body is not JSON: {error}")))?)
}

/// The answer of a route function's `answer`, every error a JSON response, logged with its
/// status and where its time went (`function` names it in the line).
pub async fn answered(
    function: &'static str,
    request: &Request,
    answer: impl Future<Output = Result<Response<Body>, ApiError>>,
) -> Response<Body> {
    let (answer, timings) = crate::timing::timed(answer).await;
    let response = answer.unwrap_or_else(ApiError::into_response);
    tracing::info!(
        status = response.status().as_u16(),
        method = %request.method(),
        total_us = timings.total_us,
        remote_us = timings.remote_us,
        "{function} answered"
    );
    response
}

/// The bytes of a request's body (none for an empty one).
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// What a POST that starts work answers: its fresh body, or a repeat's first answer.
#[derive(Debug)]
pub enum StartAnswer {
    /// A fresh start: 202 and this body.
    Fresh(Value),
    /// A repeat with the same idempotency key: the first answer again.
    Replayed(StoredAnswer),
}

/// The response of a POST that started work: 202 and its body, or, for a repeat, the first
/// answer with `idempotency-replayed: true`; with a `Location` of the body's `status_url`.
pub fn started_response(answer: StartAnswer) -> Response<Body> {
    let (status, body, replayed) = match answer {
        StartAnswer::Fresh(body) => (StatusCode::ACCEPTED, body, false),
        StartAnswer::Replayed(answer) => (
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::ACCEPTED),
            serde_json::from_str(&answer.body).unwrap_or(Value::Null),
            true,
        ),
    };
    let mut response = json_response(status, &body);
    if replayed {
        response
            .headers_mut()
            .insert("idempotency-replayed", HeaderValue::from_static("true"));
    }
    if let Some(location) = body["status_url"]
        .as_str()
        .and_then(|url| HeaderValue::from_str(url).ok())
    {
        response.headers_mut().insert(LOCATION, location);
    }
    response
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
