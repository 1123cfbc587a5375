//! Configuration read from the environment once, when an execution environment starts.

use thiserror::Error;

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
