//! An item's state change: one `TransactWriteItems` that updates the item on condition of
//! its old state (and its place in the open-records index: unfinished items are in it until
//! their hold) and moves the set's counts with it; a conflict with another transaction is
//! tried again.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::DynamoDbTrainingSets;
use super::encoding::count_attribute;
use crate::adapters::dynamodb::attributes::{fault, n, s};
use crate::adapters::dynamodb::keys::{self, HELD_UNTIL, OPEN_ITEM, OPEN_KIND};
use crate::adapters::operations;
use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{ItemChange, StoreError};
use crate::retry::Backoff;
use crate::timing::{self, RemoteCallExt};

impl DynamoDbTrainingSets {
    /// The transaction of one item's change; `Ok(false)` when its state was not `from`.
    pub(super) async fn transact_change(
        &self,
        set_id: &SetId,
        position: u32,
        from: ItemState,
        change: &ItemChange,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let build = |error| fault(operations::SET_ITEM_CHANGE, error);
        let mut sets = vec!["#state = :to", "state_since = :now"];
        let mut removes = Vec::new();
        // An unfinished item is in the open-records index until its hold; a final one leaves.
        if change.to.is_final() {
            removes.extend(["#kind", "#held"]);
        } else {
            sets.extend(["#kind = :kind", "#held = :held"]);
        }
        let mut item = Update::builder()
            .expression_attribute_names("#kind", OPEN_KIND)
            .expression_attribute_names("#held", HELD_UNTIL)
            .table_name(&self.table_name)
            .set_key(Some(keys::set_item(set_id, position).attributes()))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(change.to.as_str()))
            .expression_attribute_values(":now", n(now_ms));
        if !change.to.is_final() {
            item = item
                .expression_attribute_values(":kind", s(OPEN_ITEM))
                .expression_attribute_values(":held", n(change.held_until_ms));
        }
        if let Some(expected) = &change.only_if {
            let mut condition = String::from("#state = :from AND prediction_id = :expected");
            item = item.expression_attribute_values(":expected", s(&expected.prediction_id));
            if let Some(attempt) = expected.attempt {
                condition.push_str(" AND attempt = :attempt");
                item = item.expression_attribute_values(":attempt", n(u64::from(attempt)));
            }
            if let Some(seed) = expected.seed {
                condition.push_str(" AND seed = :seed");
                item = item.expression_attribute_values(":seed", n(seed));
            }
            item = item.condition_expression(condition);
        }
        if let Some(prediction_id) = &change.prediction_id {
            sets.push("prediction_id = :prediction");
            item = item.expression_attribute_values(":prediction", s(prediction_id));
        }
        if let Some(image) = &change.image {
            sets.extend([
                "image_index = :index",
                "filename = :filename",
                "s3_key = :key",
            ]);
            item = item
                .expression_attribute_values(":index", n(image.index))
                .expression_attribute_values(":filename", s(&image.filename))
                .expression_attribute_values(":key", s(&image.s3_key));
        }
        match &change.error {
            Some(error) => {
                sets.push("#error = :error");
                item = item
                    .expression_attribute_names("#error", "error")
                    .expression_attribute_values(":error", s(error));
            }
            None => {
                removes.push("#error");
                item = item.expression_attribute_names("#error", "error");
            }
        }
        if change.requeue {
            sets.push("attempt = attempt + :one");
            removes.extend(["prediction_id", "image_index", "filename", "s3_key"]);
            item = item.expression_attribute_values(":one", n(1));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let item = item.update_expression(expression).build().map_err(build)?;
        let counts = Update::builder()
            .table_name(&self.table_name)
            .set_key(Some(keys::training_set(set_id).attributes()))
            .update_expression("ADD #from :minus, #to :plus")
            .expression_attribute_names("#from", count_attribute(from))
            .expression_attribute_names("#to", count_attribute(change.to))
            .expression_attribute_values(":minus", AttributeValue::N("-1".to_owned()))
            .expression_attribute_values(":plus", n(1))
            .build()
            .map_err(build)?;
        let policy = Backoff::BUDGET_CONFLICT;
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(item.clone()).build())
                .transact_items(TransactWriteItem::builder().update(counts.clone()).build())
                .send()
                .remote_call(operations::SET_ITEM_CHANGE)
                .await;
            let error = match sent {
                Ok(_) => return Ok(true),
                Err(error) => error,
            };
            let reasons: Vec<String> = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => canceled
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|reason| reason.code().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") {
                return Ok(false);
            }
            let conflict = reasons.iter().any(|code| code == "TransactionConflict")
                || matches!(
                    error.as_service_error(),
                    Some(TransactWriteItemsError::TransactionInProgressException(_))
                );
            if conflict && policy.allows_another(attempt) {
                timing::pause_before_retry(policy.delay(attempt)).await;
                attempt += 1;
                continue;
            }
            return Err(StoreError {
                operation: operations::SET_ITEM_CHANGE,
                detail: DisplayErrorContext(error).to_string(),
            });
        }
    }
}
