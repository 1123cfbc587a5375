//! DynamoDB adapter for the spend guard: the kill switch (item `pk = CONTROL`,
//! `sk = KILL_SWITCH`, `enabled` anything but `false`) and the daily caps, counted atomically
//! per UTC day in `pk = BUDGET#{yyyy-mm-dd}`, `sk = SERVICE` and `sk = ACTOR#{actor_name}`
//! (the folder written, whichever actor id the request came by)
//! (`used`, with an `expiration` two days on for TTL clean-up). With caps, one transaction
//! checks the switch and counts the generation: one round trip, and no generation counted
//! while it is on. The day comes from the clock port at admission and travels with the
//! [`Admission`], so a refund after midnight goes back to the day that was counted.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;

use super::budget_transaction::{Counter, TransactFailure, count};
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
            match count(
                &self.client,
                &self.table_name,
                &counters,
                &admission.day,
                units,
                None,
            )
            .await
            {
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
            match count(
                &self.client,
                &self.table_name,
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
