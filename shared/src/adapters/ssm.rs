//! SSM Parameter Store adapter: a SecureString read once per execution environment, on first
//! use (not at start, so a cold start pays nothing for it), and cached.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::DisplayErrorContext;
use tokio::sync::OnceCell;

use crate::ports::StoreError;
use crate::timing::RemoteCallExt;

/// A SecureString parameter. Its `Debug` shows the name, never the value.
pub struct SecureParameter {
    client: Client,
    name: String,
    value: OnceCell<String>,
}

impl SecureParameter {
    /// The parameter `name`, read with `client` when first needed.
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            value: OnceCell::new(),
        }
    }

    /// The decrypted value; read from SSM the first time only. A failed read is not cached.
    pub async fn value(&self) -> Result<String, StoreError> {
        let value = self
            .value
            .get_or_try_init(|| async {
                let output = self
                    .client
                    .get_parameter()
                    .name(&self.name)
                    .with_decryption(true)
                    .send()
                    .remote_call("SSM GetParameter")
                    .await
                    .map_err(|error| StoreError {
                        operation: "SSM GetParameter",
                        detail: DisplayErrorContext(error).to_string(),
                    })?;
                output
                    .parameter()
                    .and_then(|parameter| parameter.value())
                    .filter(|value| !value.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError {
                        operation: "SSM GetParameter",
                        detail: format!("parameter {} has no value", self.name),
                    })
            })
            .await?;
        Ok(value.clone())
    }
}

impl std::fmt::Debug for SecureParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureParameter")
            .field("name", &self.name)
            .field("cached", &self.value.initialized())
            .finish_non_exhaustive()
    }
}
