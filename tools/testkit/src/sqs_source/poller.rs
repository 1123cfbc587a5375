//! The poller: receives batches while a target is free, hands each to its invocation (two,
//! when delivered twice), and deletes what an answer settled.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;

use super::invoke::{Target, failed_items};
use super::source::{Counters, EventSourceSettings, InvocationReport};
use super::{MAX_RECEIVE_COUNT, sqs_event};

/// How long one `ReceiveMessage` long-polls: the poller idles without spinning, and notices a
/// stop within about this long.
const WAIT_TIME_SECONDS: i32 = 1;
/// How often a batch being gathered looks for more messages.
const BATCHING_POLL: Duration = Duration::from_millis(50);
/// The most messages one `ReceiveMessage` gives (and one `DeleteMessageBatch` takes).
const MAX_PER_RECEIVE: usize = 10;
/// The pause after a failed `ReceiveMessage`, so a dead moto is not hammered.
const RECEIVE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// One received batch, shared by the invocations that deliver it.
struct Batch {
    event: Value,
    /// `(messageId, receiptHandle)` of each record.
    messages: Vec<(String, String)>,
    /// The messages already deleted (by either invocation, when delivered twice).
    deleted: Mutex<HashSet<String>>,
}

pub(super) struct Poller {
    pub(super) sqs: Client,
    pub(super) queue_url: String,
    pub(super) queue_arn: String,
    pub(super) settings: EventSourceSettings,
    pub(super) counters: Arc<Counters>,
    /// Where a target goes back when its invocation is over.
    pub(super) free: mpsc::UnboundedSender<Target>,
}

