//! Trainings' ports: their records (with the actor's one-at-a-time lock and LoRA record),
//! the queue that moves them on, the trainer (Replicate's trainings and models) and the copy
//! of the weights into the bucket.

use std::future::Future;

use super::StoreError;
use crate::domain::actor::ActorId;
use crate::domain::training::{LoraRecord, ModelName, TrainingId, TrainingRecord, TrainingStatus};

/// How a training ended, for its record.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingEnd {
    /// Succeeded, failed or canceled.
    pub status: TrainingStatus,
    /// The end of its logs.
    pub logs: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The seconds Replicate billed.
    pub predict_time: Option<f64>,
    /// What they cost, in US dollars.
    pub cost_usd: Option<f64>,
    /// The trained version, when it succeeded.
    pub version: Option<String>,
    /// Where its weights are in the bucket, when it succeeded.
    pub weights_key: Option<String>,
    /// When it ended (RFC 3339).
    pub finished_at: String,
}

/// The trainings' records, the actors' training locks and LoRA records.
pub trait TrainingRecords: Send + Sync {
    /// Takes the actor's training lock for `training_id` until `until_ms` (epoch
    /// milliseconds), unless another training holds it past `now_ms`: then its id. The
    /// lock is the training's already if it holds it, and `replacing`'s (an ended training
    /// whose unlock was lost) is taken over.
    fn lock(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
        now_ms: u64,
        until_ms: u64,
        replacing: Option<&TrainingId>,
    ) -> impl Future<Output = Result<Result<(), String>, StoreError>> + Send;
    /// Gives the actor's lock back, if `training_id` still holds it.
    fn unlock(
        &self,
        actor_id: &ActorId,
        training_id: &TrainingId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a new training (never over an existing one), open for a look at `look_at_ms`.
    fn create(
        &self,
        record: &TrainingRecord,
        look_at_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The training, or `None`.
    fn get(
        &self,
        training_id: &TrainingId,
    ) -> impl Future<Output = Result<Option<TrainingRecord>, StoreError>> + Send;
    /// Our training of Replicate's training `replicate_id`, if it is one.
    fn by_replicate_id(
        &self,
        replicate_id: &str,
    ) -> impl Future<Output = Result<Option<TrainingId>, StoreError>> + Send;
    /// Moves an exporting training to `creating`, claimed at `now_ms` and looked at by
    /// `look_at_ms`: only the run that moved it sends the create. `false` when it was not
    /// exporting.
    fn claim_create(
        &self,
        training_id: &TrainingId,
        now_ms: u64,
        look_at_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Moves a `creating` training back to exporting (its create surely made nothing).
    fn unclaim_create(
        &self,
        training_id: &TrainingId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Notes Replicate's training `replicate_id` of a `creating` training, and where it is;
    /// `false` when it was not `creating` any more.
    fn created(
        &self,
        training_id: &TrainingId,
        replicate_id: &str,
        status: TrainingStatus,
        look_at_ms: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Notes a running training's status and logs, and when to look at it next; nothing
    /// when it has ended.
    fn progress(
        &self,
        training_id: &TrainingId,
        status: TrainingStatus,
        logs: Option<&str>,
        look_at_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ends the training, unless it has ended (then `false`): it leaves the open records.
    /// With `only_from`, only a training in that state is ended.
    fn end(
        &self,
        training_id: &TrainingId,
        end: &TrainingEnd,
        only_from: Option<TrainingStatus>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Moves an open training's next look to `look_at_ms`.
    fn postpone(
        &self,
        training_id: &TrainingId,
        look_at_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The open trainings whose look was due by `now_ms`, at most `limit`.
    fn due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<TrainingId>, StoreError>> + Send;
    /// Writes the actor's LoRA record (its last training that succeeded).
    fn put_lora(&self, lora: &LoraRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Hands a training to the function that moves it on (after its export, on a webhook, or
/// from the reconciler).
pub trait TrainingQueue: Send + Sync {
    /// Sends the training's message.
    fn send(&self, training_id: &TrainingId)
    -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A training as Replicate reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTraining {
    /// Replicate's id.
    pub id: String,
    /// Replicate's status word.
    pub status: String,
    /// Its logs so far.
    pub logs: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The seconds billed, once ended.
    pub predict_time: Option<f64>,
    /// The trained version, once succeeded.
    pub version: Option<String>,
    /// Where its weights can be downloaded, once succeeded (for a while only).
    pub weights_url: Option<String>,
}

/// What a training is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingInput {
    /// The model its version goes to.
    pub destination: ModelName,
    /// A presigned URL of the export's zip.
    pub input_images: String,
    /// The trigger word.
    pub trigger_word: String,
    /// The steps.
    pub steps: u32,
    /// The LoRA's rank.
    pub lora_rank: u32,
    /// Where Replicate posts the training's end.
    pub webhook: Option<String>,
}

/// Why a call to the trainer did not answer a training.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainerError {
    /// Refused for good (401, 402, 404, 422): nothing was created.
    #[error("refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Replicate's words.
        message: String,
    },
    /// Not reached, rate-limited or unavailable before anything was created: try later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A create was sent and its answer lost: a training may exist.
    #[error("uncertain: {0}")]
    Uncertain(String),
}

/// The trainer: Replicate's trainings and models.
pub trait Trainer: Send + Sync {
    /// Makes the private destination model unless it exists.
    fn ensure_model(
        &self,
        model: &ModelName,
    ) -> impl Future<Output = Result<(), TrainerError>> + Send;
    /// Creates a training: the call that costs money.
    fn create(
        &self,
        input: &TrainingInput,
    ) -> impl Future<Output = Result<RemoteTraining, TrainerError>> + Send;
    /// Reads a training.
    fn get(&self, id: &str) -> impl Future<Output = Result<RemoteTraining, TrainerError>> + Send;
    /// Cancels a training.
    fn cancel(&self, id: &str)
    -> impl Future<Output = Result<RemoteTraining, TrainerError>> + Send;
    /// The newest of the recent trainings for `destination` created at or after `since`
    /// (RFC 3339) from the zip at `input_key`: a create whose answer was lost.
    fn find_created(
        &self,
        destination: &ModelName,
        since: &str,
        input_key: &str,
    ) -> impl Future<Output = Result<Option<RemoteTraining>, TrainerError>> + Send;
}

/// Why weights were not copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The file is gone or refused for good (not an allowed URL, 403, 404, too large).
    #[error("the weights could not be fetched: {0}")]
    Gone(String),
    /// A fault on the way (the download or the bucket): try again.
    #[error(transparent)]
    Fault(#[from] StoreError),
}

/// Copies a trained model's weights from Replicate into the bucket.
pub trait WeightsCopier: Send + Sync {
    /// Streams `url` into the object `key`; its size in bytes.
    fn copy(&self, url: &str, key: &str) -> impl Future<Output = Result<u64, CopyError>> + Send;
}
