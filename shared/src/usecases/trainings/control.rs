//! The artist's view of a training and its stop. The view reads the record, and Replicate
//! too while the training runs (its status and logs, fresher than the last webhook); the
//! stop cancels on Replicate, or ends an exporting training before Replicate has it.

use super::Trainings;
use crate::domain::actor::ActorId;
use crate::domain::training::{
    TrainingError, TrainingId, TrainingRecord, TrainingStatus, log_tail,
};
use crate::ports::{
    ActorProfiles, Clock, ExportQueue, ExportRecords, IdempotencyStore, ObjectStore, SpendGuard,
    Trainer, TrainingQueue, TrainingRecords, WeightsCopier,
};
use crate::usecases::UseCaseError;

impl<P, O, ER, EQ, R, T, W, Q, S, I, K> Trainings<P, O, ER, EQ, R, T, W, Q, S, I, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    ER: ExportRecords,
    EQ: ExportQueue,
    R: TrainingRecords,
    T: Trainer,
    W: WeightsCopier,
    Q: TrainingQueue,
    S: SpendGuard,
    I: IdempotencyStore,
    K: Clock,
{
    /// The actor's training `training_id`; while it runs, its status and logs as Replicate
    /// says now (the record is moved on by the webhook's message, not by this read).
    pub async fn status(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
    ) -> Result<TrainingRecord, UseCaseError> {
        let mut record = self.actors_training(actor_id, training_id).await?;
        let running = matches!(
            record.status,
            TrainingStatus::Starting | TrainingStatus::Processing
        );
        if let (true, Some(replicate_id)) = (running, &record.replicate_id) {
            match self.trainer.get(replicate_id).await {
                Ok(remote) => {
                    if let Some(status) = TrainingStatus::from_replicate(&remote.status)
                        .filter(|status| !status.is_terminal())
                    {
                        record.status = status;
                    }
                    if let Some(logs) = &remote.logs {
                        record.logs = Some(log_tail(logs));
                    }
                }
                Err(error) => {
                    tracing::warn!(%training_id, %error, "training not read from Replicate; the record's view is answered");
                }
            }
        }
        Ok(record)
    }

    /// Cancels the actor's training `training_id`: on Replicate once it has it (its end is
    /// recorded as any end is, by the training's run), or at once while it is exporting; the
    /// training as it is then (a cancel Replicate took is reported with its word). An ended
    /// training, or one being handed to Replicate this moment, is refused.
    pub async fn cancel(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
    ) -> Result<TrainingRecord, UseCaseError> {
        let record = self.actors_training(actor_id, training_id).await?;
        match record.status {
            TrainingStatus::Exporting => {
                let ended = self
                    .end_unpaid(
                        &record,
                        TrainingStatus::Canceled,
                        "canceled before Replicate had it; nothing was billed".to_owned(),
                        Some(TrainingStatus::Exporting),
                    )
                    .await?;
                let now = self.actors_training(actor_id, training_id).await?;
                if !ended && now.status == TrainingStatus::Creating {
                    // Its create won the race: it is canceled once Replicate has it.
                    return Err(TrainingError::BeingCreated(training_id.to_string()).into());
                }
                Ok(now)
            }
            TrainingStatus::Creating => {
                Err(TrainingError::BeingCreated(training_id.to_string()).into())
            }
            TrainingStatus::Starting | TrainingStatus::Processing => {
                let replicate_id = record.replicate_id.clone().unwrap_or_default();
                let remote = self.trainer.cancel(&replicate_id).await.map_err(|error| {
                    tracing::warn!(%training_id, %error, "cancel not sent");
                    UseCaseError::from(TrainingError::TrainerUnavailable)
                })?;
                tracing::info!(%training_id, %replicate_id, status = %remote.status, "training cancel sent");
                // Its end, with what it billed, is recorded by the training's run (the
                // webhook's, or this message's), never inside this request.
                if let Err(error) = self.queue.send(training_id).await {
                    tracing::warn!(%training_id, %error, "training not queued; its webhook or the reconciler ends it");
                }
                let mut now = self.actors_training(actor_id, training_id).await?;
                if let Some(status) = TrainingStatus::from_replicate(&remote.status)
                    .filter(|_| !now.status.is_terminal())
                {
                    now.status = status;
                }
                Ok(now)
            }
            ended => Err(TrainingError::Ended {
                training_id: training_id.to_string(),
                status: ended.as_str(),
            }
            .into()),
        }
    }

    /// The training, if it is the actor's.
    async fn actors_training(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
    ) -> Result<TrainingRecord, UseCaseError> {
        self.records
            .get(training_id)
            .await?
            .filter(|record| record.actor_id == *actor_id)
            .ok_or_else(|| TrainingError::NotFound(training_id.to_string()).into())
    }
}
