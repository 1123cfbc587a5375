//! A set's progress as an artist sees it, and what an artist may do with a set: read it,
//! list an actor's sets, cancel one (what has not started never will; what was stored is
//! kept), retry its failed items. Another actor's set is not found.

use super::TrainingSetWork;
use crate::domain::actor::ActorId;
use crate::domain::training_set::{ItemState, SetId};
use crate::ports::{
    Admission, Clock, ItemChange, ItemMessage, ItemQueue, SetItem, SpendGuard, TrainingSet,
    TrainingSets,
};
use crate::usecases::UseCaseError;

/// The most sets a listing gives.
pub const MAX_LISTED_SETS: usize = 50;

impl<P, O, C, G, K, R, I, S, T, Q> TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>
where
    K: Clock,
    S: SpendGuard,
    T: TrainingSets,
    Q: ItemQueue,
{
    /// The set and its items, when it is this actor's.
    pub async fn progress(
        &self,
        actor_id: &ActorId,
        set_id: &SetId,
    ) -> Result<(TrainingSet, Vec<SetItem>), UseCaseError> {
        match self.sets.read(set_id).await? {
            Some((set, items)) if &set.actor_id == actor_id => Ok((set, items)),
            _ => Err(UseCaseError::SetNotFound(set_id.to_string())),
        }
    }

    /// The actor's sets, newest first.
    pub async fn list(&self, actor_id: &ActorId) -> Result<Vec<TrainingSet>, UseCaseError> {
        Ok(self.sets.list(actor_id, MAX_LISTED_SETS).await?)
    }

    /// Cancels the set: its queued items end now (their units given back); a running
    /// prediction is canceled at the worker's next look at it, and stored if it succeeded
    /// meanwhile.
    pub async fn cancel(
        &self,
        actor_id: &ActorId,
        set_id: &SetId,
    ) -> Result<(TrainingSet, Vec<SetItem>), UseCaseError> {
        let (set, items) = self.progress(actor_id, set_id).await?;
        self.sets.cancel(set_id).await?;
        let canceled = ItemChange::to(ItemState::Canceled);
        let mut ended = 0;
        for item in items.iter().filter(|item| item.state == ItemState::Queued) {
            if self
                .change(&set, item, ItemState::Queued, &canceled)
                .await?
            {
                self.refund_item(&set, item).await;
                ended += 1;
            }
        }
        tracing::info!(%set_id, queued_items_canceled = ended, "training set canceled");
        self.progress(actor_id, set_id).await
    }

    /// Queues the set's failed items again, counting them against today's caps (all or
    /// none).
    pub async fn retry(
        &self,
        actor_id: &ActorId,
        set_id: &SetId,
    ) -> Result<(TrainingSet, Vec<SetItem>), UseCaseError> {
        let (set, items) = self.progress(actor_id, set_id).await?;
        if set.canceled {
            return Err(UseCaseError::SetCanceled(set_id.to_string()));
        }
        let failed: Vec<&SetItem> = items
            .iter()
            .filter(|item| item.state == ItemState::Failed)
            .collect();
        if failed.is_empty() {
            return Ok((set, items));
        }
        let units = failed.len() as u64;
        let admission = match self.spend.admit(&set.actor_name, units).await? {
            Ok(admission) => admission,
            Err(refusal) => return Err(UseCaseError::Spend(refusal)),
        };
        let requeue = ItemChange {
            requeue: true,
            ..ItemChange::to(ItemState::Queued)
        };
        let mut queued = Vec::new();
        for item in failed {
            if self.change(&set, item, ItemState::Failed, &requeue).await? {
                queued.push(ItemMessage::next_step(set_id.clone(), item.position));
            }
        }
        let unused = units - queued.len() as u64;
        if unused > 0 {
            let unused = Admission {
                units: unused,
                ..admission
            };
            if let Err(error) = self.spend.refund(&unused).await {
                tracing::warn!(%set_id, %error, "units of items retried elsewhere not refunded");
            }
        }
        if let Err(error) = self.queue.send(&queued).await {
            tracing::error!(%set_id, %error, "retried items not all queued; the reconciler queues them again");
        }
        tracing::info!(%set_id, retried = queued.len(), "failed items queued again");
        self.progress(actor_id, set_id).await
    }
}

impl<P, O: crate::ports::ObjectStore, C, G, K, R, I, S, T, Q>
    TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>
{
    /// A presigned GET of each stored item's image, valid for an hour (none for an item not
    /// stored, or one that could not be signed).
    pub async fn previews(&self, items: &[SetItem]) -> Vec<Option<String>> {
        let mut previews = Vec::with_capacity(items.len());
        for item in items {
            let preview = match &item.image {
                Some(image) => self
                    .generation
                    .objects
                    .presigned_get(&image.s3_key, PREVIEW_LIFETIME)
                    .await
                    .ok(),
                None => None,
            };
            previews.push(preview);
        }
        previews
    }
}

/// How long a set's `preview_url`s live.
const PREVIEW_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3_600);
