//! Collecting a prediction that was paid for, from its record: what it was for, where its
//! image goes and how far it got are the record's, so nothing that may have changed since
//! (the actor's profile, its photo) is read again. A retry with the same idempotency key and
//! the reconciler collect this way; the run that paid keeps the record right as it ends.

use std::time::Instant;

use super::UseCaseError;
use super::concurrently::unless;
use super::generate_image::{GenerateImage, ImageOrder, RunLimits};
use super::predict::Collect;
use super::retried;
use super::store::{Listing, StoredImage, WrittenImage};
use crate::domain::naming::image_key;
use crate::ports::{
    AtDeadline, Clock, ImageGenerator, ImagePlace, IndexCounter, ObjectStore, PredictionError,
    PredictionRecord, PredictionRecords, PredictionState, StoreError, SucceededPrediction,
};

impl<P, O, C, G, K, R> GenerateImage<P, O, C, G, K, R>
where
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
{
    /// Collects a prediction an earlier run paid for: from its record (`fallback` is the
    /// order of this request, used only when the record is missing, as for a prediction
    /// paid before records existed). A prediction stored already is answered from its
    /// record without storing anything again.
    pub async fn resume(
        &self,
        prediction_id: &str,
        fallback: Option<&ImageOrder>,
        limits: RunLimits,
    ) -> Result<StoredImage, UseCaseError> {
        let not_stored = |source| UseCaseError::NotStored {
            prediction_id: prediction_id.to_owned(),
            source,
        };
        let record = self.records.read(prediction_id).await.map_err(not_stored)?;
        let record = match (record, fallback) {
            (Some(record), _) => record,
            (None, Some(order)) => {
                let model = self.generator.model();
                self.open_record(prediction_id, order, model, limits.hold_until_ms)
                    .await;
                PredictionRecord {
                    prediction_id: prediction_id.to_owned(),
                    order: order.clone(),
                    model: model.to_owned(),
                    state: PredictionState::Open,
                    held_until_ms: limits.hold_until_ms,
                    opened_at_ms: self.clock.now_epoch_ms(),
                    place: None,
                }
            }
            (None, None) => {
                return Err(not_stored(StoreError {
                    operation: "DynamoDB GetItem (prediction record)",
                    detail: "the prediction has no record".to_owned(),
                }));
            }
        };
        Box::pin(self.collect_record(&record, limits, AtDeadline::KeepRunning)).await
    }

    /// Collects the prediction of `record`: waits for it until the model's deadline (doing
    /// `at_deadline` then), stores what succeeded, and keeps the record right.
    pub async fn collect_record(
        &self,
        record: &PredictionRecord,
        limits: RunLimits,
        at_deadline: AtDeadline,
    ) -> Result<StoredImage, UseCaseError> {
        if let Some(answer) = self.closed_record(record, limits).await {
            return answer;
        }
        let succeeded = self.finish_prediction(
            Collect::PaidEarlier(&record.prediction_id),
            limits,
            at_deadline,
        );
        self.store_for_record(record, limits, succeeded).await
    }

    /// Looks at a paid prediction once, without waiting: succeeded (its output's host
    /// checked), or why not; one still running is [`PredictionError::TimedOut`] with
    /// `running` (canceled first when `at_deadline` says so). A queue worker checks this way
    /// and comes back later rather than holding a Lambda while the model runs.
    pub async fn check_prediction(
        &self,
        prediction_id: &str,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, UseCaseError> {
        self.generator
            .resume(prediction_id, self.clock.now(), at_deadline)
            .await
            .map_err(|error| error.after_create(prediction_id).into())
    }

    /// Stores the image of `record`'s prediction, which [`Self::check_prediction`] saw
    /// succeed, as [`Self::collect_record`] would: from the record, once.
    pub async fn store_checked(
        &self,
        record: &PredictionRecord,
        succeeded: SucceededPrediction,
        limits: RunLimits,
    ) -> Result<StoredImage, UseCaseError> {
        if let Some(answer) = self.closed_record(record, limits).await {
            return answer;
        }
        self.store_for_record(record, limits, async { Ok(succeeded) })
            .await
    }

    /// Closes the record of a prediction that ended without an image (failed, canceled, its
    /// output refused), as a collector does when it sees that; other errors leave it open.
    pub async fn close_record(&self, prediction_id: &str, error: &UseCaseError) {
        let Some(reason) = error.ended_without_image() else {
            return;
        };
        let closed = retried(&self.clock, || self.records.failed(prediction_id, &reason)).await;
        if let Err(error) = closed {
            tracing::error!(prediction_id, %error, "prediction record not closed");
        }
    }

    /// The answer a closed record already gives: its stored image, or its failure.
    async fn closed_record(
        &self,
        record: &PredictionRecord,
        limits: RunLimits,
    ) -> Option<Result<StoredImage, UseCaseError>> {
        match &record.state {
            PredictionState::Stored { created_at, listed } => Some(Ok(self
                .stored_earlier(record, created_at, *listed, limits)
                .await)),
            PredictionState::Failed { reason } => {
                Some(Err(UseCaseError::Prediction(PredictionError::Failed {
                    prediction_id: record.prediction_id.clone(),
                    message: reason.clone(),
                })))
            }
            PredictionState::Open => None,
        }
    }

    /// Stores what `succeeded` gives for the open `record`, and keeps the record right.
    async fn store_for_record(
        &self,
        record: &PredictionRecord,
        limits: RunLimits,
        succeeded: impl Future<Output = Result<SucceededPrediction, UseCaseError>>,
    ) -> Result<StoredImage, UseCaseError> {
        let result = self
            .collect_and_store(
                &record.order,
                &record.model,
                limits,
                record.place.clone(),
                succeeded,
            )
            .await;
        self.settle_record(&result, record.held_until_ms).await;
        result
    }

    /// The answer for a prediction whose image an earlier collector stored; the manifest is
    /// updated now if that collector could not.
    async fn stored_earlier(
        &self,
        record: &PredictionRecord,
        created_at: &str,
        listed: bool,
        limits: RunLimits,
    ) -> StoredImage {
        let actor_name = &record.order.actor.actor_name;
        let place = record.place.clone().unwrap_or_else(|| ImagePlace {
            index: 0,
            key: image_key(actor_name, 0),
        });
        let written = WrittenImage {
            prediction_id: record.prediction_id.clone(),
            model: record.model.clone(),
            place,
            created_at: created_at.to_owned(),
            downloaded_at: self.clock.now(),
        };
        tracing::info!(prediction_id = %record.prediction_id, index = written.place.index, listed, "prediction stored earlier; answered from its record");
        let listing = if listed {
            Listing::Done
        } else {
            Listing::Read(None)
        };
        self.list_and_close(&record.order, &written, listing, limits)
            .await
    }

    /// Opens a new prediction's record, retried; a failure is logged (the image's claim
    /// opens it again, and a failed run's settle hands the prediction on).
    pub(super) async fn open_record(
        &self,
        prediction_id: &str,
        order: &ImageOrder,
        model: &str,
        hold_until_ms: u64,
    ) {
        let opened = retried(&self.clock, || {
            self.records
                .open(prediction_id, order, model, hold_until_ms)
        })
        .await;
        if let Err(error) = opened {
            tracing::error!(prediction_id, %error, "prediction record not opened");
        }
    }

    /// After a run that did not store what it paid for: the record is closed when the
    /// prediction ended for good, and else handed to the reconciler (its hold ended now).
    pub(super) async fn settle_record<T>(
        &self,
        result: &Result<T, UseCaseError>,
        held_until_ms: u64,
    ) {
        let Err(error) = result else { return };
        let Some(prediction_id) = error.prediction_id() else {
            return;
        };
        let settled = match error.ended_without_image() {
            Some(reason) => {
                retried(&self.clock, || self.records.failed(prediction_id, &reason)).await
            }
            None => {
                let now = self.clock.now_epoch_ms();
                self.records
                    .hold(prediction_id, held_until_ms, now.min(held_until_ms))
                    .await
                    .map(|_| ())
            }
        };
        if let Err(error) = settled {
            tracing::error!(prediction_id, %error, "prediction record not settled; the reconciler finds it once its hold ends");
        }
    }
}

impl<P, O, C, G, K: Clock, R> GenerateImage<P, O, C, G, K, R> {
    /// Runs `work` until `until`: past it, the paid prediction is left for a later collector
    /// ([`UseCaseError::OutOfTime`]).
    pub(super) async fn within<T>(
        &self,
        until: Instant,
        prediction_id: &str,
        work: impl Future<Output = T>,
    ) -> Result<T, UseCaseError> {
        let time_left = until.saturating_duration_since(self.clock.now());
        unless(work, self.clock.sleep(time_left))
            .await
            .ok_or_else(|| {
                tracing::warn!(
                    prediction_id,
                    "the run's time is up; the paid prediction is left for a retry or the reconciler"
                );
                UseCaseError::OutOfTime {
                    prediction_id: prediction_id.to_owned(),
                }
            })
    }
}
