//! The generate-single function: `POST /api/actors/{actorId}/training-data/generate-single`
//! from API Gateway (HTTP API v2 or REST v1), and direct invocations (`aws lambda invoke`,
//! schedules): a job `{"actor_id", ...}`, an EventBridge event with the job in `detail`, or a
//! batch `{"jobs": [...]}`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use super::http::{ActorRoute, ApiError, json_response};
use crate::domain::actor::ActorId;
use crate::domain::generate_single::GenerateSingle;
use crate::domain::generation::{GenerateBody, RequestError};
use crate::ports::{ActorProfiles, Clock, ImageGenerator, IndexCounter, ObjectStore};

/// The route this function serves.
pub const ROUTE: ActorRoute = ActorRoute {
    action: &["training-data", "generate-single"],
    method: Method::POST,
    allow: "POST",
};

/// The largest request body accepted (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long an HTTP request may give the model: API Gateway answers 504 itself after 29 s
/// (REST) or 30 s (HTTP API), and the image still has to be downloaded and stored.
pub const HTTP_MODEL_BUDGET: Duration = Duration::from_secs(22);
/// What a direct invocation keeps back from its function timeout for storing the image.
pub const DIRECT_STORE_RESERVE: Duration = Duration::from_secs(15);
/// The least time a batch job needs to be started.
pub const MIN_JOB_TIME: Duration = Duration::from_secs(20);

/// Answers one invocation: an API Gateway request, or a direct one (passed through as a
/// request with a JSON body).
pub async fn handle<P, O, C, G, K>(
    service: &GenerateSingle<P, O, C, G, K>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    let started = Instant::now();
    let function_deadline = function_deadline(&request);
    if matches!(
        request.request_context_ref(),
        Some(RequestContext::PassThrough)
    ) {
        return direct(service, request.body(), function_deadline).await;
    }
    let deadline =
        (started + HTTP_MODEL_BUDGET).min(before(function_deadline, Duration::from_secs(5)));
    let response = match answer_http(service, &request, deadline).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    tracing::info!(
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "generate-single answered"
    );
    Ok(response)
}

async fn answer_http<P, O, C, G, K>(
    service: &GenerateSingle<P, O, C, G, K>,
    request: &Request,
    deadline: Instant,
) -> Result<Response<Body>, ApiError>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    let actor_id = ROUTE.actor_id(request)?;
    let body = parse_body(request.body())?;
    let image = service.run(&actor_id, &body, deadline).await?;
    tracing::info!(actor = %actor_id, index = image.index, prediction_id = %image.prediction_id, "image generated");
    Ok(json_response(StatusCode::OK, &image))
}

/// Reads the HTTP body as a generation request, within the size cap.
fn parse_body(body: &Body) -> Result<GenerateBody, ApiError> {
    let bytes: &[u8] = match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(
            RequestError::Malformed("the body is empty; send a JSON object".to_owned()).into(),
        );
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| RequestError::Malformed(format!("the body is not JSON: {error}")))?;
    Ok(GenerateBody::from_json(value)?)
}

/// The moment the function is stopped, from the invocation's context.
fn function_deadline(request: &Request) -> Instant {
    let now = Instant::now();
    let remaining = request
        .lambda_context_ref()
        .map(|context| context.deadline)
        .and_then(|deadline_ms| {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_millis() as u64;
            deadline_ms.checked_sub(now_ms)
        })
        .map_or(Duration::from_secs(30), Duration::from_millis);
    now + remaining
}

