//! Waiting for a prediction: polled with growing pauses up to the caller's deadline (reads are
//! retried on 5xx and timeouts); at the deadline canceled (unless a later run will resume
//! it), then read once more and kept if it succeeded meanwhile.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};

use super::{
    FINAL_READ_TIMEOUT, Prediction, ReplicateClient, allowed_output_url, bad_output,
    problem_message, unavailable,
};
use crate::adapters::operations;
use crate::ports::{AtDeadline, PredictionError, SucceededPrediction};
use crate::timing::RemoteCallExt;

/// A failed read of a prediction, and whether trying again may help.
struct ReadFailure {
    retryable: bool,
    message: String,
}

impl ReplicateClient {
    /// Reads a prediction by id.
    pub async fn get(&self, prediction_id: &str) -> Result<Prediction, PredictionError> {
        let url = self.prediction_url(prediction_id, None)?;
        let read = || {
            self.read(&url, self.config.request_timeout)
                .remote_call(operations::PREDICTION_READ)
        };
        let first = match read().await {
            Err(failure) if failure.retryable => {
                tracing::warn!(prediction_id, error = %failure.message, "read failed; reading once more");
                read().await
            }
            first => first,
        };
        first.map_err(|failure| unavailable(Some(prediction_id), failure.message))
    }

    /// Polls until the prediction is terminal or the deadline comes; then cancels it and
    /// reads it once more, keeping it if it succeeded meanwhile.
    pub async fn wait(
        &self,
        mut prediction: Prediction,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<Prediction, PredictionError> {
        let get_url = self.prediction_url(
            &prediction.id,
            prediction.urls.as_ref().and_then(|u| u.get.as_deref()),
        )?;
        let mut interval = self.config.poll_interval;
        let mut failures = 0;
        while !prediction.is_terminal() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return self
                    .read_at_deadline(&prediction.id, &get_url, at_deadline)
                    .await;
            }
            tokio::time::sleep(interval.min(remaining))
                .remote_call(operations::PREDICTION_POLL_PAUSE)
                .await;
            interval = (interval * 3 / 2).min(self.config.max_poll_interval);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                continue;
            }
            match self
                .read(&get_url, self.config.request_timeout.min(remaining))
                .remote_call(operations::PREDICTION_READ)
                .await
            {
                Ok(read) => {
                    prediction = read;
                    failures = 0;
                }
                Err(failure) if failure.retryable && failures + 1 < self.config.max_attempts => {
                    failures += 1;
                    tracing::warn!(prediction_id = %prediction.id, failures, error = %failure.message, "poll failed; retrying");
                }
                Err(failure) => {
                    // Stop paying for a prediction whose image we cannot fetch.
                    self.cancel(&prediction.id)
                        .remote_call(operations::PREDICTION_CANCEL)
                        .await;
                    return Err(unavailable(Some(&prediction.id), failure.message));
                }
            }
        }
        Ok(prediction)
    }

    /// Waits for a created prediction until it succeeded, with an output URL from an allowed
    /// host. An error says what happened and names the prediction.
    pub async fn settle(
        &self,
        created: Prediction,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, PredictionError> {
        let prediction = self.wait(created, deadline, at_deadline).await?;
        match prediction.status.as_str() {
            "succeeded" => {}
            "failed" => {
                return Err(PredictionError::Failed {
                    message: prediction.error_message(),
                    prediction_id: prediction.id,
                });
            }
            _ => {
                return Err(PredictionError::Canceled {
                    prediction_id: prediction.id,
                });
            }
        }
        let raw = prediction.output_url().ok_or_else(|| {
            bad_output(
                &prediction.id,
                "the prediction has no output URL".to_owned(),
            )
        })?;
        let url = allowed_output_url(raw, &self.config.output_hosts)
            .map_err(|reason| bad_output(&prediction.id, reason))?;
        Ok(SucceededPrediction {
            prediction_id: prediction.id,
            output_url: url.into(),
        })
    }

    /// At the deadline: cancels the prediction (unless a later run will resume it), then reads
    /// it once more and keeps it if it succeeded meanwhile.
    async fn read_at_deadline(
        &self,
        prediction_id: &str,
        get_url: &Url,
        at_deadline: AtDeadline,
    ) -> Result<Prediction, PredictionError> {
        let timed_out = || PredictionError::TimedOut {
            prediction_id: Some(prediction_id.to_owned()),
            running: at_deadline == AtDeadline::KeepRunning,
        };
        if at_deadline == AtDeadline::Cancel {
            self.cancel(prediction_id)
                .remote_call(operations::PREDICTION_CANCEL)
                .await;
        }
        match self
            .read(get_url, FINAL_READ_TIMEOUT)
            .remote_call(operations::PREDICTION_READ)
            .await
        {
            Ok(prediction) if prediction.status == "succeeded" => {
                tracing::info!(
                    prediction_id,
                    "prediction succeeded while it was being canceled"
                );
                Ok(prediction)
            }
            _ => Err(timed_out()),
        }
    }

    /// Cancels a prediction, best effort: the outcome is logged, never returned.
    async fn cancel(&self, prediction_id: &str) {
        let (url, token) = match (
            self.api_url(&format!("v1/predictions/{prediction_id}/cancel")),
            self.token(Some(prediction_id)).await,
        ) {
            (Ok(url), Ok(token)) => (url, token),
            _ => {
                tracing::error!(prediction_id, "cannot cancel: no URL or token");
                return;
            }
        };
        let sent = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            .timeout(FINAL_READ_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) => tracing::warn!(
                prediction_id,
                status = response.status().as_u16(),
                "prediction canceled"
            ),
            Err(error) => tracing::error!(prediction_id, %error, "cancel failed"),
        }
    }

    async fn read(&self, url: &Url, timeout: Duration) -> Result<Prediction, ReadFailure> {
        let token = self
            .config
            .token
            .token()
            .await
            .map_err(|message| ReadFailure {
                retryable: false,
                message,
            })?;
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(token.expose())
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| ReadFailure {
                retryable: true,
                message: error.to_string(),
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|error| ReadFailure {
            retryable: true,
            message: error.to_string(),
        })?;
        if !status.is_success() {
            // A 401 is worth another read only once the token was read again and changed
            // (rotated): the next read sends the new one.
            let rotated = status == StatusCode::UNAUTHORIZED
                && self.config.token.replacement(&token).await.is_some();
            return Err(ReadFailure {
                retryable: status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || rotated,
                message: problem_message(status.as_u16(), &text),
            });
        }
        serde_json::from_str(&text).map_err(|_| ReadFailure {
            retryable: true,
            message: "the prediction could not be read (malformed JSON)".to_owned(),
        })
    }
}
