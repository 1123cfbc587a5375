//! Training sets under faults, through the real binaries: a storm of Replicate 429s, a
//! worker that loses the id of the prediction it created, and an item whose message was lost
//! (sent again by the reconciler).

mod common;

use std::time::Duration;

use common::{Sets, sibling_bootstrap};
use serde_json::json;
use testkit::{
    EventSourceSettings, FaultProxy, FaultRule, GenerationStack, LambdaEmulator,
    set_progress_final as final_status,
};

#[tokio::test]
async fn a_storm_of_429s_backs_off_and_pays_each_item_once() {
    let sets = Sets::start(&[]).await;
    sets.stack
        .replicate
        .set_faults(json!({"rate_limit_creates": 15, "rate_limit_reset_secs": 1}))
        .await;
    let (status, started, _) = sets.create(&json!({"count": 5}), None).await;
    assert_eq!(status, 202, "{started}");
    let worker = sets.worker(EventSourceSettings::default()).await;
    let done = sets
        .progress_until(
            started["set_id"].as_str().unwrap(),
            Duration::from_secs(120),
            final_status,
        )
        .await;
    worker.stop().await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["counts"]["stored"], 5, "{done}");
    let counts = sets.stack.replicate.counts().await;
    assert!(
        counts.create_requests >= 20,
        "the 15 refusals were met: {counts:?}"
    );
    assert_eq!(counts.predictions_created, 5);
    assert_eq!(sets.images().await.len(), 5);
}

#[tokio::test]
async fn an_item_whose_prediction_id_was_lost_is_uncertain_and_never_created_again() {
    let stack = GenerationStack::start_serialized().await;
    let proxy = FaultProxy::start(stack.moto.endpoint()).await;
    // Every try of the one write that notes the new prediction on its item fails (the
    // SDK tries three times): as if the worker died between the create and that write.
    proxy.inject(FaultRule::dynamodb_throttling("n_predicting", 3));
    let sets = Sets::over(stack, &[]).await;
    let (status, started, _) = sets.create(&json!({"count": 1}), None).await;
    assert_eq!(status, 202, "{started}");
    let worker = sets
        .worker_with(
            EventSourceSettings::default(),
            &[("AWS_ENDPOINT_URL", proxy.endpoint())],
        )
        .await;
    let ended = sets
        .progress_until(
            started["set_id"].as_str().unwrap(),
            Duration::from_secs(90),
            final_status,
        )
        .await;
    worker.stop().await;
    assert_eq!(proxy.injected(), 3);
    let item = &ended["items"][0];
    assert_eq!(item["state"], "uncertain", "{ended}");
    assert!(
        item["error"].as_str().unwrap().contains("may exist"),
        "{item}"
    );
    assert_eq!(ended["counts"]["uncertain"], 1);
    assert_eq!(
        sets.stack.replicate.counts().await.predictions_created,
        1,
        "never created again"
    );
}

#[tokio::test]
async fn an_item_whose_message_was_lost_is_sent_again_by_the_reconciler() {
    let sets = Sets::start(&[("TRAINING_SET_ITEM_STUCK_SECONDS", "1")]).await;
    let (status, started, _) = sets.create(&json!({"count": 2}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap();
    sets.lose_every_message().await;
    assert_eq!(
        testkit::queue_depth(&sets.stack.sdk, &sets.queues.queue_url).await,
        (0, 0)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let reconciler = LambdaEmulator::start(&sibling_bootstrap("reconciler"), &sets.env).await;
    let scheduled = testkit::event("reconciler-scheduled.json");
    let pass = reconciler.invoke(&scheduled).await;
    assert_eq!(
        (pass["items_stuck"].as_u64(), pass["items_resent"].as_u64()),
        (Some(2), Some(2)),
        "{pass}"
    );
    let again = reconciler.invoke(&scheduled).await;
    assert_eq!(again["items_resent"], 0, "held for another bound: {again}");
    assert_eq!(
        testkit::queue_depth(&sets.stack.sdk, &sets.queues.queue_url)
            .await
            .0,
        2
    );

    let worker = sets.worker(EventSourceSettings::default()).await;
    let done = sets
        .progress_until(set_id, Duration::from_secs(60), final_status)
        .await;
    worker.stop().await;
    assert_eq!(done["counts"]["stored"], 2, "{done}");
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 2);
}
