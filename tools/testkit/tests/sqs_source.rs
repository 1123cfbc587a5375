//! The SQS event source driver against a real moto server: the queues' settings, the events it
//! builds, moto's redrive it relies on, and its delivery semantics with a stub function (a
//! short Python runtime under the emulator, answering as each message's body tells it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;
use testkit::{
    DeliveryStats, EventSourceSettings, MAX_RECEIVE_COUNT, Moto, SqsEventSource, TRAINING_SET_DLQ,
    TRAINING_SET_QUEUE, TrainingSetQueues, create_training_set_queues, dead_letters, queue_depth,
    sqs_event,
};

/// A Lambda function speaking the Runtime API: logs each event (a line of JSON), then answers
/// by the bodies: `fail…` is reported as a batch item failure, `stranger…` reports an id not in
/// the batch, `crash…` fails the invocation, `garbage…` answers text that is not JSON, `once…`
/// fails in the first invocation that sees the message and succeeds in any other; anything
/// else succeeds.
const STUB_FUNCTION: &str = r#"#!/usr/bin/env python3
import json, os, urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
log, marks = os.environ["STUB_LOG"], os.environ["STUB_MARKS"]

def post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    urllib.request.urlopen(request).read()

while True:
    with urllib.request.urlopen(api + "/invocation/next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(answer.read())
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (json.dumps(event) + "\n").encode())
    os.close(fd)
    failures, crash, garbage = [], False, False
    for record in event["Records"]:
        body, message_id = record["body"], record["messageId"]
        if body.startswith("fail"):
            failures.append(message_id)
        elif body.startswith("stranger"):
            failures.append("not-" + message_id)
        elif body.startswith("crash"):
            crash = True
        elif body.startswith("garbage"):
            garbage = True
        elif body.startswith("once"):
            try:
                os.close(os.open(os.path.join(marks, message_id), os.O_CREAT | os.O_EXCL))
                failures.append(message_id)
            except FileExistsError:
                pass
    if garbage:
        post(api + "/invocation/" + request_id + "/response", b"all done, I think")
    elif crash:
        post(api + "/invocation/" + request_id + "/error",
             {"errorType": "Crash", "errorMessage": "asked to crash"})
    else:
        post(api + "/invocation/" + request_id + "/response",
             {"batchItemFailures": [{"itemIdentifier": i} for i in failures]})
"#;

/// The stub's folder (its bootstrap, its log, its marks), removed when dropped.
struct Stub {
    dir: PathBuf,
}

impl Stub {
    fn new(label: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sqs-stub-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("marks")).expect("create the stub's folder");
        let bootstrap = dir.join("bootstrap");
        std::fs::write(&bootstrap, STUB_FUNCTION).expect("write the stub");
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))
            .expect("make the stub executable");
        Self { dir }
    }

    fn bootstrap(&self) -> PathBuf {
        self.dir.join("bootstrap")
    }

    fn env(&self, moto: &Moto) -> Vec<(String, String)> {
        let mut env = moto.function_env();
        env.push(("STUB_LOG".into(), path_text(&self.dir.join("events.log"))));
        env.push(("STUB_MARKS".into(), path_text(&self.dir.join("marks"))));
        env
    }

    /// The events the stub was invoked with, in order.
    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("events.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a logged event"))
            .collect()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

async fn send(sqs: &Client, queues: &TrainingSetQueues, bodies: &[&str]) {
    for body in bodies {
        sqs.send_message()
            .queue_url(&queues.queue_url)
            .message_body(*body)
            .send()
            .await
            .expect("send a message");
    }
}

