//! What paid nothing gives its budget back, through the real binary: with the daily caps on,
//! every refusal by Replicate that created no prediction (503 and 429 storms after the
//! client's retries, 401, 402, the model's 422) leaves the day's count as it was, with or
//! without an idempotency key, and the caps still stop the paid generations past them.

mod common;

use common::{Stack, start_function};
use serde_json::{Value, json};
use testkit::{GenerationStack, LambdaEmulator, status_and_body};

async fn capped_stack(cap: &str) -> Stack {
    Stack::with_settings(&[
        ("DAILY_GENERATION_CAP", cap),
        ("DAILY_GENERATION_CAP_PER_ACTOR", cap),
    ])
    .await
}

fn request(key: Option<&str>) -> Value {
    let event = testkit::event("generate-single-http-v2.json");
    match key {
        Some(key) => testkit::with_idempotency_key(event, key),
        None => event,
    }
}

async fn assert_answer(function: &LambdaEmulator, event: &Value, status: u64, code: &str) {
    let (answered, body) = status_and_body(&function.invoke(event).await);
    assert_eq!(answered, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[tokio::test]
async fn three_keyless_requests_refused_by_replicate_leave_a_cap_of_two_untouched() {
    let stack = capped_stack("2").await;
    let function = &stack.function;
    stack
        .replicate
        .set_faults(json!({"unavailable_creates": 1000}))
        .await;
    for _ in 0..3 {
        assert_answer(function, &request(None), 503, "model_unavailable").await;
    }
    assert_eq!(stack.replicate.counts().await.predictions_created, 0);
    stack.replicate.set_faults(json!({})).await;
    for _ in 0..2 {
        let (status, body) = status_and_body(&function.invoke(&request(None)).await);
        assert_eq!(status, 200, "{body}");
    }
    // The cap still holds once two were paid for.
    assert_answer(function, &request(None), 429, "budget_exhausted").await;
    assert_eq!(stack.replicate.counts().await.predictions_created, 2);
}

#[tokio::test]
async fn every_refusal_that_created_nothing_is_refunded_with_or_without_a_key() {
    let stack = capped_stack("1").await;
    let function = &stack.function;
    let refusals = [
        (json!({"rate_limit_creates": 1000}), 503, "rate_limited"),
        (
            json!({"reject_creates": 1, "reject_status": 401}),
            502,
            "model_rejected_request",
        ),
        (
            json!({"reject_creates": 1, "reject_status": 402}),
            502,
            "model_rejected_request",
        ),
        (
            json!({"reject_creates": 1, "reject_status": 422}),
            422,
            "model_rejected_request",
        ),
    ];
    for (round, (faults, status, code)) in refusals.iter().enumerate() {
        for key in [None, Some(format!("refused-{round}"))] {
            stack.replicate.set_faults(faults.clone()).await;
            assert_answer(function, &request(key.as_deref()), *status, code).await;
        }
    }
    assert_eq!(stack.replicate.counts().await.predictions_created, 0);
    stack.replicate.set_faults(json!({})).await;
    let (status, body) = status_and_body(&function.invoke(&request(Some("healthy"))).await);
    assert_eq!(status, 200, "{body}");
    assert_answer(function, &request(None), 429, "budget_exhausted").await;
}

#[tokio::test]
async fn a_create_that_never_reached_replicate_is_refunded() {
    let stack = GenerationStack::start().await;
    let closed = testkit::ClosedPort::hold();
    let mut env = stack.function_env();
    testkit::set_env(&mut env, "DAILY_GENERATION_CAP", "1");
    testkit::set_env(&mut env, "REPLICATE_BASE_URL", closed.url());
    let unreachable = start_function(&env).await;
    for key in [None, Some("unreachable")] {
        assert_answer(&unreachable, &request(key), 503, "model_unavailable").await;
    }
    testkit::set_env(&mut env, "REPLICATE_BASE_URL", stack.replicate.base_url());
    let reachable = start_function(&env).await;
    let (status, body) = status_and_body(&reachable.invoke(&request(None)).await);
    assert_eq!(status, 200, "{body}");
}
