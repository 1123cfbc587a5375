//! Replicate's trainings API: creates (into an existing destination model, after the
//! trainer's check of the `input_images` zip), reads, the list, cancels, and what each
//! created training received, for tests (`GET /admin/trainings`).

use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::dataset::fetch_and_check;
use crate::models::{create_model, get_model};
use crate::routes::{latency, problem, unauthorized};
use crate::state::AppState;
use crate::training_state::StoredTraining;
use crate::webhooks::{Subject, deliver_when_completed, requested_webhook};
use crate::weights::{DEFAULT_WEIGHTS_BYTES, trained_model_tar};

/// The `metrics.predict_time` of a finished training when no switch says otherwise.
const DEFAULT_PREDICT_TIME_SECS: f64 = 1234.5;
/// The trainer's default number of steps.
const DEFAULT_STEPS: u64 = 1000;

/// The routes of the trainings and models APIs, the trained weights and their admin view.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", post(create_model))
        .route("/v1/models/{owner}/{name}", get(get_model))
        .route(
            "/v1/models/{owner}/{name}/versions/{version}/trainings",
            post(create_training),
        )
        .route("/v1/trainings", get(list_trainings))
        .route("/v1/trainings/{id}", get(read_training))
        .route("/v1/trainings/{id}/cancel", post(cancel_training))
        .route(
            "/files/trainings/{id}/trained_model.tar",
            get(trained_model_tar),
        )
        .route("/admin/trainings", get(admin_trainings))
}

/// A 422 of the trainer's input validation.
fn invalid(detail: &str) -> Response {
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Input validation failed",
        detail,
    )
}

/// The inputs of the trainer the emulator reads.
#[derive(Debug)]
struct TrainerInput {
    images_url: String,
    autocaption: bool,
    steps: u64,
    trigger_word: String,
}

impl TrainerInput {
    /// Reads them from `input` as the trainer validates them; the error is the 422's detail.
    fn read(input: &Value) -> Result<Self, String> {
        if !input.is_object() {
            return Err("input: field required".to_owned());
        }
        let images_url = match input.get("input_images") {
            None | Some(Value::Null) => return Err("input_images: field required".to_owned()),
            Some(Value::String(url)) if !url.trim().is_empty() => url.clone(),
            Some(_) => return Err("input_images: must be a URL string".to_owned()),
        };
        let autocaption = match input.get("autocaption") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(autocaption)) => *autocaption,
            Some(_) => return Err("autocaption: must be a boolean".to_owned()),
        };
        let steps = match input.get("steps") {
            None | Some(Value::Null) => DEFAULT_STEPS,
            Some(steps) => steps
                .as_u64()
                .filter(|steps| (3..=6000).contains(steps))
                .ok_or("steps: must be an integer from 3 to 6000")?,
        };
        let trigger_word = match input.get("trigger_word") {
            None | Some(Value::Null) => "TOK".to_owned(),
            Some(Value::String(word)) => word.clone(),
            Some(_) => return Err("trigger_word: must be a string".to_owned()),
        };
        Ok(Self {
            images_url,
            autocaption,
            steps,
            trigger_word,
        })
    }
}

/// `POST /v1/models/{owner}/{name}/versions/{version}/trainings`: creates a training (201)
/// after the switches' refusals, the destination check (404) and the input's (422).
async fn create_training(
    State(shared): State<AppState>,
    Path((owner, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().counts.training_create_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    if let Some(refused) = shared.lock().faults.refuse_training_create() {
        return refused;
    }
    let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
            "the body is not JSON",
        );
    };
    let Some(destination) = request
        .get("destination")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return invalid("destination: field required");
    };
    if !shared.lock().models.contains_key(&destination) {
        return problem(
            StatusCode::NOT_FOUND,
            "Not found",
            "The specified destination does not exist",
        );
    }
    let input = request
        .get_mut("input")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let trainer_input = match TrainerInput::read(&input) {
        Ok(trainer_input) => trainer_input,
        Err(detail) => return invalid(&detail),
    };
    let zip = match fetch_and_check(
        &shared.fetcher,
        &trainer_input.images_url,
        trainer_input.autocaption,
    )
    .await
    {
        Ok(zip) => zip,
        Err(detail) => return invalid(&detail),
    };
    let webhook = requested_webhook(&request);
    let (id, body) = {
        let mut inner = shared.lock();
        inner.next_training_id += 1;
        inner.counts.trainings_created += 1;
        let id = format!("trn{:08}{:x}", inner.next_training_id, std::process::id());
        let faults = &inner.faults;
        let training = StoredTraining {
            id: id.clone(),
            model: format!("{owner}/{name}"),
            version,
            destination,
            input,
            webhook: request
                .get("webhook")
                .and_then(Value::as_str)
                .map(str::to_owned),
            zip: zip.to_json(),
            images: zip.images,
            steps: trainer_input.steps,
            trigger_word: trainer_input.trigger_word,
            created: Instant::now(),
            created_at: SystemTime::now(),
            starting: Duration::from_millis(faults.training_starting_ms),
            finish_after: Duration::from_millis(faults.training_processing_ms),
            never_finish: faults.training_never_finish,
            fail_with: faults.training_fail_with.clone(),
            predict_time: faults
                .training_predict_time_secs
                .unwrap_or(DEFAULT_PREDICT_TIME_SECS),
            canceled_after: None,
            weights_bytes: faults
                .training_weights_bytes
                .unwrap_or(DEFAULT_WEIGHTS_BYTES),
            output_base: faults
                .output_base_url
                .clone()
                .unwrap_or_else(|| shared.base_url.clone()),
        };
        let body = training.to_json(&shared.base_url);
        inner.trainings.push(training);
        (id, body)
    };
    if let Some(url) = webhook {
        tokio::spawn(deliver_when_completed(
            shared.clone(),
            Subject::Training,
            id,
            url,
        ));
    }
    let mut inner = shared.lock();
    if inner.faults.lose_training_create_answers > 0 {
        inner.faults.lose_training_create_answers -= 1;
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the training was created but its answer was lost",
        );
    }
    drop(inner);
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `GET /v1/trainings/{id}`: the training, or 404.
async fn read_training(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.training_get_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    match shared.lock().training(&id) {
        Some(training) => axum::Json(training.to_json(&shared.base_url)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "Not found", "no such training"),
    }
}

/// `GET /v1/trainings`: every training, newest first, on one page.
async fn list_trainings(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    shared.lock().counts.training_list_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let inner = shared.lock();
    let results: Vec<Value> = inner
        .trainings
        .iter()
        .rev()
        .map(|training| training.to_json(&shared.base_url))
        .collect();
    axum::Json(json!({ "previous": null, "next": null, "results": results })).into_response()
}

/// `POST /v1/trainings/{id}/cancel`: cancels the training unless it is over already, and
/// answers it either way; 404 when there is none.
async fn cancel_training(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.training_cancel_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    match shared.lock().training_mut(&id) {
        Some(training) => {
            training.cancel();
            axum::Json(training.to_json(&shared.base_url)).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "Not found", "no such training"),
    }
}

/// `GET /admin/trainings`: what each created training received, oldest first, for tests to
/// assert on.
async fn admin_trainings(State(shared): State<AppState>) -> Response {
    let inner = shared.lock();
    let trainings: Vec<Value> = inner
        .trainings
        .iter()
        .map(|training| {
            json!({
                "id": training.id,
                "model": training.model,
                "version": training.version,
                "destination": training.destination,
                "input": training.input,
                "webhook": training.webhook,
                "status": training.status(),
                "zip": training.zip,
            })
        })
        .collect();
    axum::Json(trainings).into_response()
}
