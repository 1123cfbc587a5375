//! Lambda's SQS event source mapping (ESM), played for a test against moto: the training-set
//! queue and its dead-letter queue with the template's settings, and a poller that delivers
//! batches to a worker binary under the runtime interface emulator as Lambda does for a
//! standard queue with `ReportBatchItemFailures`. Lambda's ESM cannot run locally (neither
//! moto nor the emulator has one), and a worker's at-least-once handling is only honest when
//! tested against the real semantics: a failed item or a failed invocation is left to reappear
//! after the visibility timeout, and a message is dead-lettered after `maxReceiveCount`
//! receives.
//!
//! The redrive to the DLQ is moto's own: moto 5.x, on `ReceiveMessage`, moves a visible message
//! whose receive count has reached the queue's `maxReceiveCount` to the dead-letter queue
//! instead of returning it (so it is delivered `maxReceiveCount` times, as on AWS; the test
//! `moto_dead_letters_after_max_receive_count_receives` pins this). The driver therefore never
//! redrives, and only checks that no message beyond the count is ever received.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::{LambdaEmulator, REGION};

/// The training-set queue's name, as in the template.
pub const TRAINING_SET_QUEUE: &str = "training-sets";
/// Its dead-letter queue's name, as in the template.
pub const TRAINING_SET_DLQ: &str = "training-sets-dlq";
/// The worker's function timeout, given to the emulator (`AWS_LAMBDA_FUNCTION_TIMEOUT`), so a
/// hung invocation ends as on Lambda.
pub const WORKER_TIMEOUT_SECONDS: u32 = 30;
/// The queue's visibility timeout: 6× the worker's timeout, as AWS advises for an ESM, so a
/// batch is not redelivered while an invocation (and its retries) may still hold it.
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 6 * WORKER_TIMEOUT_SECONDS;
/// Receives of a message before the queue dead-letters it (the template's `maxReceiveCount`).
pub const MAX_RECEIVE_COUNT: u32 = 50;

/// How long one `ReceiveMessage` long-polls: the poller idles without spinning, and notices a
/// stop within about this long.
const WAIT_TIME_SECONDS: i32 = 1;
/// The pause after a failed `ReceiveMessage`, so a dead moto is not hammered.
const RECEIVE_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// The system attributes of a record, in the order Lambda writes them; any others follow.
const ATTRIBUTE_ORDER: [&str; 4] = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
];

/// The queues a test made, for the event source and its assertions.
#[derive(Debug, Clone)]
pub struct TrainingSetQueues {
    /// The training-set queue's URL (where work is sent).
    pub queue_url: String,
    /// Its ARN: the records' `eventSourceARN`.
    pub queue_arn: String,
    /// The dead-letter queue's URL (where poison messages end).
    pub dlq_url: String,
}

/// Creates the dead-letter queue, then the training-set queue with the template's visibility
/// timeout and redrive policy (the DLQ must exist first: the policy names its ARN).
pub async fn create_training_set_queues(sdk: &SdkConfig) -> TrainingSetQueues {
    let sqs = Client::new(sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name(TRAINING_SET_DLQ)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the DLQ: {}", DisplayErrorContext(e)))
        .queue_url
        .expect("CreateQueue answers the DLQ's URL");
    let dlq_arn = queue_arn(&sqs, &dlq_url).await;
    let redrive_policy = json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    });
    let queue_url = sqs
        .create_queue()
        .queue_name(TRAINING_SET_QUEUE)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECONDS.to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            redrive_policy.to_string(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the training-set queue: {}", DisplayErrorContext(e)))
        .queue_url
        .expect("CreateQueue answers the queue's URL");
    let queue_arn = queue_arn(&sqs, &queue_url).await;
    TrainingSetQueues {
        queue_url,
        queue_arn,
        dlq_url,
    }
}

async fn queue_arn(sqs: &Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("read the ARN of {url}: {}", DisplayErrorContext(e)))
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_else(|| panic!("{url} has no QueueArn"))
}

