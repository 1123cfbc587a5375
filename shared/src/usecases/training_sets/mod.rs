//! Training sets: one request makes many images of an actor, each item generated on its own
//! by the queue's worker (docs/design.md, "Training sets"). [`TrainingSetWork::start`] checks
//! and counts a whole set and queues its items; [`TrainingSetWork::advance`] takes an item one
//! step on (create, check, store) without waiting for the model; the progress use cases read,
//! list, cancel and retry sets.

#[cfg(test)]
mod fakes;
mod progress;
mod resend;
mod start;
mod webhook;
#[cfg(test)]
mod webhook_tests;
mod worker;
#[cfg(test)]
mod worker_tests;

use std::time::Duration;

use crate::domain::request::ImageRequest;
use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{
    Admission, Clock, ItemChange, SetItem, SpendGuard, StoredAnswer, TrainingSet, TrainingSets,
};
use crate::usecases::{GenerateImage, UseCaseError};

pub use resend::{ResendReport, resend_stuck};
pub use start::{NewSet, SetStart};
pub use webhook::{PredictionEnded, WebhookIntake, WebhookOutcome};
pub use worker::NextStep;

/// Training sets over the generation's ports, the idempotency records, the spend guard, the
/// sets' store and the items' queue. Build it once per execution environment; the HTTP
/// routes never call the model or store an image, so their model-side ports may be `()`.
#[derive(Debug)]
pub struct TrainingSetWork<P, O, C, G, K, R, I, S, T, Q> {
    /// The generation's steps (prepare for the routes; create, check and store for the
    /// worker).
    pub generation: GenerateImage<P, O, C, G, K, R>,
    /// Idempotency records of set requests.
    pub idempotency: I,
    /// The kill switch and the daily caps.
    pub spend: S,
    /// The sets and their items.
    pub sets: T,
    /// The items' queue.
    pub queue: Q,
    /// How long an unfinished item may stay in its state before the reconciler sends its
    /// message again (its message was lost, or went to the dead letters).
    pub stuck_after: Duration,
    /// Replicate's webhooks, when the stack receives them: the fast path to an item's end.
    pub webhooks: Option<ItemWebhooks>,
}

/// Where a created prediction's end is posted, and when the worker looks at it anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemWebhooks {
    /// The webhook route's URL; each item's prediction gets it with `?set=&item=`.
    pub url: String,
    /// When an item's prediction is first looked at after its create: long enough that a
    /// working webhook has stored it by then (the look is then a no-op), short enough that
    /// a lost webhook costs little time.
    pub first_check: Duration,
}

impl ItemWebhooks {
    /// The webhook URL of one item's attempt: its set and position, so that a delivery
    /// finds the item even when the create's answer (and so the prediction's id) was lost,
    /// and the attempt, so that a late delivery for an earlier attempt (the item retried
    /// since) is not taken for the new one.
    pub fn for_item(&self, set_id: &SetId, position: u32, attempt: u32) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}set={set_id}&item={position}&attempt={attempt}",
            self.url
        )
    }
}

/// How an entry encodes a set request's outcome for its idempotency record, so that a
/// repeat is answered exactly as the first request was.
pub trait SetAnswers: Sync {
    /// The answer of a started set.
    fn started(&self, set: &TrainingSet) -> StoredAnswer;
    /// The answer of a final refusal.
    fn failed(&self, error: &UseCaseError) -> StoredAnswer;
}

/// How long a worker holds an item's prediction record: past it, the reconciler may collect
/// the prediction (a worker's checks normally end well before).
const ITEM_HOLD: Duration = Duration::from_secs(15 * 60);
/// How long a create may take (its retries of a 429 or a 503 included): the worker never
/// waits longer for the model's API.
const CREATE_TIME: Duration = Duration::from_secs(10);
/// How long a check may take to store a succeeded prediction's image.
const STORE_TIME: Duration = Duration::from_secs(15);
/// How long an item may be `storing` before another delivery takes its store over (its
/// storer stopped, or a webhook's store message was lost): well past [`STORE_TIME`].
const STORE_HOLD: Duration = Duration::from_secs(60);

impl<P, O, C, G, K, R, I, S, T, Q> TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>
where
    K: Clock,
    S: SpendGuard,
    T: TrainingSets,
{
    /// A change of the item from `from`, with the set's counts; `false` when the item was
    /// no longer in `from`. A change that names no hold holds the item for `stuck_after`.
    async fn change(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        from: ItemState,
        change: &ItemChange,
    ) -> Result<bool, UseCaseError> {
        let now_ms = self.generation.clock.now_epoch_ms();
        let mut change = change.clone();
        if change.held_until_ms == 0 {
            change.held_until_ms = self.stuck_since(now_ms);
        }
        Ok(self
            .sets
            .change(&set.set_id, item.position, from, &change, now_ms)
            .await?)
    }

    /// Until when an item that changes state at `now_ms` is not stuck.
    fn stuck_since(&self, now_ms: u64) -> u64 {
        now_ms + u64::try_from(self.stuck_after.as_millis()).unwrap_or(u64::MAX / 2)
    }

    /// Gives back the unit of an item that ended without paying (canceled while queued,
    /// refused), on the day its set was counted.
    async fn refund_item(&self, set: &TrainingSet, item: &SetItem) {
        let admission = Admission {
            day: set.budget_day.clone(),
            actor_name: set.actor_name.clone(),
            units: 1,
            refund_token: format!("{}{:03}{:03}", set.set_id, item.position, item.attempt),
        };
        if let Err(error) = self.spend.refund(&admission).await {
            tracing::warn!(set_id = %set.set_id, position = item.position, %error, "item's budget unit not refunded");
        }
    }
}

/// The request of one item: the set's actor and photo, the item's prompt and seed.
fn item_request(set: &TrainingSet, item: &crate::ports::SetItem) -> ImageRequest {
    ImageRequest {
        actor_name: set.requested_actor_name.clone(),
        base_image_path: set.base_image_path.clone(),
        prompt_id: item.prompt_id.clone(),
        prompt: item.prompt.clone(),
        seed: Some(item.seed),
        caption: item.caption.clone(),
        requested_by: Some(set.created_by.clone()),
    }
}
