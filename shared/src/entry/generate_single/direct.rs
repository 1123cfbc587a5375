//! Direct invocations of generate-single: one job `{"actor_id", ...}`, a batch
//! `{"jobs": [...]}`, or either as the `detail` of an EventBridge event (a schedule), tried
//! in that pinned order: EventBridge, batch, single job.
//!
//! Every job runs under an idempotency key: its own `idempotency_key`, else the batch's (the
//! event's, or an EventBridge event's id) with `:{position}` after it, else one derived from
//! the invocation, `lambda:{request id}[:{position}]`. Lambda keeps the request id when it
//! retries an asynchronous invocation after a function error, so its retry replays what
//! finished, collects what was paid for and runs the rest; a caller's own retry of a
//! synchronous invoke gets a new request id, and must send a key.
//!
//! `{"action": "repair_manifest", "actor_name": ...}` is the operators' repair: the images of
//! the actor's folder that its manifest misses are listed from their metadata.
//!
//! A single job that fails is a Lambda error typed by its code. A batch is a Lambda error
//! `batch_incomplete` when a job was not started for lack of time (one starts only with
//! `BATCH_JOB_MIN_SECONDS` left) or was interrupted after paying, and `no_job_ran` when every
//! job was refused; the results are in its message either way.

use std::time::Instant;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_route::generated;
use super::wire::{GenerateSingleBody, WireAnswers};
use super::{
    DIRECT_ANSWER_MARGIN, DIRECT_STORE_RESERVE, Deadline, GenerateSingleFunction, MAX_BODY_BYTES,
    before,
};
use crate::domain::actor::ActorId;
use crate::domain::request::RequestError;
use crate::entry::caller::scoped_key;
use crate::entry::http::{ApiError, json_response};
use crate::entry::invocation_error::InvocationError;
use crate::entry::metrics::InvocationMetrics;
use crate::ports::StoredAnswer;
use crate::usecases::{GuardedJob, GuardedJobs, GuardedOutcome, RunLimits};

/// What a direct invocation carries, once its envelope (if any) is opened.
enum DirectEvent {
    /// `{"action": "repair_manifest", "actor_name": ...}`: an operator's repair.
    RepairManifest { actor_name: String },
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
        request_id: &str,
        deadline: Deadline,
        metrics: &mut InvocationMetrics,
    ) -> Result<Response<Body>, InvocationError> {
        let refused = |error: ApiError, metrics: &mut InvocationMetrics| {
            metrics.failed(&error);
            InvocationError::from_api(&error)
        };
        let event = parse_direct_event(body).map_err(|error| refused(error, metrics))?;
        let invocation_key = (!request_id.is_empty()).then(|| format!("lambda:{request_id}"));
        match event {
            DirectEvent::Job { job, key } => {
                let key = job_key(&job, key.or(invocation_key))
                    .map_err(|error| refused(error, metrics))?;
                match self.job(job, key, deadline, metrics).await {
                    JobAnswer::Fresh(Ok(value)) => Ok(json_response(StatusCode::OK, &value)),
                    JobAnswer::Fresh(Err(error)) => Err(refused(error, metrics)),
                    JobAnswer::Replayed(answer) if answer.status < 300 => Ok(json_response(
                        StatusCode::OK,
                        &serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null),
                    )),
                    JobAnswer::Replayed(answer) => {
                        Err(InvocationError::from_stored_body(answer.body))
                    }
                }
            }
            DirectEvent::Batch { jobs, key } => {
                let keys = batch_keys(&jobs, key.or(invocation_key))
                    .map_err(|error| refused(error, metrics))?;
                self.batch(jobs, keys, deadline, metrics).await
            }
            DirectEvent::RepairManifest { actor_name } => {
                let finish_by = before(deadline.function, DIRECT_ANSWER_MARGIN);
                let report = self
                    .jobs
                    .repair_manifest(&actor_name, finish_by)
                    .await
                    .map_err(|error| refused(error.into(), metrics))?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"success": true, "actor_name": actor_name, "images": report.images, "added": report.added, "not_ours": report.not_ours}),
                ))
            }
        }
    }

    /// Runs a batch's jobs one after the other while there is time to start another.
    async fn batch(
        &self,
        jobs: Vec<Value>,
        keys: Vec<Option<String>>,
        deadline: Deadline,
        metrics: &mut InvocationMetrics,
    ) -> Result<Response<Body>, InvocationError> {
        let (mut results, mut succeeded, mut ran, mut incomplete) = (Vec::new(), 0, 0, 0);
        for (position, (job, key)) in jobs.into_iter().zip(keys).enumerate() {
            let time_left = deadline.function.saturating_duration_since(Instant::now());
            let mut result = if time_left < self.batch_job_min_time {
                incomplete += 1;
                metrics.failed_with("not_started");
                json!({"success": false, "error": {"code": "not_started", "message": "not enough time left in this invocation; its retry runs it"}})
            } else {
                match self.job(job, key, deadline, metrics).await {
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
                        // Paid for and not stored yet: the batch's retry collects it.
                        incomplete += usize::from(error.use_case().is_some_and(|error| {
                            error.prediction_id().is_some() && !error.is_final()
                        }));
                        metrics.failed(&error);
                        error.body()
                    }
                }
            };
            result["job"] = json!(position);
            results.push(result);
        }
        tracing::info!(
            jobs = results.len(),
            ran,
            succeeded,
            incomplete,
            "batch finished"
        );
        let failed = |code: &str, message: &str| {
            let body = json!({"success": false, "error": {"code": code, "message": message}, "succeeded": succeeded, "results": results});
            Err(InvocationError {
                code: code.to_owned(),
                body: body.to_string(),
            })
        };
        if incomplete > 0 {
            return failed(
                "batch_incomplete",
                "some jobs were not started for lack of time or were interrupted after paying; retry the same event (Lambda's own retry does) to finish them",
            );
        }
        if ran == 0 && !results.is_empty() {
            return failed("no_job_ran", "no job of the batch could run");
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({"succeeded": succeeded, "results": results}),
        ))
    }

    /// Runs one job of a direct invocation under `key` (scoped already).
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

