//! The generate-single function: `POST /api/actors/{actorId}/training-data/generate-single`
//! from API Gateway (HTTP API v2 or REST v1), and direct invocations (`aws lambda invoke`,
//! schedules): a job `{"actor_id", ...}`, an EventBridge event with the job in `detail`, or a
//! batch `{"jobs": [...]}`.
//!
//! Every job runs the same way: prepare (all validation, nothing recorded), then, with an
//! idempotency key, take the key (a repeat gets the stored answer, 409 while the first runs,
//! 422 for another payload), then the spend guard (kill switch, daily caps) before anything
//! is paid, then the generation, whose prediction id is recorded as soon as it exists.

use std::time::{Duration, Instant};

use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::http::{ActorRoute, ApiError, json_response};
use super::metrics::InvocationMetrics;
use crate::domain::actor::ActorId;
use crate::domain::generate_single::{
    GenerateError, GenerateSingle, GeneratedTrainingImage, NotRecorded, PreparedGeneration, Start,
};
use crate::domain::generation::{GenerateBody, RequestError};
use crate::ports::{
    ActorProfiles, Admission, Clock, GenerationError, IdempotencyBegin, IdempotencyStore,
    ImageGenerator, IndexCounter, ObjectStore, PredictionLog, SpendGuard,
};
use crate::timing::{self, InvocationTimings, elapsed_ms, epoch_ms, timed};

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
/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The generation use case and the guards around it. Build it once per execution environment.
#[derive(Debug)]
pub struct GenerateFunction<P, O, C, G, K, I, S> {
    /// The use case.
    pub service: GenerateSingle<P, O, C, G, K>,
    /// Idempotency records.
    pub idempotency: I,
    /// The kill switch and the daily caps.
    pub spend: S,
}

/// One job to run: who asked, for what, under which key, by when.
struct Job {
    actor_id: ActorId,
    body: GenerateBody,
    /// The idempotency key, already scoped to the caller.
    key: Option<String>,
    deadline: Instant,
    /// Until when (epoch ms) the key is held: the invocation's own deadline.
    hold_until_ms: u64,
}

/// A job's answer: fresh, or replayed from its idempotency record.
enum Answer {
    Fresh(Result<Value, ApiError>),
    Replayed { status: u16, body: String },
}

/// Records a new prediction's id on the job's idempotency record.
struct KeyLog<'a, I> {
    store: &'a I,
    key: &'a str,
}

impl<I: IdempotencyStore> PredictionLog for KeyLog<'_, I> {
    async fn started(&self, prediction_id: &str) {
        let recorded = retried(|| self.store.record_prediction(self.key, prediction_id)).await;
        if let Err(error) = recorded {
            // The run still writes it on the record when it fails (`interrupt`).
            tracing::error!(prediction_id, %error, "prediction id not recorded on the idempotency record");
        }
    }

    fn resumable(&self) -> bool {
        true
    }
}

/// Runs a store write up to 3 times, pausing 50 ms then 100 ms between tries.
async fn retried<F, Fut>(write: F) -> Result<(), crate::ports::StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::ports::StoreError>>,
{
    let mut result = write().await;
    for pause_ms in [50, 100] {
        if result.is_ok() {
            break;
        }
        timing::pause_before_retry(Duration::from_millis(pause_ms)).await;
        result = write().await;
    }
    result
}

