//! The fault suite: each fault through the real binary (runtime interface emulator, moto
//! behind a fault-injecting proxy, the Replicate emulator), each case asserting the
//! invariants: nothing stored twice, nothing paid twice for one key, no manifest entry without
//! its object, every stored object in the manifest or named in the answer.

mod common;

use std::collections::BTreeSet;

use common::{FOLDER, Stack};
use serde_json::{Value, json};
use testkit::{FaultProxy, FaultRule, GenerationStack, SAMPLE_ACTOR, status_and_body};

/// A stack whose function reaches moto through a fault proxy (returned with it, to keep it
/// running); `timeout_s` is the function's.
async fn stack(timeout_s: u32) -> (Stack, FaultProxy) {
    let generation = GenerationStack::start().await;
    let proxy = FaultProxy::start(generation.moto.endpoint()).await;
    let timeout_s = timeout_s.to_string();
    let settings = [
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout_s.as_str()),
    ];
    (Stack::over(generation, &settings).await, proxy)
}

/// A direct job with an idempotency key (its deadline: the function's timeout less 15 s).
fn job(key: &str) -> Value {
    json!({"actor_id": "0000_european_16_male", "prompt_id": "bw_charcoal", "idempotency_key": key})
}

fn http(key: &str) -> Value {
    let mut event = testkit::event("generate-single-http-v2.json");
    event["headers"]["idempotency-key"] = json!(key);
    event
}

/// The invariants, given the answers the callers got.
async fn assert_invariants(stack: &GenerationStack, answers: &[Value], keys_used: u32) {
    let images: BTreeSet<String> = testkit::list_keys(&stack.sdk, FOLDER)
        .await
        .into_iter()
        .filter(|key| key.ends_with(".jpg"))
        .collect();
    let listed: Vec<String> = match common::manifest(&stack.sdk).await {
        Some(manifest) => manifest["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|entry| entry["s3_key"].as_str().expect("s3_key").to_owned())
            .collect(),
        None => Vec::new(),
    };
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        listed_set.len(),
        "an image is listed twice: {listed:?}"
    );
    for key in &listed {
        assert!(
            images.contains(key),
            "manifest entry without its object: {key}"
        );
    }
    let named: BTreeSet<String> = answers
        .iter()
        .filter_map(|answer| answer["s3_key"].as_str().map(str::to_owned))
        .collect();
    for key in &images {
        assert!(
            listed_set.contains(key) || named.contains(key),
            "stored but neither listed nor named: {key}"
        );
    }
    let counts = stack.replicate.counts().await;
    assert!(
        counts.predictions_created <= keys_used,
        "{} predictions paid for {keys_used} keys",
        counts.predictions_created
    );
    assert!(
        images.len() as u32 <= counts.predictions_created,
        "more images than paid predictions"
    );
}

/// The body of a direct invocation's answer, success or Lambda error.
fn direct_answer(answer: &Value) -> Value {
    match answer.get("errorMessage").and_then(Value::as_str) {
        Some(message) => serde_json::from_str(message).unwrap_or_else(|_| json!({"raw": message})),
        None => answer.clone(),
    }
}

#[tokio::test]
async fn replicate_faults_that_recover() {
    let (stack, _proxy) = stack(30).await;
    let mut answers = Vec::new();
    for (key, faults) in [
        ("503s", json!({"unavailable_creates": 2})),
        ("500s", json!({"starting_polls": 1, "failing_polls": 2})),
        ("starting", json!({"starting_polls": 4})),
        (
            "malformed",
            json!({"starting_polls": 1, "malformed_polls": 2}),
        ),
    ] {
        stack.replicate.set_faults(faults.clone()).await;
        let (status, body) = status_and_body(&stack.function.invoke(&http(key)).await);
        assert_eq!(status, 200, "{faults}: {body}");
        answers.push(body);
    }
    assert_eq!(stack.replicate.counts().await.predictions_created, 4);
    assert_invariants(&stack, &answers, 4).await;
}

#[tokio::test]
async fn replicate_faults_that_fail_store_nothing_and_pay_once() {
    let (stack, _proxy) = stack(30).await;
    let mut answers = Vec::new();
    for (key, faults, status, code) in [
        (
            "storm",
            json!({"rate_limit_creates": 50, "rate_limit_reset_secs": 1}),
            503,
            "rate_limited",
        ),
        (
            "failed",
            json!({"fail_with": "NSFW content detected"}),
            422,
            "prediction_failed",
        ),
        ("gone", json!({"output_gone": true}), 502, "output_refused"),
    ] {
        stack.replicate.set_faults(faults.clone()).await;
        for _repeat in 0..2 {
            let (got, body) = status_and_body(&stack.function.invoke(&http(key)).await);
            assert_eq!(got, status, "{faults}: {body}");
            assert_eq!(body["error"]["code"], code, "{body}");
            answers.push(body);
        }
    }
    let counts = stack.replicate.counts().await;
    assert_eq!(
        counts.predictions_created, 2,
        "the failed and the gone predictions, each paid once"
    );
    assert!(counts.create_requests >= 3, "the storm was retried");
    assert!(testkit::list_keys(&stack.sdk, FOLDER).await.is_empty());
    assert_invariants(&stack, &answers, 3).await;
}