/// `(visible, in flight)`: SQS's approximate counts, for a test to see what is left to do and
/// what waits out a visibility timeout.
pub async fn queue_depth(sdk: &SdkConfig, url: &str) -> (u64, u64) {
    let attributes = Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap_or_else(|e| panic!("read the depth of {url}: {}", DisplayErrorContext(e)))
        .attributes
        .unwrap_or_default();
    let count = |name: QueueAttributeName| -> u64 {
        let value = attributes
            .get(&name)
            .unwrap_or_else(|| panic!("{url} answered no {}", name.as_str()));
        value
            .parse()
            .unwrap_or_else(|e| panic!("{} of {url} is {value:?}: {e}", name.as_str()))
    };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// The bodies of the messages in a dead-letter queue, left there (visible again) for a later
/// look: each is received until none is left, then made visible at once.
pub async fn dead_letters(sdk: &SdkConfig, dlq_url: &str) -> Vec<String> {
    let sqs = Client::new(sdk);
    let mut received: Vec<Message> = Vec::new();
    loop {
        // Hidden for a while, so that the next receive goes on to the messages not yet seen.
        let batch = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive from {dlq_url}: {}", DisplayErrorContext(e)))
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        received.extend(batch);
    }
    for chunk in received.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, message)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(message.receipt_handle().expect("a receipt handle"))
                    .visibility_timeout(0)
                    .build()
                    .expect("a visibility entry")
            })
            .collect();
        let answer = sqs
            .change_message_visibility_batch()
            .queue_url(dlq_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap_or_else(|e| panic!("release {dlq_url}'s messages: {}", DisplayErrorContext(e)));
        assert!(
            answer.failed().is_empty(),
            "could not make dead letters visible again: {:?}",
            answer.failed()
        );
    }
    received
        .iter()
        .map(|message| message.body().unwrap_or_default().to_owned())
        .collect()
}

/// The event Lambda's ESM hands a function for these received messages, field for field as
/// AWS sends it (it deserializes as `aws_lambda_events::event::sqs::SqsEvent`).
pub fn sqs_event(records: &[Message], queue_arn: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|message| record(message, queue_arn))
        .collect();
    json!({ "Records": records })
}

fn record(message: &Message, queue_arn: &str) -> Value {
    let mut system: Vec<(&str, &String)> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), value))
        .collect();
    let rank = |name: &str| {
        ATTRIBUTE_ORDER
            .iter()
            .position(|known| *known == name)
            .unwrap_or(ATTRIBUTE_ORDER.len())
    };
    system.sort_by(|a, b| (rank(a.0), a.0).cmp(&(rank(b.0), b.0)));
    let attributes: Map<String, Value> = system
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(value.clone())))
        .collect();
    let mut custom: Vec<(&String, &MessageAttributeValue)> =
        message.message_attributes().into_iter().flatten().collect();
    custom.sort_by(|a, b| a.0.cmp(b.0));
    let message_attributes: Map<String, Value> = custom
        .into_iter()
        .map(|(name, value)| (name.clone(), message_attribute(value)))
        .collect();
    json!({
        "messageId": message.message_id().expect("a received message has an id"),
        "receiptHandle": message.receipt_handle().expect("a received message has a receipt handle"),
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body().expect("a received message has its body's MD5"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    })
}

/// One message attribute as Lambda writes it: camelCase, binaries in base64, the list fields
/// always present (and empty: SQS does not implement them).
fn message_attribute(value: &MessageAttributeValue) -> Value {
    let mut attribute = Map::new();
    if let Some(text) = value.string_value() {
        attribute.insert("stringValue".into(), text.into());
    }
    if let Some(bytes) = value.binary_value() {
        attribute.insert("binaryValue".into(), BASE64.encode(bytes.as_ref()).into());
    }
    attribute.insert(
        "stringListValues".into(),
        value.string_list_values().to_vec().into(),
    );
    let binaries: Vec<Value> = value
        .binary_list_values()
        .iter()
        .map(|bytes| BASE64.encode(bytes.as_ref()).into())
        .collect();
    attribute.insert("binaryListValues".into(), binaries.into());
    attribute.insert("dataType".into(), value.data_type().into());
    Value::Object(attribute)
}

