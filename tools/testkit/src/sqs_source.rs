//! Lambda's SQS event source mapping (ESM), played for a test against moto: the training-set
//! queue and its dead-letter queue with the template's settings, and a poller that delivers
//! batches to a worker binary under the runtime interface emulator (or, for the local stack,
//! to a fixed invoke URL such as `cargo lambda watch`'s) as Lambda does for a standard queue
//! with `ReportBatchItemFailures`. Lambda's ESM cannot run locally (neither
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
//!
//! Here: the queues and the events; `source.rs` the handle and its settings, `poller.rs` the
//! receiving and the settling of batches, `invoke.rs` the invocations and how an answer is read.

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageAttributeValue, QueueAttributeName,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::REGION;

mod invoke;
mod poller;
mod source;

pub use source::{
    DeliveryStats, EventSourceSettings, InvocationReport, MAX_WINDOWED_BATCH_SIZE, SqsEventSource,
};

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

/// The exports' queue's name, as in the template.
pub const EXPORT_QUEUE: &str = "training-exports";
/// Its dead-letter queue's name, as in the template.
pub const EXPORT_DLQ: &str = "training-exports-dlq";
/// The exports' queue's visibility timeout: 6× the export function's timeout (300 s).
pub const EXPORT_VISIBILITY_TIMEOUT_SECONDS: u32 = 6 * 300;
/// Receives of an export's message before it is dead-lettered (the template's).
pub const EXPORT_MAX_RECEIVE_COUNT: u32 = 3;

/// The trainings' queue's name, as in the template.
pub const TRAINING_QUEUE: &str = "trainings";
/// Its dead-letter queue's name, as in the template.
pub const TRAINING_DLQ: &str = "trainings-dlq";
/// The trainings function's timeout (a weights copy of a few hundred MB fits).
pub const TRAININGS_TIMEOUT_SECONDS: u32 = 120;
/// The trainings' queue's visibility timeout: 6× the function's timeout.
pub const TRAINING_VISIBILITY_TIMEOUT_SECONDS: u32 = 6 * TRAININGS_TIMEOUT_SECONDS;
/// Receives of a training's message before it is dead-lettered: each wait for a running
/// export is one (15 s each: half an hour of export).
pub const TRAINING_MAX_RECEIVE_COUNT: u32 = 120;

/// The system attributes of a record, in the order Lambda writes them; any others follow.
const ATTRIBUTE_ORDER: [&str; 4] = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
];

/// The queues a test made (the training sets' or the exports'), for the event source and its
/// assertions.
#[derive(Debug, Clone)]
pub struct TrainingSetQueues {
    /// The queue's URL (where work is sent).
    pub queue_url: String,
    /// Its ARN: the records' `eventSourceARN`.
    pub queue_arn: String,
    /// The dead-letter queue's URL (where poison messages end).
    pub dlq_url: String,
}

/// Creates the dead-letter queue, then the training-set queue with the template's visibility
/// timeout and redrive policy (the DLQ must exist first: the policy names its ARN).
pub async fn create_training_set_queues(sdk: &SdkConfig) -> TrainingSetQueues {
    create_queues(
        sdk,
        (TRAINING_SET_QUEUE, TRAINING_SET_DLQ),
        VISIBILITY_TIMEOUT_SECONDS,
        MAX_RECEIVE_COUNT,
    )
    .await
}

/// Creates the exports' dead-letter queue, then their queue, with the template's settings.
pub async fn create_export_queues(sdk: &SdkConfig) -> TrainingSetQueues {
    create_queues(
        sdk,
        (EXPORT_QUEUE, EXPORT_DLQ),
        EXPORT_VISIBILITY_TIMEOUT_SECONDS,
        EXPORT_MAX_RECEIVE_COUNT,
    )
    .await
}

/// Creates the trainings' dead-letter queue, then their queue, with the template's settings.
pub async fn create_training_queues(sdk: &SdkConfig) -> TrainingSetQueues {
    create_queues(
        sdk,
        (TRAINING_QUEUE, TRAINING_DLQ),
        TRAINING_VISIBILITY_TIMEOUT_SECONDS,
        TRAINING_MAX_RECEIVE_COUNT,
    )
    .await
}

/// Creates the dead-letter queue `names.1`, then the queue `names.0` with this visibility
/// timeout and a redrive policy to it after `max_receive_count` receives.
async fn create_queues(
    sdk: &SdkConfig,
    (queue_name, dlq_name): (&str, &str),
    visibility_timeout_seconds: u32,
    max_receive_count: u32,
) -> TrainingSetQueues {
    let sqs = Client::new(sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name(dlq_name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the DLQ: {}", DisplayErrorContext(e)))
        .queue_url
        .expect("CreateQueue answers the DLQ's URL");
    let dlq_arn = queue_arn(&sqs, &dlq_url).await;
    let redrive_policy = json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count,
    });
    let queue_url = sqs
        .create_queue()
        .queue_name(queue_name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_seconds.to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            redrive_policy.to_string(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {queue_name}: {}", DisplayErrorContext(e)))
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