#[tokio::test]
async fn a_timeout_at_create_is_never_paid_again() {
    let (stack, _proxy) = stack(20).await;
    stack
        .replicate
        .set_faults(json!({"create_latency_ms": 8000}))
        .await;
    let first = direct_answer(&stack.function.invoke(&job("slow-create")).await);
    assert_eq!(first["error"]["code"], "prediction_uncertain", "{first}");
    stack.replicate.set_faults(json!({})).await;
    let again = direct_answer(&stack.function.invoke(&job("slow-create")).await);
    assert_eq!(
        again["error"]["code"], "prediction_uncertain",
        "the stored answer: {again}"
    );
    let counts = stack.replicate.counts().await;
    assert_eq!(counts.create_requests, 1, "the repeat sent a second create");
    assert_eq!(
        counts.predictions_created, 1,
        "the slow create made (and billed) a prediction whose answer was lost"
    );
    assert_invariants(&stack, &[first, again], 1).await;
}

#[tokio::test]
async fn a_timeout_at_poll_is_resumed_by_the_retry() {
    let (stack, _proxy) = stack(20).await;
    stack
        .replicate
        .set_faults(json!({"starting_polls": 1, "poll_latency_ms": 9000}))
        .await;
    let first = direct_answer(&stack.function.invoke(&job("slow-poll")).await);
    assert_eq!(first["error"]["code"], "generation_timeout", "{first}");
    stack.replicate.set_faults(json!({})).await;
    let retry = direct_answer(&stack.function.invoke(&job("slow-poll")).await);
    assert_eq!(retry["success"], true, "{retry}");
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
    assert_invariants(&stack, &[first, retry], 1).await;
}

#[tokio::test]
async fn s3_conflicts_on_the_manifest_are_merged_again() {
    let (stack, proxy) = stack(30).await;
    proxy.inject(FaultRule::s3_conflict("response.json", 2));
    proxy.inject(FaultRule::s3_precondition_failed("response.json", 2));
    let (status, body) = status_and_body(&stack.function.invoke(&http("contended")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifest_updated"], true, "{body}");
    assert_eq!(proxy.injected(), 4);
    assert_invariants(&stack, &[body], 1).await;
}

#[tokio::test]
async fn a_base_photo_deleted_mid_way_still_gives_the_paid_image() {
    let (stack, _proxy) = stack(30).await;
    stack
        .replicate
        .set_faults(json!({"processing_ms": 1500}))
        .await;
    let sdk = stack.sdk.clone();
    let deleter = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        testkit::s3_client(&sdk)
            .delete_object()
            .bucket(testkit::BUCKET)
            .key(SAMPLE_ACTOR.base_image_key)
            .send()
            .await
            .expect("DeleteObject");
    });
    let (status, body) = status_and_body(&stack.function.invoke(&http("deleted")).await);
    deleter.await.expect("deleter");
    assert_eq!(status, 200, "{body}");
    assert_invariants(&stack, &[body], 1).await;
    let (status, body) = status_and_body(&stack.function.invoke(&http("after-delete")).await);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "base_image_not_found");
}

#[tokio::test]
async fn dynamodb_throttling_is_retried_and_past_the_retries_the_paid_image_is_resumed() {
    let (stack, proxy) = stack(30).await;
    // The SDK retries a throttled call (3 attempts): two throttles are absorbed.
    proxy.inject(FaultRule::dynamodb_throttling("IMAGES#", 2));
    let (status, body) = status_and_body(&stack.function.invoke(&http("throttled")).await);
    assert_eq!(status, 200, "{body}");
    // Past the retries, after the prediction was paid: a 502 naming it, no 503.
    proxy.inject(FaultRule::dynamodb_throttling("IMAGES#", 3));
    let (status, failed) = status_and_body(&stack.function.invoke(&http("throttled-long")).await);
    assert_eq!(status, 502, "{failed}");
    assert_eq!(failed["error"]["code"], "image_not_stored");
    assert!(failed["error"]["prediction_id"].is_string(), "{failed}");
    // The repeat resumes that prediction instead of paying again.
    let (status, resumed) = status_and_body(&stack.function.invoke(&http("throttled-long")).await);
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["prediction_id"], failed["error"]["prediction_id"]);
    assert_eq!(stack.replicate.counts().await.predictions_created, 2);
    assert_invariants(&stack, &[body, failed, resumed], 2).await;
}