/// How the event source runs, the template's mapping by default.
#[derive(Debug, Clone)]
pub struct EventSourceSettings {
    /// Messages per batch (`BatchSize`, 1 to 10: more needs a batching window, not played).
    pub batch_size: usize,
    /// Worker environments (emulators), so invocations at once (Lambda's concurrency).
    pub concurrency: usize,
    /// Invoke every batch twice, concurrently, on two environments: the duplicate delivery that
    /// at-least-once allows, for a test of the worker's idempotency. Needs `concurrency` ≥ 2.
    pub deliver_twice: bool,
}

impl Default for EventSourceSettings {
    fn default() -> Self {
        Self {
            batch_size: 10,
            concurrency: 2,
            deliver_twice: false,
        }
    }
}

/// What the event source did so far, for a test's assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Invocations made (a duplicate delivery counts as one more).
    pub invocations: u64,
    /// Records handed to the function, summed over the invocations.
    pub messages_delivered: u64,
    /// Messages deleted from the queue (once each, whichever invocation settled them).
    pub deleted: u64,
    /// `batchItemFailures` entries of valid answers, summed over the invocations.
    pub reported_failures: u64,
    /// Invocations that failed as a whole (function error, timeout, unparsable answer or an
    /// invalid `itemIdentifier`): nothing of their batch was deleted.
    pub function_errors: u64,
}

#[derive(Default)]
struct Counters {
    invocations: AtomicU64,
    messages_delivered: AtomicU64,
    deleted: AtomicU64,
    reported_failures: AtomicU64,
    function_errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::SeqCst);
    }

    fn snapshot(&self) -> DeliveryStats {
        DeliveryStats {
            invocations: self.invocations.load(Ordering::SeqCst),
            messages_delivered: self.messages_delivered.load(Ordering::SeqCst),
            deleted: self.deleted.load(Ordering::SeqCst),
            reported_failures: self.reported_failures.load(Ordering::SeqCst),
            function_errors: self.function_errors.load(Ordering::SeqCst),
        }
    }
}

/// Lambda's SQS event source mapping for one worker binary: polls the training-set queue and
/// invokes the worker's environments with each batch until stopped. Dropping it aborts the
/// poller and its invocations, and so stops the emulators (each by its own PID).
pub struct SqsEventSource {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl SqsEventSource {
    /// Starts `settings.concurrency` environments of `bootstrap` (with `env`, and the worker's
    /// timeout) under the emulator, then the poller.
    pub async fn start(
        sdk: &SdkConfig,
        queues: &TrainingSetQueues,
        bootstrap: &Path,
        env: &[(String, String)],
        settings: EventSourceSettings,
    ) -> Self {
        assert!(
            (1..=10).contains(&settings.batch_size),
            "batch_size must be 1 to 10, not {}",
            settings.batch_size
        );
        assert!(settings.concurrency >= 1, "concurrency must be at least 1");
        assert!(
            !settings.deliver_twice || settings.concurrency >= 2,
            "deliver_twice needs two environments (concurrency >= 2)"
        );
        let mut env = env.to_vec();
        env.push((
            "AWS_LAMBDA_FUNCTION_TIMEOUT".to_owned(),
            WORKER_TIMEOUT_SECONDS.to_string(),
        ));
        let mut starting = JoinSet::new();
        for _ in 0..settings.concurrency {
            let (bootstrap, env) = (bootstrap.to_owned(), env.clone());
            starting.spawn(async move { LambdaEmulator::start(&bootstrap, &env).await });
        }
        let (free, pool) = mpsc::unbounded_channel();
        while let Some(started) = starting.join_next().await {
            let environment = started.unwrap_or_else(|e| match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("starting a worker environment: {e}"),
            });
            free.send(Arc::new(environment))
                .expect("the pool is held here");
        }
        let counters = Arc::new(Counters::default());
        let poller = Arc::new(Poller {
            sqs: Client::new(sdk),
            queue_url: queues.queue_url.clone(),
            queue_arn: queues.queue_arn.clone(),
            settings,
            counters: counters.clone(),
            free,
        });
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(poller.run(pool, stopping));
        Self {
            stop,
            task: Some(task),
            counters,
        }
    }