impl<P, O, C, G, K, I, S> GenerateFunction<P, O, C, G, K, I, S>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    I: IdempotencyStore,
    S: SpendGuard,
{
    /// Answers one invocation: an API Gateway request, or a direct one (passed through as a
    /// request with a JSON body). Logs where its time went: our code, or waiting on remote
    /// calls (each with its start and duration).
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        let (answer, timings) = timed(self.answer_invocation(&request)).await;
        let status = answer
            .as_ref()
            .ok()
            .map(|response| response.status().as_u16());
        log_timings(status, &timings);
        answer
    }

    async fn answer_invocation(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        let started = Instant::now();
        let (function_deadline, hold_until_ms) = function_deadline(request);
        if matches!(
            request.request_context_ref(),
            Some(RequestContext::PassThrough)
        ) {
            let mut metrics = InvocationMetrics::new(FUNCTION_NAME);
            let answer = self
                .direct(
                    request.body(),
                    function_deadline,
                    hold_until_ms,
                    &mut metrics,
                )
                .await;
            metrics.emit(&request_id(request), elapsed_ms(started));
            return answer;
        }
        let mut metrics = InvocationMetrics::new(FUNCTION_NAME);
        let deadline =
            (started + HTTP_MODEL_BUDGET).min(before(function_deadline, Duration::from_secs(5)));
        let response = match self
            .answer_http(request, deadline, hold_until_ms, &mut metrics)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                metrics.failed(&error);
                error.into_response()
            }
        };
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = elapsed_ms(started),
            "generate-single answered"
        );
        metrics.emit(&request_id(request), elapsed_ms(started));
        Ok(response)
    }

    async fn answer_http(
        &self,
        request: &Request,
        deadline: Instant,
        hold_until_ms: u64,
        metrics: &mut InvocationMetrics,
    ) -> Result<Response<Body>, ApiError> {
        let actor_id = ROUTE.actor_id(request)?;
        let key = match request.headers().get("idempotency-key") {
            Some(value) => {
                let key = value
                    .to_str()
                    .map_err(|_| ApiError::InvalidIdempotencyKey)?;
                Some(scoped_key(&caller_scope(request), key)?)
            }
            None => None,
        };
        let body = parse_body(request.body())?;
        let job = Job {
            actor_id,
            body,
            key,
            deadline,
            hold_until_ms,
        };
        match self.run_job(&job, metrics).await {
            Answer::Fresh(result) => Ok(json_response(StatusCode::OK, &result?)),
            Answer::Replayed { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                let mut response = json_response(
                    status,
                    &serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
                );
                response
                    .headers_mut()
                    .insert("idempotency-replayed", HeaderValue::from_static("true"));
                Ok(response)
            }
        }
    }

    /// Runs one job under its key and the spend guard. Whatever the key does, a generation
    /// that was counted and certainly paid for nothing gives its unit back.
    async fn run_job(&self, job: &Job, metrics: &mut InvocationMetrics) -> Answer {
        let prepare_started = Instant::now();
        let prepared = match self.service.prepare(&job.actor_id, &job.body).await {
            Ok(prepared) => prepared,
            Err(error) => return Answer::Fresh(Err(error.into())),
        };
        let prepare_ms = elapsed_ms(prepare_started);
        let Some(key) = job.key.as_deref() else {
            let result = self
                .run_counted(&prepared, job.deadline, &NotRecorded, metrics)
                .await;
            return Answer::Fresh(result.map(|image| generated(&image, prepare_ms, metrics)));
        };
        let payload_hash = payload_hash(&job.actor_id, &job.body);
        let resume = match self
            .idempotency
            .begin(key, &payload_hash, job.hold_until_ms)
            .await
        {
            Err(error) => return Answer::Fresh(Err(error.into())),
            Ok(IdempotencyBegin::Completed { status, body }) => {
                tracing::info!(actor = %job.actor_id, status, "idempotent repeat answered from its record");
                return Answer::Replayed { status, body };
            }
            Ok(IdempotencyBegin::InProgress) => {
                return Answer::Fresh(Err(ApiError::IdempotencyInProgress));
            }
            Ok(IdempotencyBegin::PayloadMismatch) => {
                return Answer::Fresh(Err(ApiError::IdempotencyKeyReused));
            }
            Ok(IdempotencyBegin::Owned { resume }) => resume,
        };
        let result = match &resume {
            Some(prediction_id) => self
                .service
                .execute(
                    &prepared,
                    job.deadline,
                    Start::<NotRecorded>::Resume(prediction_id),
                )
                .await
                .map_err(ApiError::from),
            None => {
                let log = KeyLog {
                    store: &self.idempotency,
                    key,
                };
                self.run_counted(&prepared, job.deadline, &log, metrics)
                    .await
            }
        };
        let result = result.map(|image| generated(&image, prepare_ms, metrics));
        match &result {
            Ok(body) => {
                let body = body.to_string();
                if let Err(error) = retried(|| self.idempotency.complete(key, 200, &body)).await {
                    tracing::error!(%error, "the answer was not stored on the idempotency record");
                }
            }
            Err(error) => {
                if let Err(error) = self.settle_failure(key, error, resume.as_deref()).await {
                    tracing::error!(%error, "idempotency record not settled");
                }
            }
        }
        Answer::Fresh(result)
    }

    /// After a failed run: the answer kept (a 4xx other than the budget's; a create whose
    /// outcome is unknown; an output refused for good), the paid prediction kept for a resume,
    /// or the key released (nothing paid).
    async fn settle_failure(
        &self,
        key: &str,
        error: &ApiError,
        resumed: Option<&str>,
    ) -> Result<(), crate::ports::StoreError> {
        let status = error.status();
        let final_answer = (status.is_client_error() && !matches!(error, ApiError::Spend(_)))
            || matches!(
                error,
                ApiError::Generation(
                    GenerationError::Uncertain { .. } | GenerationError::BadOutput { .. }
                )
            );
        if final_answer {
            let body = error.body().to_string();
            return retried(|| self.idempotency.complete(key, status.as_u16(), &body)).await;
        }
        match error.prediction_id().or(resumed) {
            Some(prediction_id) => {
                retried(|| self.idempotency.interrupt(key, Some(prediction_id))).await
            }
            None => self.idempotency.release(key).await,
        }
    }

    /// Gives back the unit of a generation that certainly paid for nothing, on the day it
    /// was counted.
    /// A new prediction counted by the spend guard: admitted, run (its id told to `log`),
    /// and its unit given back when it certainly paid for nothing.
    async fn run_counted(
        &self,
        prepared: &PreparedGeneration,
        deadline: Instant,
        log: &impl PredictionLog,
        metrics: &mut InvocationMetrics,
    ) -> Result<GeneratedTrainingImage, ApiError> {
        let admission = self.admit(&prepared.actor.actor_name, metrics).await?;
        let outcome = self
            .service
            .execute(prepared, deadline, Start::New(log))
            .await;
        self.refund_if_unpaid(&admission, &outcome).await;
        outcome.map_err(ApiError::from)
    }

    async fn refund_if_unpaid(
        &self,
        admission: &Admission,
        outcome: &Result<GeneratedTrainingImage, GenerateError>,
    ) {
        let Err(error) = outcome else {
            return;
        };
        if !error.paid_nothing() {
            return;
        }
        // The guard retries conflicts itself, under one idempotency token.
        let refunded = self.spend.refund(admission).await;
        match refunded {
            Ok(()) => {
                tracing::info!(actor_name = %admission.actor_name, day = %admission.day, %error, "budget refunded: nothing was paid")
            }
            Err(refund_error) => {
                tracing::warn!(actor_name = %admission.actor_name, day = %admission.day, error = %refund_error, "budget not refunded")
            }
        }
    }

    /// Counts the generation against the kill switch and the caps.
    async fn admit(
        &self,
        actor_name: &str,
        metrics: &mut InvocationMetrics,
    ) -> Result<Admission, ApiError> {
        match self.spend.admit(actor_name).await {
            Ok(Ok(admission)) => {
                metrics.budget_counted();
                Ok(admission)
            }
            Ok(Err(refusal)) => Err(ApiError::Spend(refusal)),
            Err(error) => Err(error.into()),
        }
    }

    /// A direct invocation: one job, an EventBridge event, or a batch. A single job that
    /// fails is a Lambda error (so asynchronous retries and the failure destination apply;
    /// its idempotency key keeps a retry from paying twice); a batch answers one result per
    /// job and is a Lambda error only when no job could run (each was refused by validation
    /// or not started for lack of time).
    async fn direct(
        &self,
        body: &Body,
        function_deadline: Instant,
        hold_until_ms: u64,
        metrics: &mut InvocationMetrics,
    ) -> Result<Response<Body>, lambda_http::Error> {
        let event = match parse_direct_event(body) {
            Ok(event) => event,
            Err(error) => {
                metrics.failed(&error);
                return Err(invocation_error(&error).into());
            }
        };
        let deadline = before(function_deadline, DIRECT_STORE_RESERVE);
        if !event.batch {
            let job = event.jobs.into_iter().next().unwrap_or_default();
            let answer = match self
                .direct_job(job.value, job.key, deadline, hold_until_ms, metrics)
                .await
            {
                Ok(answer) => answer,
                Err(error) => Answer::Fresh(Err(error)),
            };
            return match answer {
                Answer::Fresh(Ok(value)) => Ok(json_response(StatusCode::OK, &value)),
                Answer::Fresh(Err(error)) => {
                    metrics.failed(&error);
                    Err(invocation_error(&error).into())
                }
                Answer::Replayed { status, body } if status < 300 => Ok(json_response(
                    StatusCode::OK,
                    &serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
                )),
                Answer::Replayed { body, .. } => Err(body.into()),
            };
        }
        let (mut results, mut succeeded, mut ran) = (Vec::new(), 0, 0);
        for (position, job) in event.jobs.into_iter().enumerate() {
            let mut result = if function_deadline.saturating_duration_since(Instant::now())
                < MIN_JOB_TIME
            {
                metrics.failed_with("not_started");
                json!({"success": false, "error": {"code": "not_started", "message": "not enough time left in this invocation"}})
            } else {
                match self
                    .direct_job(job.value, job.key, deadline, hold_until_ms, metrics)
                    .await
                {
                    Ok(Answer::Fresh(Ok(answer))) => {
                        succeeded += 1;
                        ran += 1;
                        answer
                    }
                    Ok(Answer::Replayed { status, body }) => {
                        ran += 1;
                        succeeded += usize::from(status < 300);
                        serde_json::from_str(&body).unwrap_or(Value::Null)
                    }
                    Ok(Answer::Fresh(Err(error))) | Err(error) => {
                        ran += usize::from(!error.is_refusal());
                        metrics.failed(&error);
                        error.body()
                    }
                }
            };
            result["job"] = json!(position);
            results.push(result);
        }
        tracing::info!(jobs = results.len(), ran, succeeded, "batch finished");
        if ran == 0 && !results.is_empty() {
            return Err(format!("no job of the batch could run: {}", Value::Array(results)).into());
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({"succeeded": succeeded, "results": results}),
        ))
    }

    async fn direct_job(
        &self,
        job: Value,
        key: Option<String>,
        deadline: Instant,
        hold_until_ms: u64,
        metrics: &mut InvocationMetrics,
    ) -> Result<Answer, ApiError> {
        let actor_id = match job.get("actor_id") {
            Some(Value::String(id)) => ActorId::parse(id)?,
            _ => {
                return Err(RequestError::Malformed(
                    "a direct job needs actor_id (a string)".to_owned(),
                )
                .into());
            }
        };
        let job = Job {
            actor_id,
            body: GenerateBody::from_json(job)?,
            key: key.map(|key| scoped_key("direct", &key)).transpose()?,
            deadline,
            hold_until_ms,
        };
        Ok(self.run_job(&job, metrics).await)
    }
}

