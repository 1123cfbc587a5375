//! SQS adapter for the exports' queue: one message per export, `{"export_id"}`, read by the
//! training-export function's queue handler.

use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};

use super::dynamodb::attributes::fault;
use super::operations;
use crate::domain::export::ExportId;
use crate::ports::{ExportQueue, StoreError};
use crate::timing::RemoteCallExt;

/// An export's message body.
#[derive(Debug, Serialize, Deserialize)]
struct ExportMessage {
    export_id: String,
}

/// Reads an export's message body; `None` when it is not one.
pub fn read_export_message(body: &str) -> Option<ExportId> {
    let message: ExportMessage = serde_json::from_str(body).ok()?;
    ExportId::parse(&message.export_id)
}

/// The exports' queue.
#[derive(Debug, Clone)]
pub struct SqsExportQueue {
    client: Client,
    queue_url: String,
}

impl SqsExportQueue {
    /// The queue at `queue_url`, reached with `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl ExportQueue for SqsExportQueue {
    async fn send(&self, export_id: &ExportId) -> Result<(), StoreError> {
        let body = serde_json::to_string(&ExportMessage {
            export_id: export_id.to_string(),
        })
        .map_err(|error| fault(operations::EXPORT_SEND, error))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .remote_call(operations::EXPORT_SEND)
            .await
            .map_err(|error| fault(operations::EXPORT_SEND, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_sent_and_nothing_else_does() {
        let id = ExportId::new(1_764_633_600_000, 9);
        let body = serde_json::to_string(&ExportMessage {
            export_id: id.to_string(),
        })
        .unwrap();
        assert_eq!(read_export_message(&body), Some(id));
        assert_eq!(read_export_message(r#"{"set_id":"x","position":1}"#), None);
        assert_eq!(read_export_message(r#"{"export_id":"nope"}"#), None);
    }
}
