//! The predictions API as Replicate answers it: creates (by model and by version, with
//! `Prefer: wait`), reads, cancels, and the Bearer check; the router of every route.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::Faults;
use crate::faults::{get_counts, get_faults, reset, set_faults};
use crate::images::{derive_output, output_file, padded_jpeg};
use crate::state::{AppState, Shared, StoredPrediction};
use crate::webhooks::{Subject, default_secret, deliver_when_completed, requested_webhook};

/// Every route of the emulator, the admin ones included, over `shared`.
pub(crate) fn router(shared: AppState) -> Router {
    Router::new()
        .route(
            "/v1/models/{owner}/{name}/predictions",
            post(create_by_model),
        )
        .route("/v1/predictions", post(create_by_version))
        .route("/v1/predictions/{id}", get(read_prediction))
        .route("/v1/predictions/{id}/cancel", post(cancel_prediction))
        .route("/v1/webhooks/default/secret", get(default_secret))
        .route("/files/{file}", get(output_file))
        .route("/admin/faults", put(set_faults).get(get_faults))
        .route("/admin/counts", get(get_counts))
        .route("/admin/reset", post(reset))
        .merge(crate::trainings::routes())
        .with_state(shared)
}

/// A problem-JSON answer, as Replicate's API errors are.
pub(crate) fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({ "title": title, "detail": detail, "status": status.as_u16() });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The Bearer check: the configured token, or any non-empty one when none is configured.
/// Returns the 401 answer when the check fails.
pub(crate) fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let ok = match (&shared.token, presented) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(expected), Some(given)) => expected == given,
    };
    if ok {
        return None;
    }
    shared.lock().counts.unauthorized += 1;
    Some(problem(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "You did not pass a valid authentication token",
    ))
}

/// Waits the `latency_ms` switch, plus what `extra` takes from the switches.
pub(crate) async fn latency(shared: &Shared, extra: impl Fn(&Faults) -> u64) {
    let delay = {
        let faults = &shared.lock().faults;
        faults.latency_ms + extra(faults)
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

/// `Prefer: wait` or `wait=N` → N seconds (1..=60); absent → no wait.
fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("prefer")?.to_str().ok()?.trim();
    let seconds = match value.strip_prefix("wait") {
        Some("") => 60,
        Some(rest) => rest.trim_start_matches('=').trim().parse().ok()?,
        None => return None,
    };
    Some(Duration::from_secs(u64::clamp(seconds, 1, 60)))
}

async fn create_by_model(
    State(shared): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(shared, format!("{owner}/{name}"), None, headers, body).await
}

async fn create_by_version(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let version = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("version")?.as_str().map(str::to_owned));
    match version {
        Some(version) => {
            create(
                shared,
                "emulator/by-version".to_owned(),
                Some(version),
                headers,
                body,
            )
            .await
        }
        None => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid version",
            "version is required",
        ),
    }
}

async fn create(
    shared: AppState,
    model: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().counts.create_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    if let Some(refused) = shared.lock().faults.refuse_create() {
        return refused;
    }
    let (input, webhook) = match serde_json::from_slice::<Value>(&body) {
        Ok(mut request) => (
            request
                .get_mut("input")
                .map(Value::take)
                .unwrap_or(Value::Null),
            requested_webhook(&request),
        ),
        Err(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Invalid JSON",
                "the body is not JSON",
            );
        }
    };
    let prompt_ok = input
        .get("prompt")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.trim().is_empty());
    let Some(image_ref) = input
        .get("input_image")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            "input_image: field required",
        );
    };
    if !prompt_ok {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            "prompt: field required",
        );
    }
    let output_bytes = shared.lock().faults.output_bytes;
    let output = match output_bytes {
        Some(size) => Ok(padded_jpeg(size)),
        None => derive_output(&shared.fetcher, &image_ref)
            .await
            .map(Bytes::from),
    };
    let id = {
        let mut inner = shared.lock();
        inner.next_id += 1;
        inner.counts.predictions_created += 1;
        let id = format!("emu{:08}{:x}", inner.next_id, std::process::id());
        let faults = &inner.faults;
        let stored = StoredPrediction {
            model,
            version: version.unwrap_or_else(|| "hidden".to_owned()),
            input,
            created: Instant::now(),
            processing: Duration::from_millis(faults.processing_ms),
            starting_polls_left: faults.starting_polls,
            never_finish: faults.never_finish,
            fail_with: faults.fail_with.clone(),
            canceled: false,
            forced_success: false,
            output_list: faults.output_as_list,
            output_base: faults
                .output_base_url
                .clone()
                .unwrap_or_else(|| shared.base_url.clone()),
            output,
        };
        inner.predictions.insert(id.clone(), stored);
        id
    };
    if let Some(url) = webhook {
        tokio::spawn(deliver_when_completed(
            shared.clone(),
            Subject::Prediction,
            id.clone(),
            url,
        ));
    }
    let answer_delay = shared.lock().faults.create_latency_ms;
    if answer_delay > 0 {
        tokio::time::sleep(Duration::from_millis(answer_delay)).await;
    }
    if let Some(wait) = prefer_wait(&headers) {
        let until = Instant::now() + wait;
        loop {
            // Final, or held in `starting` until it is polled: answer now.
            let settled = shared.lock().predictions.get(&id).is_some_and(|p| {
                p.starting_polls_left > 0
                    || matches!(p.status(), "succeeded" | "failed" | "canceled")
            });
            if settled || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let inner = shared.lock();
    let Some(prediction) = inner.predictions.get(&id) else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Lost",
            "prediction vanished",
        );
    };
    let status = if matches!(prediction.status(), "succeeded" | "failed" | "canceled") {
        StatusCode::CREATED
    } else if prefer_wait(&headers).is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    (
        status,
        axum::Json(prediction.to_json(&id, &shared.base_url)),
    )
        .into_response()
}

async fn read_prediction(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.get_requests += 1;
    latency(&shared, |f| f.poll_latency_ms).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let mut inner = shared.lock();
    if inner.faults.failing_polls > 0 {
        inner.faults.failing_polls -= 1;
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "poll failed",
        );
    }
    if inner.faults.malformed_polls > 0 {
        inner.faults.malformed_polls -= 1;
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"id\": \"truncated",
        )
            .into_response();
    }
    match inner.predictions.get_mut(&id) {
        Some(prediction) => {
            let body = prediction.to_json(&id, &shared.base_url);
            prediction.starting_polls_left = prediction.starting_polls_left.saturating_sub(1);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "Not found", "no such prediction"),
    }
}

async fn cancel_prediction(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.cancel_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let mut inner = shared.lock();
    let succeed = inner.faults.succeed_on_cancel;
    match inner.predictions.get_mut(&id) {
        Some(prediction) => {
            if succeed && prediction.output.is_ok() {
                prediction.forced_success = true;
            } else if !matches!(prediction.status(), "succeeded" | "failed") {
                prediction.canceled = true;
            }
            (
                StatusCode::OK,
                axum::Json(prediction.to_json(&id, &shared.base_url)),
            )
                .into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "Not found", "no such prediction"),
    }
}
