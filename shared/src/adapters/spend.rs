//! DynamoDB adapter for the spend guard: the kill switch (item `pk = CONTROL`,
//! `sk = KILL_SWITCH`, `enabled` true) and the daily caps, counted atomically per UTC day in
//! `pk = BUDGET#{yyyy-mm-dd}`, `sk = SERVICE` and `sk = ACTOR#{actorId}` (`used`, with an
//! `expiration` two days on for TTL clean-up).

use std::time::SystemTime;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use crate::domain::actor::ActorId;
use crate::ports::{SpendGuard, SpendRefusal, StoreError};

/// The daily caps, from the template's parameters; `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyCaps {
    /// Generations per UTC day for the whole service.
    pub service: Option<u64>,
    /// Generations per UTC day for each actor.
    pub per_actor: Option<u64>,
}

/// The kill switch and daily caps in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbSpendGuard {
    client: Client,
    table_name: String,
    caps: DailyCaps,
    switched_off: bool,
}

impl DynamoDbSpendGuard {
    /// A guard over `table_name` with these caps; `switched_off` is the kill switch set in
    /// the function's configuration (the table's item is the other one).
    pub fn new(
        client: Client,
        table_name: impl Into<String>,
        caps: DailyCaps,
        switched_off: bool,
    ) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            caps,
            switched_off,
        }
    }

    async fn kill_switch_on(&self) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key("pk", AttributeValue::S("CONTROL".to_owned()))
            .key("sk", AttributeValue::S("KILL_SWITCH".to_owned()))
            .send()
            .await
            .map_err(|error| StoreError {
                operation: "DynamoDB GetItem (kill switch)",
                detail: DisplayErrorContext(error).to_string(),
            })?;
        Ok(output
            .item
            .and_then(|item| item.get("enabled").and_then(|v| v.as_bool().ok()).copied())
            .unwrap_or(false))
    }
}

/// Today's UTC date and the epoch second two days on.
fn today() -> (String, i64) {
    let now = DateTime::from(SystemTime::now());
    let date = now
        .fmt(Format::DateTime)
        .map(|text| text.chars().take(10).collect())
        .unwrap_or_else(|_| "unknown-day".to_owned());
    (date, now.secs() + 2 * 86_400)
}

impl SpendGuard for DynamoDbSpendGuard {
    async fn admit(&self, actor_id: &ActorId) -> Result<Result<(), SpendRefusal>, StoreError> {
        if self.switched_off || self.kill_switch_on().await? {
            return Ok(Err(SpendRefusal::Disabled));
        }
        let (date, expiration) = today();
        let counters: Vec<(String, String, u64)> = [
            (
                String::from("SERVICE"),
                String::from("for the service"),
                self.caps.service,
            ),
            (
                format!("ACTOR#{actor_id}"),
                format!("for actor {actor_id}"),
                self.caps.per_actor,
            ),
        ]
        .into_iter()
        .filter_map(|(sk, scope, cap)| cap.map(|cap| (sk, scope, cap)))
        .collect();
        if counters.is_empty() {
            return Ok(Ok(()));
        }
        let mut transaction = self.client.transact_write_items();
        for (sk, _, cap) in &counters {
            let update = Update::builder()
                .table_name(&self.table_name)
                .key("pk", AttributeValue::S(format!("BUDGET#{date}")))
                .key("sk", AttributeValue::S(sk.clone()))
                .update_expression("ADD used :one SET expiration = :exp")
                .condition_expression("attribute_not_exists(used) OR used < :cap")
                .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
                .expression_attribute_values(":cap", AttributeValue::N(cap.to_string()))
                .expression_attribute_values(":exp", AttributeValue::N(expiration.to_string()))
                .build()
                .map_err(|error| StoreError {
                    operation: "DynamoDB TransactWriteItems (budget)",
                    detail: error.to_string(),
                })?;
            transaction =
                transaction.transact_items(TransactWriteItem::builder().update(update).build());
        }
        match transaction.send().await {
            Ok(_) => Ok(Ok(())),
            Err(error) => {
                let reasons = error
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(canceled) => {
                            Some(canceled.cancellation_reasons().to_vec())
                        }
                        _ => None,
                    });
                let Some(reasons) = reasons else {
                    return Err(StoreError {
                        operation: "DynamoDB TransactWriteItems (budget)",
                        detail: DisplayErrorContext(error).to_string(),
                    });
                };
                let exhausted = reasons
                    .iter()
                    .position(|reason| reason.code() == Some("ConditionalCheckFailed"))
                    .and_then(|position| counters.get(position));
                match exhausted {
                    Some((_, scope, cap)) => Ok(Err(SpendRefusal::Exhausted {
                        scope: scope.clone(),
                        cap: *cap,
                    })),
                    None => Err(StoreError {
                        operation: "DynamoDB TransactWriteItems (budget)",
                        detail: format!("transaction canceled: {reasons:?}"),
                    }),
                }
            }
        }
    }
}
