//! Starting a training: checked, locked, counted, recorded and queued, in that order, so
//! that a refused request writes and counts nothing. With an idempotency key a repeat gets
//! the first answer, and a request interrupted after its training was recorded answers that
//! training instead of counting another.

use super::{Trainings, ms};
use crate::domain::actor::ActorId;
use crate::domain::export::{ExportId, ExportRequest, ExportStatus, Include};
use crate::domain::training::{
    ModelName, TrainingError, TrainingId, TrainingRecord, TrainingStatus,
};
use crate::domain::training_request::TrainingRequest;
use crate::ports::{
    ActorProfiles, Clock, ExportQueue, ExportRecords, IdempotencyBegin, IdempotencyStore,
    ObjectStore, SpendGuard, StoredAnswer, Trainer, TrainingEnd, TrainingQueue, TrainingRecords,
    WeightsCopier,
};
use crate::retry::random_number;
use crate::usecases::UseCaseError;
use crate::usecases::curation::actor_words;

/// A request for a training.
#[derive(Debug, Clone, Copy)]
pub struct NewTraining<'a> {
    /// The actor, as the route names it.
    pub actor_id: &'a ActorId,
    /// What was asked.
    pub request: &'a TrainingRequest,
    /// Who asks (`jwt:{subject}`).
    pub requested_by: &'a str,
    /// The idempotency key, already scoped to the caller.
    pub key: Option<&'a str>,
    /// Until when (epoch milliseconds) this request holds its key.
    pub hold_until_ms: u64,
}

/// How a training request ended.
#[derive(Debug)]
pub enum TrainingStart {
    /// The training, recorded and queued (or found recorded by an interrupted request with
    /// the same key).
    Started(Box<TrainingRecord>),
    /// An earlier request with this key was answered; this is its answer.
    Replayed(StoredAnswer),
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
    /// Starts a training, or answers a repeat of one; `answer` encodes a started training
    /// as the route answers it, kept for repeats.
    pub async fn start(
        &self,
        new: NewTraining<'_>,
        answer: impl Fn(&TrainingRecord) -> StoredAnswer,
    ) -> Result<TrainingStart, UseCaseError> {
        let clock = &self.exports.clock;
        let fresh_id = TrainingId::new(
            clock.now_epoch_ms(),
            (u128::from(random_number(u64::MAX)) << 64) | u128::from(random_number(u64::MAX)),
        );
        let Some(key) = new.key else {
            return self.begin(new, &fresh_id).await.map(started);
        };
        let fingerprint = new.request.fingerprint(new.actor_id);
        let resume = match self
            .idempotency
            .begin(key, &fingerprint, new.hold_until_ms)
            .await?
        {
            IdempotencyBegin::Owned { resume } => resume,
            IdempotencyBegin::Completed(answer) => return Ok(TrainingStart::Replayed(answer)),
            IdempotencyBegin::InProgress => return Err(UseCaseError::KeyInProgress),
            IdempotencyBegin::PayloadMismatch => return Err(UseCaseError::KeyReused),
        };
        let training_id = resume
            .as_deref()
            .and_then(TrainingId::parse)
            .unwrap_or(fresh_id);
        let result = match self.records.get(&training_id).await {
            Ok(Some(record)) => {
                tracing::info!(training_id = %record.training_id, "training recorded by an interrupted request");
                Ok(record)
            }
            Ok(None) => match self
                .idempotency
                .record_prediction(key, training_id.as_str())
                .await
            {
                Ok(()) => self.begin(new, &training_id).await,
                Err(error) => Err(error.into()),
            },
            Err(error) => Err(error.into()),
        };
        let settled = match &result {
            Ok(record) => self.idempotency.complete(key, &answer(record)).await,
            // A refused or failed request counted and recorded nothing: a repeat runs afresh.
            Err(_) => self.idempotency.release(key).await,
        };
        if let Err(error) = settled {
            tracing::warn!(%error, "idempotency record not settled; it expires");
        }
        result.map(started)
    }

