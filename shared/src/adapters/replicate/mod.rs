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
mod create;
mod download;
mod generator;
mod output;
mod poll;
mod trainer;
pub mod webhook_signature;
mod weights;
mod wire;

use std::time::Duration;

use reqwest::Url;

pub use config::{
    ApiToken, DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_OUTPUT_HOSTS, ReplicateConfig, TokenSource,
    parse_hosts,
};
pub use output::{allowed_output_url, is_jpeg};
pub use trainer::ReplicateTrainer;
pub(crate) use weights::download_fault;
pub use wire::{Prediction, problem_message, retry_hint};

use crate::ports::PredictionError;

/// How long the cancel and the last read at the deadline may each take.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A Replicate API client. Build it once per execution environment: it holds the connection
/// pool.
#[derive(Debug, Clone)]
pub struct ReplicateClient {
    http: reqwest::Client,
    config: ReplicateConfig,
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

    /// The API token (read from SSM on first use when it lives there).
    pub(super) async fn token(
        &self,
        prediction_id: Option<&str>,
    ) -> Result<ApiToken, PredictionError> {
        self.config
            .token
            .token()
            .await
            .map_err(|message| unavailable(prediction_id, message))
    }

    /// A URL on the API's base URL.
    pub(super) fn api_url(&self, path: &str) -> Result<Url, PredictionError> {
        self.config
            .base_url
            .join(path)
            .map_err(|error| unavailable(None, format!("bad API URL: {error}")))
    }

    /// Where to read a prediction: the `urls.get` it carries when that is on the API's own
    /// origin (the token goes nowhere else), else `v1/predictions/{id}` on the base URL.
    pub(super) fn prediction_url(
        &self,
        prediction_id: &str,
        get: Option<&str>,
    ) -> Result<Url, PredictionError> {
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

/// A prediction error of this kind.
pub(super) fn bad_output(prediction_id: &str, reason: String) -> PredictionError {
    PredictionError::BadOutput {
        prediction_id: prediction_id.to_owned(),
        reason,
    }
}

/// A prediction error of this kind.
pub(super) fn uncertain(message: &str) -> PredictionError {
    PredictionError::Uncertain {
        message: message.to_owned(),
    }
}

/// A prediction error of this kind.
pub(super) fn unavailable(prediction_id: Option<&str>, message: String) -> PredictionError {
    PredictionError::Unavailable {
        prediction_id: prediction_id.map(str::to_owned),
        message,
    }
}