/// Waits until the source's counts satisfy `done`, for at most 30 s.
async fn wait_for(source: &SqsEventSource, done: impl Fn(&DeliveryStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = source.stats();
        if done(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "gave up waiting, at {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_queues_have_the_templates_settings() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queues.queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("read the queue's attributes")
        .attributes
        .expect("attributes");
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&queues.dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("read the DLQ's ARN")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("the DLQ's ARN");

    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "180");
    let redrive: Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).expect("JSON");
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
    assert_eq!(redrive["maxReceiveCount"].as_u64(), Some(50));
    assert_eq!(attributes[&QueueAttributeName::QueueArn], queues.queue_arn);
    assert!(
        queues
            .queue_arn
            .ends_with(&format!(":{TRAINING_SET_QUEUE}"))
    );
    assert!(dlq_arn.ends_with(&format!(":{TRAINING_SET_DLQ}")));

    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 0));
    send(&sqs, &queues, &["one", "two"]).await;
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (2, 0));
    sqs.receive_message()
        .queue_url(&queues.queue_url)
        .max_number_of_messages(1)
        .send()
        .await
        .expect("receive one");
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (1, 1));
}

#[tokio::test]
async fn events_are_lambdas_sqs_events_of_the_received_messages() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let text = |value: &str, kind: &str| {
        MessageAttributeValue::builder()
            .data_type(kind)
            .string_value(value)
            .build()
            .expect("an attribute")
    };
    sqs.send_message()
        .queue_url(&queues.queue_url)
        .message_body(r#"{"actor_id":"0000_european_16_male"}"#)
        .message_attributes("kind", text("training-set", "String"))
        .message_attributes("count", text("24", "Number"))
        .message_attributes(
            "raw",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(vec![0, 1, 254, 255]))
                .build()
                .expect("an attribute"),
        )
        .send()
        .await
        .expect("send with attributes");
    send(&sqs, &queues, &["plain"]).await;
    let received = sqs
        .receive_message()
        .queue_url(&queues.queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive")
        .messages
        .expect("messages");
    assert_eq!(received.len(), 2);

    let event = sqs_event(&received, &queues.queue_arn);

    // Exactly AWS's fields, no more, no fewer.
    for record in event["Records"].as_array().expect("records") {
        let keys: Vec<&str> = record
            .as_object()
            .expect("a record")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "messageId",
                "receiptHandle",
                "body",
                "attributes",
                "messageAttributes",
                "md5OfBody",
                "eventSource",
                "eventSourceARN",
                "awsRegion"
            ]
        );
        let attribute_keys: Vec<&str> = record["attributes"]
            .as_object()
            .expect("attributes")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            attribute_keys,
            [
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp"
            ]
        );
    }
    let with_attributes = &event["Records"][0]["messageAttributes"];
    assert_eq!(
        with_attributes["kind"],
        serde_json::json!({"stringValue": "training-set", "stringListValues": [],
            "binaryListValues": [], "dataType": "String"})
    );
    assert_eq!(
        with_attributes["raw"],
        serde_json::json!({"binaryValue": "AAH+/w==", "stringListValues": [],
            "binaryListValues": [], "dataType": "Binary"})
    );

    let typed: SqsEvent = serde_json::from_value(event).expect("a Lambda SQS event");
    assert_eq!(typed.records.len(), received.len());
    for (record, message) in typed.records.iter().zip(&received) {
        assert_eq!(record.message_id.as_deref(), message.message_id());
        assert_eq!(record.receipt_handle.as_deref(), message.receipt_handle());
        assert_eq!(record.body.as_deref(), message.body());
        assert_eq!(record.md5_of_body.as_deref(), message.md5_of_body());
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some(queues.queue_arn.as_str())
        );
        assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
        let system: HashMap<String, String> = message
            .attributes()
            .expect("system attributes")
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
            .collect();
        assert_eq!(record.attributes, system);
        assert_eq!(record.attributes["ApproximateReceiveCount"], "1");
        let sent = message.message_attributes().cloned().unwrap_or_default();
        assert_eq!(record.message_attributes.len(), sent.len());
        for (name, value) in &sent {
            let attribute = &record.message_attributes[name];
            assert_eq!(attribute.data_type.as_deref(), Some(value.data_type()));
            assert_eq!(attribute.string_value.as_deref(), value.string_value());
            assert_eq!(
                attribute.binary_value.as_ref().map(|b| b.0.clone()),
                value.binary_value().map(|b| b.as_ref().to_vec())
            );
        }
    }
    assert_eq!(typed.records[0].message_attributes.len(), 3);
    assert_eq!(typed.records[1].body.as_deref(), Some("plain"));
}

