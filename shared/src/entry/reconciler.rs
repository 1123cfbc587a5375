//! The reconciler function: on its EventBridge schedule, one pass of the reconcile use case
//! over the paid predictions whose run ended without storing them. Its answer is the pass's
//! report; a pass that could not even list the due records is a Lambda error (the next
//! scheduled pass tries again).

use std::time::{Duration, Instant};

use lambda_http::lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use super::compose::DeployedGeneration;
use super::invocation_error::InvocationError;
use super::replicate_webhook::TrainingDeliveries;
use crate::adapters::clock::SystemClock;
use crate::adapters::sqs::SqsItemQueue;
use crate::adapters::training_sets::DynamoDbTrainingSets;
use crate::timing::epoch_ms;
use crate::usecases::training_sets::resend_stuck;
use crate::usecases::trainings::queue_due_trainings;

/// What a pass keeps back from the function's timeout for its last writes and its answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// The function: the generation's steps and how many records a pass takes. Build it once
/// per execution environment.
#[derive(Debug)]
pub struct ReconcilerFunction {
    /// The generation, whose store step stores what succeeded.
    pub generation: DeployedGeneration,
    /// The most records one pass takes (`RECONCILE_BATCH_SIZE`), and the most stuck
    /// training-set items it sends again.
    pub batch_size: usize,
    /// The training sets and their queue, when the stack has them (`TRAINING_SET_QUEUE_URL`).
    pub sets: Option<StuckItems>,
    /// The trainings and their queue, when the stack has them (`TRAINING_QUEUE_URL`).
    pub trainings: Option<TrainingDeliveries>,
}

/// What the reconciler needs to send stuck training-set items again.
#[derive(Debug)]
pub struct StuckItems {
    /// The sets and their items.
    pub sets: DynamoDbTrainingSets,
    /// The items' queue.
    pub queue: SqsItemQueue,
    /// How long an item may stay in its state (`TRAINING_SET_ITEM_STUCK_SECONDS`).
    pub stuck_after: Duration,
}

impl ReconcilerFunction {
    /// Runs one pass; the event (a scheduled event, or `{}` by hand) carries nothing it needs.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, InvocationError> {
        let now_ms = epoch_ms();
        let deadline_ms = event.context.deadline.max(now_ms);
        let until = Instant::now() + Duration::from_millis(deadline_ms - now_ms);
        let until = until.checked_sub(ANSWER_MARGIN).unwrap_or(until);
        let resent = match &self.sets {
            Some(stuck) => {
                let resent = resend_stuck(
                    &stuck.sets,
                    &stuck.queue,
                    &SystemClock,
                    stuck.stuck_after,
                    self.batch_size,
                )
                .await;
                if let Err(error) = &resent {
                    tracing::error!(operation = error.operation, detail = %error.detail, "stuck items not sent again; the next pass tries");
                }
                resent.ok()
            }
            None => None,
        };
        let trainings_queued = match &self.trainings {
            Some(trainings) => {
                let queued = queue_due_trainings(
                    &trainings.records,
                    &trainings.queue,
                    &SystemClock,
                    self.batch_size,
                    trainings.look_every,
                )
                .await;
                if let Err(error) = &queued {
                    tracing::error!(operation = error.operation, detail = %error.detail, "due trainings not queued; the next pass tries");
                }
                queued.ok()
            }
            None => None,
        };
        match self.generation.reconcile(self.batch_size, until).await {
            Ok(report) => Ok(json!({
                "due": report.due,
                "stored": report.stored,
                "closed": report.closed,
                "still_running": report.still_running,
                "skipped": report.skipped,
                "faults": report.faults,
                "not_started": report.not_started,
                "items_stuck": resent.map(|r| r.stuck),
                "items_resent": resent.map(|r| r.resent),
                "trainings_queued": trainings_queued,
            })),
            Err(error) => {
                tracing::error!(operation = error.operation, detail = %error.detail, "reconciler pass failed");
                Err(InvocationError {
                    code: "store_unavailable".to_owned(),
                    body: json!({"success": false, "error": {"code": "store_unavailable", "message": "the open prediction records could not be read; the next pass tries again"}}).to_string(),
                })
            }
        }
    }
}
