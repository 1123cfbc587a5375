//! SQS adapter for the trainings' queue: one message per look at a training,
//! `{"training_id"}`, read by the trainings function's queue handler; a message whose export
//! is still running is delayed by its visibility, not sent again.

use std::time::Duration;

use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};

use super::dynamodb::attributes::fault;
use super::operations;
use super::sqs::change_visibility;
use crate::domain::training::TrainingId;
use crate::ports::{StoreError, TrainingQueue};
use crate::timing::RemoteCallExt;

/// A training's message body.
#[derive(Debug, Serialize, Deserialize)]
struct TrainingMessage {
    training_id: String,
}

/// Reads a training's message body; `None` when it is not one.
pub fn read_training_message(body: &str) -> Option<TrainingId> {
    let message: TrainingMessage = serde_json::from_str(body).ok()?;
    TrainingId::parse(&message.training_id)
}

/// The trainings' queue.
#[derive(Debug, Clone)]
pub struct SqsTrainingQueue {
    client: Client,
    queue_url: String,
}

impl SqsTrainingQueue {
    /// The queue at `queue_url`, reached with `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Delays a received message by `delay` (whole seconds, at least one): it comes back
    /// then.
    pub async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        let delay = delay.max(Duration::from_secs(1));
        change_visibility(
            &self.client,
            &self.queue_url,
            receipt_handle,
            delay,
            operations::TRAINING_DELAY,
        )
        .await
    }
}

impl TrainingQueue for SqsTrainingQueue {
    async fn send(&self, training_id: &TrainingId) -> Result<(), StoreError> {
        let body = serde_json::to_string(&TrainingMessage {
            training_id: training_id.to_string(),
        })
        .map_err(|error| fault(operations::TRAINING_SEND, error))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .remote_call(operations::TRAINING_SEND)
            .await
            .map_err(|error| fault(operations::TRAINING_SEND, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_sent_and_nothing_else_does() {
        let id = TrainingId::new(1_764_633_600_000, 3);
        let body = serde_json::to_string(&TrainingMessage {
            training_id: id.to_string(),
        })
        .unwrap();
        assert_eq!(read_training_message(&body), Some(id));
        assert_eq!(read_training_message(r#"{"export_id":"x"}"#), None);
        assert_eq!(read_training_message(r#"{"training_id":"nope"}"#), None);
    }
}