#[tokio::test]
async fn moto_dead_letters_after_max_receive_count_receives() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    send(&sqs, &queues, &["poison"]).await;
    let receive = || {
        sqs.receive_message()
            .queue_url(&queues.queue_url)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
    };

    for expected in 1..=MAX_RECEIVE_COUNT {
        let messages = receive()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        assert_eq!(messages.len(), 1, "receive {expected} got the message");
        let count = &messages[0].attributes().expect("attributes")
            [&MessageSystemAttributeName::ApproximateReceiveCount];
        assert_eq!(count, &expected.to_string());
    }
    assert_eq!(
        dead_letters(&sdk, &queues.dlq_url).await,
        Vec::<String>::new()
    );

    let after = receive()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert!(
        after.is_empty(),
        "received beyond maxReceiveCount: {after:?}"
    );
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 0));
    assert_eq!(dead_letters(&sdk, &queues.dlq_url).await, ["poison"]);
    // Left in the DLQ, visible, for another look.
    assert_eq!(queue_depth(&sdk, &queues.dlq_url).await, (1, 0));
    assert_eq!(dead_letters(&sdk, &queues.dlq_url).await, ["poison"]);
}

#[tokio::test]
async fn only_the_reported_failures_stay_in_the_queue() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let stub = Stub::new("partial");
    // Sent before the source starts: moto answers them in one batch.
    send(&sqs, &queues, &["ok-1", "fail-1", "ok-2"]).await;

    let source = SqsEventSource::start(
        &sdk,
        &queues,
        &stub.bootstrap(),
        &stub.env(&moto),
        EventSourceSettings::default(),
    )
    .await;
    wait_for(&source, |stats| stats.deleted == 2).await;
    let stats = source.stop().await;

    assert_eq!(
        stats,
        DeliveryStats {
            invocations: 1,
            messages_delivered: 3,
            deleted: 2,
            reported_failures: 1,
            function_errors: 0,
        }
    );
    // The failed one waits out its visibility timeout.
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 1));
    let events = stub.events();
    assert_eq!(events.len(), 1);
    let typed: SqsEvent = serde_json::from_value(events[0].clone()).expect("a Lambda SQS event");
    let bodies: Vec<&str> = typed
        .records
        .iter()
        .filter_map(|r| r.body.as_deref())
        .collect();
    assert_eq!(bodies, ["ok-1", "fail-1", "ok-2"]);
}

#[tokio::test]
async fn a_failed_invocation_deletes_nothing_of_its_batch() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let stub = Stub::new("failed");
    // Batches of two, one at a time, from messages sent before the start: moto answers them in
    // the order sent (checked below), so each failure has a batch of its own.
    let settings = EventSourceSettings {
        batch_size: 2,
        concurrency: 1,
        ..EventSourceSettings::default()
    };
    send(
        &sqs,
        &queues,
        &[
            "ok-1",
            "crash-1",
            "ok-2",
            "stranger-1",
            "ok-3",
            "garbage-1",
            "ok-4",
        ],
    )
    .await;
    let source =
        SqsEventSource::start(&sdk, &queues, &stub.bootstrap(), &stub.env(&moto), settings).await;
    wait_for(&source, |stats| {
        stats.function_errors == 3 && stats.deleted == 1
    })
    .await;
    let stats = source.stop().await;

    let batches: Vec<Vec<String>> = stub
        .events()
        .into_iter()
        .map(|event| {
            let typed: SqsEvent = serde_json::from_value(event).expect("a Lambda SQS event");
            typed.records.into_iter().filter_map(|r| r.body).collect()
        })
        .collect();
    // A function error, an itemIdentifier not in the batch, an answer that is not JSON: none
    // deletes anything of its batch.
    assert_eq!(
        batches,
        [
            vec!["ok-1", "crash-1"],
            vec!["ok-2", "stranger-1"],
            vec!["ok-3", "garbage-1"],
            vec!["ok-4"]
        ]
    );
    assert_eq!(
        stats,
        DeliveryStats {
            invocations: 4,
            messages_delivered: 7,
            deleted: 1,
            reported_failures: 0,
            function_errors: 3,
        }
    );
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 6));
}

