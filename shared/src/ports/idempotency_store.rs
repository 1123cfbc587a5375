//! Records of idempotency keys, so a repeated request neither runs nor pays twice.

use std::future::Future;

use super::StoreError;

/// What an idempotency key's record says when a request tries to begin with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request now owns the key. `resume` names a prediction an earlier, interrupted run
    /// paid for: continue it rather than start another.
    Owned {
        /// The prediction to resume, if any.
        resume: Option<String>,
    },
    /// A run with this key finished: here is its answer.
    Completed(StoredAnswer),
    /// A run with this key is still in progress.
    InProgress,
    /// The key was used with another payload.
    PayloadMismatch,
}

/// What an idempotency key's record says when it is read before the request is checked
/// (concurrently with the profile and photo reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySeen {
    /// There is no live record: the request runs afresh if it is valid.
    Free,
    /// A run with this key finished: here is its answer.
    Completed(StoredAnswer),
    /// A run with this key holds it.
    InProgress,
    /// The key was used with another payload.
    PayloadMismatch,
    /// A run with this key was interrupted (its hold has ended); `prediction_id` names what
    /// it paid for, which is collected from its record whatever the request's checks say now.
    Interrupted {
        /// The paid prediction, if it got that far.
        prediction_id: Option<String>,
    },
}

/// A finished run's answer, as the entry that ran it encoded it (a status and a JSON body),
/// kept so that a repeat gets the same answer without running again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The status the answer had (HTTP's numbers, which direct invocations share).
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// Records of idempotency keys (one per key and caller), kept 24 hours.
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for a run whose payload hashes to `payload_hash`, held until
    /// `in_progress_until_ms` (epoch milliseconds), unless a live record says otherwise.
    fn begin(
        &self,
        key: &str,
        payload_hash: &str,
        in_progress_until_ms: u64,
    ) -> impl Future<Output = Result<IdempotencyBegin, StoreError>> + Send;
    /// Reads the key's record without taking it.
    fn peek(
        &self,
        key: &str,
        payload_hash: &str,
    ) -> impl Future<Output = Result<KeySeen, StoreError>> + Send;
    /// Notes the prediction the run paid for.
    fn record_prediction(
        &self,
        key: &str,
        prediction_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores the run's answer for repeats.
    fn complete(
        &self,
        key: &str,
        answer: &StoredAnswer,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets the key: the run paid for nothing, so a repeat may start afresh.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Ends the run's hold on the key but keeps its prediction (written here too, in case its
    /// first recording failed), so a repeat resumes it.
    fn interrupt(
        &self,
        key: &str,
        prediction_id: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
