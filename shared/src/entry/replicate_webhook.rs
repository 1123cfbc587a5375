//! The Replicate webhook route, `POST /api/webhooks/replicate[?set=&item=]`: the one route
//! without a JWT (Replicate cannot send one), so nothing is read or written before the
//! delivery's signature is checked on the raw body. A delivery is answered in milliseconds:
//! a training-set item moves to `storing` and the worker stores it; a training (a URL with
//! no item, its training found by the body's id) is queued for the trainings function.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use super::http::{ApiError, json_response};
use super::logging::log_timings;
use crate::adapters::replicate::Prediction;
use crate::adapters::replicate::webhook_signature::{SecretSource, SignatureHeaders, verify};
use crate::adapters::training_queue::SqsTrainingQueue;
use crate::adapters::training_records::DynamoDbTrainingRecords;
use crate::domain::request::RequestError;
use crate::domain::training_set::SetId;
use crate::ports::{Clock, ItemQueue, TrainingSets};
use crate::timing::timed;
use crate::usecases::training_sets::{PredictionEnded, WebhookIntake, WebhookOutcome};
use crate::usecases::trainings::training_delivered;

/// The route's path (after any stage).
const ROUTE: &str = "/api/webhooks/replicate";
/// The largest delivery read: a prediction's JSON with its input and logs.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The webhook function, built once per execution environment.
#[derive(Debug)]
pub struct ReplicateWebhookFunction<W> {
    /// The training sets' side of a delivery.
    pub intake: W,
    /// The trainings' side, when the stack has them (`TRAINING_QUEUE_URL`).
    pub trainings: Option<TrainingDeliveries>,
    /// Where the signing secret comes from.
    pub secret: SecretSource,
}

/// What a training's delivery needs: its training found by Replicate's id, and queued.
#[derive(Debug)]
pub struct TrainingDeliveries {
    /// The trainings' records.
    pub records: DynamoDbTrainingRecords,
    /// The trainings' queue.
    pub queue: SqsTrainingQueue,
    /// How long until an open training is looked at again (`TRAINING_CHECK_SECONDS`).
    pub look_every: std::time::Duration,
}

impl<K, T, Q> ReplicateWebhookFunction<WebhookIntake<K, T, Q>>
where
    K: Clock,
    T: TrainingSets,
    Q: ItemQueue,
{
    /// Answers one delivery: 200 when taken (or nothing was left to do), 401 when it is not
    /// Replicate's, 4xx for a delivery that names no item, 5xx for a fault (Replicate
    /// delivers it again).
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, lambda_http::Error> {
        let (answer, timings) = timed(self.answer(&request)).await;
        let response = match answer {
            Ok(outcome) => json_response(
                StatusCode::OK,
                &json!({ "received": true, "outcome": outcome }),
            ),
            Err(error) => {
                if let ApiError::Unsigned(reason) = &error {
                    tracing::warn!(%reason, "webhook delivery refused");
                }
                error.into_response()
            }
        };
        log_timings(Some(response.status().as_u16()), &timings);
        Ok(response)
    }

    /// The delivery checked, read and taken; what it did, in a word.
    async fn answer(&self, request: &Request) -> Result<&'static str, ApiError> {
        let path = request.uri().path();
        if !path.ends_with(ROUTE) {
            return Err(ApiError::RouteNotFound(path.to_owned()));
        }
        if request.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed {
                method: request.method().to_string(),
                allowed: "POST",
            });
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::BodyTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        let headers = SignatureHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        };
        // An unsigned request costs no read of the secret.
        headers.require_present()?;
        let now_secs = self.intake.clock.now_epoch_ms() / 1000;
        verify(&self.secret.secret().await?, headers, body, now_secs)?;
        let prediction: Prediction = serde_json::from_slice(body).map_err(|error| {
            RequestError::Malformed(format!("the delivery is not a prediction: {error}"))
        })?;
        if !prediction.is_terminal() {
            // Only `completed` is asked for; any other event changes nothing.
            return Ok("ignored");
        }
        if request.query_string_parameters().first("set").is_none() {
            // A training's webhook: its URL names no item, its id names the training.
            let Some(trainings) = &self.trainings else {
                return Err(RequestError::Malformed(
                    "the webhook URL names no training-set item".to_owned(),
                )
                .into());
            };
            training_delivered(&trainings.records, &trainings.queue, &prediction.id).await?;
            return Ok("training_queued");
        }
        let seed = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|body| body.pointer("/input/seed")?.as_u64());
        let ended = PredictionEnded {
            set_id: query_set(request)?,
            position: query_item(request)?,
            attempt: query_attempt(request)?,
            seed,
            output_url: (prediction.status == "succeeded")
                .then(|| prediction.output_url().map(str::to_owned))
                .flatten(),
            prediction_id: prediction.id,
        };
        let outcome = self.intake.prediction_ended(&ended).await?;
        Ok(match outcome {
            WebhookOutcome::Storing => "storing",
            WebhookOutcome::Ending => "ending",
            WebhookOutcome::Nothing(_) => "nothing_to_do",
        })
    }
}

/// The `set` of the webhook URL.
fn query_set(request: &Request) -> Result<SetId, ApiError> {
    let parameters = request.query_string_parameters();
    let set = parameters.first("set").unwrap_or_default();
    SetId::parse(set).ok_or_else(|| {
        RequestError::Malformed("the webhook URL's set is not a set id".to_owned()).into()
    })
}

/// The `attempt` of the webhook URL, when it has one.
fn query_attempt(request: &Request) -> Result<Option<u32>, ApiError> {
    let parameters = request.query_string_parameters();
    match parameters.first("attempt") {
        None => Ok(None),
        Some(attempt) => attempt.parse().map(Some).map_err(|_| {
            RequestError::Malformed("the webhook URL's attempt is not a number".to_owned()).into()
        }),
    }
}

/// The `item` of the webhook URL.
fn query_item(request: &Request) -> Result<u32, ApiError> {
    let parameters = request.query_string_parameters();
    parameters
        .first("item")
        .and_then(|item| item.parse().ok())
        .filter(|position| *position > 0)
        .ok_or_else(|| {
            RequestError::Malformed("the webhook URL's item is not a position".to_owned()).into()
        })
}