#[tokio::test]
async fn deliver_twice_duplicates_each_batch_and_deletes_what_either_settled() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let stub = Stub::new("twice");
    let settings = EventSourceSettings {
        deliver_twice: true,
        ..EventSourceSettings::default()
    };
    send(&sqs, &queues, &["ok-1", "once-1", "fail-1"]).await;
    let source =
        SqsEventSource::start(&sdk, &queues, &stub.bootstrap(), &stub.env(&moto), settings).await;

    // fail-1 fails in both invocations, once-1 in one of them.
    wait_for(&source, |stats| {
        stats.deleted == 2 && stats.reported_failures == 3
    })
    .await;
    let stats = source.stop().await;

    assert_eq!(
        stats,
        DeliveryStats {
            invocations: 2,
            messages_delivered: 6,
            deleted: 2,
            reported_failures: 3,
            function_errors: 0,
        }
    );
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 1));
    let events = stub.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0], events[1],
        "the duplicate has the very same records"
    );
}

#[tokio::test]
async fn an_idle_source_stops_promptly() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let stub = Stub::new("idle");
    let source = SqsEventSource::start(
        &sdk,
        &queues,
        &stub.bootstrap(),
        &stub.env(&moto),
        EventSourceSettings::default(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    let stats = source.stop().await;
    // About a second (the long poll's wait) when idle; the bound leaves room for a loaded
    // machine, and still fails a stop that waits out a visibility timeout or never comes.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(stats, DeliveryStats::default());
    assert!(stub.events().is_empty());
}

/// The sizes of the batches a source with a 2 s batching window and one environment made of
/// `bodies`, sent one by one `apart`; and the queue's depth after they were all deleted.
async fn windowed_batches(
    label: &str,
    batch_size: usize,
    bodies: &[&str],
    apart: Duration,
) -> (Vec<usize>, (u64, u64)) {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let stub = Stub::new(label);
    let settings = EventSourceSettings {
        batch_size,
        concurrency: 1,
        batching_window: Duration::from_secs(2),
        ..EventSourceSettings::default()
    };
    let source =
        SqsEventSource::start(&sdk, &queues, &stub.bootstrap(), &stub.env(&moto), settings).await;
    for body in bodies {
        send(&sqs, &queues, &[body]).await;
        tokio::time::sleep(apart).await;
    }
    wait_for(&source, |stats| stats.deleted == bodies.len() as u64).await;
    source.stop().await;
    let batches = stub
        .events()
        .into_iter()
        .map(|event| {
            let typed: SqsEvent = serde_json::from_value(event).expect("a Lambda SQS event");
            typed.records.len()
        })
        .collect();
    (batches, queue_depth(&sdk, &queues.queue_url).await)
}

#[tokio::test]
async fn a_batching_window_gathers_messages_sent_apart_into_one_batch() {
    let bodies = ["ok-1", "ok-2", "ok-3"];
    let (batches, _) = windowed_batches("window", 10, &bodies, Duration::from_millis(300)).await;
    assert_eq!(batches, [3], "one invocation for the three messages");
}

#[tokio::test]
async fn a_windowed_batch_may_hold_more_than_ten_messages_and_all_are_deleted() {
    let bodies: Vec<String> = (1..=25).map(|n| format!("ok-{n}")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (batches, depth) = windowed_batches("large-batch", 25, &bodies, Duration::ZERO).await;
    assert_eq!(batches, [25], "one invocation for the 25 messages");
    assert_eq!(depth, (0, 0), "every message deleted");
}
