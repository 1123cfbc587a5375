//! The worker's step: an item's message taken one step on, by the item's state. A queued
//! item is claimed (a conditional write, so a message delivered twice never creates twice)
//! and its prediction created without waiting; a predicting one is looked at once and comes
//! back later while it runs; a succeeded one is stored through the one store step, and so is
//! the prediction of a store message (a webhook said it succeeded). Every state change is
//! conditional; a final item ends its message.

mod check;

use std::time::Duration;

use super::{CREATE_TIME, ITEM_HOLD, STORE_HOLD, TrainingSetWork, item_request};
use crate::domain::training_set::ItemState;
use crate::ports::{
    ActorProfiles, Clock, ImageGenerator, IndexCounter, ItemChange, ItemMessage, ObjectStore,
    PredictionError, PredictionRecords, PredictionRequest, SetItem, SpendGuard, SpendRefusal,
    TrainingSet, TrainingSets,
};
use crate::retry::{ITEM_FAULT_RETRY, next_check_after};
use crate::usecases::UseCaseError;
use crate::usecases::concurrently::both;

/// What becomes of an item's message after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The item is final: its message is done.
    Done,
    /// The item has a next step: deliver its message again after this long.
    After(Duration),
}

impl<P, O, C, G, K, R, I, S, T, Q> TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
    S: SpendGuard,
    T: TrainingSets,
{
    /// Takes the item of `message` one step on, in an invocation that ends at `deadline_ms`
    /// (epoch milliseconds: a claim holds the item until then). An error is a fault: the
    /// message comes back after [`ITEM_FAULT_RETRY`], and the item's state says where it
    /// stands.
    pub async fn advance(
        &self,
        message: &ItemMessage,
        deadline_ms: u64,
    ) -> Result<NextStep, UseCaseError> {
        // A queued item's create needs the kill switch: it is read with the item (the
        // batch's concurrent reads are one), not after it.
        let switch = async {
            match message.succeeded {
                Some(_) => None,
                None => Some(self.spend.switched_off().await),
            }
        };
        let (read, switched_off) = both(
            self.sets.read_item(&message.set_id, message.position),
            switch,
        )
        .await;
        let Some((set, item)) = read? else {
            tracing::warn!(set_id = %message.set_id, position = message.position, "no such item; its message is dropped");
            return Ok(NextStep::Done);
        };
        if let Some(succeeded) = &message.succeeded
            && item.state == ItemState::Storing
            && item.prediction_id.as_deref() == Some(succeeded.prediction_id.as_str())
        {
            return Box::pin(self.store_told(&set, &item, succeeded)).await;
        }
        match item.state {
            ItemState::Queued => {
                let switched_off = match switched_off {
                    Some(read) => read?,
                    None => self.spend.switched_off().await?,
                };
                Box::pin(self.create_item(&set, &item, deadline_ms, switched_off)).await
            }
            ItemState::Creating => self.claimed(&set, &item).await,
            ItemState::Predicting => Box::pin(self.check_item(&set, &item)).await,
            ItemState::Storing => match STORE_HOLD.checked_sub(self.age(&item)) {
                // Another delivery is storing it (a webhook's store message, most often).
                Some(left) => Ok(NextStep::After(left + Duration::from_secs(1))),
                None => Box::pin(self.check_item(&set, &item)).await,
            },
            ItemState::Stored | ItemState::Failed | ItemState::Canceled | ItemState::Uncertain => {
                Ok(NextStep::Done)
            }
        }
    }

    /// A queued item: claimed and prepared at once, then its prediction created (no
    /// waiting). `switched_off` is the kill switch as read with the item.
    async fn create_item(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        deadline_ms: u64,
        switched_off: bool,
    ) -> Result<NextStep, UseCaseError> {
        let clock = &self.generation.clock;
        if set.canceled {
            return self
                .end_unpaid(
                    set,
                    item,
                    ItemState::Queued,
                    ItemChange::to(ItemState::Canceled),
                )
                .await;
        }
        if switched_off {
            let change = ItemChange::because(ItemState::Failed, SpendRefusal::Disabled.to_string());
            return self.end_unpaid(set, item, ItemState::Queued, change).await;
        }
        let claim = ItemChange {
            held_until_ms: deadline_ms,
            ..ItemChange::to(ItemState::Creating)
        };
        // The preparation only reads: done while the claim is written, and dropped if the
        // claim fails (another delivery has the item).
        let request = item_request(set, item);
        let (claimed, prepared) = both(
            self.change(set, item, ItemState::Queued, &claim),
            self.generation.prepare(&set.actor_id, &request),
        )
        .await;
        if !claimed? {
            return Ok(NextStep::After(ITEM_FAULT_RETRY));
        }
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) if error.is_refusal() => {
                let change = ItemChange::because(ItemState::Failed, error.to_string());
                return self
                    .end_unpaid(set, item, ItemState::Creating, change)
                    .await;
            }
            Err(error) => {
                self.change(
                    set,
                    item,
                    ItemState::Creating,
                    &ItemChange::to(ItemState::Queued),
                )
                .await?;
                return Err(error);
            }
        };
        let webhook = (self.webhooks.as_ref())
            .map(|hooks| hooks.for_item(&set.set_id, item.position, item.attempt));
        let request = PredictionRequest {
            webhook,
            ..prepared.request
        };
        let created = self
            .generation
            .start_prediction(&request, clock.now() + CREATE_TIME)
            .await;
        let started = match created {
            Ok(started) => started,
            Err(error) => return self.create_failed(set, item, error).await,
        };
        let prediction_id = started.prediction_id;
        let hold_until_ms = clock.now_epoch_ms() + ITEM_HOLD.as_millis() as u64;
        let model = self.generation.generator.model();
        let ((), recorded) = both(
            self.generation
                .open_record(&prediction_id, &prepared.order, model, hold_until_ms),
            self.record_prediction(set, item, &prediction_id),
        )
        .await;
        if let Err(error) = recorded {
            // Its record lets the reconciler store it all the same.
            tracing::error!(set_id = %set.set_id, position = item.position, %prediction_id, %error, "item's prediction id not recorded");
        }
        tracing::info!(set_id = %set.set_id, position = item.position, %prediction_id, "item's prediction created");
        let first_check = match &self.webhooks {
            Some(hooks) => hooks.first_check,
            None => next_check_after(Duration::ZERO),
        };
        Ok(NextStep::After(first_check))
    }

    /// A create that gave no prediction: queued again (rate limited, unavailable), failed
    /// for good (refused), or uncertain (its answer was lost: never created again).
    async fn create_failed(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        error: UseCaseError,
    ) -> Result<NextStep, UseCaseError> {
        let from = ItemState::Creating;
        if error.outcome_uncertain() {
            tracing::error!(set_id = %set.set_id, position = item.position, %error, "item's create uncertain; left for an operator");
            self.change(
                set,
                item,
                from,
                &ItemChange::because(ItemState::Uncertain, error.to_string()),
            )
            .await?;
            return Ok(NextStep::Done);
        }
        let retry_after = match &error {
            UseCaseError::Prediction(PredictionError::RateLimited { retry_after, .. }) => Some(
                retry_after
                    .unwrap_or(Duration::from_secs(30))
                    .max(Duration::from_secs(1)),
            ),
            UseCaseError::Prediction(PredictionError::Rejected { .. }) => None,
            _ if error.paid_nothing() => Some(ITEM_FAULT_RETRY),
            _ => None,
        };
        match retry_after {
            Some(delay) => {
                tracing::warn!(set_id = %set.set_id, position = item.position, %error, delay_s = delay.as_secs(), "item's create refused for now; queued again");
                self.change(set, item, from, &ItemChange::to(ItemState::Queued))
                    .await?;
                Ok(NextStep::After(delay))
            }
            None => {
                let change = ItemChange::because(ItemState::Failed, error.to_string());
                self.end_unpaid(set, item, from, change).await
            }
        }
    }

    /// Notes the new prediction on the item (also over an `uncertain` a slow claim got).
    async fn record_prediction(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        prediction_id: &str,
    ) -> Result<(), UseCaseError> {
        let change = ItemChange {
            prediction_id: Some(prediction_id.to_owned()),
            ..ItemChange::to(ItemState::Predicting)
        };
        for from in [ItemState::Creating, ItemState::Uncertain] {
            if self.change(set, item, from, &change).await? {
                return Ok(());
            }
        }
        // Its webhook may have come first and moved it on with this prediction.
        let now = self.sets.read_item(&set.set_id, item.position).await?;
        if now.is_some_and(|(_, item)| item.prediction_id.as_deref() == Some(prediction_id)) {
            return Ok(());
        }
        Err(UseCaseError::Store(crate::ports::StoreError {
            operation: "item state change",
            detail: "the item was neither creating nor uncertain".to_owned(),
        }))
    }

    /// A claimed item seen by another delivery: its claimer is still at it (until its
    /// invocation's deadline), or its invocation ended between its claim and recording the
    /// prediction, which may exist: uncertain, never created again.
    async fn claimed(&self, set: &TrainingSet, item: &SetItem) -> Result<NextStep, UseCaseError> {
        let now_ms = self.generation.clock.now_epoch_ms();
        let claimed_until = item.held_until_ms.unwrap_or(0);
        if now_ms <= claimed_until {
            let wait = Duration::from_millis(claimed_until - now_ms) + Duration::from_secs(1);
            return Ok(NextStep::After(wait));
        }
        let change = ItemChange::because(
            ItemState::Uncertain,
            "the worker that claimed this item stopped before recording its prediction; one may exist",
        );
        tracing::error!(set_id = %set.set_id, position = item.position, "claimed item abandoned; uncertain, left for an operator");
        self.change(set, item, ItemState::Creating, &change).await?;
        Ok(NextStep::Done)
    }

    /// Ends an item that paid nothing, and gives its unit back.
    async fn end_unpaid(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        from: ItemState,
        change: ItemChange,
    ) -> Result<NextStep, UseCaseError> {
        if !self.change(set, item, from, &change).await? {
            return Ok(NextStep::After(ITEM_FAULT_RETRY));
        }
        self.refund_item(set, item).await;
        Ok(NextStep::Done)
    }

    /// How long the item has been in its state.
    fn age(&self, item: &SetItem) -> Duration {
        let now_ms = self.generation.clock.now_epoch_ms();
        Duration::from_millis(now_ms.saturating_sub(item.state_since_ms))
    }
}
