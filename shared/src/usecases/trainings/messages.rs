//! What sends a training's message besides its request: Replicate's webhook (its training
//! found by Replicate's id) and the reconciler (the open trainings whose look is due: a lost
//! webhook, a lost message, an export that ended while nobody watched). Either only queues:
//! the message's run reads what is true and moves the training on.

use crate::domain::training::{TrainingError, TrainingId};
use crate::ports::{Clock, StoreError, TrainingQueue, TrainingRecords};
use crate::usecases::UseCaseError;

/// Queues the training of Replicate's training `replicate_id`; refused when it is none of
/// ours.
pub async fn training_delivered(
    records: &impl TrainingRecords,
    queue: &impl TrainingQueue,
    replicate_id: &str,
) -> Result<TrainingId, UseCaseError> {
    let training_id = records
        .by_replicate_id(replicate_id)
        .await?
        .ok_or_else(|| TrainingError::NotFound(replicate_id.to_owned()))?;
    queue.send(&training_id).await?;
    tracing::info!(%training_id, replicate_id, "webhook: training queued");
    Ok(training_id)
}

/// Queues every open training whose look is due, at most `limit`; how many.
pub async fn queue_due_trainings(
    records: &impl TrainingRecords,
    queue: &impl TrainingQueue,
    clock: &impl Clock,
    limit: usize,
) -> Result<usize, StoreError> {
    let due = records.due(clock.now_epoch_ms(), limit).await?;
    for training_id in &due {
        queue.send(training_id).await?;
        tracing::info!(%training_id, "reconciler: training queued for a look");
    }
    Ok(due.len())
}
