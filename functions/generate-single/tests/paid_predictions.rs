//! A paid prediction is never dropped or doubled, through the real binary: a batch cut by
//! its time and Lambda's retry of it, a keyless asynchronous invocation retried after a
//! function error, a resume after a lost `complete`, a keyed HTTP request left running at
//! its deadline and collected after its photo was deleted, and the HTTP answer's deadline.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{BOOTSTRAP, FOLDER, Stack};
use serde_json::{Value, json};
use testkit::{AsyncLambda, FaultProxy, FaultRule, GenerationStack, status_and_body};

const PHOTO: &str = "system_actors/base_images/0000_european_16_male.jpg";

async fn images(stack: &GenerationStack) -> Vec<String> {
    testkit::list_keys(&stack.sdk, FOLDER)
        .await
        .into_iter()
        .filter(|key| key.ends_with(".jpg"))
        .collect()
}

/// The manifest's entries' prediction ids.
async fn listed(stack: &GenerationStack) -> Vec<String> {
    common::manifest(&stack.sdk)
        .await
        .map(|manifest| {
            manifest["images"]
                .as_array()
                .expect("images")
                .iter()
                .map(|entry| entry["prediction_id"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn job(prompt_id: &str) -> Value {
    json!({"actor_id": "0000_european_16_male", "prompt_id": prompt_id})
}

/// An HTTP request that API Gateway received `received_ago`, with an idempotency key if any.
fn http_received(received_ago: Duration, key: Option<&str>) -> Value {
    let mut event = testkit::event("generate-single-http-v2.json");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    event["requestContext"]["timeEpoch"] = json!(now_ms - received_ago.as_millis() as u64);
    if let Some(key) = key {
        event = testkit::with_idempotency_key(event, key);
    }
    event
}

#[tokio::test]
async fn a_batch_cut_by_its_time_fails_and_its_retry_stores_each_job_once() {
    let stack = GenerationStack::start().await;
    stack
        .replicate
        .set_faults(json!({"processing_ms": 2500}))
        .await;
    let mut env = stack.function_env();
    testkit::set_env(&mut env, "BATCH_JOB_MIN_SECONDS", "20");
    let function = AsyncLambda::start(Path::new(BOOTSTRAP), &env).await;
    let batch =
        json!({"jobs": [job("bw_charcoal"), job("bw_woodcut"), job("photo_rain_street_run")]});

    // 25 s: the first two jobs start (25 and about 22 s left), the third has under 20.
    let attempts = function
        .invoke_async(&batch, "req-batch-1", Duration::from_secs(25))
        .await;
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let first = &attempts[0];
    assert!(!first.succeeded);
    assert_eq!(first.body["errorType"], "batch_incomplete", "{first:?}");
    let message: Value =
        serde_json::from_str(first.body["errorMessage"].as_str().unwrap_or("{}")).unwrap();
    assert_eq!(
        message["results"][2]["error"]["code"], "not_started",
        "{message}"
    );
    assert_eq!(message["succeeded"], 2);

    let retry = &attempts[1];
    assert!(retry.succeeded, "{retry:?}");
    assert_eq!(retry.body["succeeded"], 3, "{retry:?}");
    let counts = stack.replicate.counts().await;
    assert_eq!(counts.predictions_created, 3, "a job was paid twice");
    assert_eq!(images(&stack).await.len(), 3);
    assert_eq!(listed(&stack).await.len(), 3);
}

#[tokio::test]
async fn a_keyless_asynchronous_invocation_retried_after_a_function_error_pays_once() {
    let generation = GenerationStack::start().await;
    let proxy = FaultProxy::start(generation.moto.endpoint()).await;
    let mut env = generation.function_env();
    testkit::set_env(&mut env, "AWS_ENDPOINT_URL", proxy.endpoint());
    // The image's write fails past the SDK's retries: paid, not stored, a function error.
    proxy.inject(FaultRule {
        status: 503,
        body: "<Error><Code>SlowDown</Code><Message>injected</Message></Error>".to_owned(),
        content_type: "application/xml",
        ..FaultRule::s3_conflict("0000_european_16_male_1.jpg", 3)
    });
    let function = AsyncLambda::start(Path::new(BOOTSTRAP), &env).await;
    let attempts = function
        .invoke_async(&job("bw_charcoal"), "req-single-1", Duration::from_secs(30))
        .await;
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(
        attempts[0].body["errorType"], "image_not_stored",
        "{attempts:?}"
    );
    assert!(attempts[1].succeeded, "{attempts:?}");
    assert_eq!(attempts[1].body["index"], 1);
    assert_eq!(generation.replicate.counts().await.predictions_created, 1);
    assert_eq!(images(&generation).await.len(), 1);
}

#[tokio::test]
async fn a_resume_after_the_image_was_stored_but_its_complete_lost_stores_nothing_twice() {
    let generation = GenerationStack::start().await;
    let proxy = FaultProxy::start(generation.moto.endpoint()).await;
    let stack = Stack::over(generation, &[("AWS_ENDPOINT_URL", proxy.endpoint())]).await;
    // Every write of the answer onto the key fails (3 tries of 3 SDK attempts each).
    proxy.inject(FaultRule::dynamodb_throttling("COMPLETED", 9));
    let mut keyed = job("bw_charcoal");
    keyed["idempotency_key"] = json!("nightly-7");
    let first = stack.function.invoke(&keyed).await;
    assert_eq!(first["success"], true, "{first}");

    let retry = stack.function.invoke(&keyed).await;
    assert_eq!(retry["success"], true, "{retry}");
    assert_eq!(retry["s3_key"], first["s3_key"]);
    assert_eq!(
        images(&stack).await.len(),
        1,
        "the prediction was stored twice"
    );
    assert_eq!(listed(&stack).await.len(), 1);
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
}

#[tokio::test]
async fn a_keyed_request_left_running_is_collected_by_its_retry_after_the_photo_was_deleted() {
    let stack = Stack::with_settings(&[]).await;
    stack
        .replicate
        .set_faults(json!({"never_finish": true}))
        .await;
    // Received 17 s ago: 10 s left to answer, 5 of them for the model.
    let started = Instant::now();
    let answer = stack
        .function
        .invoke(&http_received(
            Duration::from_secs(17),
            Some("left-running"),
        ))
        .await;
    let (status, body) = status_and_body(&answer);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["status"], "running", "{body}");
    assert!(body["prediction_id"].is_string(), "{body}");
    assert!(body["retry_after_seconds"].as_u64().is_some_and(|s| s > 0));
    assert!(answer["headers"]["retry-after"].is_string(), "{answer}");
    assert_eq!(stack.replicate.counts().await.cancel_requests, 0);

    testkit::s3_client(&stack.sdk)
        .delete_object()
        .bucket(testkit::BUCKET)
        .key(PHOTO)
        .send()
        .await
        .unwrap();
    stack.replicate.set_faults(json!({})).await;
    let (status, collected) = status_and_body(
        &stack
            .function
            .invoke(&http_received(Duration::ZERO, Some("left-running")))
            .await,
    );
    assert_eq!(status, 200, "{collected}");
    assert_eq!(collected["prediction_id"], body["prediction_id"]);
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
    assert_eq!(images(&stack).await.len(), 1);
}

#[tokio::test]
async fn the_answer_comes_inside_29_s_when_the_prediction_succeeds_during_the_cancel_and_the_download_is_slow()
 {
    let stack = Stack::with_settings(&[]).await;
    stack
        .replicate
        .set_faults(
            json!({"never_finish": true, "succeed_on_cancel": true, "output_latency_ms": 40000}),
        )
        .await;
    for received_ago in [Duration::from_secs(20), Duration::ZERO] {
        let started = Instant::now();
        let (status, body) = status_and_body(
            &stack
                .function
                .invoke(&http_received(received_ago, None))
                .await,
        );
        let since_received = started.elapsed() + received_ago;
        assert!(
            since_received < Duration::from_secs(29),
            "answered {since_received:?} after API Gateway received it"
        );
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["error"]["code"], "image_pending", "{body}");
        assert!(body["prediction_id"].is_string(), "{body}");
    }
    assert_eq!(stack.replicate.counts().await.cancel_requests, 2);
}

/// The reconciler's binary, built beside generate-single's by `cargo test --workspace`.
fn reconciler_bootstrap() -> std::path::PathBuf {
    let path = Path::new(BOOTSTRAP).with_file_name("reconciler");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p reconciler`",
        path.display()
    );
    path
}

/// A prediction record's `state`, as the table holds it.
async fn record_state(stack: &GenerationStack, prediction_id: &str) -> Option<String> {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .get_item()
        .table_name(testkit::TABLE_NAME)
        .key(
            "pk",
            AttributeValue::S(format!("PREDICTION#{prediction_id}")),
        )
        .key("sk", AttributeValue::S("RECORD".to_owned()))
        .send()
        .await
        .unwrap()
        .item
        .and_then(|item| item.get("state").and_then(|v| v.as_s().ok()).cloned())
}

#[tokio::test]
async fn a_keyed_request_nobody_retries_is_collected_by_the_reconciler() {
    let stack = Stack::with_settings(&[]).await;
    stack
        .replicate
        .set_faults(json!({"never_finish": true}))
        .await;
    let (status, left) = status_and_body(
        &stack
            .function
            .invoke(&http_received(
                Duration::from_secs(17),
                Some("nobody-retries"),
            ))
            .await,
    );
    assert_eq!(status, 504, "{left}");
    let prediction_id = left["prediction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        record_state(&stack, &prediction_id).await.as_deref(),
        Some("OPEN")
    );
    assert!(images(&stack).await.is_empty());

    // The model finishes; the schedule runs the reconciler.
    stack.replicate.set_faults(json!({})).await;
    let reconciler =
        testkit::LambdaEmulator::start(&reconciler_bootstrap(), &stack.function_env()).await;
    let scheduled = testkit::event("reconciler-scheduled.json");
    let pass = reconciler.invoke(&scheduled).await;
    assert_eq!(
        (pass["due"].as_u64(), pass["stored"].as_u64()),
        (Some(1), Some(1)),
        "{pass}"
    );
    assert_eq!(images(&stack).await.len(), 1);
    assert_eq!(listed(&stack).await, std::slice::from_ref(&prediction_id));
    assert_eq!(
        record_state(&stack, &prediction_id).await.as_deref(),
        Some("STORED")
    );

    // Idempotent: the next pass finds nothing; a late retry gets the stored image.
    let again = reconciler.invoke(&scheduled).await;
    assert_eq!(again["due"], 0, "{again}");
    let (status, late) = status_and_body(
        &stack
            .function
            .invoke(&http_received(Duration::ZERO, Some("nobody-retries")))
            .await,
    );
    assert_eq!(status, 200, "{late}");
    assert_eq!(late["prediction_id"], prediction_id.as_str());
    assert_eq!(images(&stack).await.len(), 1);
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
}