impl Poller {
    pub(super) async fn run(
        self: Arc<Self>,
        mut pool: mpsc::UnboundedReceiver<Target>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let per_batch = if self.settings.deliver_twice { 2 } else { 1 };
        let mut running = JoinSet::new();
        'polling: loop {
            while let Some(done) = running.try_join_next() {
                settled(done);
            }
            // Targets first, so that no batch waits out its visibility hidden in here.
            let mut targets = Vec::with_capacity(per_batch);
            while targets.len() < per_batch {
                tokio::select! {
                    _ = stopping.wait_for(|stop| *stop) => break 'polling,
                    target = pool.recv() => {
                        targets.push(target.expect("the poller holds a sender"));
                    }
                }
            }
            // Not raced against the stop: a receive cut short could still hide messages in
            // moto. A batch received while stopping is delivered, as Lambda finishes a batch
            // it polled, and the driver never changes a message's visibility itself.
            match self.receive().await {
                Err(e) => {
                    eprintln!("sqs event source: ReceiveMessage failed: {e}");
                    self.give_back(targets);
                    tokio::select! {
                        _ = stopping.wait_for(|stop| *stop) => break 'polling,
                        _ = tokio::time::sleep(RECEIVE_RETRY_PAUSE) => {}
                    }
                }
                Ok(messages) if messages.is_empty() => self.give_back(targets),
                Ok(messages) => {
                    let batch = Arc::new(self.batch(messages));
                    for target in targets {
                        running.spawn(self.clone().invoke(target, batch.clone()));
                    }
                }
            }
        }
        while let Some(done) = running.join_next().await {
            settled(done);
        }
    }

    /// A batch: what one long poll gives, then, within the batching window from then, what
    /// short polls add until it is full.
    async fn receive(&self) -> Result<Vec<Message>, String> {
        let size = self.settings.batch_size;
        let mut messages = self.receive_up_to(size, WAIT_TIME_SECONDS).await?;
        let window_ends = Instant::now() + self.settings.batching_window;
        while !messages.is_empty() && messages.len() < size && Instant::now() < window_ends {
            let more = self.receive_up_to(size - messages.len(), 0).await?;
            if more.is_empty() {
                tokio::time::sleep(BATCHING_POLL).await;
            }
            messages.extend(more);
        }
        Ok(messages)
    }

    /// At most `count` messages, and at most SQS's 10 per receive.
    async fn receive_up_to(&self, count: usize, wait_seconds: i32) -> Result<Vec<Message>, String> {
        let count = count.min(MAX_PER_RECEIVE);
        let answer = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(count as i32)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok(answer.messages.unwrap_or_default())
    }

    fn batch(&self, messages: Vec<Message>) -> Batch {
        for message in &messages {
            let count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|count| count.parse::<u32>().ok())
                .expect("a received message has its ApproximateReceiveCount");
            assert!(
                count <= MAX_RECEIVE_COUNT,
                "moto delivered a message received {count} times (max {MAX_RECEIVE_COUNT}): it \
                 no longer redrives on ReceiveMessage, and the driver must do it"
            );
        }
        Batch {
            event: sqs_event(&messages, &self.queue_arn),
            messages: messages
                .iter()
                .map(|m| {
                    (
                        m.message_id().expect("a message id").to_owned(),
                        m.receipt_handle().expect("a receipt handle").to_owned(),
                    )
                })
                .collect(),
            deleted: Mutex::default(),
        }
    }

    fn give_back(&self, targets: Vec<Target>) {
        for target in targets {
            // Fails only when the poller is gone, and the target with it.
            let _ = self.free.send(target);
        }
    }

    /// One invocation of a batch on one target, then its settlement: the messages it reported
    /// done are deleted, unless the invocation failed as a whole.
    async fn invoke(self: Arc<Self>, target: Target, batch: Arc<Batch>) {
        Counters::add(&self.counters.invocations, 1);
        Counters::add(&self.counters.messages_delivered, batch.messages.len());
        let started = Instant::now();
        let answer = target.invoke(&batch.event).await;
        let duration = started.elapsed();
        let ids: Vec<&str> = batch.messages.iter().map(|(id, _)| id.as_str()).collect();
        let mut report = InvocationReport {
            messages: batch.messages.len(),
            reported_failures: 0,
            deleted: 0,
            error: None,
            duration,
        };
        match answer.and_then(|answer| failed_items(&answer, &ids)) {
            Err(reason) => {
                Counters::add(&self.counters.function_errors, 1);
                eprintln!("sqs event source: the invocation failed, its batch stays: {reason}");
                report.error = Some(reason);
            }
            Ok(failed) => {
                Counters::add(&self.counters.reported_failures, failed.len());
                report.reported_failures = failed.len();
                report.deleted = self.delete_settled(&batch, &failed).await;
            }
        }
        if let Some(reports) = &self.settings.reports {
            // Nobody listening any more is no reason to stop delivering.
            let _ = reports.send(report);
        }
        self.give_back(vec![target]);
    }

    /// Deletes the batch's messages that neither failed nor were deleted already; returns how
    /// many this call deleted.
    async fn delete_settled(&self, batch: &Batch, failed: &HashSet<String>) -> usize {
        // Held across the delete: the other invocation of a twice-delivered batch waits.
        let mut deleted = batch.deleted.lock().await;
        let entries: Vec<DeleteMessageBatchRequestEntry> = batch
            .messages
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| !failed.contains(id) && !deleted.contains(id))
            .map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .expect("a delete entry")
            })
            .collect();
        let mut deleted_now = 0;
        // SQS deletes at most 10 messages per call.
        for chunk in entries.chunks(MAX_PER_RECEIVE) {
            let answer = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await;
            match answer {
                Ok(answer) => {
                    for entry in answer.successful() {
                        if let Some((id, _)) = entry
                            .id()
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| batch.messages.get(i))
                        {
                            deleted.insert(id.clone());
                        }
                    }
                    Counters::add(&self.counters.deleted, answer.successful().len());
                    if !answer.failed().is_empty() {
                        eprintln!(
                            "sqs event source: DeleteMessageBatch failed for {:?}",
                            answer.failed()
                        );
                    }
                    deleted_now += answer.successful().len();
                }
                Err(e) => eprintln!(
                    "sqs event source: DeleteMessageBatch failed: {}",
                    DisplayErrorContext(e)
                ),
            }
        }
        deleted_now
    }
}

/// Re-raises a delivery task's panic (a broken driver, not a failed invocation) in the poller,
/// so that `stop` raises it in the test.
fn settled(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && let Ok(panic) = e.try_into_panic()
    {
        std::panic::resume_unwind(panic);
    }
}
