//! Replicate's models API, as far as trainings need it: a model is created (the destination
//! of a training must exist) and read back; its `latest_version` is the version its last
//! succeeded training made.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::routes::{latency, problem, unauthorized};
use crate::state::{AppState, Inner};
use crate::training_state::{rfc3339, version_hash};

/// One model created with `POST /v1/models`.
#[derive(Debug)]
pub(crate) struct StoredModel {
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) visibility: String,
    pub(crate) hardware: String,
    pub(crate) created_at: SystemTime,
}

/// Whether `part` is a valid owner or model name: lowercase letters, digits, `-`, `_` and
/// `.`, starting and ending with a letter or digit.
fn valid_name(part: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    part.len() <= 100
        && edge_ok(part.chars().next())
        && edge_ok(part.chars().last())
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The model's JSON as `GET /v1/models/{owner}/{name}` answers it.
fn model_json(inner: &Inner, model: &StoredModel) -> Value {
    let full_name = format!("{}/{}", model.owner, model.name);
    let latest_version = inner
        .trainings
        .iter()
        .rev()
        .find(|t| t.destination == full_name && t.status() == "succeeded")
        .map(|t| {
            json!({
                "id": version_hash(&t.id),
                "created_at": rfc3339(t.created_at + t.finish_after),
                "cog_version": "0.9.0",
            })
        });
    json!({
        "url": format!("https://replicate.com/{full_name}"),
        "owner": model.owner,
        "name": model.name,
        "description": model.description,
        "visibility": model.visibility,
        "hardware": model.hardware,
        "github_url": null,
        "paper_url": null,
        "license_url": null,
        "run_count": 0,
        "cover_image_url": null,
        "default_example": null,
        "created_at": rfc3339(model.created_at),
        "latest_version": latest_version,
    })
}

/// `GET /v1/models/{owner}/{name}`: the model, or 404.
pub(crate) async fn get_model(
    State(shared): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.model_get_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let inner = shared.lock();
    match inner.models.get(&format!("{owner}/{name}")) {
        Some(model) => axum::Json(model_json(&inner, model)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "Not found", "Not found."),
    }
}

/// A 422 for a model create.
fn invalid(detail: &str) -> Response {
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Unprocessable Entity",
        detail,
    )
}

/// `POST /v1/models`: creates a model (201), or answers 409 when it exists, 422 when a field
/// is missing or malformed.
pub(crate) async fn create_model(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().counts.model_create_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
            "the body is not JSON",
        );
    };
    let text = |field: &str| request.get(field).and_then(Value::as_str);
    let mut parts = Vec::new();
    for field in ["owner", "name"] {
        match text(field) {
            None => return invalid(&format!("{field}: field required")),
            Some(part) if !valid_name(part) => {
                return invalid(&format!(
                    "{field}: may hold only lowercase letters, digits, '-', '_' and '.', \
                     starting and ending with a letter or digit"
                ));
            }
            Some(part) => parts.push(part.to_owned()),
        }
    }
    let visibility = match text("visibility") {
        Some(visibility @ ("public" | "private")) => visibility.to_owned(),
        Some(_) => return invalid("visibility: must be one of public, private"),
        None => return invalid("visibility: field required"),
    };
    let Some(hardware) = text("hardware").filter(|h| !h.trim().is_empty()) else {
        return invalid("hardware: field required");
    };
    let description = text("description").map(str::to_owned);
    let (name, owner) = (
        parts.pop().unwrap_or_default(),
        parts.pop().unwrap_or_default(),
    );
    let full_name = format!("{owner}/{name}");
    let mut inner = shared.lock();
    if inner.models.contains_key(&full_name) {
        return problem(
            StatusCode::CONFLICT,
            "Conflict",
            "A model with that name already exists",
        );
    }
    let model = StoredModel {
        owner,
        name,
        description,
        visibility,
        hardware: hardware.to_owned(),
        created_at: SystemTime::now(),
    };
    let body = model_json(&inner, &model);
    inner.models.insert(full_name, model);
    inner.counts.models_created += 1;
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_slugs() {
        for good in ["me", "flux-lora", "a.b_c-9", "0"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Me", "-x", "x-", "a/b", "a b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
