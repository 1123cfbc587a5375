//! The worker's check and store: a predicting item's prediction looked at once, a succeeded
//! one stored through the one store step (from its record, so an item collected twice is
//! stored once), a store message's prediction stored without reading it again, and an item
//! whose prediction ended without an image failed with its record closed.

use super::NextStep;
use crate::domain::training_set::ItemState;
use crate::ports::{
    ActorProfiles, AtDeadline, Clock, ImageGenerator, IndexCounter, ItemChange, ItemImage,
    ObjectStore, PredictionError, PredictionRecord, PredictionRecords, PredictionState, SetItem,
    SpendGuard, SucceededPrediction, TrainingSet, TrainingSets,
};
use crate::retry::{ITEM_FAULT_RETRY, next_check_after};
use crate::usecases::training_sets::{ITEM_HOLD, STORE_TIME, TrainingSetWork, item_request};
use crate::usecases::{RunLimits, StoredImage, UseCaseError};

impl<P, O, C, G, K, R, I, S, T, Q> TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
    S: SpendGuard,
    T: TrainingSets,
{
    /// A store message: the item's prediction succeeded (its webhook said so, signed), so
    /// its image is stored without reading the prediction again.
    pub(super) async fn store_told(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        succeeded: &SucceededPrediction,
    ) -> Result<NextStep, UseCaseError> {
        let record = self.item_record(set, item).await?;
        let stored = self
            .generation
            .store_checked(&record, succeeded.clone(), self.store_limits(&record))
            .await;
        self.after_store(set, item, ItemState::Storing, &record, stored)
            .await
    }

    /// A predicting (or storing) item: its prediction looked at once; stored when it
    /// succeeded, looked at again later while it runs, closed when it ended without an image.
    pub(super) async fn check_item(
        &self,
        set: &TrainingSet,
        item: &SetItem,
    ) -> Result<NextStep, UseCaseError> {
        let record = self.item_record(set, item).await?;
        let prediction_id = record.prediction_id.as_str();
        let at_deadline = if set.canceled {
            AtDeadline::Cancel
        } else {
            AtDeadline::KeepRunning
        };
        let limits = self.store_limits(&record);
        let mut from = item.state;
        let stored = if record.state == PredictionState::Open {
            let succeeded = match self
                .generation
                .check_prediction(prediction_id, at_deadline)
                .await
            {
                Ok(succeeded) => succeeded,
                Err(UseCaseError::Prediction(PredictionError::TimedOut {
                    running: true, ..
                })) => {
                    return Ok(NextStep::After(next_check_after(self.age(item))));
                }
                Err(UseCaseError::Prediction(PredictionError::TimedOut {
                    running: false, ..
                })) => {
                    // Canceled with its set.
                    let canceled = UseCaseError::Prediction(PredictionError::Canceled {
                        prediction_id: prediction_id.to_owned(),
                    });
                    self.generation.close_record(prediction_id, &canceled).await;
                    self.change(set, item, from, &ItemChange::to(ItemState::Canceled))
                        .await?;
                    return Ok(NextStep::Done);
                }
                Err(error) => return self.ended(set, item, from, &record, error).await,
            };
            if from == ItemState::Predicting {
                let storing = ItemChange::to(ItemState::Storing);
                if !self.change(set, item, from, &storing).await? {
                    // A webhook moved it first: its store message stores it.
                    return Ok(NextStep::After(ITEM_FAULT_RETRY));
                }
                from = ItemState::Storing;
            }
            self.generation
                .store_checked(&record, succeeded, limits)
                .await
        } else {
            // Closed by another collector: answered from the record.
            self.generation
                .collect_record(&record, limits, at_deadline)
                .await
        };
        self.after_store(set, item, from, &record, stored).await
    }

    /// The item after its store: stored, or failed or tried again as [`Self::ended`] says.
    pub(super) async fn after_store(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        from: ItemState,
        record: &PredictionRecord,
        stored: Result<StoredImage, UseCaseError>,
    ) -> Result<NextStep, UseCaseError> {
        match stored {
            Ok(image) => {
                let change = ItemChange {
                    image: Some(item_image(&image)),
                    ..ItemChange::to(ItemState::Stored)
                };
                self.change(set, item, from, &change).await?;
                tracing::info!(set_id = %set.set_id, position = item.position, prediction_id = %image.prediction_id, index = image.index, "item stored");
                Ok(NextStep::Done)
            }
            Err(error) => self.ended(set, item, from, record, error).await,
        }
    }

    /// The time a store of `record`'s prediction may take, from now.
    pub(super) fn store_limits(&self, record: &PredictionRecord) -> RunLimits {
        let clock = &self.generation.clock;
        RunLimits {
            model: clock.now(),
            finish: clock.now() + STORE_TIME,
            hold_until_ms: record.held_until_ms,
        }
    }

    /// After a check or a store that gave no image: failed for good when the prediction
    /// ended without one (its record closed), else a fault to try again.
    pub(super) async fn ended(
        &self,
        set: &TrainingSet,
        item: &SetItem,
        from: ItemState,
        record: &PredictionRecord,
        error: UseCaseError,
    ) -> Result<NextStep, UseCaseError> {
        if error.ended_without_image().is_none() {
            return Err(error);
        }
        self.generation
            .close_record(&record.prediction_id, &error)
            .await;
        tracing::warn!(set_id = %set.set_id, position = item.position, prediction_id = %record.prediction_id, %error, "item ended without an image");
        self.change(
            set,
            item,
            from,
            &ItemChange::because(ItemState::Failed, error.to_string()),
        )
        .await?;
        Ok(NextStep::Done)
    }

    /// The record of the item's prediction; opened from the item when its first write
    /// failed.
    pub(super) async fn item_record(
        &self,
        set: &TrainingSet,
        item: &SetItem,
    ) -> Result<PredictionRecord, UseCaseError> {
        let prediction_id = item.prediction_id.as_deref().unwrap_or_default();
        let records = &self.generation.records;
        if let Some(record) = records.read(prediction_id).await? {
            return Ok(record);
        }
        let prepared = self
            .generation
            .prepare(&set.actor_id, &item_request(set, item))
            .await?;
        let hold_until_ms = self.generation.clock.now_epoch_ms() + ITEM_HOLD.as_millis() as u64;
        let model = self.generation.generator.model();
        self.generation
            .open_record(prediction_id, &prepared.order, model, hold_until_ms)
            .await;
        records
            .read(prediction_id)
            .await?
            .ok_or_else(|| UseCaseError::NotStored {
                prediction_id: prediction_id.to_owned(),
                source: crate::ports::StoreError {
                    operation: "DynamoDB GetItem (prediction record)",
                    detail: "the item's prediction has no record".to_owned(),
                },
            })
    }
}

/// Where a stored image is, for its item.
fn item_image(image: &StoredImage) -> ItemImage {
    ItemImage {
        index: image.index,
        filename: image.filename.clone(),
        s3_key: image.s3_key.clone(),
    }
}
