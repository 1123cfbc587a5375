//! The trainings function. From API Gateway: `POST /api/actors/{actorId}/trainings` starts
//! a training (202 and its status URL; `Idempotency-Key` honoured), `GET
//! .../trainings/{trainingId}` reports it and `POST .../trainings/{trainingId}/cancel` stops
//! it. From the trainings' queue (an SQS event, passed through): each message's training is
//! moved on, and one whose export is still running comes back after a while. Every HTTP
//! error is a JSON response from the one status map.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use super::caller::{caller, idempotency_key};
use super::http::{
    ApiError, StartAnswer, answered, body_bytes, json_body, json_response, started_response,
};
use crate::adapters::training_queue::{SqsTrainingQueue, read_training_message};
use crate::domain::actor::ActorId;
use crate::domain::training::{TrainingError, TrainingId, TrainingRecord};
use crate::domain::training_request::TrainingRequest;
use crate::ports::{
    ActorProfiles, Clock, ExportQueue, ExportRecords, IdempotencyStore, ObjectStore, SpendGuard,
    StoredAnswer, Trainer, TrainingRecords, WeightsCopier,
};
use crate::usecases::trainings::{Advance, NewTraining, TrainingStart, Trainings};

/// The largest POST body accepted, in bytes.
const MAX_TRAINING_BODY_BYTES: usize = 4 * 1024;
/// How long a training request holds its idempotency key: past the function's timeout.
const KEY_HOLD_MS: u64 = 150_000;

/// Which of the routes a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TrainingRoute {
    /// `POST .../trainings`.
    Start,
    /// `GET .../trainings/{trainingId}`.
    Status(String),
    /// `POST .../trainings/{trainingId}/cancel`.
    Cancel(String),
}

/// The trainings function, built once per execution environment.
#[derive(Debug)]
pub struct TrainingsFunction<P, O, ER, EQ, R, T, W, S, I, K> {
    /// The training use cases.
    pub trainings: Trainings<P, O, ER, EQ, R, T, W, SqsTrainingQueue, S, I, K>,
}

impl<P, O, ER, EQ, R, T, W, S, I, K> TrainingsFunction<P, O, ER, EQ, R, T, W, S, I, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    ER: ExportRecords,
    EQ: ExportQueue,
    R: TrainingRecords,
    T: Trainer,
    W: WeightsCopier,
    S: SpendGuard,
    I: IdempotencyStore,
    K: Clock,
{
    /// Answers one invocation: an API Gateway request (never fails: every error is a JSON
    /// response), or the trainings' queue's batch (passed through as a request with a JSON
    /// body), answered with the messages to deliver again.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        if matches!(
            request.request_context_ref(),
            Some(RequestContext::PassThrough)
        ) {
            return self.queue_batch(&request).await;
        }
        Ok(answered("trainings", &request, self.answer(&request)).await)
    }

    async fn answer(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let (actor_id, route) = route(request)?;
        match route {
            TrainingRoute::Start => self.start(request, &actor_id).await,
            TrainingRoute::Status(id) => {
                let record = self.trainings.status(&actor_id, &training_id(&id)?).await?;
                Ok(json_response(StatusCode::OK, &training_json(&record)))
            }
            TrainingRoute::Cancel(id) => {
                let record = self.trainings.cancel(&actor_id, &training_id(&id)?).await?;
                Ok(json_response(StatusCode::ACCEPTED, &training_json(&record)))
            }
        }
    }

    async fn start(
        &self,
        request: &Request,
        actor_id: &ActorId,
    ) -> Result<Response<Body>, ApiError> {
        let key = idempotency_key(request)?;
        // No body at all asks for the defaults (an export of the kept images, the actor's word).
        let body = if body_bytes(request.body())
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            json!({})
        } else {
            json_body(request.body(), MAX_TRAINING_BODY_BYTES)?
        };
        let asked = TrainingRequest::from_body(&body).map_err(use_case)?;
        let requested_by = caller(request);
        let collection = request.uri().path().trim_end_matches('/').to_owned();
        let started = |record: &TrainingRecord| started_json(&collection, record);
        let new = NewTraining {
            actor_id,
            request: &asked,
            requested_by: &requested_by,
            key: key.as_deref(),
            hold_until_ms: crate::timing::epoch_ms() + KEY_HOLD_MS,
        };
        let stored = |record: &TrainingRecord| StoredAnswer {
            status: StatusCode::ACCEPTED.as_u16(),
            body: started(record).to_string(),
        };
        let answer = match self.trainings.start(new, stored).await? {
            TrainingStart::Started(record) => StartAnswer::Fresh(started(&record)),
            TrainingStart::Replayed(answer) => StartAnswer::Replayed(answer),
        };
        Ok(started_response(answer))
    }

    /// Moves each message's training on, one after another; the messages to deliver again
    /// (an export still running: after a while; a fault: after the visibility timeout).
    async fn queue_batch(&self, request: &Request) -> Result<Response<Body>, lambda_http::Error> {
        let event: SqsEvent = serde_json::from_slice(body_bytes(request.body()))
            .map_err(|error| format!("not an SQS event of the trainings' queue: {error}"))?;
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let message_id = record.message_id.clone().unwrap_or_default();
            let Some(training_id) = record.body.as_deref().and_then(read_training_message) else {
                tracing::error!(%message_id, "not a training's message; dropped");
                continue;
            };
            match self.trainings.advance(&training_id).await {
                Ok(Advance::Done) => {}
                Ok(Advance::WaitForExport(wait)) => {
                    if let Some(receipt) = &record.receipt_handle
                        && let Err(error) = self.trainings.queue.delay(receipt, wait).await
                    {
                        tracing::warn!(%training_id, %error, "message not delayed; it comes back after the visibility timeout");
                    }
                    response.add_failure(message_id);
                }
                Err(error) => {
                    tracing::warn!(%training_id, %error, "training not moved on; delivered again later");
                    response.add_failure(message_id);
                }
            }
        }
        Ok(json_response(StatusCode::OK, &response))
    }
}