/// A job's key, scoped: its own `idempotency_key`, else `fallback`.
fn job_key(job: &Value, fallback: Option<String>) -> Result<Option<String>, ApiError> {
    let own = match job.get("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => return Err(ApiError::InvalidIdempotencyKey),
    };
    own.or(fallback)
        .map(|key| scoped_key("direct", &key))
        .transpose()
}

/// Every job's key (its own, else `{batch key}:{position}`), checked before any job runs:
/// two jobs with one key would have the second replay the first.
fn batch_keys(jobs: &[Value], batch_key: Option<String>) -> Result<Vec<Option<String>>, ApiError> {
    let keys = jobs
        .iter()
        .enumerate()
        .map(|(position, job)| {
            job_key(
                job,
                batch_key.as_ref().map(|key| format!("{key}:{position}")),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    for key in keys.iter().flatten() {
        if !seen.insert(key) {
            return Err(RequestError::Malformed(format!(
                "two jobs of the batch share the idempotency key {:?}",
                key.trim_start_matches("direct#")
            ))
            .into());
        }
    }
    Ok(keys)
}

/// The guarded job a direct job asks for, under `key` (scoped already).
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
        key,
        limits: RunLimits {
            model: before(deadline.function, DIRECT_STORE_RESERVE),
            finish: before(deadline.function, DIRECT_ANSWER_MARGIN),
            hold_until_ms: deadline.epoch_ms,
        },
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
    if let Some(action) = payload.get("action") {
        return match (action.as_str(), payload.get("actor_name")) {
            (Some("repair_manifest"), Some(Value::String(actor_name))) => {
                Ok(DirectEvent::RepairManifest {
                    actor_name: actor_name.clone(),
                })
            }
            (Some("repair_manifest"), _) => Err(RequestError::Malformed(
                "repair_manifest needs actor_name (a string)".to_owned(),
            )
            .into()),
            _ => Err(RequestError::Malformed(format!(
                "unknown action {action}; the one action is repair_manifest"
            ))
            .into()),
        };
    }
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
