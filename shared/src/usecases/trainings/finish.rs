//! A training as Replicate reports it: a running one noted, an ended one finished. The
//! weights are copied into the bucket before Replicate deletes its output, then the LoRA
//! record and the manifest are written, and last the training's record is ended: a run that
//! fails on the way leaves it open for the next message, and every step before the end may
//! be taken twice without harm. Only the run that ended it gives back the lock, and the
//! budget unit when nothing was billed.

use super::{Trainings, admission_of, ms};
use crate::domain::manifest::{TrainingListing, record_training};
use crate::domain::naming::{manifest_key, weights_key};
use crate::domain::training::{LoraRecord, TrainingRecord, TrainingStatus, cost_usd, log_tail};
use crate::ports::{
    ActorProfiles, Clock, CopyError, ExportQueue, ExportRecords, IdempotencyStore, ObjectStore,
    RemoteTraining, SpendGuard, Trainer, TrainingEnd, TrainingQueue, TrainingRecords,
    WeightsCopier,
};
use crate::usecases::UseCaseError;
use crate::usecases::manifest_rewrite::{RewriteError, rewrite_manifest};

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
    /// Notes a running training, or finishes an ended one.
    pub(super) async fn look(
        &self,
        record: &TrainingRecord,
        remote: &RemoteTraining,
    ) -> Result<(), UseCaseError> {
        // A word Replicate adds later is taken for "still running".
        let status =
            TrainingStatus::from_replicate(&remote.status).unwrap_or(TrainingStatus::Processing);
        let logs = remote.logs.as_deref().map(log_tail);
        if !status.is_terminal() {
            let clock = &self.exports.clock;
            let look_at_ms = clock.now_epoch_ms() + ms(self.settings.look_every);
            self.records
                .progress(&record.training_id, status, logs.as_deref(), look_at_ms)
                .await?;
            return Ok(());
        }
        let predict_time = remote.predict_time;
        let mut end = TrainingEnd {
            status,
            logs,
            error: remote.error.clone(),
            predict_time,
            cost_usd: predict_time.map(|seconds| cost_usd(seconds, self.settings.price_per_second)),
            version: remote.version.clone(),
            weights_key: None,
            finished_at: self.exports.clock.now_rfc3339(),
        };
        if status == TrainingStatus::Succeeded {
            self.keep_weights(record, remote, &mut end).await?;
        }
        if end.status == TrainingStatus::Succeeded {
            let lora = LoraRecord {
                actor_id: record.actor_id.clone(),
                version: end.version.clone().unwrap_or_default(),
                weights_key: end.weights_key.clone().unwrap_or_default(),
                training_id: record.training_id.clone(),
                trained_at: end.finished_at.clone(),
                trigger_word: record.trigger_word.clone(),
            };
            self.records.put_lora(&lora).await?;
        }
        self.list_in_manifest(record, remote, &end).await?;
        if self.records.end(&record.training_id, &end, None).await? {
            tracing::info!(training_id = %record.training_id, replicate_id = %remote.id, status = end.status.as_str(), predict_time = ?end.predict_time, cost_usd = ?end.cost_usd, "training ended");
            self.unlock(&record.actor_id, &record.training_id).await;
            // A success always counts; an end that billed no second gives its unit back.
            let billed = predict_time.is_some_and(|seconds| seconds > 0.0);
            if status != TrainingStatus::Succeeded && !billed {
                self.refund(record).await;
            }
        }
        Ok(())
    }

    /// Copies a succeeded training's weights into the bucket; one that cannot be fetched
    /// any more (or never could) ends the training failed, its version kept.
    async fn keep_weights(
        &self,
        record: &TrainingRecord,
        remote: &RemoteTraining,
        end: &mut TrainingEnd,
    ) -> Result<(), UseCaseError> {
        let (Some(_), Some(url)) = (&remote.version, &remote.weights_url) else {
            end.status = TrainingStatus::Failed;
            end.error = Some("Replicate reported success without a version or weights".to_owned());
            return Ok(());
        };
        let key = weights_key(&record.actor_name, record.training_id.as_str());
        // An object there is a whole copy of these weights (it appears only complete): a
        // run that copied them and then failed is not made to copy them again.
        if let Some(object) = self.exports.objects.head(&key).await? {
            tracing::info!(training_id = %record.training_id, key, size = object.size, "weights already kept");
            end.weights_key = Some(key);
            return Ok(());
        }
        match self.weights.copy(url, &key).await {
            Ok(size) => {
                tracing::info!(training_id = %record.training_id, key, size, "weights kept");
                end.weights_key = Some(key);
                Ok(())
            }
            Err(CopyError::Gone(why)) => {
                tracing::error!(training_id = %record.training_id, %why, "weights not kept");
                end.status = TrainingStatus::Failed;
                end.error = Some(format!(
                    "the training succeeded but its weights could not be kept ({why}); its version stays on Replicate"
                ));
                Ok(())
            }
            Err(CopyError::Fault(error)) => Err(error.into()),
        }
    }

    /// The training in the manifest's `trainings` list.
    async fn list_in_manifest(
        &self,
        record: &TrainingRecord,
        remote: &RemoteTraining,
        end: &TrainingEnd,
    ) -> Result<(), UseCaseError> {
        let listing = TrainingListing {
            training_id: record.training_id.to_string(),
            replicate_id: Some(remote.id.clone()),
            status: end.status.as_str(),
            export_id: record.export_id.to_string(),
            trigger_word: record.trigger_word.clone(),
            version: end.version.clone(),
            weights_key: end.weights_key.clone(),
            cost_usd: end.cost_usd,
            finished_at: end.finished_at.clone(),
        };
        let clock = &self.exports.clock;
        let rewritten = rewrite_manifest(
            &self.exports.objects,
            clock,
            &manifest_key(&record.actor_name),
            |current| record_training(current, &listing, &clock.now_rfc3339()),
        )
        .await;
        match rewritten {
            Ok(_) => Ok(()),
            // A manifest the service may not rewrite never holds back a paid result: the
            // training ends, its record and the LoRA record say what the list would have.
            Err(RewriteError::Merge(error)) => {
                tracing::error!(training_id = %record.training_id, %error, "training not listed in the manifest");
                Ok(())
            }
            Err(RewriteError::Store(error)) => Err(error.into()),
        }
    }

    /// Ends a training nothing was billed for (its export failed, its create was refused,
    /// it was canceled before Replicate had it): the lock and the budget unit go back.
    /// `false` when it was not ended here (it ended, or moved on, meanwhile).
    pub(super) async fn end_unpaid(
        &self,
        record: &TrainingRecord,
        status: TrainingStatus,
        error: String,
        only_from: Option<TrainingStatus>,
    ) -> Result<bool, UseCaseError> {
        let end = TrainingEnd {
            status,
            logs: None,
            error: Some(error),
            predict_time: None,
            cost_usd: None,
            version: None,
            weights_key: None,
            finished_at: self.exports.clock.now_rfc3339(),
        };
        if self
            .records
            .end(&record.training_id, &end, only_from)
            .await?
        {
            tracing::info!(training_id = %record.training_id, status = status.as_str(), error = ?end.error, "training ended before Replicate billed it");
            self.unlock(&record.actor_id, &record.training_id).await;
            self.refund(record).await;
            return Ok(true);
        }
        Ok(false)
    }

    /// Gives the training's budget unit back, logging a failure.
    async fn refund(&self, record: &TrainingRecord) {
        if let Err(error) = self.spend.refund(&admission_of(record)).await {
            tracing::warn!(training_id = %record.training_id, %error, "budget unit not given back");
        }
    }
}
