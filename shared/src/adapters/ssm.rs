//! SSM Parameter Store adapter: a SecureString read on first use (not at start, so a cold
//! start pays nothing for it) and cached for the execution environment, read again only when
//! the caller finds the cached value stale (a rotated token). Callers that find it missing at
//! once (a worker batch's first creates) wait for one read.

use std::sync::RwLock;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::DisplayErrorContext;

use crate::adapters::operations;
use crate::ports::StoreError;
use crate::timing::RemoteCallExt;

/// A SecureString parameter. Its `Debug` shows the name, never the value.
pub struct SecureParameter {
    client: Client,
    name: String,
    value: RwLock<Option<String>>,
    /// Held while reading, so that concurrent callers share one read.
    reading: tokio::sync::Mutex<()>,
}

impl SecureParameter {
    /// The parameter `name`, read with `client` when first needed.
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            value: RwLock::new(None),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The decrypted value; read from SSM the first time only. A failed read is not cached.
    pub async fn value(&self) -> Result<String, StoreError> {
        if let Some(value) = self.cached() {
            return Ok(value);
        }
        let _reading = self.reading.lock().await;
        match self.cached() {
            Some(value) => Ok(value),
            None => self.read().await,
        }
    }

    /// The value read again from SSM, unless the cache already holds another value than
    /// `stale` (someone refreshed it meanwhile).
    pub async fn refresh(&self, stale: &str) -> Result<String, StoreError> {
        let _reading = self.reading.lock().await;
        match self.cached() {
            Some(value) if value != stale => Ok(value),
            _ => self.read().await,
        }
    }

    fn cached(&self) -> Option<String> {
        self.value.read().ok().and_then(|value| value.clone())
    }

    async fn read(&self) -> Result<String, StoreError> {
        let output = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .remote_call(operations::TOKEN_READ)
            .await
            .map_err(|error| StoreError {
                operation: operations::TOKEN_READ,
                detail: DisplayErrorContext(error).to_string(),
            })?;
        let value = output
            .parameter()
            .and_then(|parameter| parameter.value())
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| StoreError {
                operation: operations::TOKEN_READ,
                detail: format!("parameter {} has no value", self.name),
            })?;
        if let Ok(mut cache) = self.value.write() {
            *cache = Some(value.clone());
        }
        Ok(value)
    }
}

impl std::fmt::Debug for SecureParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureParameter")
            .field("name", &self.name)
            .field("cached", &self.cached().is_some())
            .finish_non_exhaustive()
    }
}
