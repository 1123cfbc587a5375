//! The training-prompts function: `GET /api/actors/{actorId}/training-prompts`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use super::http::{ActorRoute, ApiError, json_response};
use crate::ports::ActorProfiles;
use crate::timing::timed;
use crate::usecases::training_prompts::training_prompts;

/// The route this function serves.
pub const ROUTE: ActorRoute = ActorRoute {
    action: &["training-prompts"],
    method: Method::GET,
    allow: "GET",
};

/// Answers one API Gateway request (HTTP API v2 or REST v1). Never fails: every error is a
/// JSON response.
pub async fn handle(
    profiles: &impl ActorProfiles,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let (answer, timings) = timed(answer(profiles, &request)).await;
    let response = answer.unwrap_or_else(ApiError::into_response);
    tracing::info!(
        status = response.status().as_u16(),
        total_us = timings.total_us,
        remote_us = timings.remote_us,
        own_us = timings.own_us,
        "training-prompts answered"
    );
    Ok(response)
}

async fn answer(
    profiles: &impl ActorProfiles,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let actor_id = ROUTE.actor_id(request)?;
    let prompts = training_prompts(profiles, &actor_id).await?;
    tracing::info!(
        actor = %actor_id,
        descriptor = prompts.descriptor.as_str(),
        source = ?prompts.descriptor_source,
        "prompts rendered"
    );
    Ok(json_response(StatusCode::OK, &prompts))
}
