//! The kill switch and the daily caps, counted before anything is paid.

use std::future::Future;

use thiserror::Error;

use super::StoreError;

/// Why the spend guard refuses a generation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpendRefusal {
    /// The kill switch is on.
    #[error("image generation is switched off by the operators")]
    Disabled,
    /// A daily cap is used up.
    #[error("the daily cap of {cap} {scope} is used up; it resets at 00:00 UTC")]
    Exhausted {
        /// Which cap ("generations for the service", "trainings for the service", ...).
        scope: String,
        /// The cap.
        cap: u64,
    },
}

/// A generation the spend guard counted: the UTC day and the actor it was counted for, so
/// that a refund gives the unit back where it was taken, even after midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The day counted, `yyyy-mm-dd` (UTC).
    pub day: String,
    /// The actor's name (the folder the generation writes).
    pub actor_name: String,
    /// How many generations were counted (a training set counts all its items at once).
    pub units: u64,
    /// Names the one refund this admission may get, however often it is tried.
    pub refund_token: String,
}

/// Admits generations against the kill switch and the daily caps, counting each admitted one.
pub trait SpendGuard: Send + Sync {
    /// Counts `units` generations for the actor named `actor_name` (the folder they write),
    /// all or none, or says why not.
    fn admit(
        &self,
        actor_name: &str,
        units: u64,
    ) -> impl Future<Output = Result<Result<Admission, SpendRefusal>, StoreError>> + Send;
    /// Gives back an admission's units (generations that paid for nothing), on the day they
    /// were counted; the same admission is given back once, however often this is tried.
    fn refund(&self, admission: &Admission) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Whether the kill switch is on: a queued generation counted earlier checks it again
    /// before it pays.
    fn switched_off(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
