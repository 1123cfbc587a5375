//! Direct invocations of generate-single: one job `{"actor_id", ...}`, a batch
//! `{"jobs": [...]}`, or either as the `detail` of an EventBridge event (a schedule), tried
//! in that pinned order: EventBridge, batch, single job.
//!
//! A single job that fails is a Lambda error (so asynchronous retries and the failure
//! destination apply; its idempotency key keeps a retry from paying twice), typed by its
//! code. A batch answers one result per job and is a Lambda error only when no job could run
//! (each was refused, or not started for lack of time).

use std::time::Instant;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_route::{generated, scoped_key};
use super::wire::{GenerateSingleBody, WireAnswers};
use super::{
    DIRECT_STORE_RESERVE, Deadline, GenerateSingleFunction, MAX_BODY_BYTES, MIN_JOB_TIME, before,
};
use crate::domain::actor::ActorId;
use crate::domain::request::RequestError;
use crate::entry::http::{ApiError, json_response};
use crate::entry::invocation_error::InvocationError;
use crate::entry::metrics::InvocationMetrics;
use crate::ports::StoredAnswer;
use crate::usecases::{GuardedJob, GuardedJobs, GuardedOutcome};

/// What a direct invocation carries, once its envelope (if any) is opened.
enum DirectEvent {
    /// `{"jobs": [...]}`: each job's key is the event's, with `:{position}` after it.
    Batch {
        jobs: Vec<Value>,
        key: Option<String>,
    },
    /// One job.
    Job { job: Value, key: Option<String> },
}

/// A batch of jobs.
#[derive(Deserialize)]
struct Batch {
    jobs: Vec<Value>,
}

/// A job's answer: run now, or replayed from its idempotency record.
enum JobAnswer {
    Fresh(Result<Value, ApiError>),
    Replayed(StoredAnswer),
}

impl<J: GuardedJobs> GenerateSingleFunction<J> {
    /// Answers a direct invocation.
    pub(super) async fn direct(
        &self,
        body: &Body,
        deadline: Deadline,
        metrics: &mut InvocationMetrics,
    ) -> Result<Response<Body>, InvocationError> {
        let event = parse_direct_event(body).map_err(|error| {
            metrics.failed(&error);
            InvocationError::from_api(&error)
        })?;
        match event {
            DirectEvent::Job { job, key } => match self.job(job, key, deadline, metrics).await {
                JobAnswer::Fresh(Ok(value)) => Ok(json_response(StatusCode::OK, &value)),
                JobAnswer::Fresh(Err(error)) => {
                    metrics.failed(&error);
                    Err(InvocationError::from_api(&error))
                }
                JobAnswer::Replayed(answer) if answer.status < 300 => Ok(json_response(
                    StatusCode::OK,
                    &serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null),
                )),
                JobAnswer::Replayed(answer) => Err(InvocationError::from_stored_body(answer.body)),
            },
            DirectEvent::Batch { jobs, key } => self.batch(jobs, key, deadline, metrics).await,
        }
    }

    /// Runs a batch's jobs one after the other while there is time for another.
    async fn batch(
        &self,
        jobs: Vec<Value>,
        key: Option<String>,
        deadline: Deadline,
        metrics: &mut InvocationMetrics,
    ) -> Result<Response<Body>, InvocationError> {
        let (mut results, mut succeeded, mut ran) = (Vec::new(), 0, 0);
        for (position, job) in jobs.into_iter().enumerate() {
            let job_key = key.as_ref().map(|key| format!("{key}:{position}"));
            let time_left = deadline.function.saturating_duration_since(Instant::now());
            let mut result = if time_left < MIN_JOB_TIME {
                metrics.failed_with("not_started");
                json!({"success": false, "error": {"code": "not_started", "message": "not enough time left in this invocation"}})
            } else {
                match self.job(job, job_key, deadline, metrics).await {
                    JobAnswer::Fresh(Ok(answer)) => {
                        succeeded += 1;
                        ran += 1;
                        answer
                    }
                    JobAnswer::Replayed(answer) => {
                        ran += 1;
                        succeeded += usize::from(answer.status < 300);
                        serde_json::from_str(&answer.body).unwrap_or(Value::Null)
                    }
                    JobAnswer::Fresh(Err(error)) => {
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
            let body = json!({"success": false, "error": {"code": "no_job_ran", "message": "no job of the batch could run"}, "results": results});
            return Err(InvocationError {
                code: "no_job_ran".to_owned(),
                body: body.to_string(),
            });
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({"succeeded": succeeded, "results": results}),
        ))
    }

    /// Runs one job of a direct invocation.
    async fn job(
        &self,
        job: Value,
        key: Option<String>,
        deadline: Deadline,
        metrics: &mut InvocationMetrics,
    ) -> JobAnswer {
        let job = match read_job(job, key, deadline) {
            Ok(job) => job,
            Err(error) => return JobAnswer::Fresh(Err(error)),
        };
        let run = self.jobs.run(&job, &WireAnswers).await;
        if run.report.budget_counted {
            metrics.budget_counted();
        }
        match run.outcome {
            GuardedOutcome::Fresh(result) => JobAnswer::Fresh(
                result
                    .map(|image| generated(&image, run.report.prepare_ms, metrics))
                    .map_err(ApiError::from),
            ),
            GuardedOutcome::Replayed(answer) => JobAnswer::Replayed(answer),
        }
    }
}

/// The guarded job a direct job asks for.
fn read_job(job: Value, key: Option<String>, deadline: Deadline) -> Result<GuardedJob, ApiError> {
    let actor_id = match job.get("actor_id") {
        Some(Value::String(id)) => ActorId::parse(id)?,
        _ => {
            return Err(RequestError::Malformed(
                "a direct job needs actor_id (a string)".to_owned(),
            )
            .into());
        }
    };
    Ok(GuardedJob {
        actor_id,
        request: GenerateSingleBody::from_json(job)?,
        key: key.map(|key| scoped_key("direct", &key)).transpose()?,
        deadline: before(deadline.function, DIRECT_STORE_RESERVE),
        hold_until_ms: deadline.epoch_ms,
    })
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
    let (payload, key) = match EventBridgeEvent::<Value>::deserialize(&event) {
        Ok(scheduled) => (scheduled.detail, scheduled.id),
        Err(_) => {
            let key = match event.get("idempotency_key") {
                None | Some(Value::Null) => None,
                Some(Value::String(key)) => Some(key.clone()),
                Some(_) => return Err(ApiError::InvalidIdempotencyKey),
            };
            (event, key)
        }
    };
    // Only an object is a batch (serde would also take `[[...]]`, a struct's array form).
    let batch = if payload.is_object() {
        Batch::deserialize(&payload).ok()
    } else {
        None
    };
    match batch {
        Some(batch) => Ok(DirectEvent::Batch {
            jobs: batch.jobs,
            key,
        }),
        None if payload.get("jobs").is_some() => {
            Err(RequestError::Malformed("jobs must be an array".to_owned()).into())
        }
        None => Ok(DirectEvent::Job { job: payload, key }),
    }
}
