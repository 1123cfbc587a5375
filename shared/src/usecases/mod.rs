//! The use cases: what the service does, written against the ports. Entry code parses an
//! event, calls one of these and maps its result; a worker, a webhook or a reconciler calls
//! the same steps (above all [`GenerateImage::store_prediction`], the one way a succeeded
//! prediction becomes a stored, listed image).
//!
//! No AWS, Lambda, HTTP or async-runtime crate is used here: futures are joined by
//! [`concurrently`], and time comes from the [`crate::ports::Clock`] port.

pub mod caption_file;
pub mod collect;
pub mod concurrently;
pub mod curation;
pub mod error;
pub mod export;
pub mod generate_image;
pub mod group_commit;
pub mod guarded;
pub mod manifest_listing;
pub mod manifest_rewrite;
pub mod numbering;
pub mod predict;
pub mod prepare;
pub mod reconcile;
pub mod repair;
pub mod slots;
pub mod store;
pub mod training_prompts;
pub mod training_sets;
pub mod trainings;

#[cfg(test)]
mod caption_file_tests;
#[cfg(test)]
mod fake_records;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod generate_image_tests;
#[cfg(test)]
mod guarded_tests;

pub use error::UseCaseError;
pub use generate_image::{
    GenerateImage, GenerationSettings, ImageOrder, ImageSlots, MAX_IMAGES_IN_MEMORY,
    PreparedGeneration, RunLimits,
};
pub use guarded::{
    AnswerFormat, GuardedGeneration, GuardedJob, GuardedJobs, GuardedOutcome, GuardedRun, RunReport,
};
pub use predict::{NotRecorded, PredictionLog};
pub use reconcile::ReconcileReport;
pub use repair::RepairReport;
pub use store::{StepTimings, StoredImage};

/// Runs a record write with [`crate::retry::Backoff::RECORD_WRITE`].
async fn retried<F, Fut>(
    clock: &impl crate::ports::Clock,
    write: F,
) -> Result<(), crate::ports::StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), crate::ports::StoreError>>,
{
    let policy = crate::retry::Backoff::RECORD_WRITE;
    let mut attempt = 1;
    loop {
        let result = write().await;
        if result.is_ok() || !policy.allows_another(attempt) {
            return result;
        }
        clock.sleep(policy.delay(attempt)).await;
        attempt += 1;
    }
}

/// Milliseconds from `start` to `end` (zero if `end` is earlier).
fn ms_between(start: std::time::Instant, end: std::time::Instant) -> u64 {
    u64::try_from(end.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
}
