//! Creating a prediction: the call that costs money, retried only where nothing can have
//! been made (429, 503, a connection that failed before the request was sent).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use reqwest::{StatusCode, header};
use serde::Serialize;

use super::{Prediction, ReplicateClient, problem_message, retry_hint, unavailable, uncertain};
use crate::adapters::operations;
use crate::ports::{InputImage, PredictionError, PredictionRequest};
use crate::retry::Backoff;
use crate::timing::{self, RemoteCallExt};

/// How much of the time left the create keeps back from `Prefer: wait`, so the API's answer
/// arrives before the request's own timeout (a timeout after sending loses the prediction's id).
const PREFER_WAIT_MARGIN: Duration = Duration::from_secs(4);
/// The safety tolerance sent with an input image (flux-kontext-pro's maximum then).
const SAFETY_TOLERANCE: u8 = 2;

impl ReplicateClient {
    /// Creates a prediction and waits for it (`Prefer: wait`), retrying only where no
    /// prediction can have been made.
    pub async fn create(
        &self,
        request: &PredictionRequest,
        deadline: Instant,
    ) -> Result<Prediction, PredictionError> {
        let url = self.api_url(&format!("v1/models/{}/predictions", self.config.model))?;
        // Serialized once for every attempt (a data URI may be 256 KiB).
        let body = create_body(request)
            .map_err(|error| unavailable(None, format!("the model input: {error}")))?;
        let mut token = self.token(None).await?;
        let mut token_replaced = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < Duration::from_secs(1) {
                return Err(PredictionError::TimedOut {
                    prediction_id: None,
                    running: false,
                });
            }
            let mut create = self
                .http
                .post(url.clone())
                .bearer_auth(token.expose())
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .timeout(remaining);
            // With a webhook, the end is told, not waited for.
            if request.webhook.is_none() {
                let wait = remaining
                    .saturating_sub(PREFER_WAIT_MARGIN)
                    .min(self.config.max_prefer_wait)
                    .as_secs()
                    .clamp(1, 60);
                create = create.header("Prefer", format!("wait={wait}"));
            }
            let sent = create
                .send()
                .remote_call(operations::PREDICTION_CREATE)
                .await;
            let (failure, hint) = match sent {
                Ok(response) if response.status().is_success() => {
                    let text = response
                        .text()
                        .remote_call(operations::PREDICTION_CREATE_ANSWER)
                        .await
                        .unwrap_or_default();
                    return serde_json::from_str::<Prediction>(&text).map_err(|_| {
                        uncertain("the create was accepted but its answer was not a prediction")
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let text = response
                        .text()
                        .remote_call(operations::PREDICTION_CREATE_ANSWER)
                        .await
                        .unwrap_or_default();
                    let message = problem_message(status.as_u16(), &text);
                    let hint = retry_hint(retry_after.as_deref(), &text);
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => (
                            PredictionError::RateLimited {
                                retry_after: hint,
                                message,
                            },
                            hint,
                        ),
                        StatusCode::SERVICE_UNAVAILABLE => (unavailable(None, message), hint),
                        // Nothing was made: the token may have been rotated since it was
                        // read. Read it again, once, and send the create with the new one.
                        StatusCode::UNAUTHORIZED if !token_replaced => {
                            token_replaced = true;
                            if let Some(replacement) = self.config.token.replacement(&token).await {
                                tracing::warn!(
                                    "401 with the cached Replicate token; using the one read again"
                                );
                                token = replacement;
                                continue;
                            }
                            return Err(PredictionError::Rejected {
                                status: status.as_u16(),
                                message,
                            });
                        }
                        status if status.is_server_error() => {
                            // The request reached the API: a prediction may exist. Not retried.
                            return Err(uncertain(&format!(
                                "the create answered {status}: {message}"
                            )));
                        }
                        status => {
                            return Err(PredictionError::Rejected {
                                status: status.as_u16(),
                                message,
                            });
                        }
                    }
                }
                Err(error) if error.is_connect() => (unavailable(None, error.to_string()), None),
                Err(error) if error.is_timeout() => {
                    return Err(uncertain("the create timed out after it was sent"));
                }
                // Nothing was sent: safe to report as unavailable.
                Err(error) if error.is_builder() => {
                    return Err(unavailable(None, error.to_string()));
                }
                // Sent, or maybe sent (a reset, a broken body): a prediction may exist.
                Err(error) => {
                    return Err(uncertain(&format!(
                        "the create failed after it was sent: {error}"
                    )));
                }
            };
            let delay = hint.unwrap_or_else(|| Backoff::REPLICATE.delay(attempt));
            let in_time = Instant::now() + delay + Duration::from_secs(1) < deadline;
            if attempt >= self.config.max_attempts || !in_time {
                return Err(failure);
            }
            tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %failure, "create retried");
            timing::pause_before_retry(delay).await;
        }
    }
}

