//! Downloading a succeeded prediction's output: only from allowed hosts, with redirects
//! off, within a size cap, and only when it is a JPEG; retried on transient failures until a
//! little past the deadline (the image is paid for).

use std::time::{Duration, Instant};

use reqwest::Url;

use super::{ReplicateClient, allowed_output_url, bad_output, is_jpeg, unavailable};
use crate::adapters::operations;
use crate::ports::{PredictionError, SucceededPrediction};
use crate::retry::Backoff;
use crate::timing::{self, RemoteCallExt};

/// A failed download, and whether trying again may help.
enum DownloadFailure {
    Refused(String),
    Transient(String),
}

impl ReplicateClient {
    /// Downloads a succeeded prediction's output and checks it, retrying until `finish_by`.
    pub async fn download_output(
        &self,
        succeeded: &SucceededPrediction,
        finish_by: Instant,
    ) -> Result<Vec<u8>, PredictionError> {
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
                .remote_call(operations::OUTPUT_DOWNLOAD)
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(DownloadFailure::Refused(reason)) => {
                    return Err(bad_output(prediction_id, reason));
                }
                Err(DownloadFailure::Transient(message))
                    if attempt < self.config.max_attempts
                        && Instant::now() + Backoff::REPLICATE.delay(attempt) < finish_by =>
                {
                    tracing::warn!(%prediction_id, attempt, error = %message, "output download retried");
                    timing::pause_before_retry(Backoff::REPLICATE.delay(attempt)).await;
                }
                Err(DownloadFailure::Transient(message)) => {
                    return Err(unavailable(Some(prediction_id), message));
                }
            }
        }
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
}
