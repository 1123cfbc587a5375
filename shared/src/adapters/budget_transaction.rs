//! The one DynamoDB transaction behind the daily caps: each capped counter of a day moved
//! together, with the kill switch checked in the same round trip when counting, and a
//! refund made idempotent by its client request token.

use std::time::SystemTime;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::dynamodb::keys;
use crate::adapters::operations;
use crate::timing::RemoteCallExt;

/// The epoch second at which a day's counters may be cleaned up: two days on from the day's
/// start, whenever it is written (a late refund does not make it live longer).
fn expiration_of(day: &str) -> i64 {
    DateTime::from_str(&format!("{day}T00:00:00Z"), Format::DateTime)
        .map(|start| start.secs())
        .unwrap_or_else(|_| DateTime::from(SystemTime::now()).secs())
        + 2 * 86_400
}

/// One of a day's budget counters.
pub(super) enum Counter {
    /// The whole service's.
    Service,
    /// One actor's, by name.
    Actor(String),
    /// The whole service's trainings.
    Trainings,
}

/// Why a budget transaction did not go through.
pub(super) enum TransactFailure {
    /// The kill switch is on.
    SwitchedOff,
    /// The counter at this position is at its cap.
    CapReached(usize),
    /// Another transaction touched the same counter: try again.
    Conflict,
    /// Anything else.
    Fault(String),
}

/// One transaction on each counter of `date`: an admission adds one while each is under
/// its cap and the kill switch is off; a refund (its token given) takes one back while
/// there is one to take, idempotently: every attempt of one refund sends the same
/// `ClientRequestToken`, so a retry after a lost reply gives nothing back twice.
pub(super) async fn count(
    client: &Client,
    table_name: &str,
    counters: &[(Counter, String, u64)],
    date: &str,
    units: u64,
    refund_token: Option<&str>,
) -> Result<(), TransactFailure> {
    let capped = refund_token.is_none();
    let delta = if capped {
        units.to_string()
    } else {
        format!("-{units}")
    };
    let expiration = expiration_of(date);
    let mut transaction = client
        .transact_write_items()
        .set_client_request_token(refund_token.map(str::to_owned));
    if capped {
        let switch_off = ConditionCheck::builder()
            .table_name(table_name)
            .set_key(Some(keys::kill_switch().attributes()))
            .condition_expression("attribute_not_exists(enabled) OR enabled = :off")
            .expression_attribute_values(":off", AttributeValue::Bool(false))
            .build()
            .map_err(|error| TransactFailure::Fault(error.to_string()))?;
        transaction = transaction.transact_items(
            TransactWriteItem::builder()
                .condition_check(switch_off)
                .build(),
        );
    }
    for (counter, _, cap) in counters {
        let key = match counter {
            Counter::Service => keys::service_budget(date),
            Counter::Actor(actor_name) => keys::actor_budget(date, actor_name),
            Counter::Trainings => keys::training_budget(date),
        };
        let mut update = Update::builder()
            .table_name(table_name)
            .set_key(Some(key.attributes()))
            .update_expression("ADD used :delta SET expiration = :exp")
            .expression_attribute_values(":delta", AttributeValue::N(delta.clone()))
            .expression_attribute_values(":exp", AttributeValue::N(expiration.to_string()));
        update = if capped {
            // Room for all the units (`admit` refuses more units than the cap first).
            update
                .condition_expression("attribute_not_exists(used) OR used <= :room")
                .expression_attribute_values(
                    ":room",
                    AttributeValue::N(cap.saturating_sub(units).to_string()),
                )
        } else {
            update
                .condition_expression("used >= :units")
                .expression_attribute_values(":units", AttributeValue::N(units.to_string()))
        };
        let update = update
            .build()
            .map_err(|error| TransactFailure::Fault(error.to_string()))?;
        transaction =
            transaction.transact_items(TransactWriteItem::builder().update(update).build());
    }
    let error = match transaction
        .send()
        .remote_call(if capped {
            operations::BUDGET_COUNT
        } else {
            operations::BUDGET_REFUND
        })
        .await
    {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    let reasons = error.as_service_error().and_then(|e| match e {
        TransactWriteItemsError::TransactionCanceledException(canceled) => {
            Some(canceled.cancellation_reasons().to_vec())
        }
        _ => None,
    });
    let Some(reasons) = reasons else {
        let conflict = error.as_service_error().is_some_and(|e| {
            matches!(
                e,
                TransactWriteItemsError::TransactionInProgressException(_)
            )
        });
        return Err(if conflict {
            TransactFailure::Conflict
        } else {
            TransactFailure::Fault(DisplayErrorContext(error).to_string())
        });
    };
    let code =
        |reason: &aws_sdk_dynamodb::types::CancellationReason| reason.code().map(str::to_owned);
    let first_counter = usize::from(capped);
    if let Some(position) = reasons
        .iter()
        .position(|r| code(r).as_deref() == Some("ConditionalCheckFailed"))
    {
        return Err(match position.checked_sub(first_counter) {
            Some(counter) => TransactFailure::CapReached(counter),
            None => TransactFailure::SwitchedOff,
        });
    }
    if reasons
        .iter()
        .any(|r| code(r).as_deref() == Some("TransactionConflict"))
    {
        return Err(TransactFailure::Conflict);
    }
    Err(TransactFailure::Fault(format!(
        "transaction canceled: {reasons:?}"
    )))
}