/// Logs and counts a generated image, and encodes it as the answer.
fn generated(
    image: &GeneratedTrainingImage,
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
        manifest_updated = image.manifest_updated,
        "image generated"
    );
    metrics.generated(timings.predict_ms);
    if !image.manifest_updated {
        metrics.manifest_not_updated();
    }
    serde_json::to_value(image).unwrap_or_else(|error| {
        json!({"success": true, "index": image.index, "s3_key": image.s3_key, "encoding_error": error.to_string()})
    })
}

/// One log line with the invocation's answer status (none if it failed outright) and where
/// its time went, the remote calls as a JSON array.
fn log_timings(status: Option<u16>, timings: &InvocationTimings) {
    let calls = serde_json::to_string(&timings.calls).unwrap_or_default();
    tracing::info!(
        status,
        total_us = timings.total_us,
        remote_us = timings.remote_us,
        own_us = timings.own_us,
        remote_calls = %calls,
        "invocation timed"
    );
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

/// Who is calling, for scoping idempotency keys: the JWT's subject, the IAM caller's ARN, or
/// `public` when the API has no authorizer (local runs).
fn caller_scope(request: &Request) -> String {
    let authorizer = request
        .request_context_ref()
        .and_then(RequestContext::authorizer);
    let jwt_subject = authorizer
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .map(|sub| format!("jwt:{sub}"));
    let iam_caller = authorizer
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.user_arn.as_ref())
        .map(|arn| format!("iam:{arn}"));
    jwt_subject
        .or(iam_caller)
        .unwrap_or_else(|| "public".to_owned())
}

