//! HTTP glue shared by the API functions: routes, JSON responses, and the one place where an
//! error becomes a status code.

use lambda_http::http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use crate::domain::actor::{ActorId, ValidationError};
use crate::ports::StoreError;

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
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable, machine-readable code in the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::RouteNotFound(_) => "route_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::StoreUnavailable(_) => "store_unavailable",
        }
    }

    /// The JSON error response: `{"success": false, "error": {"code", "message"}}`. Faults are
    /// logged here with their detail; the caller gets only the message.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        if let Self::StoreUnavailable(fault) = &self {
            tracing::error!(operation = fault.operation, detail = %fault.detail, "store fault");
        } else {
            tracing::info!(status = status.as_u16(), error = %self, "request refused");
        }
        let body = json!({
            "success": false,
            "error": { "code": self.code(), "message": self.to_string() },
        });
        let mut response = json_response(status, &body);
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed { allowed, .. } => {
                headers.insert(ALLOW, HeaderValue::from_static(allowed));
            }
            Self::StoreUnavailable(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Invalid(_) | Self::RouteNotFound(_) => {}
        }
        response
    }
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
    /// The last path segment (`training-prompts`, `generate-single`).
    pub action: &'static str,
    /// The one method the route serves.
    pub method: Method,
    /// That method as the `Allow` header says it.
    pub allow: &'static str,
}

impl ActorRoute {
    /// Matches the request against the route and returns the validated actor id.
    ///
    /// The path must end with `/api/actors/{actorId}/{action}`; anything may come before it,
    /// such as a REST API's stage. The id is taken from the `actorId` path parameter that API
    /// Gateway sets, and from the path where there is none (as under `cargo lambda watch`).
    pub fn actor_id(&self, request: &Request) -> Result<ActorId, ApiError> {
        let path = request.uri().path();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let id_in_path = match segments.as_slice() {
            [.., "api", "actors", id, action] if *action == self.action => *id,
            _ => return Err(ApiError::RouteNotFound(path.to_owned())),
        };
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
