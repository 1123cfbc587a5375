//! Trainings: a LoRA trained on Replicate from an export of the actor's images.
//!
//! - [`Trainings::start`] (the POST) refuses or counts the training before anything is made:
//!   one running training per actor (a lock with an expiry, checked before the daily cap so
//!   a refused request counts nothing), then the cap and the kill switch. It records the
//!   training as `exporting` (starting the export of the kept images when none is given) and
//!   queues it; Replicate is never called inside the request.
//! - [`Trainings::advance`] (the training's message: after the export, on a webhook, from
//!   the reconciler) moves it on from what is true now: an export still running is waited
//!   for; a finished one is handed to Replicate (the destination model made if missing), by
//!   the one run that claimed the create; a running training is read from Replicate and, once
//!   ended, finished: its weights copied into the bucket, the actor's LoRA record and the
//!   manifest written, the lock given back, and the budget unit too when it paid nothing.
//! - [`Trainings::status`] and [`Trainings::cancel`] are the artist's view and stop.

mod advance;
mod control;
mod finish;
mod messages;
mod start;

use std::time::Duration;

pub use advance::Advance;
pub use messages::{queue_due_trainings, training_delivered};
pub use start::{NewTraining, TrainingStart};

use super::export::TrainingExports;
use crate::domain::training::TrainingRecord;
use crate::ports::Admission;

/// What a deployment sets for its trainings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSettings {
    /// The destination model's pattern, `owner/name` with `{actor_name}`
    /// (`TRAINING_DESTINATION`).
    pub destination: String,
    /// US dollars per second billed (`TRAINING_PRICE_PER_SECOND`).
    pub price_per_second: f64,
    /// How long an actor's lock lives without its training ending (`TRAINING_LOCK_SECONDS`).
    pub lock_for: Duration,
    /// How long after a training was last looked at the reconciler looks again (a lost
    /// webhook) (`TRAINING_CHECK_SECONDS`).
    pub look_every: Duration,
    /// How long a message waits before it looks at a running export again.
    pub export_wait: Duration,
    /// How long the export's presigned URL given to Replicate lives.
    pub input_url_lifetime: Duration,
    /// Where Replicate posts a training's end (`REPLICATE_WEBHOOK_URL`), when deployed with
    /// the webhook.
    pub webhook_url: Option<String>,
    /// How long after a create whose answer was lost Replicate's list is searched for it
    /// before the training is given up as never made.
    pub create_grace: Duration,
}

/// The training use cases over their ports: the exports' (whose start a training may use),
/// the trainings' records, the trainer, the weights' copier, the trainings' queue, the
/// spend guard and the idempotency records.
#[derive(Debug)]
pub struct Trainings<P, O, ER, EQ, R, T, W, Q, S, I, K> {
    /// The exports: their records, queue, the profiles, the bucket and the clock.
    pub exports: TrainingExports<P, O, ER, EQ, (), K>,
    /// The trainings' records, locks and LoRA records.
    pub records: R,
    /// Replicate's trainings and models.
    pub trainer: T,
    /// The weights' copy into the bucket.
    pub weights: W,
    /// The trainings' queue.
    pub queue: Q,
    /// The kill switch and the daily training cap.
    pub spend: S,
    /// The idempotency keys' records.
    pub idempotency: I,
    /// The deployment's settings.
    pub settings: TrainingSettings,
}

/// The budget unit a training was counted with, to give it back.
fn admission_of(record: &TrainingRecord) -> Admission {
    Admission {
        day: record.budget_day.clone(),
        actor_name: record.actor_name.clone(),
        units: 1,
        refund_token: record.refund_token.clone(),
    }
}

/// Milliseconds of `duration`, saturating.
fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2)
}
