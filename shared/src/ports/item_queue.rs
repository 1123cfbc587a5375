//! The queue of training-set items: one message per item, taken by the worker for the item's
//! next step, and a *store* message when Replicate's webhook says an item's prediction
//! succeeded. Delivery is at least once: the worker's conditional claims make a duplicate
//! harmless.

use std::future::Future;

use super::{StoreError, SucceededPrediction};
use crate::domain::training_set::SetId;

/// An item's message: which set, which position. What to do is the item's state's business,
/// except for a store message, which carries the succeeded prediction a webhook told of (so
/// its worker stores it without reading the prediction again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMessage {
    /// The set.
    pub set_id: SetId,
    /// The item's position.
    pub position: u32,
    /// The item's succeeded prediction, in a store message.
    pub succeeded: Option<SucceededPrediction>,
}

impl ItemMessage {
    /// A message for the item's next step, whatever its state says it is.
    pub fn next_step(set_id: SetId, position: u32) -> Self {
        Self {
            set_id,
            position,
            succeeded: None,
        }
    }
}

/// Sends items to the worker.
pub trait ItemQueue: Send + Sync {
    /// Sends one message per item (in batches); an error after retries says some were not
    /// sent (the reconciler sends items left queued again).
    fn send(&self, items: &[ItemMessage]) -> impl Future<Output = Result<(), StoreError>> + Send;
}
