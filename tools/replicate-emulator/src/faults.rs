//! The fault switches a test sets (`PUT /admin/faults`), the counts it reads back
//! (`GET /admin/counts`), and the refusals of a create (of a prediction or a training) that
//! the switches inject.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::routes::problem;
use crate::state::{AppState, Inner};

/// Faults to inject, all off by default. Counters (`*_creates`, `failing_polls`) are used up
/// one per request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next N creates answer 429 with "Your rate limit resets in ~Ns." in the body.
    pub rate_limit_creates: u32,
    /// The N of that text, in seconds (default 1).
    pub rate_limit_reset_secs: Option<u32>,
    /// Also send a `Retry-After` header with the 429s.
    pub retry_after_header: bool,
    /// The next N creates answer 503.
    pub unavailable_creates: u32,
    /// The next N creates are refused with `reject_status`, creating nothing (a bad token, no
    /// credit, the model's input validation).
    pub reject_creates: u32,
    /// The status of those refusals: 401, 402 or 422 (the default).
    pub reject_status: Option<u16>,
    /// The next N reads of a prediction answer 500.
    pub failing_polls: u32,
    /// Delay of every API answer, in milliseconds.
    pub latency_ms: u64,
    /// Extra delay of the creates' answers only, in milliseconds, after the prediction is
    /// made (and billed): a create that times out has still cost money, as on Replicate.
    pub create_latency_ms: u64,
    /// Extra delay of the reads only (a poll that times out), in milliseconds.
    pub poll_latency_ms: u64,
    /// The next N reads of a prediction answer 200 with a body that is not JSON.
    pub malformed_polls: u32,
    /// How long each prediction runs before it finishes, in milliseconds.
    pub processing_ms: u64,
    /// Each prediction stays `starting` for this many reads.
    pub starting_polls: u32,
    /// Predictions never finish (until canceled).
    pub never_finish: bool,
    /// A cancel finds the prediction just succeeded (the race at a deadline).
    pub succeed_on_cancel: bool,
    /// Predictions fail with this error message.
    pub fail_with: Option<String>,
    /// Outputs are a list of URLs instead of one URL.
    pub output_as_list: bool,
    /// Outputs point at this base URL (e.g. `http://localhost:PORT`) instead of the emulator's
    /// own address.
    pub output_base_url: Option<String>,
    /// Delay of the output files' answers, in milliseconds (a slow download).
    pub output_latency_ms: u64,
    /// Output files answer 404.
    pub output_gone: bool,
    /// Output files answer 302 to another URL.
    pub output_redirect: bool,
    /// Output files are PNGs, not JPEGs.
    pub output_not_jpeg: bool,
    /// Outputs are one fixed JPEG padded to at least this many bytes, made without reading
    /// the input: a model that answers at once, for benchmarks.
    pub output_bytes: Option<usize>,
    /// Webhooks of predictions completing from now on are never sent.
    pub drop_webhooks: bool,
    /// Each webhook is delivered twice (the same `webhook-id`, as a resend).
    pub duplicate_webhooks: bool,
    /// Each webhook waits this long after its prediction completed, in milliseconds.
    pub webhook_delay_ms: u64,
    /// Only every other webhook waits `webhook_delay_ms`: later completions are told first.
    pub reorder_webhooks: bool,
    /// The first pause before a failed delivery is sent again, in milliseconds (default
    /// 1000; each next pause doubles, six retries in all).
    pub webhook_retry_base_ms: Option<u64>,
    /// The next N training creates are refused with `training_reject_status`, creating
    /// nothing.
    pub reject_training_creates: u32,
    /// The status of those refusals: 401, 402 or 422 (the default).
    pub training_reject_status: Option<u16>,
    /// The next N training creates answer 503, creating nothing.
    pub unavailable_training_creates: u32,
    /// The next N training creates make (and bill) the training, then answer 500: a create
    /// whose answer is lost.
    pub lose_training_create_answers: u32,
    /// How long each training stays `starting` after its create, in milliseconds.
    pub training_starting_ms: u64,
    /// When each training finishes, in milliseconds after its create (it is `processing`
    /// from the end of `starting` until then).
    pub training_processing_ms: u64,
    /// Trainings never finish (until canceled, or until this is switched off).
    pub training_never_finish: bool,
    /// Trainings fail with this error message.
    pub training_fail_with: Option<String>,
    /// The `metrics.predict_time` of a finished training, in seconds (default 1234.5): what
    /// it is billed for.
    pub training_predict_time_secs: Option<f64>,
    /// The size of a trained `lora.safetensors`, in bytes (default 256 KiB).
    pub training_weights_bytes: Option<usize>,
    /// Trained weights answer 404 (expired).
    pub training_weights_gone: bool,
}

