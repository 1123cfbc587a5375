//! The reconciler's pass: every paid prediction whose run ended without storing it (cut by a
//! deadline, a fault, a crash) is collected from its record once its hold has passed: what
//! succeeded is stored (the one store step), what failed is closed, what still runs is
//! looked at again on the next pass. Each record is taken with a conditional write of its
//! hold (a lease), so overlapping passes and a caller's own retry never store one twice;
//! a pass takes a bounded number of records and stops starting new ones near its deadline.

use std::time::{Duration, Instant};

use super::UseCaseError;
use super::generate_image::{GenerateImage, RunLimits};
use crate::ports::{
    AtDeadline, Clock, ImageGenerator, IndexCounter, ObjectStore, PredictionError,
    PredictionRecords, StoreError,
};

/// How long a pass holds a record it took: past it, a pass that died lets the next one in.
const LEASE: Duration = Duration::from_secs(120);
/// The least time a pass needs to collect one more record (a read, a download, the writes).
const TIME_PER_RECORD: Duration = Duration::from_secs(20);
/// How long Replicate keeps a prediction's output (an hour), with a margin: a record open
/// past it can no longer be stored, and is closed as lost.
const OUTPUT_RETENTION: Duration = Duration::from_secs(55 * 60);

/// What a pass did, for its answer and its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Open records past their hold that the pass found.
    pub due: usize,
    /// Images stored.
    pub stored: usize,
    /// Records closed without an image (failed, canceled, refused, or past the retention).
    pub closed: usize,
    /// Predictions still running, left for the next pass.
    pub still_running: usize,
    /// Records another collector held first.
    pub skipped: usize,
    /// Records a fault kept from being collected, left for the next pass.
    pub faults: usize,
    /// Records not started for lack of time, left for the next pass.
    pub not_started: usize,
}

impl<P, O, C, G, K, R> GenerateImage<P, O, C, G, K, R>
where
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
{
    /// Collects up to `limit` paid predictions past their hold, starting none after `until`
    /// less the time one takes.
    pub async fn reconcile(
        &self,
        limit: usize,
        until: Instant,
    ) -> Result<ReconcileReport, StoreError> {
        let due = self.records.due(self.clock.now_epoch_ms(), limit).await?;
        let mut report = ReconcileReport {
            due: due.len(),
            ..ReconcileReport::default()
        };
        for mut record in due {
            if self.clock.now() + TIME_PER_RECORD > until {
                report.not_started += 1;
                continue;
            }
            let now_ms = self.clock.now_epoch_ms();
            let lease_until = now_ms + LEASE.as_millis() as u64;
            let prediction_id = record.prediction_id.clone();
            if !self
                .records
                .hold(&prediction_id, record.held_until_ms, lease_until)
                .await?
            {
                report.skipped += 1;
                continue;
            }
            record.held_until_ms = lease_until;
            let limits = RunLimits {
                // No waiting: a prediction still running is looked at again next pass.
                model: self.clock.now(),
                finish: (self.clock.now() + TIME_PER_RECORD).min(until),
                hold_until_ms: lease_until,
            };
            let collected =
                Box::pin(self.collect_record(&record, limits, AtDeadline::KeepRunning)).await;
            let age = Duration::from_millis(now_ms.saturating_sub(record.opened_at_ms));
            match collected {
                Ok(image) => {
                    tracing::info!(%prediction_id, actor = %image.actor_id, index = image.index, "reconciler stored a paid prediction");
                    report.stored += 1;
                }
                Err(error) if error.ended_without_image().is_some() => {
                    tracing::info!(%prediction_id, %error, "reconciler closed a prediction that ended without an image");
                    report.closed += 1;
                }
                Err(error) if age > OUTPUT_RETENTION => {
                    tracing::error!(%prediction_id, %error, age_s = age.as_secs(), "paid prediction not collected within Replicate's output retention; closed as lost");
                    self.records
                        .failed(
                            &prediction_id,
                            "not collected within Replicate's output retention",
                        )
                        .await?;
                    report.closed += 1;
                }
                Err(UseCaseError::Prediction(PredictionError::TimedOut { .. })) => {
                    report.still_running += 1;
                }
                Err(error) => {
                    tracing::warn!(%prediction_id, %error, "reconciler could not collect a paid prediction; next pass tries again");
                    report.faults += 1;
                }
            }
        }
        tracing::info!(
            due = report.due,
            stored = report.stored,
            closed = report.closed,
            still_running = report.still_running,
            skipped = report.skipped,
            faults = report.faults,
            not_started = report.not_started,
            "reconciler pass finished"
        );
        Ok(report)
    }
}
