//! Training sets and their items, as stored: the set with its counts by item state, and one
//! record per item whose state changes only by a conditional write that moves the set's
//! counts in the same transaction.

use std::future::Future;

use super::StoreError;
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetCounts, SetId};

/// A training set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingSet {
    /// Its id.
    pub set_id: SetId,
    /// The actor it is for (by id, as the route named it).
    pub actor_id: ActorId,
    /// The actor's name: the folder its images go to.
    pub actor_name: String,
    /// The request's `actor_name`, if it gave one (each item's request repeats it).
    pub requested_actor_name: Option<String>,
    /// The request's `base_image_path`, if it gave one.
    pub base_image_path: Option<String>,
    /// Who asked for it (the JWT subject, or the IAM caller).
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The UTC day its generations were counted on: a refund goes back there.
    pub budget_day: String,
    /// How many of its items are in each state.
    pub counts: SetCounts,
    /// Whether an artist canceled it.
    pub canceled: bool,
}

/// One item of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetItem {
    /// Its position in the set, from 1.
    pub position: u32,
    /// The preset's id, or `None` for a custom prompt.
    pub prompt_id: Option<String>,
    /// The custom prompt, when there is no preset.
    pub prompt: Option<String>,
    /// Its own caption, when the request gave one (checked).
    pub caption: Option<String>,
    /// Its seed (given, or derived from the set id).
    pub seed: u64,
    /// How far it got.
    pub state: ItemState,
    /// When it entered that state (epoch milliseconds).
    pub state_since_ms: u64,
    /// Until when (epoch milliseconds) its current step holds it: a claim, the claimer's
    /// deadline; any other unfinished state, the bound past which it counts as stuck and the
    /// reconciler sends its message again. A final item has none.
    pub held_until_ms: Option<u64>,
    /// How many times it was queued (a retry queues it again): names its budget refunds.
    pub attempt: u32,
    /// Its prediction, once created.
    pub prediction_id: Option<String>,
    /// Its image, once stored.
    pub image: Option<ItemImage>,
    /// Why it failed, or why it is uncertain.
    pub error: Option<String>,
}

/// Where a stored item's image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemImage {
    /// The image's number.
    pub index: u64,
    /// `{actor_name}_{index}.jpg`.
    pub filename: String,
    /// The object's key.
    pub s3_key: String,
}

/// An item's move to another state, with what it learned on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChange {
    /// The new state.
    pub to: ItemState,
    /// Its prediction, when this change learned it.
    pub prediction_id: Option<String>,
    /// Its image, when stored.
    pub image: Option<ItemImage>,
    /// Why, for a failure or an uncertain create; a change without one clears it.
    pub error: Option<String>,
    /// Whether this change queues it again (a retry): its attempt goes up.
    pub requeue: bool,
    /// Until when its new state holds it (see [`SetItem::held_until_ms`]); ignored for a
    /// final state.
    pub held_until_ms: u64,
    /// What the item must still be for the change to hold, besides its state (a webhook's
    /// change, made without reading the item first).
    pub only_if: Option<ItemExpectation>,
}

/// An item's prediction as a delivery names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemExpectation {
    /// The item's prediction.
    pub prediction_id: String,
    /// The item's attempt, when the delivery names one.
    pub attempt: Option<u32>,
    /// The item's seed, when the delivery names one.
    pub seed: Option<u64>,
}

impl ItemExpectation {
    /// Whether `item` is as expected.
    pub fn holds_for(&self, item: &SetItem) -> bool {
        item.prediction_id.as_deref() == Some(self.prediction_id.as_str())
            && self.attempt.is_none_or(|attempt| attempt == item.attempt)
            && self.seed.is_none_or(|seed| seed == item.seed)
    }
}

impl ItemChange {
    /// A plain move to `to`.
    pub fn to(to: ItemState) -> Self {
        Self {
            to,
            prediction_id: None,
            image: None,
            error: None,
            requeue: false,
            held_until_ms: 0,
            only_if: None,
        }
    }

    /// A move to `to` for `reason`.
    pub fn because(to: ItemState, reason: impl Into<String>) -> Self {
        Self {
            error: Some(reason.into()),
            ..Self::to(to)
        }
    }
}

/// Where training sets are kept.
pub trait TrainingSets: Send + Sync {
    /// Writes a new set and its items; writing one that exists changes nothing.
    fn create(
        &self,
        set: &TrainingSet,
        items: &[SetItem],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The set and its items in position order, or `None`.
    fn read(
        &self,
        set_id: &SetId,
    ) -> impl Future<Output = Result<Option<(TrainingSet, Vec<SetItem>)>, StoreError>> + Send;
    /// The set and one of its items, or `None`.
    fn read_item(
        &self,
        set_id: &SetId,
        position: u32,
    ) -> impl Future<Output = Result<Option<(TrainingSet, SetItem)>, StoreError>> + Send;
    /// Moves the item from `from` as `change` says, and the set's counts with it, at
    /// `now_ms`; `false` when the item was no longer in `from` (someone else moved it).
    fn change(
        &self,
        set_id: &SetId,
        position: u32,
        from: ItemState,
        change: &ItemChange,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Marks the set canceled.
    fn cancel(&self, set_id: &SetId) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` unfinished items whose hold ended before `now_ms`, the oldest first:
    /// `(set, position, held_until_ms)`.
    fn stuck(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(SetId, u32, u64)>, StoreError>> + Send;
    /// Moves an unfinished item's hold from `seen_until_ms` to `until_ms`; `false` when it is
    /// final or someone else moved it first (so one reconciler pass sends it once).
    fn hold(
        &self,
        set_id: &SetId,
        position: u32,
        seen_until_ms: u64,
        until_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The actor's sets, newest first, at most `limit`.
    fn list(
        &self,
        actor_id: &ActorId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<TrainingSet>, StoreError>> + Send;
}