/// How many requests of each kind the emulator got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Create requests, whatever their answer.
    pub create_requests: u32,
    /// Predictions actually created: the billable ones.
    pub predictions_created: u32,
    /// Reads of a prediction.
    pub get_requests: u32,
    /// Cancels.
    pub cancel_requests: u32,
    /// Downloads of an output file.
    pub file_requests: u32,
    /// Downloads of an output file that carried an `Authorization` header (a leaked token).
    pub file_requests_with_authorization: u32,
    /// API requests refused for a missing or wrong token.
    pub unauthorized: u32,
    /// Predictions and trainings with a webhook that completed (each is told once, or
    /// dropped).
    pub webhooks_completed: u32,
    /// Webhooks not sent, by the drop switch.
    pub webhooks_dropped: u32,
    /// Webhook requests sent, retries and duplicates included.
    pub webhook_attempts: u32,
    /// Webhook requests answered 2xx.
    pub webhooks_accepted: u32,
    /// Training create requests, whatever their answer.
    pub training_create_requests: u32,
    /// Trainings actually created: the billable ones.
    pub trainings_created: u32,
    /// Reads of a training.
    pub training_get_requests: u32,
    /// Lists of the trainings.
    pub training_list_requests: u32,
    /// Cancels of a training.
    pub training_cancel_requests: u32,
    /// Reads of a model.
    pub model_get_requests: u32,
    /// Model create requests, whatever their answer.
    pub model_create_requests: u32,
    /// Models actually created.
    pub models_created: u32,
    /// Downloads of trained weights.
    pub weights_requests: u32,
    /// Downloads of trained weights that carried an `Authorization` header (a leaked token).
    pub weights_requests_with_authorization: u32,
}

impl Faults {
    /// The refusal a create gets from the switches, using up one of its counters; `None` when
    /// no switch refuses it.
    pub(crate) fn refuse_create(&mut self) -> Option<Response> {
        if self.rate_limit_creates > 0 {
            self.rate_limit_creates -= 1;
            let reset = self.rate_limit_reset_secs.unwrap_or(1);
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Request was throttled",
                &format!("Request was throttled. Your rate limit resets in ~{reset}s."),
            );
            if self.retry_after_header {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(reset));
            }
            return Some(response);
        }
        if self.unavailable_creates > 0 {
            self.unavailable_creates -= 1;
            return Some(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "try again later",
            ));
        }
        if self.reject_creates > 0 {
            self.reject_creates -= 1;
            return Some(refusal(
                self.reject_status,
                "input.seed: must be an integer",
            ));
        }
        None
    }

    /// The refusal a training create gets from the switches, using up one of its counters;
    /// `None` when no switch refuses it.
    pub(crate) fn refuse_training_create(&mut self) -> Option<Response> {
        if self.unavailable_training_creates > 0 {
            self.unavailable_training_creates -= 1;
            return Some(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "try again later",
            ));
        }
        if self.reject_training_creates > 0 {
            self.reject_training_creates -= 1;
            return Some(refusal(
                self.training_reject_status,
                "input.steps: must be an integer",
            ));
        }
        None
    }
}

/// A refused create with `status` (default 422), in Replicate's words for it; `invalid` is
/// the detail of a 422.
fn refusal(status: Option<u16>, invalid: &str) -> Response {
    let status = status
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let (title, detail) = match status.as_u16() {
        401 => (
            "Unauthenticated",
            "You did not pass a valid authentication token",
        ),
        402 => (
            "Insufficient credit",
            "You have insufficient credit to run this model",
        ),
        500.. => ("Internal Server Error", "an unexpected error occurred"),
        _ => ("Input validation failed", invalid),
    };
    problem(status, title, detail)
}

/// `PUT /admin/faults`: the switches for the requests that follow.
pub(crate) async fn set_faults(
    State(shared): State<AppState>,
    axum::Json(faults): axum::Json<Faults>,
) -> Response {
    let mut inner = shared.lock();
    if !faults.never_finish {
        // Predictions left "never finishing" finish now (a resumed run can collect them).
        for prediction in inner.predictions.values_mut() {
            prediction.never_finish = false;
        }
    }
    if !faults.training_never_finish {
        // Likewise trainings: they finish now, or when they were due if that is later.
        for training in &mut inner.trainings {
            training.release();
        }
    }
    inner.faults = faults.clone();
    drop(inner);
    axum::Json(faults).into_response()
}

/// `GET /admin/faults`: the switches as they are now (counters partly used up).
pub(crate) async fn get_faults(State(shared): State<AppState>) -> Response {
    axum::Json(shared.lock().faults.clone()).into_response()
}

/// `GET /admin/counts`: what a test asserts on, e.g. that nothing was paid twice.
pub(crate) async fn get_counts(State(shared): State<AppState>) -> Response {
    axum::Json(shared.lock().counts).into_response()
}

/// `POST /admin/reset`: a fresh emulator for the next run of the local stack (no
/// predictions, trainings or models; the switches off, the counts zero).
pub(crate) async fn reset(State(shared): State<AppState>) -> Response {
    *shared.lock() = Inner::default();
    StatusCode::NO_CONTENT.into_response()
}
