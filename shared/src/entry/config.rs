//! Configuration read from the environment once, when an execution environment starts.

use std::sync::Arc;

use thiserror::Error;

use reqwest::Url;

use crate::adapters::replicate::webhook_signature::{SecretSource, WebhookSecret};
use crate::adapters::replicate::{ApiToken, ReplicateConfig, TokenSource, parse_hosts};
use crate::adapters::spend::DailyCaps;
use crate::adapters::ssm::SecureParameter;
use crate::domain::base_photo::BaseImagePrefixes;
use crate::domain::export::DEFAULT_MIN_IMAGES;
use crate::usecases::export::ExportSettings;
use crate::usecases::training_sets::ItemWebhooks;

/// A configuration the function cannot start with.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A required environment variable is unset or empty.
    #[error("environment variable {0} must be set")]
    Missing(&'static str),
    /// An environment variable is set to a value that cannot be used.
    #[error("environment variable {0} has an invalid value")]
    Invalid(&'static str),
}

/// Reads a required, non-empty environment variable.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The name of the service's DynamoDB table (`TABLE_NAME`).
pub fn table_name() -> Result<String, ConfigError> {
    required_env("TABLE_NAME")
}

/// The largest base photo accepted (`MAX_BASE_IMAGE_BYTES`, default 10 MiB).
pub fn max_base_image_bytes() -> Result<u64, ConfigError> {
    match std::env::var("MAX_BASE_IMAGE_BYTES") {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid("MAX_BASE_IMAGE_BYTES")),
        _ => Ok(10 * 1024 * 1024),
    }
}

/// Where an actor's base photos may be besides its profile's (`BASE_IMAGE_PREFIXES`, a
/// comma-separated list of prefixes that may hold `{actor_name}`; by default the actor's
/// `system_actors/base_images/{actor_name}` and its own training images).
pub fn base_image_prefixes() -> Result<BaseImagePrefixes, ConfigError> {
    match std::env::var("BASE_IMAGE_PREFIXES") {
        Ok(value) if !value.trim().is_empty() => {
            BaseImagePrefixes::parse(&value).ok_or(ConfigError::Invalid("BASE_IMAGE_PREFIXES"))
        }
        _ => Ok(BaseImagePrefixes::default()),
    }
}

/// How long an execution environment keeps an actor's profile (`ACTOR_PROFILE_CACHE_SECONDS`,
/// default 30; 0 reads it on every call).
pub fn actor_profile_cache_ttl() -> Result<std::time::Duration, ConfigError> {
    Ok(std::time::Duration::from_secs(
        optional_number("ACTOR_PROFILE_CACHE_SECONDS")?.unwrap_or(30),
    ))
}

/// Where the Replicate token comes from: `REPLICATE_API_TOKEN` when set (local use), else the
/// SSM SecureString named by `REPLICATE_API_TOKEN_PARAMETER`, read on first use.
pub fn replicate_token(sdk: &aws_config::SdkConfig) -> Result<TokenSource, ConfigError> {
    let source = value_or_parameter(
        sdk,
        "REPLICATE_API_TOKEN",
        "REPLICATE_API_TOKEN_PARAMETER",
        "REPLICATE_API_TOKEN or REPLICATE_API_TOKEN_PARAMETER",
    )?;
    Ok(match source {
        Ok(token) => TokenSource::Static(ApiToken::new(token)),
        Err(parameter) => TokenSource::Parameter(parameter),
    })
}

/// Where Replicate's webhook signing secret comes from: `REPLICATE_WEBHOOK_SECRET` when set
/// (local use), else the SSM SecureString named by `REPLICATE_WEBHOOK_SECRET_PARAMETER`.
pub fn webhook_secret(sdk: &aws_config::SdkConfig) -> Result<SecretSource, ConfigError> {
    let source = value_or_parameter(
        sdk,
        "REPLICATE_WEBHOOK_SECRET",
        "REPLICATE_WEBHOOK_SECRET_PARAMETER",
        "REPLICATE_WEBHOOK_SECRET or REPLICATE_WEBHOOK_SECRET_PARAMETER",
    )?;
    match source {
        Ok(secret) => WebhookSecret::parse(&secret)
            .map(SecretSource::Static)
            .ok_or(ConfigError::Invalid("REPLICATE_WEBHOOK_SECRET")),
        Err(parameter) => Ok(SecretSource::Parameter(parameter)),
    }
}

/// A secret given in `value_var` (local use), else the SSM SecureString named by
/// `parameter_var` (read on first use); neither set is `Missing(missing)`.
fn value_or_parameter(
    sdk: &aws_config::SdkConfig,
    value_var: &'static str,
    parameter_var: &'static str,
    missing: &'static str,
) -> Result<Result<String, Arc<SecureParameter>>, ConfigError> {
    if let Ok(value) = required_env(value_var) {
        return Ok(Ok(value));
    }
    let name = required_env(parameter_var).map_err(|_| ConfigError::Missing(missing))?;
    let client = aws_sdk_ssm::Client::new(sdk);
    Ok(Err(Arc::new(SecureParameter::new(client, name))))
}

