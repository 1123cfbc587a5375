//! Moving a training on from what is true now, however often its message comes (after the
//! export, on a webhook, from the reconciler, redelivered): each step is taken by one run
//! only, and one that cannot be taken yet is left for a later message.

use std::time::Duration;

use super::{Trainings, ms};
use crate::domain::export::ExportStatus;
use crate::domain::naming::export_key;
use crate::domain::training::{TrainingError, TrainingId, TrainingRecord, TrainingStatus};
use crate::ports::{
    ActorProfiles, Clock, ExportQueue, ExportRecords, IdempotencyStore, ObjectStore, SpendGuard,
    Trainer, TrainerError, TrainingInput, TrainingQueue, TrainingRecords, WeightsCopier,
};
use crate::usecases::UseCaseError;

/// What a message's run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Nothing is left for this message (the training moved on, ended, or waits for
    /// Replicate's webhook or the reconciler).
    Done,
    /// Its export is still being written: the message should come back after this long.
    WaitForExport(Duration),
}

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
    /// Moves the training on. An error leaves it as it was, for a later message.
    pub async fn advance(&self, training_id: &TrainingId) -> Result<Advance, UseCaseError> {
        let Some(record) = self.records.get(training_id).await? else {
            tracing::warn!(%training_id, "no such training; message dropped");
            return Ok(Advance::Done);
        };
        match record.status {
            TrainingStatus::Exporting => self.after_export(&record).await,
            TrainingStatus::Creating => {
                // A run may be sending the create now: only after its grace is it searched.
                let now_ms = self.exports.clock.now_epoch_ms();
                let grace_ms = ms(self.settings.create_grace);
                if record
                    .create_claimed_ms
                    .is_some_and(|claimed| claimed + grace_ms > now_ms)
                {
                    return Ok(Advance::Done);
                }
                self.recover_create(&record).await.map(|()| Advance::Done)
            }
            TrainingStatus::Starting | TrainingStatus::Processing => {
                let replicate_id = record.replicate_id.clone().unwrap_or_default();
                let remote = self.trainer.get(&replicate_id).await.map_err(unavailable)?;
                self.look(&record, &remote).await.map(|_| Advance::Done)
            }
            TrainingStatus::Succeeded | TrainingStatus::Failed | TrainingStatus::Canceled => {
                Ok(Advance::Done)
            }
        }
    }

    /// An exporting training: waits for its export, or ends with it, or is created.
    async fn after_export(&self, record: &TrainingRecord) -> Result<Advance, UseCaseError> {
        let export = self.exports.records.get(&record.export_id).await?;
        let export = match export {
            Some(export) if export.status == ExportStatus::Running => {
                return Ok(Advance::WaitForExport(self.settings.export_wait));
            }
            Some(export) if export.status == ExportStatus::Done => export,
            failed => {
                let why = failed
                    .and_then(|export| export.error)
                    .unwrap_or_else(|| "the export is gone".to_owned());
                let error = format!("export {} failed: {why}", record.export_id);
                self.end_unpaid(
                    record,
                    TrainingStatus::Failed,
                    error,
                    Some(TrainingStatus::Exporting),
                )
                .await?;
                return Ok(Advance::Done);
            }
        };
        // Free and idempotent: made before the claim, so a refusal ends nothing half-done.
        if let Err(error) = self.trainer.ensure_model(&record.destination).await {
            return match error {
                TrainerError::Refused { .. } => {
                    let why = format!(
                        "the destination model {} could not be made: {error}",
                        record.destination
                    );
                    self.end_unpaid(
                        record,
                        TrainingStatus::Failed,
                        why,
                        Some(TrainingStatus::Exporting),
                    )
                    .await?;
                    Ok(Advance::Done)
                }
                other => Err(unavailable(other)),
            };
        }
        // Counted at its request, it pays only now: the switch is read again first.
        if self.spend.switched_off().await? {
            let why = "switched off by the operators before Replicate had it; nothing was billed";
            self.end_unpaid(
                record,
                TrainingStatus::Failed,
                why.to_owned(),
                Some(TrainingStatus::Exporting),
            )
            .await?;
            return Ok(Advance::Done);
        }
        let input_images = self
            .exports
            .objects
            .presigned_get(&export.key, self.settings.input_url_lifetime)
            .await?;
        let now_ms = self.exports.clock.now_epoch_ms();
        let grace_ms = now_ms + ms(self.settings.create_grace);
        if !self
            .records
            .claim_create(&record.training_id, now_ms, grace_ms)
            .await?
        {
            return Ok(Advance::Done);
        }
        let input = TrainingInput {
            destination: record.destination.clone(),
            input_images,
            trigger_word: record.trigger_word.clone(),
            steps: record.steps,
            lora_rank: record.lora_rank,
            webhook: self.settings.webhook_url.clone(),
        };
        match self.trainer.create(&input).await {
            Ok(remote) => {
                let status = TrainingStatus::from_replicate(&remote.status)
                    .unwrap_or(TrainingStatus::Starting);
                let look_at_ms = now_ms + ms(self.settings.look_every);
                let noted = self
                    .records
                    .created(
                        &record.training_id,
                        &remote.id,
                        status.min_running(),
                        look_at_ms,
                    )
                    .await?;
                if !noted {
                    return self
                        .created_too_late(record, &remote.id)
                        .await
                        .map(|()| Advance::Done);
                }
                tracing::info!(training_id = %record.training_id, replicate_id = %remote.id, destination = %record.destination, "training created");
                if status.is_terminal() {
                    self.look(record, &remote).await?;
                }
                Ok(Advance::Done)
            }
            Err(TrainerError::Refused { status, message }) => {
                let why = format!("Replicate refused the training ({status}): {message}");
                self.end_unpaid(
                    record,
                    TrainingStatus::Failed,
                    why,
                    Some(TrainingStatus::Creating),
                )
                .await?;
                Ok(Advance::Done)
            }
            Err(TrainerError::Unavailable(why)) => {
                self.records.unclaim_create(&record.training_id).await?;
                Err(unavailable(TrainerError::Unavailable(why)))
            }
            Err(TrainerError::Uncertain(why)) => {
                // A training may exist: never create again; look for it at the grace's end.
                tracing::error!(training_id = %record.training_id, %why, "training create uncertain; searched for later");
                Ok(Advance::Done)
            }
        }
    }

    /// A `creating` training whose create's answer was lost (or whose run stopped): found
    /// among Replicate's recent trainings, or, after the grace, given up as never made.
    async fn recover_create(&self, record: &TrainingRecord) -> Result<(), UseCaseError> {
        let export_key = export_key(&record.actor_name, record.export_id.as_str());
        let found = self
            .trainer
            .find_created(&record.destination, &record.created_at, &export_key)
            .await
            .map_err(unavailable)?;
        let now_ms = self.exports.clock.now_epoch_ms();
        match found {
            Some(remote) => {
                let status = TrainingStatus::from_replicate(&remote.status)
                    .unwrap_or(TrainingStatus::Starting);
                self.records
                    .created(
                        &record.training_id,
                        &remote.id,
                        status.min_running(),
                        now_ms + ms(self.settings.look_every),
                    )
                    .await?;
                tracing::warn!(training_id = %record.training_id, replicate_id = %remote.id, "lost create found on Replicate");
                if status.is_terminal() {
                    self.look(record, &remote).await?;
                }
                Ok(())
            }
            None => {
                tracing::error!(training_id = %record.training_id, "no training on Replicate for a lost create; given up");
                self.end_unpaid(
                    record,
                    TrainingStatus::Failed,
                    "Replicate has no training for this request; nothing was billed".to_owned(),
                    Some(TrainingStatus::Creating),
                )
                .await
                .map(|_| ())
            }
        }
    }

    /// A create answered after its record stopped waiting for it (a recover ran after a
    /// grace shorter than the create took): unless the recover adopted this very training,
    /// it is canceled, so that nothing runs that no record follows.
    async fn created_too_late(
        &self,
        record: &TrainingRecord,
        replicate_id: &str,
    ) -> Result<(), UseCaseError> {
        let now = self.records.get(&record.training_id).await?;
        if now.and_then(|record| record.replicate_id).as_deref() == Some(replicate_id) {
            return Ok(());
        }
        tracing::error!(training_id = %record.training_id, %replicate_id, "training created after its record gave it up; canceling it");
        self.trainer
            .cancel(replicate_id)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

impl TrainingStatus {
    /// The status a created training is recorded with: Replicate's while it runs, and
    /// `processing` for one already ended (its end is recorded by the look that finishes it).
    fn min_running(self) -> Self {
        if self.is_terminal() {
            Self::Processing
        } else {
            self
        }
    }
}

/// A trainer that could not answer, as the use cases' error.
fn unavailable(error: TrainerError) -> UseCaseError {
    tracing::warn!(%error, "trainer unavailable");
    TrainingError::TrainerUnavailable.into()
}
