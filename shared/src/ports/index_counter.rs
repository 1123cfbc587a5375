//! The per-actor image counter (the numbering rule itself is `usecases::numbering`).

use std::future::Future;

use super::StoreError;

/// The per-actor image counter.
pub trait IndexCounter: Send + Sync {
    /// Takes the next index atomically, or `None` when the counter was never seeded.
    fn take_next(
        &self,
        actor_name: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
    /// Seeds the counter so the next index is `highest + 1`, unless it is seeded already.
    fn seed(
        &self,
        actor_name: &str,
        highest: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Raises the counter so the next index is past `highest` (the bucket got ahead of it:
    /// files copied in, a table restored); a counter already past it is left alone.
    fn raise(
        &self,
        actor_name: &str,
        highest: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