/// `raw` as a URL, when it is an `http` or `https` one with a host.
pub(super) fn http_url(raw: &str) -> Option<Url> {
    Url::parse(raw)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// Replicate's webhooks for training-set items: `REPLICATE_WEBHOOK_URL`, the webhook
/// route's URL (unset: items are only polled), and `TRAINING_SET_FIRST_CHECK_SECONDS`, when
/// a worker first looks at a prediction a webhook should have told of (default 90: a
/// minute and a half covers the model's run and Replicate's retries of a failed delivery).
pub fn item_webhooks() -> Result<Option<ItemWebhooks>, ConfigError> {
    let Ok(url) = required_env("REPLICATE_WEBHOOK_URL") else {
        return Ok(None);
    };
    if http_url(&url).is_none() {
        return Err(ConfigError::Invalid("REPLICATE_WEBHOOK_URL"));
    }
    let first_check = optional_number("TRAINING_SET_FIRST_CHECK_SECONDS")?.unwrap_or(90);
    Ok(Some(ItemWebhooks {
        url,
        first_check: std::time::Duration::from_secs(first_check),
    }))
}

/// An optional whole number, e.g. a cap; blank or unset is `None`.
pub(super) fn optional_number(name: &'static str) -> Result<Option<u64>, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid(name)),
        _ => Ok(None),
    }
}

/// The daily caps: `DAILY_GENERATION_CAP` (the service) and `DAILY_GENERATION_CAP_PER_ACTOR`;
/// unset means no cap.
pub fn daily_caps() -> Result<DailyCaps, ConfigError> {
    Ok(DailyCaps {
        service: optional_number("DAILY_GENERATION_CAP")?,
        per_actor: optional_number("DAILY_GENERATION_CAP_PER_ACTOR")?,
    })
}

/// The least time left in an invocation for a batch job to be started
/// (`BATCH_JOB_MIN_SECONDS`, default 60).
pub fn batch_job_min_time() -> Result<std::time::Duration, ConfigError> {
    Ok(std::time::Duration::from_secs(
        optional_number("BATCH_JOB_MIN_SECONDS")?.unwrap_or(60),
    ))
}

/// The most records a reconciler pass takes (`RECONCILE_BATCH_SIZE`, default 25).
pub fn reconcile_batch_size() -> Result<usize, ConfigError> {
    let size = optional_number("RECONCILE_BATCH_SIZE")?.unwrap_or(25);
    usize::try_from(size)
        .ok()
        .filter(|size| *size > 0)
        .ok_or(ConfigError::Invalid("RECONCILE_BATCH_SIZE"))
}

/// The training-set items' queue (`TRAINING_SET_QUEUE_URL`).
pub fn training_set_queue_url() -> Result<String, ConfigError> {
    required_env("TRAINING_SET_QUEUE_URL")
}

/// Whether the stack has training sets (`TRAINING_SET_QUEUE_URL` set): the reconciler then
/// also sends stuck items again.
pub fn has_training_sets() -> bool {
    std::env::var_os("TRAINING_SET_QUEUE_URL").is_some()
}

/// How long an unfinished training-set item may stay in its state before the reconciler
/// sends its message again (`TRAINING_SET_ITEM_STUCK_SECONDS`, default 1800).
pub fn item_stuck_after() -> Result<std::time::Duration, ConfigError> {
    Ok(std::time::Duration::from_secs(
        optional_number("TRAINING_SET_ITEM_STUCK_SECONDS")?.unwrap_or(1800),
    ))
}

/// What one image is estimated to cost, in US dollars, for a set's `estimated_cost_usd`
/// (`PRICE_PER_IMAGE_USD`, default 0.04: flux-kontext-pro's list price).
pub fn price_per_image_usd() -> Result<f64, ConfigError> {
    match std::env::var("PRICE_PER_IMAGE_USD") {
        Ok(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|price| price.is_finite() && *price >= 0.0)
            .ok_or(ConfigError::Invalid("PRICE_PER_IMAGE_USD")),
        Err(_) => Ok(0.04),
    }
}

/// The longest a presigned URL can live (SigV4's limit; session credentials, such as a
/// function role's, end it sooner).
pub(super) const MAX_PRESIGNED_SECONDS: u64 = 7 * 24 * 3600;