/// A direct invocation: one job, an EventBridge event, or a batch. A single job that fails is
/// a Lambda error (so asynchronous retries and the failure destination apply); a batch answers
/// one result per job and is a Lambda error only when no job could run (each was refused by
/// validation or not started for lack of time).
async fn direct<P, O, C, G, K>(
    service: &GenerateSingle<P, O, C, G, K>,
    body: &Body,
    function_deadline: Instant,
) -> Result<Response<Body>, lambda_http::Error>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    let event = match parse_direct_event(body) {
        Ok(event) => event,
        Err(error) => return Err(invocation_error(&error).into()),
    };
    match event {
        DirectEvent::Job(job) => {
            let result = run_job(service, &job, function_deadline).await;
            match result {
                Ok(answer) => Ok(json_response(StatusCode::OK, &answer)),
                Err(error) => Err(invocation_error(&error).into()),
            }
        }
        DirectEvent::Batch(jobs) => {
            let mut results = Vec::with_capacity(jobs.len());
            let (mut succeeded, mut ran) = (0, 0);
            for (position, job) in jobs.iter().enumerate() {
                let result = if function_deadline.saturating_duration_since(Instant::now())
                    < MIN_JOB_TIME
                {
                    json!({"job": position, "success": false, "error": {"code": "not_started", "message": "not enough time left in this invocation"}})
                } else {
                    match run_job(service, job, function_deadline).await {
                        Ok(mut answer) => {
                            succeeded += 1;
                            ran += 1;
                            answer["job"] = json!(position);
                            answer
                        }
                        Err(error) => {
                            if !error.is_refusal() {
                                ran += 1;
                            }
                            let mut answer = error.body();
                            answer["job"] = json!(position);
                            answer
                        }
                    }
                };
                results.push(result);
            }
            tracing::info!(jobs = jobs.len(), ran, succeeded, "batch finished");
            // A Lambda error makes Lambda retry the whole batch: only when no job could run
            // (all refused or not started), so no job that ran is paid for twice.
            if ran == 0 && !jobs.is_empty() {
                return Err(
                    format!("no job of the batch could run: {}", Value::Array(results)).into(),
                );
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"succeeded": succeeded, "results": results}),
            ))
        }
    }
}

/// What a direct invocation carries.
enum DirectEvent {
    /// One job: the request body's fields plus `actor_id`.
    Job(Value),
    /// Several jobs, run one by one.
    Batch(Vec<Value>),
}

fn parse_direct_event(body: &Body) -> Result<DirectEvent, ApiError> {
    let text = match body {
        Body::Text(text) => text.as_str(),
        _ => "",
    };
    if text.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let event: Value = serde_json::from_str(text)
        .map_err(|error| RequestError::Malformed(format!("the event is not JSON: {error}")))?;
    // An EventBridge rule's event: the job is its `detail`.
    let event = match (event.get("detail-type"), event.get("detail")) {
        (Some(_), Some(detail)) => detail.clone(),
        _ => event,
    };
    match event.get("jobs") {
        Some(Value::Array(jobs)) => Ok(DirectEvent::Batch(jobs.clone())),
        Some(_) => Err(RequestError::Malformed("jobs must be an array".to_owned()).into()),
        None => Ok(DirectEvent::Job(event)),
    }
}

async fn run_job<P, O, C, G, K>(
    service: &GenerateSingle<P, O, C, G, K>,
    job: &Value,
    function_deadline: Instant,
) -> Result<Value, ApiError>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    let actor_id = match job.get("actor_id") {
        Some(Value::String(id)) => ActorId::parse(id)?,
        _ => {
            return Err(RequestError::Malformed(
                "a direct job needs actor_id (a string)".to_owned(),
            )
            .into());
        }
    };
    let body = GenerateBody::from_json(job.clone())?;
    let deadline = before(function_deadline, DIRECT_STORE_RESERVE);
    let image = service.run(&actor_id, &body, deadline).await?;
    tracing::info!(actor = %actor_id, index = image.index, prediction_id = %image.prediction_id, "image generated");
    Ok(serde_json::to_value(&image).unwrap_or_else(|error| {
        json!({"success": true, "index": image.index, "s3_key": image.s3_key, "encoding_error": error.to_string()})
    }))
}

/// `margin` before `deadline`, or the deadline itself if that is not representable.
fn before(deadline: Instant, margin: Duration) -> Instant {
    deadline.checked_sub(margin).unwrap_or(deadline)
}

/// The Lambda error for a failed direct invocation: the same JSON body as the HTTP answer.
fn invocation_error(error: &ApiError) -> String {
    tracing::error!(status = error.status().as_u16(), code = error.code(), %error, "direct invocation failed");
    error.body().to_string()
}