    /// The checks, the lock, the count, the export (when none is given), the record and
    /// the message; each step undoes the ones before it when it fails.
    async fn begin(
        &self,
        new: NewTraining<'_>,
        training_id: &TrainingId,
    ) -> Result<TrainingRecord, UseCaseError> {
        let exports = &self.exports;
        let (actor_name, actor_word) = actor_words(&exports.profiles, new.actor_id).await?;
        let given = match &new.request.export_id {
            Some(export_id) => Some(self.usable_export(new.actor_id, export_id).await?),
            None => None,
        };
        if let (Some((export_id, export_word)), Some(asked)) = (&given, &new.request.trigger_word)
            && asked != export_word
        {
            // Its captions were written with its word: a LoRA triggered by another would
            // never have seen it.
            return Err(TrainingError::Invalid(format!(
                "export {export_id} was captioned with the trigger word {export_word:?}; leave trigger_word out or ask for a new export"
            ))
            .into());
        }
        let destination = ModelName::destination(&self.settings.destination, &actor_name)
            .ok_or_else(|| {
                TrainingError::Invalid(format!(
                    "actor {actor_name} gives no Replicate model name under {}",
                    self.settings.destination
                ))
            })?;
        let now_ms = exports.clock.now_epoch_ms();
        let until_ms = now_ms + ms(self.settings.lock_for);
        self.lock(new.actor_id, training_id, now_ms, until_ms)
            .await?;
        let admission = match self.spend.admit(&actor_name, 1).await {
            Ok(Ok(admission)) => admission,
            Ok(Err(refusal)) => {
                self.unlock(new.actor_id, training_id).await;
                return Err(UseCaseError::Spend(refusal));
            }
            Err(error) => {
                self.unlock(new.actor_id, training_id).await;
                return Err(error.into());
            }
        };
        let undo = async |error: UseCaseError| {
            self.unlock(new.actor_id, training_id).await;
            if let Err(refund) = self.spend.refund(&admission).await {
                tracing::warn!(%training_id, error = %refund, "budget unit not given back");
            }
            error
        };
        let (export_id, trigger_word) = match given {
            Some((export_id, export_word)) => (export_id, export_word),
            None => {
                let asked = ExportRequest {
                    include: Include::Kept,
                    trigger_word: Some(new.request.trigger_word.clone().unwrap_or(actor_word)),
                };
                match exports.start(new.actor_id, &asked, new.requested_by).await {
                    Ok(export) => (export.export_id, export.trigger_word),
                    Err(error) => return Err(undo(error).await),
                }
            }
        };
        let record = TrainingRecord {
            training_id: training_id.clone(),
            actor_id: new.actor_id.clone(),
            actor_name,
            export_id,
            status: TrainingStatus::Exporting,
            trigger_word,
            steps: new.request.steps,
            lora_rank: new.request.lora_rank,
            destination,
            requested_by: new.requested_by.to_owned(),
            created_at: exports.clock.now_rfc3339(),
            replicate_id: None,
            logs: None,
            error: None,
            predict_time: None,
            cost_usd: None,
            version: None,
            weights_key: None,
            finished_at: None,
            budget_day: admission.day.clone(),
            refund_token: admission.refund_token.clone(),
            look_at_ms: None,
            create_claimed_ms: None,
        };
        let look_at_ms = now_ms + ms(self.settings.look_every);
        if let Err(error) = self.records.create(&record, look_at_ms).await {
            // The write may have landed (a lost reply): ended, it can never be created on
            // Replicate uncounted. If even that fails, the reconciler's look finds it
            // exporting and its start goes on (its unit is back: a leak the other way).
            let end = TrainingEnd {
                status: TrainingStatus::Failed,
                logs: None,
                error: Some("the training could not be recorded; ask again".to_owned()),
                predict_time: None,
                cost_usd: None,
                version: None,
                weights_key: None,
                finished_at: exports.clock.now_rfc3339(),
            };
            if let Err(end_error) = self
                .records
                .end(training_id, &end, Some(TrainingStatus::Exporting))
                .await
            {
                tracing::error!(%training_id, error = %end_error, "a training that may be recorded could not be ended");
            }
            return Err(undo(error.into()).await);
        }
        if let Err(error) = self.queue.send(training_id).await {
            // Recorded and open: the reconciler sends it at its look.
            tracing::warn!(%training_id, %error, "training not queued; the reconciler queues it");
        }
        tracing::info!(%training_id, actor = %record.actor_name, export_id = %record.export_id, destination = %record.destination, "training accepted");
        Ok(record)
    }

    /// The actor's export `export_id` (not failed): its id and trigger word.
    async fn usable_export(
        &self,
        actor_id: &ActorId,
        export_id: &ExportId,
    ) -> Result<(ExportId, String), UseCaseError> {
        let export = self
            .exports
            .records
            .get(export_id)
            .await?
            .filter(|export| export.actor_id == *actor_id)
            .ok_or_else(|| crate::domain::export::ExportError::NotFound(export_id.to_string()))?;
        if export.status == ExportStatus::Failed {
            return Err(TrainingError::ExportFailed(export_id.to_string()).into());
        }
        Ok((export.export_id, export.trigger_word))
    }

    /// Takes the actor's lock for `training_id`, or over from a training that has ended
    /// (its own unlock lost); refused while another runs.
    async fn lock(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<(), UseCaseError> {
        let records = &self.records;
        let Err(holder) = records
            .lock(actor_id, training_id, now_ms, until_ms, None)
            .await?
        else {
            return Ok(());
        };
        let ended = match TrainingId::parse(&holder) {
            Some(held_by) => records
                .get(&held_by)
                .await?
                .filter(|record| record.status.is_terminal())
                .map(|_| held_by),
            None => None,
        };
        if let Some(ended) = &ended {
            tracing::warn!(%training_id, ended = %ended, "taking over the lock of an ended training");
            if records
                .lock(actor_id, training_id, now_ms, until_ms, Some(ended))
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(TrainingError::AlreadyRunning { running: holder }.into())
    }

    /// Gives the actor's lock back, logging a failure (the lock expires).
    pub(super) async fn unlock(&self, actor_id: &ActorId, training_id: &TrainingId) {
        if let Err(error) = self.records.unlock(actor_id, training_id).await {
            tracing::warn!(%training_id, %error, "training lock not given back; it expires");
        }
    }
}

fn started(record: TrainingRecord) -> TrainingStart {
    TrainingStart::Started(Box::new(record))
}
