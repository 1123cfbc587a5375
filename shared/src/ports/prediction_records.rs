//! Records of paid predictions, one per prediction from its create to its image: a paid
//! prediction is never dropped (the open ones are found by the reconciler once their hold has
//! passed) nor stored twice (its image's place is claimed on the record before it is
//! written, and whoever collects it again finds that place).

use std::future::Future;

use super::StoreError;
use crate::domain::order::ImageOrder;

/// Where a prediction's image goes: its index and its object's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlace {
    /// The image's number.
    pub index: u64,
    /// The object's key.
    pub key: String,
}

/// How far a prediction got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PredictionState {
    /// Paid for, its image not stored yet: whoever holds it (or, past the hold, the
    /// reconciler) collects it.
    Open,
    /// Its image is stored, at `created_at`; `listed` says whether the manifest lists it.
    Stored {
        /// When the image was stored (RFC 3339).
        created_at: String,
        /// Whether the manifest was updated.
        listed: bool,
    },
    /// It ended without an image (failed, canceled, its output refused or gone).
    Failed {
        /// Why.
        reason: String,
    },
}

/// A paid prediction's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionRecord {
    /// The prediction's id.
    pub prediction_id: String,
    /// What it was paid for.
    pub order: ImageOrder,
    /// The model, `owner/name`.
    pub model: String,
    /// How far it got.
    pub state: PredictionState,
    /// Until when (epoch milliseconds) its run holds it; past that, the reconciler may.
    pub held_until_ms: u64,
    /// When it was opened (epoch milliseconds): Replicate keeps an output for an hour.
    pub opened_at_ms: u64,
    /// Its image's place, once claimed.
    pub place: Option<ImagePlace>,
}

/// How a claim of an image's place ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceClaim {
    /// The place is this prediction's.
    Claimed,
    /// Another collector claimed this one first: use it.
    Taken(ImagePlace),
    /// There is no record (its first write failed): open it, then claim again.
    NoRecord,
}

/// The paid predictions' records.
pub trait PredictionRecords: Send + Sync {
    /// Opens the record of a prediction that was just created, held until `held_until_ms`.
    /// Opening one that exists changes nothing.
    fn open(
        &self,
        prediction_id: &str,
        order: &ImageOrder,
        model: &str,
        held_until_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The record, or `None` when there is none.
    fn read(
        &self,
        prediction_id: &str,
    ) -> impl Future<Output = Result<Option<PredictionRecord>, StoreError>> + Send;
    /// Claims `place` for the prediction's image, where it has none yet, or where it still
    /// has `replacing` (the index of a name found taken).
    fn claim_place(
        &self,
        prediction_id: &str,
        place: &ImagePlace,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<PlaceClaim, StoreError>> + Send;
    /// Notes that the image is stored (and whether the manifest lists it): the record is
    /// closed.
    fn stored(
        &self,
        prediction_id: &str,
        created_at: &str,
        listed: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Notes that the prediction ended without an image: the record is closed.
    fn failed(
        &self,
        prediction_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Moves an open record's hold from `seen_until_ms` to `until_ms`; `false` when it is
    /// closed or someone else moved it first. A collector takes a record this way, and a run
    /// that ends without storing hands it to the reconciler (`until_ms` = now).
    fn hold(
        &self,
        prediction_id: &str,
        seen_until_ms: u64,
        until_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Up to `limit` open records whose hold ended before `now_ms`, the oldest hold first.
    fn due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<PredictionRecord>, StoreError>> + Send;
}