/// The key as stored: `{scope}#{key}`, after checking it is 1 to 255 printable ASCII
/// characters.
fn scoped_key(scope: &str, key: &str) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(format!("{scope}#{key}"))
}

/// A hash of what the job asks for (the fields that change the result), so a key reused
/// with another payload is caught.
fn payload_hash(actor_id: &ActorId, body: &GenerateBody) -> String {
    let canonical = format!(
        "{actor_id}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        body.actor_name, body.base_image_path, body.prompt_id, body.prompt, body.seed
    );
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The moment the function is stopped, from the invocation's context, as an instant and as
/// epoch milliseconds.
fn function_deadline(request: &Request) -> (Instant, u64) {
    let now = Instant::now();
    let now_ms = epoch_ms();
    let deadline_ms = request
        .lambda_context_ref()
        .map(|context| context.deadline)
        .filter(|deadline| *deadline > now_ms)
        .unwrap_or(now_ms + 30_000);
    (
        now + Duration::from_millis(deadline_ms - now_ms),
        deadline_ms,
    )
}

/// One job of a direct invocation, with its idempotency key.
#[derive(Default)]
struct DirectJob {
    value: Value,
    key: Option<String>,
}

/// What a direct invocation carries.
struct DirectEvent {
    jobs: Vec<DirectJob>,
    batch: bool,
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
    // An EventBridge rule's event: the job is its `detail`, its `id` the delivery's key.
    let (event, key) = match (
        event.get("detail-type"),
        event.get("detail"),
        event.get("id"),
    ) {
        (Some(_), Some(detail), id) => (
            detail.clone(),
            id.and_then(Value::as_str).map(str::to_owned),
        ),
        _ => {
            let key = match event.get("idempotency_key") {
                None | Some(Value::Null) => None,
                Some(Value::String(key)) => Some(key.clone()),
                Some(_) => return Err(ApiError::InvalidIdempotencyKey),
            };
            (event, key)
        }
    };
    match event.get("jobs") {
        Some(Value::Array(jobs)) => Ok(DirectEvent {
            jobs: jobs
                .iter()
                .enumerate()
                .map(|(position, job)| DirectJob {
                    value: job.clone(),
                    key: key.as_ref().map(|key| format!("{key}:{position}")),
                })
                .collect(),
            batch: true,
        }),
        Some(_) => Err(RequestError::Malformed("jobs must be an array".to_owned()).into()),
        None => Ok(DirectEvent {
            jobs: vec![DirectJob { value: event, key }],
            batch: false,
        }),
    }
}

/// The Lambda error for a failed direct invocation: the same JSON body as the HTTP answer.
fn invocation_error(error: &ApiError) -> String {
    tracing::error!(status = error.status().as_u16(), code = error.code(), %error, "direct invocation failed");
    error.body().to_string()
}

/// The function's name in metrics.
const FUNCTION_NAME: &str = "generate-single";

/// The invocation's request id, for the metrics line.
fn request_id(request: &Request) -> String {
    request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default()
}

/// `margin` before `deadline`, or the deadline itself if that is not representable.
fn before(deadline: Instant, margin: Duration) -> Instant {
    deadline.checked_sub(margin).unwrap_or(deadline)
}