    /// What it did so far (the counters move while it runs).
    pub fn stats(&self) -> DeliveryStats {
        self.counters.snapshot()
    }

    /// Stops polling (within about a second, the long poll's wait: no receive starts after
    /// this), lets the invocations under way (and of a batch being received) finish and settle
    /// their batches, as Lambda does when a mapping is disabled, then stops the environments.
    /// Returns the final counts.
    pub async fn stop(mut self) -> DeliveryStats {
        // An error means the poller has already ended: nothing is left to tell.
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("the SQS event source's poller: {e}"),
            }
        }
        self.counters.snapshot()
    }
}

impl Drop for SqsEventSource {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Aborts a spawned task when dropped, so an aborted delivery leaves no invocation behind.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One received batch, shared by the invocations that deliver it.
struct Batch {
    event: Value,
    /// `(messageId, receiptHandle)` of each record.
    messages: Vec<(String, String)>,
    /// The messages already deleted (by either invocation, when delivered twice).
    deleted: Mutex<HashSet<String>>,
}

struct Poller {
    sqs: Client,
    queue_url: String,
    queue_arn: String,
    settings: EventSourceSettings,
    counters: Arc<Counters>,
    /// Where an environment goes back when its invocation is over.
    free: mpsc::UnboundedSender<Arc<LambdaEmulator>>,
}

impl Poller {
    async fn run(
        self: Arc<Self>,
        mut pool: mpsc::UnboundedReceiver<Arc<LambdaEmulator>>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let per_batch = if self.settings.deliver_twice { 2 } else { 1 };
        let mut running = JoinSet::new();
        'polling: loop {
            while let Some(done) = running.try_join_next() {
                settled(done);
            }
            // Environments first, so that no batch waits out its visibility hidden in here.
            let mut environments = Vec::with_capacity(per_batch);
            while environments.len() < per_batch {
                tokio::select! {
                    _ = stopping.wait_for(|stop| *stop) => break 'polling,
                    environment = pool.recv() => {
                        environments.push(environment.expect("the poller holds a sender"));
                    }
                }
            }
            // Not raced against the stop: a receive cut short could still hide messages in
            // moto. A batch received while stopping is delivered, as Lambda finishes a batch
            // it polled, and the driver never changes a message's visibility itself.
            match self.receive().await {
                Err(e) => {
                    eprintln!("sqs event source: ReceiveMessage failed: {e}");
                    self.give_back(environments);
                    tokio::select! {
                        _ = stopping.wait_for(|stop| *stop) => break 'polling,
                        _ = tokio::time::sleep(RECEIVE_RETRY_PAUSE) => {}
                    }
                }
                Ok(messages) if messages.is_empty() => self.give_back(environments),
                Ok(messages) => {
                    let batch = Arc::new(self.batch(messages));
                    for environment in environments {
                        running.spawn(self.clone().invoke(environment, batch.clone()));
                    }
                }
            }
        }
        while let Some(done) = running.join_next().await {
            settled(done);
        }
    }

    async fn receive(&self) -> Result<Vec<Message>, String> {
        let answer = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.settings.batch_size as i32)
            .wait_time_seconds(WAIT_TIME_SECONDS)
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

    fn give_back(&self, environments: Vec<Arc<LambdaEmulator>>) {
        for environment in environments {
            // Fails only when the poller is gone, and the environment with it.
            let _ = self.free.send(environment);
        }
    }