/// The exports' settings: `EXPORT_MIN_IMAGES` (default 10, at least 1) and
/// `EXPORT_URL_SECONDS`, the life of a done export's presigned URL (default 3600, at most
/// 7 days).
pub fn export_settings() -> Result<ExportSettings, ConfigError> {
    let min_images =
        optional_number("EXPORT_MIN_IMAGES")?.map_or(Ok(DEFAULT_MIN_IMAGES), |minimum| {
            usize::try_from(minimum)
                .ok()
                .filter(|minimum| *minimum > 0)
                .ok_or(ConfigError::Invalid("EXPORT_MIN_IMAGES"))
        })?;
    let url_seconds = optional_number("EXPORT_URL_SECONDS")?.unwrap_or(3600);
    if !(1..=MAX_PRESIGNED_SECONDS).contains(&url_seconds) {
        return Err(ConfigError::Invalid("EXPORT_URL_SECONDS"));
    }
    Ok(ExportSettings {
        min_images,
        url_lifetime: std::time::Duration::from_secs(url_seconds),
    })
}

/// The exports' queue (`EXPORT_QUEUE_URL`).
pub fn export_queue_url() -> Result<String, ConfigError> {
    required_env("EXPORT_QUEUE_URL")
}

/// Whether the configuration's kill switch is on (`GENERATION_DISABLED=true`).
pub fn generation_disabled() -> Result<bool, ConfigError> {
    match std::env::var("GENERATION_DISABLED") {
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" => Ok(false),
            "true" | "1" | "yes" => Ok(true),
            _ => Err(ConfigError::Invalid("GENERATION_DISABLED")),
        },
        Err(_) => Ok(false),
    }
}

/// The Replicate client's settings: `REPLICATE_BASE_URL`, `REPLICATE_MODEL` and
/// `REPLICATE_OUTPUT_HOSTS` over the defaults.
pub fn replicate_config(token: TokenSource) -> Result<ReplicateConfig, ConfigError> {
    replicate_config_from(token, |name| std::env::var(name).ok())
}

/// Reads the settings through `var`, which looks a variable up by name. Blank values count
/// as unset.
fn replicate_config_from(
    token: TokenSource,
    var: impl Fn(&str) -> Option<String>,
) -> Result<ReplicateConfig, ConfigError> {
    let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let mut config = ReplicateConfig::new(token);
    if let Some(base) = var("REPLICATE_BASE_URL") {
        config.base_url = http_url(&base).ok_or(ConfigError::Invalid("REPLICATE_BASE_URL"))?;
    }
    if let Some(model) = var("REPLICATE_MODEL") {
        let valid = model.split('/').count() == 2 && model.split('/').all(|p| !p.is_empty());
        if !valid {
            return Err(ConfigError::Invalid("REPLICATE_MODEL"));
        }
        config.model = model;
    }
    if let Some(hosts) = var("REPLICATE_OUTPUT_HOSTS") {
        config.output_hosts = parse_hosts(&hosts);
    }
    Ok(config)
}

/// The function's name in metrics: the deployed one (`AWS_LAMBDA_FUNCTION_NAME`), else
/// `local_name` where Lambda sets none (tests, the local stack).
pub fn function_name(local_name: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| local_name.to_owned())
}

/// How the functions log: `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else INFO) and
/// `AWS_LAMBDA_LOG_FORMAT` (`JSON` for one JSON object per line).
pub fn log_settings() -> LogSettings {
    LogSettings {
        level: std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|_| std::env::var("RUST_LOG"))
            .ok(),
        directives: std::env::var("RUST_LOG").ok(),
        json: std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")),
    }
}

/// The logging settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// The level (`debug`), as set.
    pub level: Option<String>,
    /// Filter directives (`info,shared=debug`), as `RUST_LOG` sets them.
    pub directives: Option<String>,
    /// Whether lines are JSON.
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<ReplicateConfig, ConfigError> {
        replicate_config_from(ApiToken::new("r8_x").into(), |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_need_only_the_token() {
        let config = from(&[("REPLICATE_MODEL", " ")]).unwrap();
        assert_eq!(config.base_url.as_str(), "https://api.replicate.com/");
        assert_eq!(config.model, "black-forest-labs/flux-kontext-pro");
        assert_eq!(config.output_hosts, ["replicate.delivery"]);
        assert!(
            !format!("{config:?}").contains("r8_x"),
            "the token leaked into Debug"
        );
    }

    #[test]
    fn overrides_are_read_and_checked() {
        let config = from(&[
            ("REPLICATE_BASE_URL", "http://127.0.0.1:8080"),
            ("REPLICATE_MODEL", "owner/model"),
            ("REPLICATE_OUTPUT_HOSTS", " Replicate.Delivery, 127.0.0.1 ,"),
        ])
        .unwrap();
        assert_eq!(config.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.model, "owner/model");
        assert_eq!(config.output_hosts, ["replicate.delivery", "127.0.0.1"]);
        for (name, bad) in [
            ("REPLICATE_BASE_URL", "ftp://x"),
            ("REPLICATE_BASE_URL", "not a url"),
            ("REPLICATE_MODEL", "no-slash"),
            ("REPLICATE_MODEL", "a/b/c"),
        ] {
            let result = from(&[(name, bad)]);
            assert!(
                matches!(result, Err(ConfigError::Invalid(n)) if n == name),
                "{name}={bad}"
            );
        }
    }
}
