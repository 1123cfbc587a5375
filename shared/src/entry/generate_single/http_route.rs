//! The HTTP route of generate-single: the request read (route, key, body), the job run, the
//! outcome answered with the one status map.

use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use super::wire::{GenerateSingleBody, WireAnswers, answer_json};
use super::{
    Deadline, GenerateSingleFunction, HTTP_ANSWER_BUDGET, HTTP_STORE_RESERVE, MAX_BODY_BYTES,
    before,
};
use crate::domain::request::ImageRequest;
use crate::entry::caller::{caller, idempotency_key};
use crate::entry::http::{ActorRoute, ApiError, json_body, json_response};
use crate::entry::metrics::InvocationMetrics;
use crate::timing::epoch_ms;
use crate::usecases::{
    GuardedJob, GuardedJobs, GuardedOutcome, GuardedRun, RunLimits, StoredImage,
};

/// The route this function serves.
pub const ROUTE: ActorRoute = ActorRoute {
    action: &["training-data", "generate-single"],
    method: Method::POST,
    allow: "POST",
};

impl<J: GuardedJobs> GenerateSingleFunction<J> {
    /// Answers an API Gateway request; every error is a JSON response.
    pub(super) async fn http(
        &self,
        request: &Request,
        deadline: Deadline,
        metrics: &mut InvocationMetrics,
    ) -> Response<Body> {
        let answer_by = answer_deadline(request, deadline);
        let limits = RunLimits {
            model: before(answer_by, HTTP_STORE_RESERVE),
            finish: answer_by,
            hold_until_ms: deadline.epoch_ms,
        };
        let answer = match read_job(request, limits) {
            Ok(job) => {
                let run = self.jobs.run(&job, &WireAnswers).await;
                http_answer(run, metrics)
            }
            Err(error) => Err(error),
        };
        answer.unwrap_or_else(|error| {
            metrics.failed(&error);
            error.into_response()
        })
    }
}

/// When the answer must be ready: [`HTTP_ANSWER_BUDGET`] after API Gateway received the
/// request (`requestContext.timeEpoch`, `requestTimeEpoch` for REST), and never past the
/// function's own deadline. A request time in the future or older than the budget (a clock
/// skew, a replayed test event) is not believed: the budget then counts from now.
fn answer_deadline(request: &Request, deadline: Deadline) -> std::time::Instant {
    let received_ms = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.time_epoch,
        Some(RequestContext::ApiGatewayV1(context)) => context.request_time_epoch,
        _ => 0,
    };
    let now = std::time::Instant::now();
    let budget_ms = HTTP_ANSWER_BUDGET.as_millis() as u64;
    let elapsed_ms = u64::try_from(received_ms)
        .ok()
        .and_then(|received| epoch_ms().checked_sub(received))
        .filter(|elapsed| *elapsed < budget_ms)
        .unwrap_or(0);
    let answer_by = now + std::time::Duration::from_millis(budget_ms - elapsed_ms);
    answer_by.min(before(
        deadline.function,
        std::time::Duration::from_millis(500),
    ))
}

/// The job an HTTP request asks for.
fn read_job(request: &Request, limits: RunLimits) -> Result<GuardedJob, ApiError> {
    let actor_id = ROUTE.actor_id(request)?;
    let key = idempotency_key(request)?;
    Ok(GuardedJob {
        actor_id,
        request: ImageRequest {
            requested_by: Some(caller(request)),
            ..parse_body(request.body())?
        },
        key,
        limits,
    })
}

/// The response to a run: the image, the error, or the answer replayed from its record.
fn http_answer(
    run: GuardedRun,
    metrics: &mut InvocationMetrics,
) -> Result<Response<Body>, ApiError> {
    if run.report.budget_counted {
        metrics.budget_counted();
    }
    match run.outcome {
        GuardedOutcome::Fresh(result) => {
            let image = result?;
            Ok(json_response(
                StatusCode::OK,
                &generated(&image, run.report.prepare_ms, metrics),
            ))
        }
        GuardedOutcome::Replayed(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            let mut response = json_response(
                status,
                &serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null),
            );
            response
                .headers_mut()
                .insert("idempotency-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

/// Logs and counts a stored image, and encodes it as the answer.
pub(super) fn generated(
    image: &StoredImage,
    prepare_ms: u64,
    metrics: &mut InvocationMetrics,
) -> Value {
    let timings = image.timings;
    tracing::info!(
        actor = %image.actor_id,
        index = image.index,
        prediction_id = %image.prediction_id,
        prepare_ms,
        predict_ms = timings.predict_ms,
        store_ms = timings.store_ms,
        manifest_ms = timings.manifest_ms,
        manifest_updated = image.manifest_error.is_none(),
        "image generated"
    );
    metrics.generated(timings.predict_ms);
    if image.manifest_error.is_some() {
        metrics.manifest_not_updated();
    }
    answer_json(image)
}

/// Reads the HTTP body as an image request, within the size cap.
fn parse_body(body: &Body) -> Result<ImageRequest, ApiError> {
    Ok(GenerateSingleBody::from_json(json_body(
        body,
        MAX_BODY_BYTES,
    )?)?)
}