    /// One invocation of a batch on one environment, then its settlement: the messages it
    /// reported done are deleted, unless the invocation failed as a whole.
    async fn invoke(self: Arc<Self>, environment: Arc<LambdaEmulator>, batch: Arc<Batch>) {
        Counters::add(&self.counters.invocations, 1);
        Counters::add(&self.counters.messages_delivered, batch.messages.len());
        // In a task of its own: `LambdaEmulator::invoke` panics on an answer that is not JSON
        // (the emulator's text on a timeout, say), which for Lambda is a failed invocation.
        let mut call = {
            let (environment, batch) = (environment.clone(), batch.clone());
            AbortOnDrop(tokio::spawn(async move {
                environment.invoke(&batch.event).await
            }))
        };
        let answer = (&mut call.0).await.map_err(|e| match e.try_into_panic() {
            Ok(panic) => panic_text(&panic),
            Err(e) => e.to_string(),
        });
        let ids: Vec<&str> = batch.messages.iter().map(|(id, _)| id.as_str()).collect();
        match answer.and_then(|answer| failed_items(&answer, &ids)) {
            Err(reason) => {
                Counters::add(&self.counters.function_errors, 1);
                eprintln!("sqs event source: the invocation failed, its batch stays: {reason}");
            }
            Ok(failed) => {
                Counters::add(&self.counters.reported_failures, failed.len());
                self.delete_settled(&batch, &failed).await;
            }
        }
        self.give_back(vec![environment]);
    }

    async fn delete_settled(&self, batch: &Batch, failed: &HashSet<String>) {
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
        if entries.is_empty() {
            return;
        }
        let answer = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
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
            }
            Err(e) => eprintln!(
                "sqs event source: DeleteMessageBatch failed: {}",
                DisplayErrorContext(e)
            ),
        }
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

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "the invocation panicked".to_owned())
}

/// What Lambda makes of an answer to a batch with `ReportBatchItemFailures`: the ids of the
/// failed items (none for `null`, `{}` or an empty or null list), or why the whole invocation
/// counts as failed (a function error, an answer of another shape, an `itemIdentifier` that is
/// missing, empty or not in the batch).
fn failed_items(answer: &Value, batch: &[&str]) -> Result<HashSet<String>, String> {
    let object = match answer {
        Value::Null => return Ok(HashSet::new()),
        Value::Object(object) => object,
        other => return Err(format!("the answer is not a batch response: {other}")),
    };
    if object.contains_key("errorType") || object.contains_key("errorMessage") {
        return Err(format!("function error: {answer}"));
    }
    let items = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(HashSet::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    items
        .iter()
        .map(|item| match item.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && batch.contains(&id.as_str()) => {
                Ok(id.clone())
            }
            _ => Err(format!("invalid batch item failure {item} in {answer}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: [&str; 2] = ["a", "b"];

    fn ids(list: &[&str]) -> Result<HashSet<String>, String> {
        Ok(list.iter().map(|id| (*id).to_owned()).collect())
    }

    #[test]
    fn null_empty_and_listless_answers_mean_the_whole_batch_succeeded() {
        for answer in [
            Value::Null,
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
        ] {
            assert_eq!(failed_items(&answer, &BATCH), ids(&[]), "{answer}");
        }
    }

    #[test]
    fn listed_items_are_the_failed_ones() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "b"}]});
        assert_eq!(failed_items(&answer, &BATCH), ids(&["b"]));
    }

    #[test]
    fn function_errors_and_invalid_items_fail_the_whole_invocation() {
        for answer in [
            json!({"errorType": "Runtime.ExitError", "errorMessage": "exit status 1"}),
            json!({"errorMessage": "Task timed out"}),
            json!("done"),
            json!([]),
            json!({"batchItemFailures": {"itemIdentifier": "a"}}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemId": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}),
        ] {
            assert!(failed_items(&answer, &BATCH).is_err(), "{answer}");
        }
    }
}
