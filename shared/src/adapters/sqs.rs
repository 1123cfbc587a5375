//! SQS adapter for the items' queue: one message per item, `{"set_id", "position"}` (a store
//! message adds `"store": {"prediction_id", "output_url"}`), sent in batches of ten (what
//! fails in a batch is sent again); and the worker's delay of a message until its item's next
//! step (its visibility changed: the message comes back then).

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};

use super::dynamodb::attributes::fault;
use crate::adapters::operations;
use crate::domain::training_set::SetId;
use crate::ports::{ItemMessage, ItemQueue, StoreError, SucceededPrediction};
use crate::retry::Backoff;
use crate::timing::{self, RemoteCallExt};

/// The most entries one SendMessageBatch takes.
const SEND_BATCH_MAX: usize = 10;
/// The longest visibility SQS allows a received message (12 hours).
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// An item's message body, as sent and as the worker reads it.
#[derive(Debug, Serialize, Deserialize)]
struct MessageBody {
    set_id: String,
    position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<StoreBody>,
}

/// A store message's succeeded prediction.
#[derive(Debug, Serialize, Deserialize)]
struct StoreBody {
    prediction_id: String,
    output_url: String,
}

/// Reads an item's message body; `None` when it is not one.
pub fn read_message(body: &str) -> Option<ItemMessage> {
    let body: MessageBody = serde_json::from_str(body).ok()?;
    Some(ItemMessage {
        set_id: SetId::parse(&body.set_id)?,
        position: body.position,
        succeeded: body.store.map(|store| SucceededPrediction {
            prediction_id: store.prediction_id,
            output_url: store.output_url,
        }),
    })
}

/// An item's message body as JSON.
fn message_body(item: &ItemMessage) -> String {
    let body = MessageBody {
        set_id: item.set_id.to_string(),
        position: item.position,
        store: item.succeeded.as_ref().map(|succeeded| StoreBody {
            prediction_id: succeeded.prediction_id.clone(),
            output_url: succeeded.output_url.clone(),
        }),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The items' queue.
#[derive(Debug, Clone)]
pub struct SqsItemQueue {
    client: Client,
    queue_url: String,
}

impl SqsItemQueue {
    /// The queue at `queue_url`, reached with `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Delays a received message by `delay` (at most SQS's 12 hours): it comes back then,
    /// for its item's next step.
    pub async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), StoreError> {
        change_visibility(
            &self.client,
            &self.queue_url,
            receipt_handle,
            delay,
            operations::ITEM_DELAY,
        )
        .await
    }
}

/// Hides a received message for `delay` (at most SQS's 12 hours), the call named
/// `operation`: it comes back then, with its receive count one higher.
pub(super) async fn change_visibility(
    client: &Client,
    queue_url: &str,
    receipt_handle: &str,
    delay: Duration,
    operation: &'static str,
) -> Result<(), StoreError> {
    let seconds = i32::try_from(delay.min(MAX_VISIBILITY).as_secs()).unwrap_or(i32::MAX);
    client
        .change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(seconds)
        .send()
        .remote_call(operation)
        .await
        .map_err(|error| fault(operation, error))?;
    Ok(())
}

impl ItemQueue for SqsItemQueue {
    async fn send(&self, items: &[ItemMessage]) -> Result<(), StoreError> {
        let operation = operations::ITEMS_SEND;
        for chunk in items.chunks(SEND_BATCH_MAX) {
            let mut entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .map(|item| {
                    SendMessageBatchRequestEntry::builder()
                        .id(item.position.to_string())
                        .message_body(message_body(item))
                        .build()
                        .map_err(|error| fault(operation, error))
                })
                .collect::<Result<_, _>>()?;
            let policy = Backoff::RECORD_WRITE;
            let mut attempt = 1;
            loop {
                let output = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries.clone()))
                    .send()
                    .remote_call(operation)
                    .await;
                let failed: Vec<String> = match output {
                    Ok(output) => output.failed().iter().map(|f| f.id().to_owned()).collect(),
                    Err(error) if !policy.allows_another(attempt) => {
                        return Err(fault(operation, error));
                    }
                    Err(_) => entries.iter().map(|e| e.id().to_owned()).collect(),
                };
                if failed.is_empty() {
                    break;
                }
                if !policy.allows_another(attempt) {
                    return Err(StoreError {
                        operation,
                        detail: format!("{} messages not sent", failed.len()),
                    });
                }
                entries.retain(|entry| failed.iter().any(|id| id == entry.id()));
                timing::pause_before_retry(policy.delay(attempt)).await;
                attempt += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_sent() {
        let set_id = SetId::parse("01KBE8N4Z8M7D1W5S9Q2X3Y4Z5").unwrap();
        let next = ItemMessage::next_step(set_id.clone(), 7);
        assert_eq!(
            message_body(&next),
            r#"{"set_id":"01KBE8N4Z8M7D1W5S9Q2X3Y4Z5","position":7}"#
        );
        assert_eq!(read_message(&message_body(&next)), Some(next));
        let store = ItemMessage {
            succeeded: Some(SucceededPrediction {
                prediction_id: "p1".to_owned(),
                output_url: "https://replicate.delivery/x.jpg".to_owned(),
            }),
            ..ItemMessage::next_step(set_id, 8)
        };
        assert_eq!(read_message(&message_body(&store)), Some(store));
        assert_eq!(read_message(r#"{"set_id":"nope","position":1}"#), None);
    }
}
