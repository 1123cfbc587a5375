//! Configuration read from the environment once, when an execution environment starts.

use std::sync::Arc;

use thiserror::Error;

use crate::adapters::replicate::{ApiToken, TokenSource};
use crate::adapters::spend::DailyCaps;
use crate::adapters::ssm::SecureParameter;
use crate::domain::base_photo::BaseImagePrefixes;

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
    if let Ok(token) = required_env("REPLICATE_API_TOKEN") {
        return Ok(TokenSource::Static(ApiToken::new(token)));
    }
    let name = required_env("REPLICATE_API_TOKEN_PARAMETER").map_err(|_| {
        ConfigError::Missing("REPLICATE_API_TOKEN or REPLICATE_API_TOKEN_PARAMETER")
    })?;
    let client = aws_sdk_ssm::Client::new(sdk);
    Ok(TokenSource::Parameter(Arc::new(SecureParameter::new(
        client, name,
    ))))
}

/// An optional whole number, e.g. a cap; blank or unset is `None`.
fn optional_number(name: &'static str) -> Result<Option<u64>, ConfigError> {
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
