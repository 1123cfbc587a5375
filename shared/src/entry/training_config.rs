//! The trainings' configuration, read from the environment once when an execution
//! environment starts (docs/operations.md lists each variable).

use std::time::Duration;

use super::config::{ConfigError, MAX_PRESIGNED_SECONDS, http_url, optional_number, required_env};
use crate::domain::training::ModelName;
use crate::usecases::trainings::TrainingSettings;

/// The trainer unless `TRAINER_MODEL` names another.
pub const DEFAULT_TRAINER_MODEL: &str = "ostris/flux-dev-lora-trainer";
/// What a second of the trainer costs unless `TRAINING_PRICE_PER_SECOND` says otherwise
/// (Replicate's H100 price, which ostris/flux-dev-lora-trainer runs on).
pub const DEFAULT_PRICE_PER_SECOND: f64 = 0.001528;

/// The trainer model, `owner/name` (`TRAINER_MODEL`, default [`DEFAULT_TRAINER_MODEL`]).
pub fn trainer_model() -> Result<ModelName, ConfigError> {
    match required_env("TRAINER_MODEL") {
        Ok(model) => ModelName::parse(model.trim()).ok_or(ConfigError::Invalid("TRAINER_MODEL")),
        Err(_) => {
            ModelName::parse(DEFAULT_TRAINER_MODEL).ok_or(ConfigError::Invalid("TRAINER_MODEL"))
        }
    }
}

/// The trainer's version (`TRAINER_VERSION`, required: a training runs one pinned version).
pub fn trainer_version() -> Result<String, ConfigError> {
    let version = required_env("TRAINER_VERSION")?;
    let version = version.trim();
    let valid = version.chars().all(|c| c.is_ascii_alphanumeric());
    valid
        .then(|| version.to_owned())
        .ok_or(ConfigError::Invalid("TRAINER_VERSION"))
}

/// The trainings' queue (`TRAINING_QUEUE_URL`).
pub fn training_queue_url() -> Result<String, ConfigError> {
    required_env("TRAINING_QUEUE_URL")
}

/// Whether the stack has trainings (`TRAINING_QUEUE_URL` set): the webhook and the
/// reconciler then queue them too.
pub fn has_trainings() -> bool {
    std::env::var_os("TRAINING_QUEUE_URL").is_some()
}

/// The trainings a day for the whole service (`DAILY_TRAINING_CAP`; unset: no cap).
pub fn daily_training_cap() -> Result<Option<u64>, ConfigError> {
    optional_number("DAILY_TRAINING_CAP")
}

/// How long after a training was last looked at it is looked at again
/// (`TRAINING_CHECK_SECONDS`, default 900): the reconciler's pace for lost webhooks.
pub fn training_check_every() -> Result<Duration, ConfigError> {
    seconds("TRAINING_CHECK_SECONDS", 900)
}

/// Seconds of `name`, or `default`; zero is refused.
fn seconds(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    let seconds = optional_number(name)?.unwrap_or(default);
    (seconds > 0)
        .then(|| Duration::from_secs(seconds))
        .ok_or(ConfigError::Invalid(name))
}

/// The trainings' settings: `TRAINING_DESTINATION` (required, `owner/name` that may hold
/// `{actor_name}`), `TRAINING_PRICE_PER_SECOND`, `TRAINING_LOCK_SECONDS` (default 6 h),
/// `TRAINING_CHECK_SECONDS` (default 900), `TRAINING_EXPORT_WAIT_SECONDS` (default 15),
/// `TRAINING_INPUT_URL_SECONDS` (default 6 h, at most 7 days), `TRAINING_CREATE_GRACE_SECONDS`
/// (default 600) and `REPLICATE_WEBHOOK_URL`.
pub fn training_settings() -> Result<TrainingSettings, ConfigError> {
    let destination = required_env("TRAINING_DESTINATION")?.trim().to_owned();
    if ModelName::destination(&destination, "actor").is_none() {
        return Err(ConfigError::Invalid("TRAINING_DESTINATION"));
    }
    let price_per_second = match std::env::var("TRAINING_PRICE_PER_SECOND") {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|price| price.is_finite() && *price >= 0.0)
            .ok_or(ConfigError::Invalid("TRAINING_PRICE_PER_SECOND"))?,
        _ => DEFAULT_PRICE_PER_SECOND,
    };
    let input_url_lifetime = seconds("TRAINING_INPUT_URL_SECONDS", 6 * 3600)?;
    if input_url_lifetime.as_secs() > MAX_PRESIGNED_SECONDS {
        return Err(ConfigError::Invalid("TRAINING_INPUT_URL_SECONDS"));
    }
    let webhook_url = match required_env("REPLICATE_WEBHOOK_URL") {
        Ok(url) if http_url(&url).is_some() => Some(url),
        Ok(_) => return Err(ConfigError::Invalid("REPLICATE_WEBHOOK_URL")),
        Err(_) => None,
    };
    Ok(TrainingSettings {
        destination,
        price_per_second,
        lock_for: seconds("TRAINING_LOCK_SECONDS", 6 * 3600)?,
        look_every: training_check_every()?,
        export_wait: seconds("TRAINING_EXPORT_WAIT_SECONDS", 15)?,
        input_url_lifetime,
        webhook_url,
        create_grace: seconds("TRAINING_CREATE_GRACE_SECONDS", 600)?,
    })
}
