//! The training-set worker: an SQS batch of items' messages, each taken one step on. A final
//! item's message succeeds (the event source mapping deletes it); an item with a next step
//! has its message's visibility set to when that step is due and is reported in
//! `batchItemFailures`, so SQS delivers it again then (`ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_http::lambda_runtime::LambdaEvent;

use super::logging::log_timings;
use crate::adapters::sqs::{SqsItemQueue, read_message};
use crate::ports::{
    ActorProfiles, Clock, ImageGenerator, IndexCounter, ObjectStore, PredictionRecords, SpendGuard,
    TrainingSets,
};
use crate::retry::ITEM_FAULT_RETRY;
use crate::timing::timed;
use crate::usecases::concurrently::all;
use crate::usecases::training_sets::{NextStep, TrainingSetWork};

/// The worker, built once per execution environment.
#[derive(Debug)]
pub struct TrainingSetWorkerFunction<W> {
    /// The training-set use cases.
    pub work: W,
    /// The queue the messages come from (for their visibility).
    pub queue: SqsItemQueue,
}

impl<P, O, C, G, K, R, I, S, T, Q>
    TrainingSetWorkerFunction<TrainingSetWork<P, O, C, G, K, R, I, S, T, Q>>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
    S: SpendGuard,
    T: TrainingSets,
{
    /// Takes each message's item one step on; never fails as a whole (a message that
    /// cannot be handled now is reported for another delivery).
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, lambda_http::Error> {
        let deadline_ms = event.context.deadline;
        let steps = event
            .payload
            .records
            .iter()
            .map(|record| self.step(record, deadline_ms))
            .collect();
        let (failed, timings) = timed(all(steps)).await;
        log_timings(None, &timings);
        let mut response = SqsBatchResponse::default();
        for failed in failed.into_iter().flatten() {
            response.add_failure(failed);
        }
        Ok(response)
    }

    /// One message's step; the message's id when it is to come back (its visibility set to
    /// when its next step is due).
    async fn step(&self, record: &SqsMessage, deadline_ms: u64) -> Option<String> {
        let message_id = record.message_id.clone().unwrap_or_default();
        let Some(message) = record.body.as_deref().and_then(read_message) else {
            tracing::error!(%message_id, "not an item's message; dropped");
            return None;
        };
        let step = match self.work.advance(&message, deadline_ms).await {
            Ok(step) => step,
            Err(error) => {
                tracing::warn!(set_id = %message.set_id, position = message.position, %error, "item's step failed; tried again later");
                NextStep::After(ITEM_FAULT_RETRY)
            }
        };
        let NextStep::After(delay) = step else {
            return None;
        };
        if let Some(receipt) = record.receipt_handle.as_deref()
            && let Err(error) = self.queue.delay(receipt, delay).await
        {
            // It comes back after the queue's visibility timeout instead.
            tracing::warn!(%message_id, %error, "message's next delivery not set");
        }
        Some(message_id)
    }
}
