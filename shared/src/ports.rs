//! The ports: what the domain needs from the outside world, as traits the adapters implement.

use std::future::Future;

use thiserror::Error;

use crate::domain::actor::{ActorId, ActorProfile};

/// A storage fault: the store could not answer. Says which operation failed; the detail is
/// for logs, never for callers.
#[derive(Debug, Error)]
#[error("{operation} failed: {detail}")]
pub struct StoreError {
    /// The operation that failed (e.g. `DynamoDB GetItem`).
    pub operation: &'static str,
    /// What the store or SDK said.
    pub detail: String,
}

/// Reads the actor profiles that operators write.
pub trait ActorProfiles: Send + Sync {
    /// The actor's profile, or `None` when the actor has none.
    fn profile(
        &self,
        actor_id: &ActorId,
    ) -> impl Future<Output = Result<Option<ActorProfile>, StoreError>> + Send;
}