/// The model's input for flux-kontext-pro, borrowed from the request.
#[derive(Debug, Serialize)]
struct ModelInput<'a> {
    prompt: &'a str,
    /// A data URI (built here) or the photo's presigned URL.
    input_image: Cow<'a, str>,
    aspect_ratio: &'static str,
    output_format: &'static str,
    safety_tolerance: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

/// The only webhook event asked for: the prediction's end (succeeded, failed or canceled).
const WEBHOOK_EVENTS: [&str; 1] = ["completed"];

/// The create request's body, `{"input": {...}}` (with `webhook` and its events filter when
/// the request names one), as JSON bytes.
fn create_body(request: &PredictionRequest) -> Result<Bytes, serde_json::Error> {
    #[derive(Serialize)]
    struct CreateBody<'a> {
        input: ModelInput<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        webhook: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        webhook_events_filter: Option<[&'static str; 1]>,
    }
    let input_image = match &request.input_image {
        InputImage::Inline {
            content_type,
            bytes,
        } => Cow::Owned(format!(
            "data:{content_type};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )),
        InputImage::Url(url) => Cow::Borrowed(url.as_str()),
    };
    let input = ModelInput {
        prompt: &request.prompt,
        input_image,
        aspect_ratio: "match_input_image",
        output_format: "jpg",
        safety_tolerance: SAFETY_TOLERANCE,
        seed: request.seed,
    };
    let webhook = request.webhook.as_deref();
    let body = CreateBody {
        input,
        webhook,
        webhook_events_filter: webhook.map(|_| WEBHOOK_EVENTS),
    };
    serde_json::to_vec(&body).map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The `input` of the create body for `request`.
    fn model_input(request: &PredictionRequest) -> Value {
        let body: Value = serde_json::from_slice(&create_body(request).unwrap()).unwrap();
        body["input"].clone()
    }

    fn request(input_image: InputImage) -> PredictionRequest {
        PredictionRequest {
            prompt: "a prompt".to_owned(),
            input_image,
            seed: Some(7),
            webhook: None,
        }
    }

    #[test]
    fn a_webhook_asks_for_the_completed_event_only() {
        let mut with_webhook = request(InputImage::Url("https://bucket/x.jpg".to_owned()));
        let body = |request: &PredictionRequest| -> Value {
            serde_json::from_slice(&create_body(request).unwrap()).unwrap()
        };
        assert!(body(&with_webhook).get("webhook").is_none());
        assert!(body(&with_webhook).get("webhook_events_filter").is_none());
        with_webhook.webhook = Some("https://api.example/hook?set=S&item=1".to_owned());
        let sent = body(&with_webhook);
        assert_eq!(sent["webhook"], "https://api.example/hook?set=S&item=1");
        assert_eq!(sent["webhook_events_filter"], json!(["completed"]));
        assert_eq!(sent["input"]["prompt"], "a prompt");
    }

    #[test]
    fn model_input_is_what_flux_kontext_pro_takes() {
        let input = model_input(&request(InputImage::Inline {
            content_type: "image/png".to_owned(),
            bytes: b"abc".to_vec(),
        }));
        assert_eq!(
            input,
            json!({
                "prompt": "a prompt",
                "input_image": "data:image/png;base64,YWJj",
                "aspect_ratio": "match_input_image",
                "output_format": "jpg",
                "safety_tolerance": 2,
                "seed": 7,
            })
        );
        let mut by_url = request(InputImage::Url("https://bucket/x.jpg?sig".to_owned()));
        by_url.seed = None;
        let input = model_input(&by_url);
        assert_eq!(input["input_image"], "https://bucket/x.jpg?sig");
        assert!(input.get("seed").is_none());
    }

    #[test]
    fn data_uri_or_url_at_the_256_kib_boundary() {
        let content_type = "image/jpeg";
        let overhead = "data:image/jpeg;base64,".len();
        // The largest byte count whose URI still fits: 4 * ceil(n / 3) <= 262144 - overhead.
        let largest = (InputImage::MAX_DATA_URI_LEN - overhead) / 4 * 3;
        assert!(InputImage::data_uri_len(content_type, largest) <= InputImage::MAX_DATA_URI_LEN);
        assert!(InputImage::data_uri_len(content_type, largest + 1) > InputImage::MAX_DATA_URI_LEN);

        let fits = InputImage::Inline {
            content_type: content_type.to_owned(),
            bytes: vec![0; largest],
        };
        let uri = model_input(&request(fits))["input_image"]
            .as_str()
            .unwrap()
            .len();
        assert_eq!(uri, InputImage::data_uri_len(content_type, largest));
        assert!(uri <= InputImage::MAX_DATA_URI_LEN);
    }
}
