//! The queue of training-set items: one message per item, taken by the worker for the item's
//! next step. Delivery is at least once: the worker's conditional claims make a duplicate
//! harmless.

use std::future::Future;

use super::StoreError;
use crate::domain::training_set::SetId;

/// An item's message: which set, which position. What to do is the item's state's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMessage {
    /// The set.
    pub set_id: SetId,
    /// The item's position.
    pub position: u32,
}

/// Sends items to the worker.
pub trait ItemQueue: Send + Sync {
    /// Sends one message per item (in batches); an error after retries says some were not
    /// sent (the reconciler sends items left queued again).
    fn send(&self, items: &[ItemMessage]) -> impl Future<Output = Result<(), StoreError>> + Send;
}
