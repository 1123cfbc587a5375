//! DynamoDB adapter for the spend guard: the kill switch (item `pk = CONTROL`,
//! `sk = KILL_SWITCH`, `enabled` anything but `false`) and the daily caps, counted atomically
//! per UTC day in `pk = BUDGET#{yyyy-mm-dd}`, `sk = SERVICE` and `sk = ACTOR#{actor_name}`
//! (the folder written, whichever actor id the request came by)
//! (`used`, with an `expiration` two days on for TTL clean-up). With caps, one transaction
//! checks the switch and counts the generation: one round trip, and no generation counted
//! while it is on. The day comes from the clock port at admission and travels with the
//! [`Admission`], so a refund after midnight goes back to the day that was counted.

use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::coalesced::CoalescedReads;
use super::dynamodb::keys;
use crate::adapters::clock::SystemClock;
use crate::adapters::operations;
use crate::ports::{Admission, Clock, SpendGuard, SpendRefusal, StoreError};
use crate::retry::{Backoff, random_number};
use crate::timing::{self, RemoteCallExt};

/// The daily caps, from the template's parameters; `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyCaps {
    /// Generations per UTC day for the whole service.
    pub service: Option<u64>,
    /// Generations per UTC day for each actor.
    pub per_actor: Option<u64>,
}

/// What a guard counts: images, or trainings (which cost dollars, not cents, and have
/// their own cap, `BUDGET#{day}` / `TRAININGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ledger {
    Generations,
    Trainings,
}

/// The kill switch and daily caps in the service's table.
#[derive(Debug, Clone)]
pub struct DynamoDbSpendGuard<K = SystemClock> {
    client: Client,
    table_name: String,
    ledger: Ledger,
    caps: DailyCaps,
    switched_off: bool,
    clock: K,
    /// Callers that come while the switch is being read (a worker batch's creates) take
    /// that read's answer.
    switch_reads: Arc<CoalescedReads<(), bool>>,
}

impl<K: Clock> DynamoDbSpendGuard<K> {
    /// A guard over `table_name` with these caps; `switched_off` is the kill switch set in
    /// the function's configuration (the table's item is the other one). `clock` says which
    /// UTC day a generation is counted on.
    pub fn new(
        client: Client,
        table_name: impl Into<String>,
        caps: DailyCaps,
        switched_off: bool,
        clock: K,
    ) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            ledger: Ledger::Generations,
            caps,
            switched_off,
            clock,
            switch_reads: Arc::default(),
        }
    }

    /// A guard of trainings over `table_name`: the same kill switch, and `cap` trainings per
    /// UTC day for the whole service (`None`: no cap).
    pub fn for_trainings(
        client: Client,
        table_name: impl Into<String>,
        cap: Option<u64>,
        switched_off: bool,
        clock: K,
    ) -> Self {
        let caps = DailyCaps {
            service: cap,
            per_actor: None,
        };
        Self {
            ledger: Ledger::Trainings,
            ..Self::new(client, table_name, caps, switched_off, clock)
        }
    }

    /// Whether the table's switch is on, as read after the call began (a read that ended
    /// since, or a new one).
    async fn kill_switch_on(&self) -> Result<bool, StoreError> {
        self.switch_reads.read(&(), self.read_kill_switch()).await
    }

    async fn read_kill_switch(&self) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(keys::kill_switch().attributes()))
            // Strongly consistent, as the transaction's check is: the switch acts at once.
            .consistent_read(true)
            .send()
            .remote_call(operations::KILL_SWITCH_READ)
            .await
            .map_err(|error| StoreError {
                operation: operations::KILL_SWITCH_READ,
                detail: DisplayErrorContext(error).to_string(),
            })?;
        // As in the transaction's condition: on unless `enabled` is absent or `false`.
        Ok(output
            .item
            .and_then(|item| item.get("enabled").map(|v| v.as_bool() != Ok(&false)))
            .unwrap_or(false))
    }
}

/// The UTC day (`yyyy-mm-dd`) of an RFC 3339 timestamp in UTC.
fn day_of(rfc3339: &str) -> String {
    rfc3339.chars().take(10).collect()
}

/// The epoch second at which a day's counters may be cleaned up: two days on from the day's
/// start, whenever it is written (a late refund does not make it live longer).
fn expiration_of(day: &str) -> i64 {
    DateTime::from_str(&format!("{day}T00:00:00Z"), Format::DateTime)
        .map(|start| start.secs())
        .unwrap_or_else(|_| DateTime::from(SystemTime::now()).secs())
        + 2 * 86_400
}

