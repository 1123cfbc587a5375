//! Replicate's trainings and models: the trainer port over the same client (its token, its
//! connection pool, no redirects). A create is the call that costs money: a timeout or a 5xx
//! other than 503 after it was sent is reported uncertain (a training may exist), never
//! retried here; 429, 503 and connections that never opened made nothing.

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ReplicateClient, problem_message};
use crate::domain::training::ModelName;
use crate::ports::{RemoteTraining, Trainer, TrainerError, TrainingInput};
use crate::timing::RemoteCallExt;

/// The most pages of the trainings list read when looking for a lost create.
const MAX_LIST_PAGES: usize = 10;
/// The only webhook event asked for: the training's end.
const WEBHOOK_EVENTS: [&str; 1] = ["completed"];

/// The trainer: a training model's version, run through a [`ReplicateClient`].
#[derive(Debug, Clone)]
pub struct ReplicateTrainer {
    client: ReplicateClient,
    model: ModelName,
    version: String,
}

impl ReplicateTrainer {
    /// Trains with `model`'s `version` (`TRAINER_MODEL`, `TRAINER_VERSION`) through `client`.
    pub fn new(client: ReplicateClient, model: ModelName, version: impl Into<String>) -> Self {
        Self {
            client,
            model,
            version: version.into(),
        }
    }

    /// One API call: its status and body, or why it got none. `create` marks the one call
    /// that costs money.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        create: bool,
    ) -> Result<(StatusCode, String), TrainerError> {
        let url = self
            .client
            .api_url(path)
            .map_err(|error| TrainerError::Unavailable(error.to_string()))?;
        self.call_url(method, url, body, create).await
    }

    /// [`Self::call`] of a whole URL (on the API's own origin: the token goes nowhere else).
    async fn call_url(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<Value>,
        create: bool,
    ) -> Result<(StatusCode, String), TrainerError> {
        let operation = if create {
            "Replicate POST (training create)"
        } else {
            "Replicate (trainings and models)"
        };
        if url.origin() != self.client.config.base_url.origin() {
            return Err(TrainerError::Unavailable(format!(
                "{} is not on the API's origin",
                url.origin().ascii_serialization()
            )));
        }
        let token = self
            .client
            .token(None)
            .await
            .map_err(|error| TrainerError::Unavailable(error.to_string()))?;
        let mut request = self
            .client
            .http
            .request(method, url)
            .bearer_auth(token.expose())
            .timeout(self.client.config.request_timeout);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = match request.send().remote_call(operation).await {
            Ok(response) => response,
            Err(error) if error.is_connect() || error.is_builder() => {
                return Err(TrainerError::Unavailable(error.to_string()));
            }
            Err(error) if create => return Err(TrainerError::Uncertain(error.to_string())),
            Err(error) => return Err(TrainerError::Unavailable(error.to_string())),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) if create && status.is_success() => {
                return Err(TrainerError::Uncertain(error.to_string()));
            }
            Err(error) => return Err(TrainerError::Unavailable(error.to_string())),
        };
        if status.is_success() {
            return Ok((status, text));
        }
        let message = problem_message(status.as_u16(), &text);
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                TrainerError::Unavailable(message)
            }
            status if status.is_server_error() && create => TrainerError::Uncertain(message),
            status if status.is_server_error() => TrainerError::Unavailable(message),
            status => TrainerError::Refused {
                status: status.as_u16(),
                message,
            },
        })
    }

    /// A training read from an answer's body.
    fn training(text: &str) -> Result<RemoteTraining, TrainerError> {
        serde_json::from_str::<Training>(text)
            .map(Training::into_remote)
            .map_err(|error| TrainerError::Unavailable(format!("not a training: {error}")))
    }
}

/// Replicate's ids are letters and digits: anything else is not put in a path.
fn checked_id(id: &str) -> Result<&str, TrainerError> {
    let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then_some(id).ok_or_else(|| TrainerError::Refused {
        status: 404,
        message: format!("{id:?} is not a training id"),
    })
}

