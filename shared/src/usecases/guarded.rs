//! The guarded generation: one image generation under its idempotency key and the spend
//! guard. Every entry (HTTP, direct, scheduled, batch, and later a queue worker) runs jobs
//! through [`GuardedGeneration::run`], so the rules below hold wherever a job comes from:
//!
//! - prepare first: a refused request records and counts nothing;
//! - with a key: take it (a repeat gets the stored answer, one still running or reused with
//!   another request is refused), and resume a prediction an interrupted run paid for
//!   instead of paying again;
//! - a new prediction is counted by the spend guard before it is paid, and its unit is given
//!   back when it certainly paid for nothing;
//! - settle the key: a final outcome ([`UseCaseError::is_final`]) is kept for repeats, a paid
//!   prediction is kept for a resume, and a key that paid nothing is released.

use std::time::Instant;

use super::generate_image::{GenerateImage, PreparedGeneration};
use super::predict::{NotRecorded, PredictionLog, Start};
use super::store::StoredImage;
use super::{UseCaseError, ms_between};
use crate::domain::actor::ActorId;
use crate::domain::request::ImageRequest;
use crate::ports::{
    ActorProfiles, Admission, AtDeadline, Clock, IdempotencyBegin, IdempotencyStore,
    ImageGenerator, IndexCounter, ObjectStore, SpendGuard, StoreError, StoredAnswer,
};
use crate::retry::Backoff;

/// The generation use case and the guards around it. Build it once per execution environment.
#[derive(Debug)]
pub struct GuardedGeneration<P, O, C, G, K, I, S> {
    /// The generation's steps.
    pub generation: GenerateImage<P, O, C, G, K>,
    /// Idempotency records.
    pub idempotency: I,
    /// The kill switch and the daily caps.
    pub spend: S,
}

/// One job: for whom, what, under which key, by when.
#[derive(Debug, Clone)]
pub struct GuardedJob {
    /// The actor the image is for.
    pub actor_id: ActorId,
    /// What the caller asked for.
    pub request: ImageRequest,
    /// The idempotency key, already scoped to the caller.
    pub key: Option<String>,
    /// When the model must be done (the image is stored after it, within a grace).
    pub deadline: Instant,
    /// Until when (epoch milliseconds) the key is held: the invocation's own deadline.
    pub hold_until_ms: u64,
}

/// How an entry encodes an outcome for the idempotency record, so that a repeat is answered
/// exactly as the first run was.
pub trait AnswerFormat: Sync {
    /// The answer of a stored image.
    fn stored(&self, image: &StoredImage) -> StoredAnswer;
    /// The answer of a final failure.
    fn failed(&self, error: &UseCaseError) -> StoredAnswer;
}

/// A job's outcome: run now, or the answer of an earlier run with the same key.
#[derive(Debug)]
pub enum GuardedOutcome {
    /// This invocation ran the job.
    Fresh(Result<Box<StoredImage>, UseCaseError>),
    /// An earlier run with this key finished; this is its answer.
    Replayed(StoredAnswer),
}

/// A job's outcome with what the entry reports of it.
#[derive(Debug)]
pub struct GuardedRun {
    /// The outcome.
    pub outcome: GuardedOutcome,
    /// What happened on the way, for logs and metrics.
    pub report: RunReport,
}

/// What a run reports besides its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Whether the spend guard counted a generation for it.
    pub budget_counted: bool,
    /// How long the prepare step took.
    pub prepare_ms: u64,
}

/// Runs guarded jobs: what an entry needs of [`GuardedGeneration`], whatever its ports.
pub trait GuardedJobs: Sync {
    /// Runs one job under its key and the spend guard; `format` encodes what the key's
    /// record keeps.
    fn run(
        &self,
        job: &GuardedJob,
        format: &impl AnswerFormat,
    ) -> impl Future<Output = GuardedRun> + Send;
}

/// Records a new prediction's id on the job's idempotency record.
struct KeyLog<'a, I, K> {
    store: &'a I,
    clock: &'a K,
    key: &'a str,
}

impl<I: IdempotencyStore, K: Clock> PredictionLog for KeyLog<'_, I, K> {
    async fn started(&self, prediction_id: &str) {
        let recorded = retried(self.clock, || {
            self.store.record_prediction(self.key, prediction_id)
        })
        .await;
        if let Err(error) = recorded {
            // The run still writes it on the record when it fails (`interrupt`).
            tracing::error!(prediction_id, %error, "prediction id not recorded on the idempotency record");
        }
    }

    fn at_deadline(&self) -> AtDeadline {
        AtDeadline::KeepRunning
    }
}

/// Runs a record write with [`Backoff::RECORD_WRITE`].
async fn retried<F, Fut>(clock: &impl Clock, write: F) -> Result<(), StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let policy = Backoff::RECORD_WRITE;
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

impl<P, O, C, G, K, I, S> GuardedJobs for GuardedGeneration<P, O, C, G, K, I, S>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    I: IdempotencyStore,
    S: SpendGuard,
{
    async fn run(&self, job: &GuardedJob, format: &impl AnswerFormat) -> GuardedRun {
        let mut report = RunReport::default();
        let outcome = self.outcome(job, format, &mut report).await;
        GuardedRun { outcome, report }
    }
}

