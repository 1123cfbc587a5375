//! The Replicate client's settings (read from the environment by `entry::config`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::adapters::ssm::SecureParameter;

/// The default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com";
/// The default model.
pub const DEFAULT_MODEL: &str = "black-forest-labs/flux-kontext-pro";
/// The default hosts outputs may be fetched from.
pub const DEFAULT_OUTPUT_HOSTS: &str = "replicate.delivery";

/// The API token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Where the token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Given directly (`REPLICATE_API_TOKEN`, for local use).
    Static(ApiToken),
    /// An SSM SecureString, read on first use and cached for the execution environment.
    Parameter(Arc<SecureParameter>),
}

impl From<ApiToken> for TokenSource {
    fn from(token: ApiToken) -> Self {
        Self::Static(token)
    }
}

impl TokenSource {
    /// A token to use instead of `stale`, which the API refused (401): the parameter read
    /// again, when it now holds another value. `None` when there is nothing newer (a static
    /// token, an unchanged or unreadable parameter).
    pub(super) async fn replacement(&self, stale: &ApiToken) -> Option<ApiToken> {
        let Self::Parameter(parameter) = self else {
            return None;
        };
        match parameter.refresh(stale.expose()).await {
            Ok(value) if value != stale.expose() => Some(ApiToken::new(value)),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "the Replicate token could not be read again");
                None
            }
        }
    }

    /// The token, reading the parameter on first use.
    pub(super) async fn token(&self) -> Result<ApiToken, String> {
        match self {
            Self::Static(token) => Ok(token.clone()),
            Self::Parameter(parameter) => parameter
                .value()
                .await
                .map(ApiToken::new)
                .map_err(|error| format!("the Replicate token could not be read: {error}")),
        }
    }
}

/// How the client talks to Replicate.
#[derive(Debug, Clone)]
pub struct ReplicateConfig {
    /// The API's base URL (`REPLICATE_BASE_URL`); the token is sent to its host only.
    pub base_url: Url,
    /// The model, `owner/name` (`REPLICATE_MODEL`).
    pub model: String,
    /// Where the API token comes from.
    pub token: TokenSource,
    /// Host names outputs may be fetched from; each also allows its subdomains
    /// (`REPLICATE_OUTPUT_HOSTS`).
    pub output_hosts: Vec<String>,
    /// The longest `Prefer: wait` asked for, in seconds (Replicate allows 1 to 60).
    pub max_prefer_wait: Duration,
    /// The first pause between polls; it grows by half each poll up to `max_poll_interval`.
    pub poll_interval: Duration,
    /// The longest pause between polls.
    pub max_poll_interval: Duration,
    /// The largest output accepted, in bytes.
    pub max_output_bytes: u64,
    /// How long one API request (other than the create) or one download may take.
    pub request_timeout: Duration,
    /// The most attempts of one request that is retried.
    pub max_attempts: u32,
}

impl ReplicateConfig {
    /// Settings with the defaults of docs/design.md for everything but the token.
    pub fn new(token: impl Into<TokenSource>) -> Self {
        Self {
            base_url: Url::parse(DEFAULT_BASE_URL).expect("the default base URL parses"),
            model: DEFAULT_MODEL.to_owned(),
            token: token.into(),
            output_hosts: parse_hosts(DEFAULT_OUTPUT_HOSTS),
            max_prefer_wait: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            max_poll_interval: Duration::from_secs(2),
            max_output_bytes: 20 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_attempts: crate::retry::Backoff::REPLICATE.attempts,
        }
    }
}

/// Splits a comma-separated host list, trimmed and lowercased.
pub fn parse_hosts(list: &str) -> Vec<String> {
    list.split(',')
        .map(|host| host.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|host| !host.is_empty())
        .collect()
}
