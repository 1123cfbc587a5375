//! The training-export function. From API Gateway: `POST
//! /api/actors/{actorId}/training-data/exports` accepts an export (202 and its status URL)
//! and `GET .../exports/{exportId}` reports it. From the exports' queue (an SQS event, passed
//! through): each message's export is written, so the zip is never made inside an HTTP
//! request. Every HTTP error is a JSON response from the one status map.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::http::header::LOCATION;
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use super::caller::caller;
use super::http::{ApiError, answered, body_bytes, json_body, json_response};
use crate::adapters::export_queue::read_export_message;
use crate::domain::actor::ActorId;
use crate::domain::export::{ExportError, ExportId, ExportRecord, ExportRequest};
use crate::ports::{ActorProfiles, ArchiveUploads, Clock, ExportQueue, ExportRecords, ObjectStore};
use crate::timing::epoch_ms;
use crate::usecases::export::{ExportRun, ExportView, TrainingExports};

/// The largest POST body accepted, in bytes.
const MAX_EXPORT_BODY_BYTES: usize = 4 * 1024;

/// Which of the routes a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ExportRoute {
    /// `POST .../training-data/exports`.
    Start,
    /// `GET .../training-data/exports/{exportId}`.
    Status(String),
}

/// The training-export function, built once per execution environment.
#[derive(Debug)]
pub struct TrainingExportFunction<P, O, R, Q, A, K> {
    /// The export use cases.
    pub exports: TrainingExports<P, O, R, Q, A, K>,
}

impl<P, O, R, Q, A, K> TrainingExportFunction<P, O, R, Q, A, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    R: ExportRecords,
    Q: ExportQueue,
    A: ArchiveUploads,
    K: Clock,
{
    /// Answers one invocation: an API Gateway request (never fails: every error is a JSON
    /// response), or the exports' queue's batch (passed through as a request with a JSON
    /// body), answered with the messages to deliver again.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        if matches!(
            request.request_context_ref(),
            Some(RequestContext::PassThrough)
        ) {
            return self.queue_batch(&request).await;
        }
        Ok(answered("training-export", &request, self.answer(&request)).await)
    }

    async fn answer(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let (actor_id, route) = route(request)?;
        match route {
            ExportRoute::Start => {
                // No body at all asks for the defaults (the kept images, the actor's word).
                let body = if body_bytes(request.body())
                    .iter()
                    .all(u8::is_ascii_whitespace)
                {
                    json!({})
                } else {
                    json_body(request.body(), MAX_EXPORT_BODY_BYTES)?
                };
                let asked = ExportRequest::from_body(&body).map_err(use_case)?;
                let record = self
                    .exports
                    .start(&actor_id, &asked, &caller(request))
                    .await?;
                let status_url = format!(
                    "{}/{}",
                    request.uri().path().trim_end_matches('/'),
                    record.export_id
                );
                let mut answer = record_json(&record);
                answer["status_url"] = json!(status_url);
                let mut response = json_response(StatusCode::ACCEPTED, &answer);
                if let Ok(location) = HeaderValue::from_str(&status_url) {
                    response.headers_mut().insert(LOCATION, location);
                }
                Ok(response)
            }
            ExportRoute::Status(id) => {
                let export_id =
                    ExportId::parse(&id).ok_or_else(|| use_case(ExportError::NotFound(id)))?;
                let view = self.exports.status(&actor_id, &export_id).await?;
                Ok(json_response(StatusCode::OK, &view_json(&view)))
            }
        }
    }

    /// Writes each message's export, one after another; the messages to deliver again
    /// (another run holds the export, or this one failed before it ended).
    async fn queue_batch(&self, request: &Request) -> Result<Response<Body>, lambda_http::Error> {
        let event: SqsEvent = serde_json::from_slice(body_bytes(request.body()))
            .map_err(|error| format!("not an SQS event of the exports' queue: {error}"))?;
        let deadline_ms = request
            .lambda_context_ref()
            .map(|context| context.deadline)
            .filter(|deadline| *deadline > epoch_ms())
            .unwrap_or_else(|| epoch_ms() + 60_000);
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let message_id = record.message_id.clone().unwrap_or_default();
            let Some(export_id) = record.body.as_deref().and_then(read_export_message) else {
                tracing::error!(%message_id, "not an export's message; dropped");
                continue;
            };
            match self.exports.run(&export_id, deadline_ms).await {
                Ok(ExportRun::Ended) => {}
                Ok(ExportRun::Held) => {
                    tracing::info!(%export_id, "export held by another run; delivered again later");
                    response.add_failure(message_id);
                }
                Err(error) => {
                    tracing::warn!(%export_id, %error, "export not ended; delivered again later");
                    response.add_failure(message_id);
                }
            }
        }
        Ok(json_response(StatusCode::OK, &response))
    }
}

/// A domain refusal as the API error it maps to.
fn use_case(error: ExportError) -> ApiError {
    ApiError::UseCase(error.into())
}

/// The route of a request: `.../api/actors/{actorId}/training-data/exports[/{exportId}]`
/// (anything may come before it, such as a REST API's stage), with its method checked.
fn route(request: &Request) -> Result<(ActorId, ExportRoute), ApiError> {
    let path = request.uri().path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::RouteNotFound(path.to_owned());
    let start = segments
        .windows(5)
        .rposition(|w| {
            w[0] == "api" && w[1] == "actors" && w[3] == "training-data" && w[4] == "exports"
        })
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
    let route = match &segments[start + 5..] {
        [] => {
            allow("POST", Method::POST)?;
            ExportRoute::Start
        }
        [id] => {
            allow("GET", Method::GET)?;
            ExportRoute::Status(parameters.first("exportId").unwrap_or(id).to_owned())
        }
        _ => return Err(not_found()),
    };
    let actor = parameters.first("actorId").unwrap_or(segments[start + 2]);
    Ok((ActorId::parse(actor)?, route))
}

/// An export as the web UI reads it.
fn record_json(record: &ExportRecord) -> Value {
    json!({
        "export_id": record.export_id.as_str(),
        "actor_id": record.actor_id.as_str(),
        "actor_name": record.actor_name,
        "status": record.status.as_str(),
        "include": record.include.as_str(),
        "trigger_word": record.trigger_word,
        "requested_by": record.requested_by,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "error": record.error,
    })
}

/// An export with, once done, its zip's key, size, count and presigned URL.
fn view_json(view: &ExportView) -> Value {
    let mut answer = record_json(&view.record);
    if view.url.is_some() {
        answer["key"] = json!(view.record.key);
        answer["size"] = json!(view.record.size);
        answer["count"] = json!(view.record.count);
        answer["url"] = json!(view.url);
        answer["url_expires_in"] = json!(view.url_lifetime.as_secs());
    }
    answer
}
