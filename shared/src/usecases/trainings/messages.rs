//! What sends a training's message besides its request: Replicate's webhook (its training
//! found by Replicate's id) and the reconciler (the open trainings whose look is due: a lost
//! webhook, a lost message, an export that ended while nobody watched). Either only queues:
//! the message's run reads what is true and moves the training on.

use std::time::Duration;

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

/// Queues every open training whose look is due, at most `limit`, its next look moved
/// `look_every` on first (a training whose step keeps failing is sent once a period, not
/// on every pass); how many.
pub async fn queue_due_trainings(
    records: &impl TrainingRecords,
    queue: &impl TrainingQueue,
    clock: &impl Clock,
    limit: usize,
    look_every: Duration,
) -> Result<usize, StoreError> {
    let now_ms = clock.now_epoch_ms();
    let due = records.due(now_ms, limit).await?;
    let next_ms = now_ms + u64::try_from(look_every.as_millis()).unwrap_or(u64::MAX / 2);
    for training_id in &due {
        records.postpone(training_id, next_ms).await?;
        queue.send(training_id).await?;
        tracing::info!(%training_id, "reconciler: training queued for a look");
    }
    Ok(due.len())
}
