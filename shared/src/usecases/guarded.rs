//! The guarded generation: one image generation under its idempotency key and the spend
//! guard. Every entry (HTTP, direct, scheduled, batch, and later a queue worker) runs jobs
//! through [`GuardedGeneration::run`], so the rules below hold wherever a job comes from:
//!
//! - with a key, its record is read concurrently with the request's checks: a repeat gets
//!   the stored answer, one still running or reused with another request is refused, and a
//!   prediction an interrupted run paid for is collected from its record (whatever the
//!   checks say now: the photo may be gone) instead of paying again;
//! - otherwise the checks decide: a refused request records and counts nothing;
//! - a new prediction is counted by the spend guard before it is paid, and its unit is given
//!   back when it certainly paid for nothing;
//! - settle the key: a final outcome ([`UseCaseError::is_final`]) is kept for repeats, a paid
//!   prediction is kept for a resume, and a key that paid nothing is released.

use super::concurrently::both;
use super::generate_image::{GenerateImage, PreparedGeneration, RunLimits};
use super::predict::{NotRecorded, PredictionLog};
use super::repair::RepairReport;
use super::store::StoredImage;
use super::{UseCaseError, ms_between, retried};
use crate::domain::actor::ActorId;
use crate::domain::request::ImageRequest;
use crate::ports::{
    ActorProfiles, Admission, AtDeadline, Clock, IdempotencyBegin, IdempotencyStore,
    ImageGenerator, IndexCounter, KeySeen, ObjectStore, PredictionRecords, SpendGuard, StoreError,
    StoredAnswer,
};

/// The generation use case and the guards around it. Build it once per execution environment.
#[derive(Debug)]
pub struct GuardedGeneration<P, O, C, G, K, R, I, S> {
    /// The generation's steps.
    pub generation: GenerateImage<P, O, C, G, K, R>,
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
    /// When the run must be done by; its hold (the key's and the prediction record's) is
    /// the invocation's own deadline.
    pub limits: RunLimits,
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
    /// The operators' repair of an actor's manifest from its folder, by `finish_by`.
    fn repair_manifest(
        &self,
        actor_name: &str,
        finish_by: std::time::Instant,
    ) -> impl Future<Output = Result<RepairReport, UseCaseError>> + Send;
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

impl<P, O, C, G, K, R, I, S> GuardedJobs for GuardedGeneration<P, O, C, G, K, R, I, S>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
    I: IdempotencyStore,
    S: SpendGuard,
{
    async fn run(&self, job: &GuardedJob, format: &impl AnswerFormat) -> GuardedRun {
        let mut report = RunReport::default();
        // On the heap: the whole run's state inline overflows the 8 MiB main-thread stack of
        // the unoptimised build.
        let outcome = Box::pin(self.outcome(job, format, &mut report)).await;
        GuardedRun { outcome, report }
    }

    async fn repair_manifest(
        &self,
        actor_name: &str,
        finish_by: std::time::Instant,
    ) -> Result<RepairReport, UseCaseError> {
        self.generation.repair_manifest(actor_name, finish_by).await
    }
}

impl<P, O, C, G, K, R, I, S> GuardedGeneration<P, O, C, G, K, R, I, S>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
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
        let prepare = async {
            let started = clock.now();
            let prepared = Box::pin(self.generation.prepare(&job.actor_id, &job.request)).await;
            (prepared, ms_between(started, clock.now()))
        };
        let Some(key) = job.key.as_deref() else {
            let (prepared, prepare_ms) = prepare.await;
            report.prepare_ms = prepare_ms;
            let result = match prepared {
                Ok(prepared) => {
                    self.run_counted(&prepared, job.limits, &NotRecorded, report)
                        .await
                }
                Err(error) => Err(error),
            };
            return GuardedOutcome::Fresh(result.map(Box::new));
        };
        let fingerprint = job.request.fingerprint(&job.actor_id);
        let ((prepared, prepare_ms), seen) =
            both(prepare, self.idempotency.peek(key, &fingerprint)).await;
        report.prepare_ms = prepare_ms;
        let paid_earlier = match seen {
            Ok(KeySeen::Completed(answer)) => {
                tracing::info!(actor = %job.actor_id, status = answer.status, "idempotent repeat answered from its record");
                return GuardedOutcome::Replayed(answer);
            }
            Ok(KeySeen::InProgress) => {
                return GuardedOutcome::Fresh(Err(UseCaseError::KeyInProgress));
            }
            Ok(KeySeen::PayloadMismatch) => {
                return GuardedOutcome::Fresh(Err(UseCaseError::KeyReused));
            }
            Ok(KeySeen::Interrupted {
                prediction_id: Some(_),
            }) => true,
            Ok(
                KeySeen::Free
                | KeySeen::Interrupted {
                    prediction_id: None,
                },
            ) => false,
            Err(error) => {
                return GuardedOutcome::Fresh(Err(prepared.err().unwrap_or(error.into())));
            }
        };
        let prepared = match prepared {
            Ok(prepared) => Some(prepared),
            // A refused fresh request records nothing.
            Err(error) if !paid_earlier => return GuardedOutcome::Fresh(Err(error)),
            Err(error) => {
                tracing::info!(actor = %job.actor_id, %error, "the request would be refused now; collecting what its key paid for");
                None
            }
        };
        let resume = match self
            .idempotency
            .begin(key, &fingerprint, job.limits.hold_until_ms)
            .await
        {
            Ok(IdempotencyBegin::Owned { resume }) => resume,
            Ok(IdempotencyBegin::Completed(answer)) => return GuardedOutcome::Replayed(answer),
            Ok(IdempotencyBegin::InProgress) => {
                return GuardedOutcome::Fresh(Err(UseCaseError::KeyInProgress));
            }
            Ok(IdempotencyBegin::PayloadMismatch) => {
                return GuardedOutcome::Fresh(Err(UseCaseError::KeyReused));
            }
            Err(error) => return GuardedOutcome::Fresh(Err(error.into())),
        };
        let result = match (&resume, &prepared) {
            (Some(prediction_id), _) => {
                self.generation
                    .resume(
                        prediction_id,
                        prepared.as_ref().map(|prepared| &prepared.order),
                        job.limits,
                    )
                    .await
            }
            (None, Some(prepared)) => {
                let log = KeyLog {
                    store: &self.idempotency,
                    clock,
                    key,
                };
                self.run_counted(prepared, job.limits, &log, report).await
            }
            // The record changed between the read and the take-over: nothing to collect, and
            // the request is refused after all.
            (None, None) => Err(UseCaseError::KeyInProgress),
        };
        let settled = match &result {
            Ok(image) => {
                let answer = format.stored(image);
                let completed = retried(clock, || self.idempotency.complete(key, &answer)).await;
                if completed.is_err()
                    && let Err(error) = self
                        .idempotency
                        .interrupt(key, Some(&image.prediction_id))
                        .await
                {
                    // A repeat then waits for the hold to end, and collects the stored
                    // image from the prediction's record.
                    tracing::warn!(%error, "idempotency hold not ended after a lost complete");
                }
                completed
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
        limits: RunLimits,
        log: &impl PredictionLog,
        report: &mut RunReport,
    ) -> Result<StoredImage, UseCaseError> {
        let admission = match self.spend.admit(&prepared.order.actor.actor_name, 1).await {
            Ok(Ok(admission)) => admission,
            Ok(Err(refusal)) => return Err(UseCaseError::Spend(refusal)),
            Err(error) => return Err(error.into()),
        };
        report.budget_counted = true;
        let outcome = self.generation.execute(prepared, limits, log).await;
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
