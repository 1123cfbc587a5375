//! Opening a trained model's weights for download: only from the allowed output hosts, over
//! HTTPS (plain HTTP for loopback only), without the token, redirects off.

use std::time::Duration;

use super::{ReplicateClient, allowed_output_url};
use crate::adapters::operations;
use crate::ports::{CopyError, StoreError};
use crate::timing::RemoteCallExt;

/// How long the weights' download may take, whole: within the trainings function's 120 s
/// (a LoRA of a few hundred MB takes seconds); a run cut short is delivered again.
const WEIGHTS_TIMEOUT: Duration = Duration::from_secs(100);

impl ReplicateClient {
    /// The weights' answer, its body not read yet: refused for good (not an allowed URL,
    /// a 4xx, a redirect) or a fault (a 5xx, the network) to try again.
    pub async fn open_weights(&self, url: &str) -> Result<reqwest::Response, CopyError> {
        let url = allowed_output_url(url, &self.config.output_hosts).map_err(CopyError::Gone)?;
        let response = self
            .http
            .get(url)
            .timeout(WEIGHTS_TIMEOUT)
            .send()
            .remote_call(operations::WEIGHTS_DOWNLOAD)
            .await
            .map_err(|error| download_fault(error.to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(download_fault(format!(
                "the weights' download got {status}"
            )));
        }
        if !status.is_success() {
            return Err(CopyError::Gone(format!(
                "the weights' URL answered {status}"
            )));
        }
        Ok(response)
    }
}

/// A download fault, worth another try.
pub(crate) fn download_fault(detail: String) -> CopyError {
    CopyError::Fault(StoreError {
        operation: operations::WEIGHTS_DOWNLOAD,
        detail,
    })
}
