//! Replicate adapter: runs predictions of an image-editing model over Replicate's HTTP API,
//! carefully, because every prediction costs money.
//!
//! - Create with `POST /v1/models/{owner}/{name}/predictions` and `Prefer: wait=N`, retried
//!   only where nothing can have been made: 429, 503, and a connection that failed before the
//!   request was sent. Other failures (401, 402, 422, other 5xx, a timeout after sending) are
//!   not retried.
//! - Poll the prediction with growing pauses up to the caller's deadline (reads are retried on
//!   5xx and timeouts); at the deadline cancel it, then read it once more and keep its output
//!   if it succeeded meanwhile.
//! - Download the output only from allowed hosts, with redirects off, within a size cap, and
//!   only when it is a JPEG. The token goes to the API's base URL only, never to an output host.

mod config;
mod output;
mod wire;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use reqwest::{StatusCode, Url, header};
use serde::Serialize;
use serde_json::Value;

pub use config::{
    ApiToken, DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_OUTPUT_HOSTS, ReplicateConfig, TokenSource,
};
pub use output::{allowed_output_url, is_jpeg};
pub use wire::{Prediction, problem_message, retry_hint};

use crate::ports::{
    AtDeadline, GeneratedImage, GenerationError, GenerationRequest, ImageGenerator, InputImage,
    StartedPrediction, SucceededPrediction,
};
use crate::timing::{self, RemoteCallExt, random_up_to};

/// How long the cancel and the last read at the deadline may each take.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of the time left the create keeps back from `Prefer: wait`, so the API's answer
/// arrives before the request's own timeout (a timeout after sending loses the prediction's id).
const PREFER_WAIT_MARGIN: Duration = Duration::from_secs(4);
/// How long past the prediction's deadline (or its end, if later) the output download may run.
const DOWNLOAD_GRACE: Duration = Duration::from_secs(5);
/// The safety tolerance sent with an input image (flux-kontext-pro's maximum then).
const SAFETY_TOLERANCE: u8 = 2;

/// A Replicate API client. Build it once per execution environment: it holds the connection
/// pool.
#[derive(Debug, Clone)]
pub struct ReplicateClient {
    http: reqwest::Client,
    config: ReplicateConfig,
}

/// A failed read of a prediction, and whether trying again may help.
struct ReadFailure {
    retryable: bool,
    message: String,
}

/// A failed download, and whether trying again may help.
enum DownloadFailure {
    Refused(String),
    Transient(String),
}