impl<K: Clock> DynamoDbSpendGuard<K> {
    /// The capped counters for `actor_name`: which counter, the scope said in a refusal, the
    /// cap.
    fn counters(&self, actor_name: &str) -> Vec<(Counter, String, u64)> {
        if self.ledger == Ledger::Trainings {
            let cap = self.caps.service;
            return cap
                .map(|cap| {
                    (
                        Counter::Trainings,
                        "trainings for the service".to_owned(),
                        cap,
                    )
                })
                .into_iter()
                .collect();
        }
        [
            (
                Counter::Service,
                String::from("generations for the service"),
                self.caps.service,
            ),
            (
                Counter::Actor(actor_name.to_owned()),
                format!("generations for actor {actor_name}"),
                self.caps.per_actor,
            ),
        ]
        .into_iter()
        .filter_map(|(sk, scope, cap)| cap.map(|cap| (sk, scope, cap)))
        .collect()
    }

    /// One transaction on each counter of `date`: an admission adds one while each is under
    /// its cap and the kill switch is off; a refund (its token given) takes one back while
    /// there is one to take, idempotently: every attempt of one refund sends the same
    /// `ClientRequestToken`, so a retry after a lost reply gives nothing back twice.
    async fn count(
        &self,
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
        let mut transaction = self
            .client
            .transact_write_items()
            .set_client_request_token(refund_token.map(str::to_owned));
        if capped {
            let switch_off = ConditionCheck::builder()
                .table_name(&self.table_name)
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
                .table_name(&self.table_name)
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
}

/// One of a day's budget counters.
enum Counter {
    /// The whole service's.
    Service,
    /// One actor's, by name.
    Actor(String),
    /// The whole service's trainings.
    Trainings,
}

/// Why a budget transaction did not go through.
enum TransactFailure {
    /// The kill switch is on.
    SwitchedOff,
    /// The counter at this position is at its cap.
    CapReached(usize),
    /// Another transaction touched the same counter: try again.
    Conflict,
    /// Anything else.
    Fault(String),
}

impl<K: Clock> SpendGuard for DynamoDbSpendGuard<K> {
    async fn admit(
        &self,
        actor_name: &str,
        units: u64,
    ) -> Result<Result<Admission, SpendRefusal>, StoreError> {
        if self.switched_off {
            return Ok(Err(SpendRefusal::Disabled));
        }
        let admission = Admission {
            day: day_of(&self.clock.now_rfc3339()),
            actor_name: actor_name.to_owned(),
            units,
            refund_token: format!(
                "{:016x}{:016x}",
                random_number(u64::MAX),
                random_number(u64::MAX)
            ),
        };
        let counters = self.counters(actor_name);
        // A cap smaller than the units refuses without a write (a zero cap refuses all).
        let zero_cap = counters.iter().find(|(_, _, cap)| *cap < units.max(1));
        if counters.is_empty() || zero_cap.is_some() {
            if self.kill_switch_on().await? {
                return Ok(Err(SpendRefusal::Disabled));
            }
            return Ok(match zero_cap {
                Some((_, scope, cap)) => Err(SpendRefusal::Exhausted {
                    scope: scope.clone(),
                    cap: *cap,
                }),
                None => Ok(admission),
            });
        }
        let fault = |detail: String| StoreError {
            operation: operations::BUDGET_COUNT,
            detail,
        };
        let policy = Backoff::BUDGET_CONFLICT;
        for attempt in 1..=policy.attempts {
            match self.count(&counters, &admission.day, units, None).await {
                Ok(()) => return Ok(Ok(admission)),
                Err(TransactFailure::SwitchedOff) => return Ok(Err(SpendRefusal::Disabled)),
                Err(TransactFailure::CapReached(position)) => {
                    let (_, scope, cap) = &counters[position.min(counters.len() - 1)];
                    return Ok(Err(SpendRefusal::Exhausted {
                        scope: scope.clone(),
                        cap: *cap,
                    }));
                }
                Err(TransactFailure::Conflict) if policy.allows_another(attempt) => {
                    timing::pause_before_retry(policy.delay(attempt)).await;
                }
                Err(TransactFailure::Conflict) => {
                    return Err(fault("conflicting transactions kept winning".to_owned()));
                }
                Err(TransactFailure::Fault(detail)) => return Err(fault(detail)),
            }
        }
        Err(fault("no attempt was made".to_owned()))
    }

    async fn refund(&self, admission: &Admission) -> Result<(), StoreError> {
        let counters = self.counters(&admission.actor_name);
        if counters.is_empty() {
            return Ok(());
        }
        let policy = Backoff::REFUND_CONFLICT;
        for attempt in 1..=policy.attempts {
            match self
                .count(
                    &counters,
                    &admission.day,
                    admission.units,
                    Some(&admission.refund_token),
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(TransactFailure::Conflict) => {
                    timing::pause_before_retry(policy.delay(attempt)).await
                }
                Err(
                    TransactFailure::SwitchedOff
                    | TransactFailure::CapReached(_)
                    | TransactFailure::Fault(_),
                ) => break,
            }
        }
        Err(StoreError {
            operation: operations::BUDGET_REFUND,
            detail: "the refund did not go through".to_owned(),
        })
    }

    async fn switched_off(&self) -> Result<bool, StoreError> {
        if self.switched_off {
            return Ok(true);
        }
        self.kill_switch_on().await
    }
}
