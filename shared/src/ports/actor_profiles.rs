//! The actor profiles that operators write.

use std::future::Future;

use super::StoreError;
use crate::domain::actor::{ActorId, ActorProfile};

/// Reads the actor profiles that operators write.
pub trait ActorProfiles: Send + Sync {
    /// The actor's profile, or `None` when the actor has none.
    fn profile(
        &self,
        actor_id: &ActorId,
    ) -> impl Future<Output = Result<Option<ActorProfile>, StoreError>> + Send;
}