impl ReplicateClient {
    /// A client with its own connection pool; redirects are never followed. TLS trusts
    /// Mozilla's root certificates, compiled in: nothing is read from disk when an execution
    /// environment starts (the system's bundle, read and parsed, costs milliseconds of cold
    /// start).
    pub fn new(config: ReplicateConfig) -> Result<Self, reqwest::Error> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let mut builder = reqwest::Client::builder();
        // Without it (a provider that offers no safe protocol version cannot happen with
        // aws-lc-rs), reqwest's own TLS set-up applies.
        if let Ok(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls);
        }
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!(
                "training-image-service/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self { http, config })
    }

    /// Creates a prediction and waits for it (`Prefer: wait`), retrying only where no
    /// prediction can have been made.
    pub async fn create(
        &self,
        request: &GenerationRequest,
        deadline: Instant,
    ) -> Result<Prediction, GenerationError> {
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
                return Err(GenerationError::TimedOut {
                    prediction_id: None,
                });
            }
            let wait = remaining
                .saturating_sub(PREFER_WAIT_MARGIN)
                .min(self.config.max_prefer_wait)
                .as_secs()
                .clamp(1, 60);
            let sent = self
                .http
                .post(url.clone())
                .bearer_auth(token.expose())
                .header("Prefer", format!("wait={wait}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .timeout(remaining)
                .send()
                .remote_call("Replicate create")
                .await;
            let (failure, hint) = match sent {
                Ok(response) if response.status().is_success() => {
                    let text = response
                        .text()
                        .remote_call("Replicate create (answer)")
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
                        .remote_call("Replicate create (answer)")
                        .await
                        .unwrap_or_default();
                    let message = problem_message(status.as_u16(), &text);
                    let hint = retry_hint(retry_after.as_deref(), &text);
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => (
                            GenerationError::RateLimited {
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
                            return Err(GenerationError::Rejected {
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
                            return Err(GenerationError::Rejected {
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
            let delay = hint.unwrap_or_else(|| backoff(attempt));
            let in_time = Instant::now() + delay + Duration::from_secs(1) < deadline;
            if attempt >= self.config.max_attempts || !in_time {
                return Err(failure);
            }
            tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %failure, "create retried");
            timing::pause_before_retry(delay).await;
        }
    }

    /// Reads a prediction by id.
    pub async fn get(&self, prediction_id: &str) -> Result<Prediction, GenerationError> {
        let url = self.prediction_url(prediction_id, None)?;
        let read = || {
            self.read(&url, self.config.request_timeout)
                .remote_call("Replicate get")
        };
        let first = match read().await {
            Err(failure) if failure.retryable => {
                tracing::warn!(prediction_id, error = %failure.message, "read failed; reading once more");
                read().await
            }
            first => first,
        };
        first.map_err(|failure| unavailable(Some(prediction_id), failure.message))
    }

    /// Polls until the prediction is terminal or the deadline comes; then cancels it and
    /// reads it once more, keeping it if it succeeded meanwhile.
    pub async fn wait(
        &self,
        mut prediction: Prediction,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<Prediction, GenerationError> {
        let get_url = self.prediction_url(
            &prediction.id,
            prediction.urls.as_ref().and_then(|u| u.get.as_deref()),
        )?;
        let mut interval = self.config.poll_interval;
        let mut failures = 0;
        while !prediction.is_terminal() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return self
                    .read_at_deadline(&prediction.id, &get_url, at_deadline)
                    .await;
            }
            tokio::time::sleep(interval.min(remaining))
                .remote_call("Replicate poll pause")
                .await;
            interval = (interval * 3 / 2).min(self.config.max_poll_interval);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                continue;
            }
            match self
                .read(&get_url, self.config.request_timeout.min(remaining))
                .remote_call("Replicate get")
                .await
            {
                Ok(read) => {
                    prediction = read;
                    failures = 0;
                }
                Err(failure) if failure.retryable && failures + 1 < self.config.max_attempts => {
                    failures += 1;
                    tracing::warn!(prediction_id = %prediction.id, failures, error = %failure.message, "poll failed; retrying");
                }
                Err(failure) => {
                    // Stop paying for a prediction whose image we cannot fetch.
                    self.cancel(&prediction.id)
                        .remote_call("Replicate cancel")
                        .await;
                    return Err(unavailable(Some(&prediction.id), failure.message));
                }
            }
        }
        Ok(prediction)
    }

    /// Downloads a succeeded prediction's output and checks it, retrying until `finish_by`.
    pub async fn download_output(
        &self,
        succeeded: &SucceededPrediction,
        finish_by: Instant,
    ) -> Result<Vec<u8>, GenerationError> {
        let prediction_id = &succeeded.prediction_id;
        let url = allowed_output_url(&succeeded.output_url, &self.config.output_hosts)
            .map_err(|reason| bad_output(prediction_id, reason))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = finish_by.saturating_duration_since(Instant::now());
            let timeout = (self.config.request_timeout * 2)
                .min(remaining)
                .max(Duration::from_secs(1));
            match self
                .fetch_output(url.clone(), timeout)
                .remote_call("Replicate download")
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(DownloadFailure::Refused(reason)) => {
                    return Err(bad_output(prediction_id, reason));
                }
                Err(DownloadFailure::Transient(message))
                    if attempt < self.config.max_attempts
                        && Instant::now() + backoff(attempt) < finish_by =>
                {
                    tracing::warn!(%prediction_id, attempt, error = %message, "output download retried");
                    timing::pause_before_retry(backoff(attempt)).await;
                }
                Err(DownloadFailure::Transient(message)) => {
                    return Err(unavailable(Some(prediction_id), message));
                }
            }
        }
    }

    /// Waits for a created prediction until it succeeded, with an output URL from an allowed
    /// host. An error says what happened and names the prediction.
    pub async fn settle(
        &self,
        created: Prediction,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, GenerationError> {
        let prediction = self.wait(created, deadline, at_deadline).await?;
        match prediction.status.as_str() {
            "succeeded" => {}
            "failed" => {
                return Err(GenerationError::Failed {
                    message: prediction.error_message(),
                    prediction_id: prediction.id,
                });
            }
            _ => {
                return Err(GenerationError::Canceled {
                    prediction_id: prediction.id,
                });
            }
        }
        let raw = prediction.output_url().ok_or_else(|| {
            bad_output(
                &prediction.id,
                "the prediction has no output URL".to_owned(),
            )
        })?;
        let url = allowed_output_url(raw, &self.config.output_hosts)
            .map_err(|reason| bad_output(&prediction.id, reason))?;
        Ok(SucceededPrediction {
            prediction_id: prediction.id,
            output_url: url.into(),
        })
    }

    /// At the deadline: cancels the prediction (unless a later run will resume it), then reads
    /// it once more and keeps it if it succeeded meanwhile.
    async fn read_at_deadline(
        &self,
        prediction_id: &str,
        get_url: &Url,
        at_deadline: AtDeadline,
    ) -> Result<Prediction, GenerationError> {
        let timed_out = || GenerationError::TimedOut {
            prediction_id: Some(prediction_id.to_owned()),
        };
        if at_deadline == AtDeadline::Cancel {
            self.cancel(prediction_id)
                .remote_call("Replicate cancel")
                .await;
        }
        match self
            .read(get_url, FINAL_READ_TIMEOUT)
            .remote_call("Replicate get")
            .await
        {
            Ok(prediction) if prediction.status == "succeeded" => {
                tracing::info!(
                    prediction_id,
                    "prediction succeeded while it was being canceled"
                );
                Ok(prediction)
            }
            _ => Err(timed_out()),
        }
    }

    /// Cancels a prediction, best effort: the outcome is logged, never returned.
    async fn cancel(&self, prediction_id: &str) {
        let (url, token) = match (
            self.api_url(&format!("v1/predictions/{prediction_id}/cancel")),
            self.token(Some(prediction_id)).await,
        ) {
            (Ok(url), Ok(token)) => (url, token),
            _ => {
                tracing::error!(prediction_id, "cannot cancel: no URL or token");
                return;
            }
        };
        let sent = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            .timeout(FINAL_READ_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) => tracing::warn!(
                prediction_id,
                status = response.status().as_u16(),
                "prediction canceled"
            ),
            Err(error) => tracing::error!(prediction_id, %error, "cancel failed"),
        }
    }

    async fn read(&self, url: &Url, timeout: Duration) -> Result<Prediction, ReadFailure> {
        let token = self
            .config
            .token
            .token()
            .await
            .map_err(|message| ReadFailure {
                retryable: false,
                message,
            })?;
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(token.expose())
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| ReadFailure {
                retryable: true,
                message: error.to_string(),
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|error| ReadFailure {
            retryable: true,
            message: error.to_string(),
        })?;
        if !status.is_success() {
            // A 401 is worth another read only once the token was read again and changed
            // (rotated): the next read sends the new one.
            let rotated = status == StatusCode::UNAUTHORIZED
                && self.config.token.replacement(&token).await.is_some();
            return Err(ReadFailure {
                retryable: status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || rotated,
                message: problem_message(status.as_u16(), &text),
            });
        }
        serde_json::from_str(&text).map_err(|_| ReadFailure {
            retryable: true,
            message: "the prediction could not be read (malformed JSON)".to_owned(),
        })
    }

    async fn fetch_output(&self, url: Url, timeout: Duration) -> Result<Vec<u8>, DownloadFailure> {
        let transient = |error: reqwest::Error| DownloadFailure::Transient(error.to_string());
        // No token here: outputs are fetched anonymously, from allowed hosts only.
        let mut response = self
            .http
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(transient)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(DownloadFailure::Refused(format!(
                "the output URL redirects ({status}); redirects are not followed"
            )));
        }
        if status.is_server_error() {
            return Err(DownloadFailure::Transient(format!(
                "output download got {status}"
            )));
        }
        if !status.is_success() {
            return Err(DownloadFailure::Refused(format!(
                "the output is not available ({status})"
            )));
        }
        let cap = self.config.max_output_bytes;
        let too_large =
            || DownloadFailure::Refused(format!("the output is larger than {cap} bytes"));
        if response.content_length().is_some_and(|length| length > cap) {
            return Err(too_large());
        }
        let expected = response.content_length().unwrap_or(0).min(cap);
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(transient)? {
            if (bytes.len() + chunk.len()) as u64 > cap {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if !is_jpeg(&bytes) {
            return Err(DownloadFailure::Refused(
                "the output is not a JPEG".to_owned(),
            ));
        }
        Ok(bytes)
    }

    /// The API token (read from SSM on first use when it lives there).
    async fn token(&self, prediction_id: Option<&str>) -> Result<ApiToken, GenerationError> {
        self.config
            .token
            .token()
            .await
            .map_err(|message| unavailable(prediction_id, message))
    }

    /// A URL on the API's base URL.
    fn api_url(&self, path: &str) -> Result<Url, GenerationError> {
        self.config
            .base_url
            .join(path)
            .map_err(|error| unavailable(None, format!("bad API URL: {error}")))
    }

    /// Where to read a prediction: the `urls.get` it carries when that is on the API's own
    /// origin (the token goes nowhere else), else `v1/predictions/{id}` on the base URL.
    fn prediction_url(
        &self,
        prediction_id: &str,
        get: Option<&str>,
    ) -> Result<Url, GenerationError> {
        let valid_id = !prediction_id.is_empty()
            && prediction_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_id {
            // A prediction was made (its create answered), whatever its id looks like.
            return Err(unavailable(
                Some(prediction_id),
                "the API returned a malformed prediction id".to_owned(),
            ));
        }
        let same_origin = get
            .and_then(|raw| Url::parse(raw).ok())
            .filter(|url| url.origin() == self.config.base_url.origin());
        match same_origin {
            Some(url) => Ok(url),
            None => self.api_url(&format!("v1/predictions/{prediction_id}")),
        }
    }
}

impl ImageGenerator for ReplicateClient {
    async fn start(
        &self,
        request: &GenerationRequest,
        deadline: Instant,
    ) -> Result<StartedPrediction, GenerationError> {
        let started = Instant::now();
        let created = self.create(request, deadline).await?;
        tracing::info!(prediction_id = %created.id, status = %created.status, elapsed_ms = started.elapsed().as_millis() as u64, "prediction created");
        Ok(StartedPrediction {
            prediction_id: created.id.clone(),
            state: serde_json::to_value(&created).unwrap_or(Value::Null),
        })
    }

    async fn finish(
        &self,
        started: StartedPrediction,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, GenerationError> {
        let prediction = match serde_json::from_value::<Prediction>(started.state) {
            Ok(prediction) if prediction.id == started.prediction_id => prediction,
            _ => self.get(&started.prediction_id).await?,
        };
        self.settle(prediction, deadline, at_deadline).await
    }

    async fn resume(
        &self,
        prediction_id: &str,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, GenerationError> {
        tracing::info!(
            prediction_id,
            "resuming a prediction paid for by an earlier run"
        );
        let prediction = self.get(prediction_id).await?;
        self.settle(prediction, deadline, at_deadline).await
    }

    async fn download(
        &self,
        succeeded: &SucceededPrediction,
        deadline: Instant,
    ) -> Result<GeneratedImage, GenerationError> {
        let started = Instant::now();
        let finish_by = deadline.max(started) + DOWNLOAD_GRACE;
        let bytes = self.download_output(succeeded, finish_by).await?;
        tracing::info!(prediction_id = %succeeded.prediction_id, bytes = bytes.len(), elapsed_ms = started.elapsed().as_millis() as u64, "prediction output downloaded");
        Ok(GeneratedImage {
            prediction_id: succeeded.prediction_id.clone(),
            model: self.config.model.clone(),
            bytes,
        })
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

/// The create request's body, `{"input": {...}}`, as JSON bytes.
fn create_body(request: &GenerationRequest) -> Result<Bytes, serde_json::Error> {
    #[derive(Serialize)]
    struct CreateBody<'a> {
        input: ModelInput<'a>,
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
    serde_json::to_vec(&CreateBody { input }).map(Bytes::from)
}

fn bad_output(prediction_id: &str, reason: String) -> GenerationError {
    GenerationError::BadOutput {
        prediction_id: prediction_id.to_owned(),
        reason,
    }
}

fn uncertain(message: &str) -> GenerationError {
    GenerationError::Uncertain {
        message: message.to_owned(),
    }
}

fn unavailable(prediction_id: Option<&str>, message: String) -> GenerationError {
    GenerationError::Unavailable {
        prediction_id: prediction_id.map(str::to_owned),
        message,
    }
}

/// Exponential backoff with jitter: half of 250 ms × 2^(attempt−1) (capped at 4 s) plus a
/// random part up to the other half.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(250)
        .saturating_mul(1 << attempt.saturating_sub(1).min(4))
        .min(Duration::from_secs(4));
    let half = base / 2;
    half + Duration::from_nanos(random_up_to(half.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `input` of the create body for `request`.
    fn model_input(request: &GenerationRequest) -> Value {
        let body: Value = serde_json::from_slice(&create_body(request).unwrap()).unwrap();
        body["input"].clone()
    }

    fn request(input_image: InputImage) -> GenerationRequest {
        GenerationRequest {
            prompt: "a prompt".to_owned(),
            input_image,
            seed: Some(7),
        }
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

        let fits = InputImage::choose(content_type, vec![0; largest], || {
            unreachable!("no URL needed")
        });
        let InputImage::Inline { bytes, .. } = &fits else {
            panic!("expected inline, got {fits:?}");
        };
        let uri = model_input(&request(fits.clone()))["input_image"]
            .as_str()
            .unwrap()
            .len();
        assert_eq!(uri, InputImage::data_uri_len(content_type, bytes.len()));
        assert!(uri <= InputImage::MAX_DATA_URI_LEN);

        let too_big = InputImage::choose(content_type, vec![0; largest + 1], || {
            "https://u".to_owned()
        });
        assert_eq!(too_big, InputImage::Url("https://u".to_owned()));
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let delay = backoff(attempt);
            let base =
                Duration::from_millis(250 << (attempt - 1).min(4)).min(Duration::from_secs(4));
            assert!(
                delay >= base / 2 && delay <= base,
                "attempt {attempt}: {delay:?}"
            );
        }
    }
}
