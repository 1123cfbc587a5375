//! DynamoDB adapter for idempotency records: item `pk = IDEMPOTENCY#{key}`, `sk = RECORD`,
//! with `status` (`IN_PROGRESS` | `COMPLETED`), `payload_hash`, `in_progress_expiry` (epoch
//! ms), `expiration` (epoch s, 24 h; the table's TTL attribute, for clean-up only: every
//! condition checks it itself), `prediction_id`, `response_status`, `response_body`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamodb::attributes::{fault, is_condition_failure, n, number, s, text};
use super::dynamodb::keys;
use crate::adapters::operations;
use crate::ports::{IdempotencyBegin, IdempotencyStore, KeySeen, StoreError, StoredAnswer};
use crate::timing::{RemoteCallExt, epoch_ms as now_ms};

/// How long a record answers repeats.
pub const RECORD_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// Idempotency records in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbIdempotency {
    client: Client,
    table_name: String,
}

impl DynamoDbIdempotency {
    /// Records in `table_name`, reached with `client`.
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    fn key(key: &str) -> HashMap<String, AttributeValue> {
        keys::idempotency_record(key).attributes()
    }

    async fn read(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(key)))
            .consistent_read(true)
            .send()
            .remote_call(operations::IDEMPOTENCY_READ)
            .await
            .map_err(|e| fault(operations::IDEMPOTENCY_READ, e))?;
        Ok(output.item)
    }
}

/// The answer a completed record keeps.
fn stored_answer(record: &HashMap<String, AttributeValue>) -> StoredAnswer {
    StoredAnswer {
        status: number(record, "response_status").unwrap_or(200) as u16,
        body: text(record, "response_body").unwrap_or("{}").to_owned(),
    }
}

impl IdempotencyStore for DynamoDbIdempotency {
    async fn begin(
        &self,
        key: &str,
        payload_hash: &str,
        in_progress_until_ms: u64,
    ) -> Result<IdempotencyBegin, StoreError> {
        let now = now_ms();
        let expiration = (now + RECORD_LIFETIME.as_millis() as u64) / 1000;
        // A fresh record, where there is none or only an expired one.
        let mut item = Self::key(key);
        item.extend([
            ("status".to_owned(), s(IN_PROGRESS)),
            ("payload_hash".to_owned(), s(payload_hash)),
            ("in_progress_expiry".to_owned(), n(in_progress_until_ms)),
            ("expiration".to_owned(), n(expiration)),
        ]);
        let created = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expiration < :now_s")
            .expression_attribute_values(":now_s", n(now / 1000))
            .send()
            .remote_call(operations::IDEMPOTENCY_BEGIN)
            .await;
        match created {
            Ok(_) => return Ok(IdempotencyBegin::Owned { resume: None }),
            Err(error) if is_condition_failure(&error) => {}
            Err(error) => return Err(fault(operations::IDEMPOTENCY_BEGIN, error)),
        }
        let Some(existing) = self.read(key).await? else {
            // Released between our put and our read: the caller may try again.
            return Ok(IdempotencyBegin::InProgress);
        };
        if text(&existing, "payload_hash") != Some(payload_hash) {
            return Ok(IdempotencyBegin::PayloadMismatch);
        }
        if text(&existing, "status") == Some(COMPLETED) {
            return Ok(IdempotencyBegin::Completed(stored_answer(&existing)));
        }
        let held_until = number(&existing, "in_progress_expiry").unwrap_or(u64::MAX);
        if held_until > now {
            return Ok(IdempotencyBegin::InProgress);
        }
        // An interrupted run: take the key over, exactly once, and resume its prediction.
        let taken = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(key)))
            .update_expression("SET in_progress_expiry = :until")
            .condition_expression("#status = :in_progress AND in_progress_expiry = :held")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":held", n(held_until))
            .expression_attribute_values(":until", n(in_progress_until_ms))
            .send()
            .remote_call(operations::IDEMPOTENCY_TAKE_OVER)
            .await;
        match taken {
            Ok(_) => Ok(IdempotencyBegin::Owned {
                resume: text(&existing, "prediction_id").map(str::to_owned),
            }),
            Err(error) if is_condition_failure(&error) => Ok(IdempotencyBegin::InProgress),
            Err(error) => Err(fault(operations::IDEMPOTENCY_TAKE_OVER, error)),
        }
    }

    async fn peek(&self, key: &str, payload_hash: &str) -> Result<KeySeen, StoreError> {
        let now = now_ms();
        let Some(existing) = self.read(key).await? else {
            return Ok(KeySeen::Free);
        };
        if number(&existing, "expiration").is_some_and(|expiration| expiration < now / 1000) {
            return Ok(KeySeen::Free);
        }
        if text(&existing, "payload_hash") != Some(payload_hash) {
            return Ok(KeySeen::PayloadMismatch);
        }
        if text(&existing, "status") == Some(COMPLETED) {
            return Ok(KeySeen::Completed(stored_answer(&existing)));
        }
        if number(&existing, "in_progress_expiry").unwrap_or(u64::MAX) > now {
            return Ok(KeySeen::InProgress);
        }
        Ok(KeySeen::Interrupted {
            prediction_id: text(&existing, "prediction_id").map(str::to_owned),
        })
    }

    async fn record_prediction(&self, key: &str, prediction_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(key)))
            .update_expression("SET prediction_id = :id")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":id", s(prediction_id))
            .send()
            .remote_call(operations::IDEMPOTENCY_PREDICTION)
            .await
            .map_err(|e| fault(operations::IDEMPOTENCY_PREDICTION, e))?;
        Ok(())
    }

    async fn complete(&self, key: &str, answer: &StoredAnswer) -> Result<(), StoreError> {
        let expiration = (now_ms() + RECORD_LIFETIME.as_millis() as u64) / 1000;
        self.client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(key)))
            .update_expression(
                "SET #status = :completed, response_status = :code, response_body = :body, expiration = :exp",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":code", n(u64::from(answer.status)))
            .expression_attribute_values(":body", s(&answer.body))
            .expression_attribute_values(":exp", n(expiration))
            .send()
            .remote_call(operations::IDEMPOTENCY_COMPLETE)
            .await
            .map_err(|e| fault(operations::IDEMPOTENCY_COMPLETE, e))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(key)))
            .condition_expression("#status = :in_progress AND attribute_not_exists(prediction_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .remote_call(operations::IDEMPOTENCY_RELEASE)
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // A paid prediction is on the record (or it is done): it stays.
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(fault(operations::IDEMPOTENCY_RELEASE, error)),
        }
    }

    async fn interrupt(&self, key: &str, prediction_id: Option<&str>) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(Self::key(key)))
            .update_expression("SET in_progress_expiry = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now_ms()));
        if let Some(prediction_id) = prediction_id {
            update = update
                .update_expression("SET in_progress_expiry = :now, prediction_id = :id")
                .expression_attribute_values(":id", s(prediction_id));
        }
        update
            .send()
            .remote_call(operations::IDEMPOTENCY_INTERRUPT)
            .await
            .map_err(|e| fault(operations::IDEMPOTENCY_INTERRUPT, e))?;
        Ok(())
    }
}
