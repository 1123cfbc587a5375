//! The SQS event source driver's URL mode (`SqsEventSource::start_at_url`, the local stack's
//! poller in front of `cargo lambda watch`) against a real moto server and a tiny invoke
//! endpoint: the same settlement as with emulators, the reports, and the concurrency bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::Client;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use testkit::{
    DeliveryStats, EventSourceSettings, InvocationReport, Moto, SqsEventSource, TrainingSetQueues,
    create_training_set_queues, queue_depth,
};
use tokio::sync::{Mutex, mpsc};

const INVOKE_PATH: &str = "/2015-03-31/functions/training-set-worker/invocations";

/// What the endpoint saw: the bodies of each batch, and the most invocations at once.
#[derive(Default)]
struct Seen {
    batches: Mutex<Vec<Vec<String>>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// How long each invocation takes.
    pause: Duration,
}

/// Answers as `cargo lambda watch` does, by the bodies: `fail…` is reported as a batch item
/// failure, `crash…` is a function error (HTTP 500 with `errorType`, as cargo lambda answers
/// one), `garbage…` answers text that is not JSON; anything else succeeds.
async fn invoke(State(seen): State<Arc<Seen>>, body: Bytes) -> (StatusCode, String) {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(seen.pause).await;
    let event: SqsEvent = serde_json::from_slice(&body).expect("an SQS event");
    let bodies: Vec<String> = event
        .records
        .iter()
        .map(|r| r.body.clone().unwrap_or_default())
        .collect();
    seen.batches.lock().await.push(bodies.clone());
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    if bodies.iter().any(|b| b.starts_with("crash")) {
        let error = json!({"errorType": "Crash", "errorMessage": "asked to crash"});
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string());
    }
    if bodies.iter().any(|b| b.starts_with("garbage")) {
        return (StatusCode::OK, "all done, I think".to_owned());
    }
    let failures: Vec<Value> = event
        .records
        .iter()
        .filter(|r| r.body.as_deref().is_some_and(|b| b.starts_with("fail")))
        .map(|r| json!({"itemIdentifier": r.message_id}))
        .collect();
    let answer = json!({ "batchItemFailures": failures });
    (StatusCode::OK, answer.to_string())
}

/// Serves [`invoke`] on a free loopback port until the test ends; its invoke URL.
async fn endpoint(seen: Arc<Seen>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!(
        "http://{}{INVOKE_PATH}",
        listener.local_addr().expect("its address")
    );
    let router = Router::new()
        .route(INVOKE_PATH, post(invoke))
        .with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
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
async fn a_url_is_invoked_and_settled_as_an_environment_is() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let seen = Arc::new(Seen::default());
    let url = endpoint(seen.clone()).await;
    // Batches of two, one at a time, from messages sent before the start: moto answers them in
    // the order sent, so each outcome has a batch of its own.
    send(
        &sqs,
        &queues,
        &[
            "ok-1",
            "fail-1",
            "ok-2",
            "crash-1",
            "ok-3",
            "garbage-1",
            "ok-4",
        ],
    )
    .await;
    let (reports, mut reported) = mpsc::unbounded_channel();
    let settings = EventSourceSettings {
        batch_size: 2,
        concurrency: 1,
        reports: Some(reports),
        ..EventSourceSettings::default()
    };
    let source = SqsEventSource::start_at_url(&sdk, &queues, &url, settings).await;
    wait_for(&source, |stats| {
        stats.invocations == 4 && stats.deleted == 2
    })
    .await;
    let stats = source.stop().await;

    assert_eq!(
        *seen.batches.lock().await,
        [
            vec!["ok-1", "fail-1"],
            vec!["ok-2", "crash-1"],
            vec!["ok-3", "garbage-1"],
            vec!["ok-4"]
        ]
    );
    assert_eq!(
        stats,
        DeliveryStats {
            invocations: 4,
            messages_delivered: 7,
            deleted: 2,
            reported_failures: 1,
            function_errors: 2,
        }
    );
    // fail-1 and the two failed batches wait out their visibility timeout.
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 5));

    let mut reports: Vec<InvocationReport> = Vec::new();
    while let Ok(report) = reported.try_recv() {
        reports.push(report);
    }
    let outcomes: Vec<(usize, usize, usize, bool)> = reports
        .iter()
        .map(|r| {
            (
                r.messages,
                r.reported_failures,
                r.deleted,
                r.error.is_some(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (2, 1, 1, false),
            (2, 0, 0, true),
            (2, 0, 0, true),
            (1, 0, 1, false)
        ]
    );
    let crash = reports[1].error.as_deref().expect("the crash's reason");
    assert!(
        crash.contains("500") && crash.contains("asked to crash"),
        "{crash}"
    );
}

#[tokio::test]
async fn a_url_gets_at_most_concurrency_invocations_at_once() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let queues = create_training_set_queues(&sdk).await;
    let sqs = Client::new(&sdk);
    let seen = Arc::new(Seen {
        pause: Duration::from_millis(300),
        ..Seen::default()
    });
    let url = endpoint(seen.clone()).await;
    send(&sqs, &queues, &["a", "b", "c", "d", "e", "f"]).await;
    let settings = EventSourceSettings {
        batch_size: 1,
        concurrency: 2,
        ..EventSourceSettings::default()
    };
    let source = SqsEventSource::start_at_url(&sdk, &queues, &url, settings).await;
    wait_for(&source, |stats| stats.deleted == 6).await;
    let stats = source.stop().await;

    assert_eq!(stats.invocations, 6);
    assert_eq!(stats.function_errors, 0);
    assert_eq!(seen.most_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(queue_depth(&sdk, &queues.queue_url).await, (0, 0));
}
