//! Webhooks as Replicate sends them: when a prediction or training created with a `webhook`
//! completes, its JSON is POSTed there, signed the Standard Webhooks way (`webhook-id`, the same on every
//! attempt; `webhook-timestamp`; `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{id}.{timestamp}.{body}`, keyed by the `whsec_` secret it serves at
//! `/v1/webhooks/default/secret`), and retried on a non-2xx answer with doubling pauses, the
//! last about a minute after completion. The switches drop, duplicate, delay and reorder
//! deliveries. Only the `completed` event is sent.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::routes::unauthorized;
use crate::state::{AppState, Shared};

/// Attempts of one delivery: the first, then retries after 1, 2, 4, 8, 16 and 32 pauses.
const ATTEMPTS: u32 = 7;
/// How long a prediction is waited for before its webhook is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh `whsec_` secret: 32 random bytes.
pub(crate) fn new_secret() -> String {
    let mut key = [0u8; 32];
    // The OS's randomness; a clock-derived key would do for a dev tool if it were missing.
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut key))
        .is_err()
    {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        key[..16].copy_from_slice(&nanos.as_nanos().to_le_bytes());
    }
    format!("whsec_{}", STANDARD.encode(key))
}

/// `GET /v1/webhooks/default/secret`: the account's signing secret, as Replicate serves it.
pub(crate) async fn default_secret(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    axum::Json(json!({ "key": shared.webhook_secret })).into_response()
}

/// The webhook a create asked for: its URL, unless its events filter leaves out `completed`.
pub(crate) fn requested_webhook(request: &Value) -> Option<String> {
    let url = request.get("webhook")?.as_str()?.to_owned();
    let wants_completed = match request.get("webhook_events_filter") {
        Some(Value::Array(events)) => events.iter().any(|event| event == "completed"),
        _ => true,
    };
    wants_completed.then_some(url)
}

/// What a webhook tells about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject {
    Prediction,
    Training,
}

impl Subject {
    /// The JSON of `id` once it completed: `Some(None)` while it runs, `None` when it is gone.
    fn completed_body(self, shared: &Shared, id: &str) -> Option<Option<String>> {
        let inner = shared.lock();
        match self {
            Self::Prediction => {
                let prediction = inner.predictions.get(id)?;
                Some(
                    matches!(prediction.status(), "succeeded" | "failed" | "canceled")
                        .then(|| prediction.to_json(id, &shared.base_url).to_string()),
                )
            }
            Self::Training => {
                let training = inner.training(id)?;
                Some(
                    training
                        .is_terminal()
                        .then(|| training.to_json(&shared.base_url).to_string()),
                )
            }
        }
    }
}

/// Waits for the prediction or training `id` to complete, then delivers its webhook to `url`
/// as the switches say.
pub(crate) async fn deliver_when_completed(
    shared: AppState,
    subject: Subject,
    id: String,
    url: String,
) {
    let started = Instant::now();
    let body = loop {
        let Some(completed) = subject.completed_body(&shared, &id) else {
            return;
        };
        if let Some(body) = completed {
            break body;
        }
        if started.elapsed() > GIVE_UP_AFTER {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (faults, number) = {
        let mut inner = shared.lock();
        inner.counts.webhooks_completed += 1;
        let number = inner.counts.webhooks_completed;
        if inner.faults.drop_webhooks {
            inner.counts.webhooks_dropped += 1;
            return;
        }
        (inner.faults.clone(), number)
    };
    let mut delay = Duration::from_millis(faults.webhook_delay_ms);
    if faults.reorder_webhooks {
        // Every other completion waits the whole delay, the rest none: later ones overtake.
        delay = if number % 2 == 1 {
            delay
        } else {
            Duration::ZERO
        };
    }
    let copies = if faults.duplicate_webhooks { 2 } else { 1 };
    let retry_base = Duration::from_millis(faults.webhook_retry_base_ms.unwrap_or(1000));
    let message_id = format!("msg_{id}");
    let mut deliveries = Vec::new();
    for _ in 0..copies {
        let (shared, url, body, message_id) = (
            shared.clone(),
            url.clone(),
            body.clone(),
            message_id.clone(),
        );
        deliveries.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            deliver(&shared, &url, &message_id, &body, retry_base).await;
        }));
    }
    for delivery in deliveries {
        let _ = delivery.await;
    }
}

/// One delivery, retried until a 2xx answer or its attempts run out.
async fn deliver(shared: &AppState, url: &str, message_id: &str, body: &str, retry_base: Duration) {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(retry_base * 2u32.pow(attempt - 1)).await;
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let signature = sign(&shared.webhook_secret, message_id, &timestamp, body);
        shared.lock().counts.webhook_attempts += 1;
        let answer = shared
            .fetcher
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", format!("v1,{signature}"))
            .body(body.to_owned())
            .timeout(ATTEMPT_TIMEOUT)
            .send()
            .await;
        if answer.is_ok_and(|answer| answer.status().is_success()) {
            shared.lock().counts.webhooks_accepted += 1;
            return;
        }
    }
}

/// The base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed by the secret's decoded part.
fn sign(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap_or_default();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}