impl Trainer for ReplicateTrainer {
    async fn ensure_model(&self, model: &ModelName) -> Result<(), TrainerError> {
        let path = format!("v1/models/{}/{}", model.owner, model.name);
        match self.call(Method::GET, &path, None, false).await {
            Ok(_) => return Ok(()),
            Err(TrainerError::Refused { status: 404, .. }) => {}
            Err(error) => return Err(error),
        }
        let body = json!({
            "owner": model.owner,
            "name": model.name,
            "visibility": "private",
            "hardware": "cpu",
            "description": "LoRA of a storyboard system actor, trained by the training-image service",
        });
        match self
            .call(Method::POST, "v1/models", Some(body), false)
            .await
        {
            Ok(_) => {
                tracing::info!(model = %model, "destination model created");
                Ok(())
            }
            // Made meanwhile by another run.
            Err(TrainerError::Refused { status: 409, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn create(&self, input: &TrainingInput) -> Result<RemoteTraining, TrainerError> {
        let path = format!(
            "v1/models/{}/{}/versions/{}/trainings",
            self.model.owner, self.model.name, self.version
        );
        let mut body = json!({
            "destination": input.destination.to_string(),
            "input": {
                "input_images": input.input_images,
                "trigger_word": input.trigger_word,
                "autocaption": false,
                "steps": input.steps,
                "lora_rank": input.lora_rank,
            },
        });
        if let Some(webhook) = &input.webhook {
            body["webhook"] = json!(webhook);
            body["webhook_events_filter"] = json!(WEBHOOK_EVENTS);
        }
        let (_, text) = self.call(Method::POST, &path, Some(body), true).await?;
        // Made and billed: an answer that cannot be read loses only its id.
        Self::training(&text).map_err(|error| TrainerError::Uncertain(error.to_string()))
    }

    async fn get(&self, id: &str) -> Result<RemoteTraining, TrainerError> {
        let path = format!("v1/trainings/{}", checked_id(id)?);
        let (_, text) = self.call(Method::GET, &path, None, false).await?;
        Self::training(&text)
    }

    async fn cancel(&self, id: &str) -> Result<RemoteTraining, TrainerError> {
        let path = format!("v1/trainings/{}/cancel", checked_id(id)?);
        let (_, text) = self.call(Method::POST, &path, None, false).await?;
        Self::training(&text)
    }

    async fn find_created(
        &self,
        destination: &ModelName,
        since: &str,
        input_key: &str,
    ) -> Result<Option<RemoteTraining>, TrainerError> {
        let since = since.get(..19).unwrap_or(since);
        let destination = destination.to_string();
        let mut url = self
            .client
            .api_url("v1/trainings")
            .map_err(|error| TrainerError::Unavailable(error.to_string()))?;
        for _ in 0..MAX_LIST_PAGES {
            let (_, text) = self.call_url(Method::GET, url, None, false).await?;
            let page: TrainingPage = serde_json::from_str(&text)
                .map_err(|error| TrainerError::Unavailable(format!("not a list: {error}")))?;
            let created = |training: &Training| {
                let at = training.created_at.as_deref().unwrap_or_default();
                at.get(..19).unwrap_or(at).to_owned()
            };
            // Newest first: a page that reaches before `since` is the last one read.
            let older = page
                .results
                .iter()
                .any(|training| created(training).as_str() < since);
            if let Some(found) = page.results.into_iter().find(|training| {
                let from_zip = training
                    .input
                    .as_ref()
                    .and_then(|input| input.get("input_images")?.as_str())
                    .and_then(|url| reqwest::Url::parse(url).ok())
                    .is_some_and(|url| url.path().ends_with(input_key));
                let to_destination = training
                    .destination
                    .as_deref()
                    .is_none_or(|named| named == destination);
                from_zip && to_destination && created(training).as_str() >= since
            }) {
                return Ok(Some(found.into_remote()));
            }
            match page.next.as_deref().map(reqwest::Url::parse) {
                Some(Ok(next)) if !older => url = next,
                _ => return Ok(None),
            }
        }
        // Not given up on a list not read to its end: looked for again at the next look.
        Err(TrainerError::Unavailable(format!(
            "the trainings list goes on past {MAX_LIST_PAGES} pages since {since}"
        )))
    }
}

/// A training as the API returns it (unknown fields ignored).
#[derive(Debug, Deserialize)]
struct Training {
    id: String,
    status: String,
    #[serde(default)]
    logs: Option<String>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    metrics: Option<Metrics>,
    #[serde(default)]
    output: Option<TrainingOutput>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    destination: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Metrics {
    #[serde(default)]
    predict_time: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct TrainingOutput {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    weights: Option<String>,
}

/// A page of the trainings list, newest first.
#[derive(Debug, Deserialize)]
struct TrainingPage {
    #[serde(default)]
    results: Vec<Training>,
    /// The next (older) page, if any.
    #[serde(default)]
    next: Option<String>,
}

impl Training {
    fn into_remote(self) -> RemoteTraining {
        let error = match self.error {
            Some(Value::String(message)) if !message.is_empty() => Some(message),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let (version, weights_url) = self
            .output
            .map_or((None, None), |output| (output.version, output.weights));
        RemoteTraining {
            id: self.id,
            status: self.status,
            logs: self.logs,
            error,
            predict_time: self.metrics.and_then(|metrics| metrics.predict_time),
            version,
            weights_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_training_is_read_leniently() {
        let text = r#"{"id":"t1","status":"succeeded","logs":"a\nb","error":null,
            "metrics":{"predict_time":12.5},"output":{"version":"o/n:abc","weights":"https://replicate.delivery/x/trained_model.tar"},
            "created_at":"2026-12-03T10:00:00.123Z","extra":1}"#;
        let remote = ReplicateTrainer::training(text).unwrap();
        assert_eq!(remote.predict_time, Some(12.5));
        assert_eq!(remote.version.as_deref(), Some("o/n:abc"));
        assert!(remote.weights_url.unwrap().ends_with("trained_model.tar"));
        let failed =
            ReplicateTrainer::training(r#"{"id":"t2","status":"failed","error":{"detail":"oom"}}"#)
                .unwrap();
        assert_eq!(failed.error.as_deref(), Some(r#"{"detail":"oom"}"#));
        assert!(ReplicateTrainer::training("{}").is_err());
        assert!(checked_id("../x").is_err() && checked_id("abc123").is_ok());
    }
}
