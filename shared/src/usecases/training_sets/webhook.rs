//! A prediction's end as Replicate's webhook tells it (its signature already checked): the
//! item moves to `storing` by a conditional write, and only the delivery that moved it sends
//! the store message, so a duplicate or late delivery does nothing. It answers in
//! milliseconds (Replicate retries a slow answer); the worker stores.

use std::time::Duration;

use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{
    Clock, ItemChange, ItemExpectation, ItemMessage, ItemQueue, SetItem, SucceededPrediction,
    TrainingSets,
};
use crate::usecases::UseCaseError;

/// The webhook's side of training sets: the sets, the items' queue and the clock.
#[derive(Debug)]
pub struct WebhookIntake<K, T, Q> {
    /// The clock.
    pub clock: K,
    /// The sets and their items.
    pub sets: T,
    /// The items' queue, for the store message.
    pub queue: Q,
    /// How long a `storing` item may wait before the reconciler sends its message again (a
    /// store message lost with its webhook's answer).
    pub stuck_after: Duration,
}

/// What a delivery told: the item it names (by its URL) and how its prediction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionEnded {
    /// The set, from the webhook URL's `set`.
    pub set_id: SetId,
    /// The item's position, from the webhook URL's `item`.
    pub position: u32,
    /// The item's attempt, from the webhook URL's `attempt` (`None` for a URL without one).
    pub attempt: Option<u32>,
    /// The prediction, from the body.
    pub prediction_id: String,
    /// The seed the prediction was made with, from the body's (signed) `input`.
    pub seed: Option<u64>,
    /// Its output, when it succeeded; `None` when it failed or was canceled.
    pub output_url: Option<String>,
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The item moved to `storing`, and its store message was sent.
    Storing,
    /// The prediction ended without an image: a message was sent for the worker to end the
    /// item (it reads the prediction and closes its record).
    Ending,
    /// Nothing to do: the item is storing or past it (a duplicate or late delivery), has no
    /// prediction (queued), or the delivery is for another prediction, attempt or seed.
    Nothing(ItemState),
}

/// How many times a delivery reads the item again when another writer moved it meanwhile.
const RACED_READS: usize = 3;

impl<K, T, Q> WebhookIntake<K, T, Q>
where
    K: Clock,
    T: TrainingSets,
    Q: ItemQueue,
{
    /// Takes one delivery: the item moved on and its message sent, or nothing when a
    /// delivery before it did so. An error leaves the item as it was, or `storing` without
    /// its message (the worker's own check or the reconciler takes it over): the webhook
    /// answers 5xx and Replicate delivers it again.
    pub async fn prediction_ended(
        &self,
        ended: &PredictionEnded,
    ) -> Result<WebhookOutcome, UseCaseError> {
        if let Some(outcome) = self.predicting_to_storing(ended).await? {
            return Ok(outcome);
        }
        for _ in 0..RACED_READS {
            let Some((_, item)) = self.sets.read_item(&ended.set_id, ended.position).await? else {
                return Err(UseCaseError::SetNotFound(ended.set_id.to_string()));
            };
            if let Some(outcome) = self.nothing_to_do(ended, &item) {
                return Ok(outcome);
            }
            let Some(output_url) = &ended.output_url else {
                let message = ItemMessage::next_step(ended.set_id.clone(), ended.position);
                self.queue.send(&[message]).await?;
                return Ok(WebhookOutcome::Ending);
            };
            if self
                .move_to_storing(ended, output_url, item.state, None)
                .await?
            {
                return Ok(WebhookOutcome::Storing);
            }
        }
        Err(UseCaseError::Store(crate::ports::StoreError {
            operation: "item state change",
            detail: "the item kept changing under the webhook".to_owned(),
        }))
    }

    /// The common case in one write, without reading the item: it is `predicting` this very
    /// prediction (its create's answer came back), and moves to `storing`. `None` when it is
    /// not, for the reading path to sort out.
    async fn predicting_to_storing(
        &self,
        ended: &PredictionEnded,
    ) -> Result<Option<WebhookOutcome>, UseCaseError> {
        let Some(output_url) = &ended.output_url else {
            return Ok(None);
        };
        let expected = Some(ItemExpectation {
            prediction_id: ended.prediction_id.clone(),
            attempt: ended.attempt,
            seed: ended.seed,
        });
        let moved = self
            .move_to_storing(ended, output_url, ItemState::Predicting, expected)
            .await?;
        Ok(moved.then_some(WebhookOutcome::Storing))
    }

    /// Moves the item from `from` to `storing` (if it still has prediction `expected`, when
    /// given) and, if it moved, sends its store message.
    async fn move_to_storing(
        &self,
        ended: &PredictionEnded,
        output_url: &str,
        from: ItemState,
        expected: Option<ItemExpectation>,
    ) -> Result<bool, UseCaseError> {
        let now_ms = self.clock.now_epoch_ms();
        let storing = ItemChange {
            prediction_id: Some(ended.prediction_id.clone()),
            held_until_ms: now_ms
                + u64::try_from(self.stuck_after.as_millis()).unwrap_or(u64::MAX / 2),
            only_if: expected,
            ..ItemChange::to(ItemState::Storing)
        };
        let moved = self
            .sets
            .change(&ended.set_id, ended.position, from, &storing, now_ms)
            .await?;
        if moved {
            let message = ItemMessage {
                succeeded: Some(SucceededPrediction {
                    prediction_id: ended.prediction_id.clone(),
                    output_url: output_url.to_owned(),
                }),
                ..ItemMessage::next_step(ended.set_id.clone(), ended.position)
            };
            self.queue.send(&[message]).await?;
            tracing::info!(set_id = %ended.set_id, position = ended.position, prediction_id = %ended.prediction_id, from = from.as_str(), "webhook: item storing");
        }
        Ok(moved)
    }

    /// Why a delivery for `item` changes nothing, if it does not.
    fn nothing_to_do(&self, ended: &PredictionEnded, item: &SetItem) -> Option<WebhookOutcome> {
        // A queued item has no prediction (a retried one's earlier attempt is refused below).
        let has_prediction = matches!(
            item.state,
            ItemState::Creating | ItemState::Predicting | ItemState::Uncertain
        );
        if !has_prediction {
            tracing::info!(set_id = %ended.set_id, position = ended.position, prediction_id = %ended.prediction_id, state = item.state.as_str(), "webhook: nothing to do");
            return Some(WebhookOutcome::Nothing(item.state));
        }
        let other_attempt = ended.attempt.is_some_and(|attempt| attempt != item.attempt);
        let other_seed = ended.seed.is_some_and(|seed| seed != item.seed);
        if other_attempt || other_seed {
            tracing::warn!(set_id = %ended.set_id, position = ended.position, prediction_id = %ended.prediction_id, other_attempt, other_seed, "webhook for another attempt or request than the item's");
            return Some(WebhookOutcome::Nothing(item.state));
        }
        match &item.prediction_id {
            Some(tracked) if *tracked != ended.prediction_id => {
                // Its own record, if it has one, lets the reconciler store it.
                tracing::warn!(set_id = %ended.set_id, position = ended.position, prediction_id = %ended.prediction_id, tracked = %tracked, "webhook for another prediction than the item's");
                Some(WebhookOutcome::Nothing(item.state))
            }
            _ => None,
        }
    }
}