/// A domain refusal as the API error it maps to.
fn use_case(error: TrainingError) -> ApiError {
    ApiError::UseCase(error.into())
}

/// A training id from the path; any other text names no training.
fn training_id(text: &str) -> Result<TrainingId, ApiError> {
    TrainingId::parse(text).ok_or_else(|| use_case(TrainingError::NotFound(text.to_owned())))
}

/// The route of a request: `.../api/actors/{actorId}/trainings[/{trainingId}[/cancel]]`
/// (anything may come before it, such as a REST API's stage), with its method checked.
fn route(request: &Request) -> Result<(ActorId, TrainingRoute), ApiError> {
    let path = request.uri().path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::RouteNotFound(path.to_owned());
    let start = segments
        .windows(4)
        .rposition(|w| w[0] == "api" && w[1] == "actors" && w[3] == "trainings")
        .ok_or_else(not_found)?;
    let allow = |allowed: &'static str, wanted: Method| {
        if *request.method() == wanted {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                method: request.method().to_string(),
                allowed,
            })
        }
    };
    let parameters = request.path_parameters();
    let id = |segment: &str| parameters.first("trainingId").unwrap_or(segment).to_owned();
    let route = match &segments[start + 4..] {
        [] => {
            allow("POST", Method::POST)?;
            TrainingRoute::Start
        }
        [training] => {
            allow("GET", Method::GET)?;
            TrainingRoute::Status(id(training))
        }
        [training, "cancel"] => {
            allow("POST", Method::POST)?;
            TrainingRoute::Cancel(id(training))
        }
        _ => return Err(not_found()),
    };
    let actor = parameters.first("actorId").unwrap_or(segments[start + 2]);
    Ok((ActorId::parse(actor)?, route))
}

/// A started training as the POST answers it: the training and its status URL.
fn started_json(collection_path: &str, record: &TrainingRecord) -> Value {
    let mut answer = training_json(record);
    answer["status_url"] = json!(format!("{collection_path}/{}", record.training_id));
    answer
}

/// A training as the web UI reads it.
fn training_json(record: &TrainingRecord) -> Value {
    let result = record.version.as_ref().map(|version| {
        json!({
            "version": version,
            "weights_key": record.weights_key,
        })
    });
    json!({
        "training_id": record.training_id.as_str(),
        "actor_id": record.actor_id.as_str(),
        "actor_name": record.actor_name,
        "status": record.status.reported(),
        "export_id": record.export_id.as_str(),
        "trigger_word": record.trigger_word,
        "steps": record.steps,
        "lora_rank": record.lora_rank,
        "destination": record.destination.to_string(),
        "replicate_training_id": record.replicate_id,
        "requested_by": record.requested_by,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "logs": record.logs,
        "predict_time_seconds": record.predict_time,
        "cost_usd": record.cost_usd,
        "error": record.error,
        "result": result,
    })
}