impl<P, O, C, G, K, I, S> GuardedGeneration<P, O, C, G, K, I, S>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    I: IdempotencyStore,
    S: SpendGuard,
{
    async fn outcome(
        &self,
        job: &GuardedJob,
        format: &impl AnswerFormat,
        report: &mut RunReport,
    ) -> GuardedOutcome {
        let clock = &self.generation.clock;
        let prepare_started = clock.now();
        let prepared = match self.generation.prepare(&job.actor_id, &job.request).await {
            Ok(prepared) => prepared,
            Err(error) => return GuardedOutcome::Fresh(Err(error)),
        };
        report.prepare_ms = ms_between(prepare_started, clock.now());
        let Some(key) = job.key.as_deref() else {
            let result = self
                .run_counted(&prepared, job.deadline, &NotRecorded, report)
                .await;
            return GuardedOutcome::Fresh(result.map(Box::new));
        };
        let fingerprint = job.request.fingerprint(&job.actor_id);
        let resume = match self
            .idempotency
            .begin(key, &fingerprint, job.hold_until_ms)
            .await
        {
            Ok(IdempotencyBegin::Owned { resume }) => resume,
            Ok(IdempotencyBegin::Completed(answer)) => {
                tracing::info!(actor = %job.actor_id, status = answer.status, "idempotent repeat answered from its record");
                return GuardedOutcome::Replayed(answer);
            }
            Ok(IdempotencyBegin::InProgress) => {
                return GuardedOutcome::Fresh(Err(UseCaseError::KeyInProgress));
            }
            Ok(IdempotencyBegin::PayloadMismatch) => {
                return GuardedOutcome::Fresh(Err(UseCaseError::KeyReused));
            }
            Err(error) => return GuardedOutcome::Fresh(Err(error.into())),
        };
        let result = match &resume {
            Some(prediction_id) => {
                self.generation
                    .execute(
                        &prepared,
                        job.deadline,
                        Start::<NotRecorded>::Resume(prediction_id),
                    )
                    .await
            }
            None => {
                let log = KeyLog {
                    store: &self.idempotency,
                    clock,
                    key,
                };
                self.run_counted(&prepared, job.deadline, &log, report)
                    .await
            }
        };
        let settled = match &result {
            Ok(image) => {
                let answer = format.stored(image);
                retried(clock, || self.idempotency.complete(key, &answer)).await
            }
            Err(error) => {
                self.settle_failure(key, error, resume.as_deref(), format)
                    .await
            }
        };
        if let Err(error) = settled {
            tracing::error!(%error, "idempotency record not settled");
        }
        GuardedOutcome::Fresh(result.map(Box::new))
    }

    /// After a failed run: a final answer kept, the paid prediction kept for a resume, or
    /// the key released (nothing paid).
    async fn settle_failure(
        &self,
        key: &str,
        error: &UseCaseError,
        resumed: Option<&str>,
        format: &impl AnswerFormat,
    ) -> Result<(), StoreError> {
        let clock = &self.generation.clock;
        if error.is_final() {
            let answer = format.failed(error);
            return retried(clock, || self.idempotency.complete(key, &answer)).await;
        }
        match error.prediction_id().or(resumed) {
            Some(prediction_id) => {
                retried(clock, || {
                    self.idempotency.interrupt(key, Some(prediction_id))
                })
                .await
            }
            None => self.idempotency.release(key).await,
        }
    }

    /// A new prediction counted by the spend guard: admitted, run (its id told to `log`),
    /// and its unit given back when it certainly paid for nothing.
    async fn run_counted(
        &self,
        prepared: &PreparedGeneration,
        deadline: Instant,
        log: &impl PredictionLog,
        report: &mut RunReport,
    ) -> Result<StoredImage, UseCaseError> {
        let admission = match self.spend.admit(&prepared.order.actor.actor_name).await {
            Ok(Ok(admission)) => admission,
            Ok(Err(refusal)) => return Err(UseCaseError::Spend(refusal)),
            Err(error) => return Err(error.into()),
        };
        report.budget_counted = true;
        let outcome = self
            .generation
            .execute(prepared, deadline, Start::New(log))
            .await;
        if let Err(error) = &outcome
            && error.paid_nothing()
        {
            self.refund(&admission, error).await;
        }
        outcome
    }

    /// Gives back the unit of a generation that certainly paid for nothing, on the day it
    /// was counted. The guard retries conflicts itself, under one idempotency token.
    async fn refund(&self, admission: &Admission, error: &UseCaseError) {
        match self.spend.refund(admission).await {
            Ok(()) => {
                tracing::info!(actor_name = %admission.actor_name, day = %admission.day, %error, "budget refunded: nothing was paid")
            }
            Err(refund_error) => {
                tracing::warn!(actor_name = %admission.actor_name, day = %admission.day, error = %refund_error, "budget not refunded")
            }
        }
    }
}
