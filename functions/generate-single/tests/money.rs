//! Safe with money: idempotency keys across execution environments, EventBridge redelivery,
//! the daily caps and the kill switch, and logs that never carry the token or the photo.

mod common;

use common::{FOLDER, start_function};
use serde_json::{Value, json};
use testkit::{GenerationStack, ReplicateEmulator, status_and_body};

async fn stack(serialized: bool) -> GenerationStack {
    if serialized {
        GenerationStack::start_serialized().await
    } else {
        GenerationStack::start().await
    }
}

fn with_key(key: &str, body: &Value) -> Value {
    let event = testkit::event("generate-single-http-v2.json");
    testkit::with_json_body(testkit::with_idempotency_key(event, key), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_five_requests_three_at_once_pay_once() {
    let stack = stack(true).await;
    stack
        .replicate
        .set_faults(json!({"processing_ms": 1500}))
        .await;
    let mut environments = Vec::new();
    for _ in 0..3 {
        environments.push(start_function(&stack.function_env()).await);
    }
    let environments = std::sync::Arc::new(environments);
    let body = json!({"prompt_id": "bw_charcoal", "seed": 5});
    let event = with_key("click-7f3a", &body);

    let mut concurrent = tokio::task::JoinSet::new();
    for slot in 0..3 {
        let (environments, event) = (environments.clone(), event.clone());
        concurrent.spawn(async move { environments[slot].invoke(&event).await });
    }
    let mut answers = Vec::new();
    while let Some(answer) = concurrent.join_next().await {
        answers.push(answer.expect("request task"));
    }
    for slot in 0..2 {
        answers.push(environments[slot].invoke(&event).await);
    }

    let mut images = Vec::new();
    let mut conflicts = 0;
    for answer in &answers {
        match status_and_body(answer) {
            (200, body) => images.push(body["s3_key"].as_str().expect("s3_key").to_owned()),
            (409, body) => {
                assert_eq!(body["error"]["code"], "idempotency_in_progress");
                assert_eq!(answer.pointer("/headers/retry-after"), Some(&json!("2")));
                conflicts += 1;
            }
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert_eq!(images.len() + conflicts, 5);
    assert_eq!(
        conflicts, 2,
        "the two concurrent repeats wait for the first"
    );
    images.dedup();
    assert_eq!(
        images.len(),
        1,
        "every success names the same image: {images:?}"
    );
    let replayed = answers[3..]
        .iter()
        .filter(|a| a.pointer("/headers/idempotency-replayed") == Some(&json!("true")));
    assert_eq!(replayed.count(), 2);

    let counts = stack.replicate.counts().await;
    assert_eq!(counts.predictions_created, 1, "one Replicate call");
    let stored: Vec<_> = testkit::list_keys(&stack.sdk, FOLDER)
        .await
        .into_iter()
        .filter(|k| k.ends_with(".jpg"))
        .collect();
    assert_eq!(stored, images);

    let other = environments[0]
        .invoke(&with_key("click-7f3a", &json!({"prompt_id": "bw_woodcut"})))
        .await;
    let (status, body) = status_and_body(&other);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
}

#[tokio::test]
async fn a_malformed_request_records_nothing_and_a_released_key_can_run_again() {
    let stack = stack(false).await;
    let function = start_function(&stack.function_env()).await;
    let before = testkit::table_keys(&stack.sdk).await;
    let (status, _) = status_and_body(
        &function
            .invoke(&with_key("k1", &json!({"prompt_id": "nope"})))
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(
        testkit::table_keys(&stack.sdk).await,
        before,
        "a refused request left a record"
    );

    // Rate limited before anything was made: the key is released, and the same key runs later.
    stack
        .replicate
        .set_faults(json!({"rate_limit_creates": 10, "rate_limit_reset_secs": 60}))
        .await;
    let (status, _) = status_and_body(
        &function
            .invoke(&with_key("k2", &json!({"prompt_id": "bw_pen_ink"})))
            .await,
    );
    assert_eq!(status, 503);
    stack.replicate.set_faults(json!({})).await;
    let (status, body) = status_and_body(
        &function
            .invoke(&with_key("k2", &json!({"prompt_id": "bw_pen_ink"})))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = status_and_body(
        &function
            .invoke(&with_key(
                "bad key with spaces",
                &json!({"prompt_id": "bw_pen_ink"}),
            ))
            .await,
    );
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_same_eventbridge_event_delivered_twice_generates_once() {
    let stack = stack(false).await;
    let function = start_function(&stack.function_env()).await;
    let event = testkit::event("generate-single-eventbridge.json");
    let first = function.invoke(&event).await;
    let second = function.invoke(&event).await;
    assert_eq!(first["success"], true, "{first}");
    assert_eq!(second["s3_key"], first["s3_key"], "{second}");
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
    let mut another = event.clone();
    another["id"] = json!("a-new-delivery-id");
    let third = function.invoke(&another).await;
    assert_eq!(third["index"], 2, "{third}");
    assert_eq!(stack.replicate.counts().await.predictions_created, 2);
}

#[tokio::test]
async fn a_daily_cap_of_three_refuses_the_fourth_and_the_kill_switch_stops_all() {
    let stack = stack(false).await;
    let mut env = stack.function_env();
    env.push(("DAILY_GENERATION_CAP_PER_ACTOR".to_owned(), "3".to_owned()));
    env.push(("DAILY_GENERATION_CAP".to_owned(), "100".to_owned()));
    let function = start_function(&env).await;
    let event = testkit::event("generate-single-http-v2.json");
    for expected in 1..=3 {
        let (status, body) = status_and_body(&function.invoke(&event).await);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["index"], expected);
    }
    let answer = function.invoke(&event).await;
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget_exhausted");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily cap of 3")
    );
    assert!(answer.pointer("/headers/retry-after").is_some());
    assert_eq!(
        stack.replicate.counts().await.create_requests,
        3,
        "the fourth reached Replicate"
    );

    // The kill switch: an item in the table stops every generation, at once.
    testkit::put_kill_switch(&stack.sdk, true).await;
    let unlimited = start_function(&stack.function_env()).await;
    for function in [&function, &unlimited] {
        let (status, body) = status_and_body(&function.invoke(&event).await);
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "generation_disabled");
    }
    let direct = unlimited
        .invoke(&testkit::event("generate-single-direct.json"))
        .await;
    assert!(
        direct["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("generation_disabled"),
        "{direct}"
    );
    assert_eq!(direct["errorType"], "generation_disabled", "{direct}");
    assert_eq!(stack.replicate.counts().await.create_requests, 3);

    // The configuration's switch works without the table.
    let mut switched_off = stack.function_env();
    switched_off.push(("GENERATION_DISABLED".to_owned(), "true".to_owned()));
    let off = start_function(&switched_off).await;
    let (status, _) = status_and_body(&off.invoke(&event).await);
    assert_eq!(status, 503);
    assert_eq!(stack.replicate.counts().await.create_requests, 3);
}

#[tokio::test]
async fn no_log_line_carries_the_token_or_the_photo() {
    let stack = stack(false).await;
    let photo = testkit::sample_jpeg(48, 48);
    let photo_base64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&photo)
    };
    let mut env = stack.function_env();
    env.push(("AWS_LAMBDA_LOG_LEVEL".to_owned(), "DEBUG".to_owned()));
    let (function, log) = common::start_capturing(&env, "generate-single").await;
    for event in [
        "generate-single-http-v2.json",
        "generate-single-direct.json",
        "generate-single-batch.json",
    ] {
        function.invoke(&testkit::event(event)).await;
    }
    stack
        .replicate
        .set_faults(json!({"fail_with": "NSFW content detected"}))
        .await;
    function
        .invoke(&testkit::event("generate-single-http-v2.json"))
        .await;
    drop(function);
    let text = log.text();
    assert!(
        text.lines().count() > 20,
        "too little was logged to judge:\n{text}"
    );
    assert!(
        text.contains("prediction"),
        "the log says nothing of predictions"
    );
    assert!(
        !text.contains(ReplicateEmulator::TOKEN),
        "the token is in the log"
    );
    assert!(
        !text.contains(&photo_base64[..64]),
        "the photo's base64 is in the log"
    );
    assert!(
        !text.contains("X-Amz-Signature"),
        "a presigned URL is in the log"
    );
}

#[tokio::test]
async fn a_keyed_run_cut_by_its_deadline_is_resumed_by_the_retry_without_paying_again() {
    let stack = stack(false).await;
    let mut env = stack.function_env();
    // A 20 s function: a direct job gives the model 20 - 15 = 5 s.
    env.push(("AWS_LAMBDA_FUNCTION_TIMEOUT".to_owned(), "20".to_owned()));
    let function = start_function(&env).await;
    let job = json!({"actor_id": "0000_european_16_male", "prompt_id": "bw_woodcut", "idempotency_key": "nightly-42"});

    stack
        .replicate
        .set_faults(json!({"never_finish": true}))
        .await;
    let first = function.invoke(&job).await;
    assert!(
        first["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("generation_timeout"),
        "{first}"
    );
    let counts = stack.replicate.counts().await;
    assert_eq!(counts.predictions_created, 1);
    assert_eq!(
        counts.cancel_requests, 0,
        "a keyed prediction is left running for the retry"
    );
    assert!(testkit::list_keys(&stack.sdk, FOLDER).await.is_empty());

    // The model finishes; Lambda's retry (same event, same key) collects the image.
    stack.replicate.set_faults(json!({})).await;
    let retry = function.invoke(&job).await;
    assert_eq!(retry["success"], true, "{retry}");
    assert_eq!(retry["index"], 1);
    assert_eq!(
        stack.replicate.counts().await.predictions_created,
        1,
        "the retry paid again"
    );
    let again = function.invoke(&job).await;
    assert_eq!(again["s3_key"], retry["s3_key"]);
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
}
