//! The in-memory fake of the prediction records port, for the use cases' unit tests (the
//! DynamoDB adapter is tested through the binaries against moto).

use std::collections::HashMap;
use std::sync::Mutex;

use super::ImageOrder;
use crate::ports::{
    ImagePlace, PlaceClaim, PredictionRecord, PredictionRecords, PredictionState, StoreError,
};

/// Prediction records in memory.
#[derive(Default)]
pub(super) struct Records {
    pub(super) records: Mutex<HashMap<String, PredictionRecord>>,
}

impl Records {
    /// The record of `prediction_id`, as it is now.
    pub(super) fn get(&self, prediction_id: &str) -> Option<PredictionRecord> {
        self.records.lock().unwrap().get(prediction_id).cloned()
    }
}

impl PredictionRecords for Records {
    async fn open(
        &self,
        prediction_id: &str,
        order: &ImageOrder,
        model: &str,
        held_until_ms: u64,
    ) -> Result<(), StoreError> {
        self.records
            .lock()
            .unwrap()
            .entry(prediction_id.to_owned())
            .or_insert_with(|| PredictionRecord {
                prediction_id: prediction_id.to_owned(),
                order: order.clone(),
                model: model.to_owned(),
                state: PredictionState::Open,
                held_until_ms,
                opened_at_ms: 0,
                place: None,
            });
        Ok(())
    }

    async fn read(&self, prediction_id: &str) -> Result<Option<PredictionRecord>, StoreError> {
        Ok(self.get(prediction_id))
    }

    async fn claim_place(
        &self,
        prediction_id: &str,
        place: &ImagePlace,
        replacing: Option<u64>,
    ) -> Result<PlaceClaim, StoreError> {
        let mut records = self.records.lock().unwrap();
        let Some(record) = records.get_mut(prediction_id) else {
            return Ok(PlaceClaim::NoRecord);
        };
        match (&record.place, replacing) {
            (None, _) => {}
            (Some(current), Some(old)) if current.index == old => {}
            (Some(current), _) => return Ok(PlaceClaim::Taken(current.clone())),
        }
        record.place = Some(place.clone());
        Ok(PlaceClaim::Claimed)
    }

    async fn stored(
        &self,
        prediction_id: &str,
        created_at: &str,
        listed: bool,
    ) -> Result<(), StoreError> {
        if let Some(record) = self.records.lock().unwrap().get_mut(prediction_id) {
            record.state = PredictionState::Stored {
                created_at: created_at.to_owned(),
                listed,
            };
        }
        Ok(())
    }

    async fn failed(&self, prediction_id: &str, reason: &str) -> Result<(), StoreError> {
        if let Some(record) = self.records.lock().unwrap().get_mut(prediction_id) {
            record.state = PredictionState::Failed {
                reason: reason.to_owned(),
            };
        }
        Ok(())
    }

    async fn hold(
        &self,
        prediction_id: &str,
        seen_until_ms: u64,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut records = self.records.lock().unwrap();
        match records.get_mut(prediction_id) {
            Some(record)
                if record.state == PredictionState::Open
                    && record.held_until_ms == seen_until_ms =>
            {
                record.held_until_ms = until_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<PredictionRecord>, StoreError> {
        let mut due: Vec<PredictionRecord> = self
            .records
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.state == PredictionState::Open && r.held_until_ms < now_ms)
            .cloned()
            .collect();
        due.sort_by_key(|r| r.held_until_ms);
        due.truncate(limit);
        Ok(due)
    }
}
