//! Training sets finished by Replicate's webhooks, through the real binaries: the emulator
//! posts each completed prediction, signed, to the webhook function behind an HTTP front; the
//! worker stores what the webhook moved to `storing`. With webhooks lost, the worker's own
//! checks and the reconciler finish the set.

mod common;

use std::time::Duration;

use common::{Sets, sibling_bootstrap};
use serde_json::json;
use testkit::{LambdaEmulator, set_progress_final as final_status};

#[tokio::test]
async fn a_set_of_20_with_every_webhook_delivered_twice_is_stored_without_a_check() {
    let sets = Sets::start(&[]).await;
    let front = sets.webhook_front(3).await;
    let replicate = &sets.stack.replicate;
    replicate
        .set_faults(json!({"duplicate_webhooks": true, "processing_ms": 300}))
        .await;
    let (status, started, _) = sets.create(&json!({"count": 20}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap();
    // Each item's check comes 30 s after its create (one moto serving every call of the
    // set makes the webhooks slower than Replicate's): it finds the item stored.
    let worker = sets.worker_told_by(&front, 30).await;
    let done = sets
        .progress_until(set_id, Duration::from_secs(90), final_status)
        .await;
    sets.queue_drained(Duration::from_secs(60)).await;
    let stats = worker.stop().await;

    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["counts"]["stored"], 20, "{done}");
    assert_eq!(sets.images().await.len(), 20);
    let counts = replicate.counts().await;
    assert_eq!(counts.predictions_created, 20, "{counts:?}");
    assert_eq!(counts.webhooks_completed, 20, "{counts:?}");
    assert_eq!(
        counts.webhooks_accepted, 40,
        "both copies answered 2xx: {counts:?}"
    );
    assert_eq!(
        counts.get_requests, 0,
        "no check read a prediction whose webhook came: {counts:?}"
    );
    // Each item's message (its create, then its check) and one store message per item.
    assert_eq!(stats.deleted, 40, "{stats:?}");
    assert_eq!(stats.function_errors, 0, "{stats:?}");
}

#[tokio::test]
async fn with_webhooks_dropped_the_checks_finish_the_set() {
    let sets = Sets::start(&[]).await;
    let front = sets.webhook_front(1).await;
    let replicate = &sets.stack.replicate;
    replicate
        .set_faults(json!({"drop_webhooks": true, "processing_ms": 300}))
        .await;
    let (status, started, _) = sets.create(&json!({"count": 4}), None).await;
    assert_eq!(status, 202, "{started}");
    let worker = sets.worker_told_by(&front, 2).await;
    let done = sets
        .progress_until(
            started["set_id"].as_str().unwrap(),
            Duration::from_secs(60),
            final_status,
        )
        .await;
    worker.stop().await;
    assert_eq!(done["counts"]["stored"], 4, "{done}");
    let counts = replicate.counts().await;
    assert_eq!(counts.predictions_created, 4);
    assert_eq!((counts.webhooks_dropped, counts.webhook_attempts), (4, 0));
    assert!(counts.get_requests >= 4, "each item checked: {counts:?}");
}

#[tokio::test]
async fn with_webhooks_dropped_and_the_checks_lost_the_reconciler_finishes_the_set() {
    let sets = Sets::start(&[("TRAINING_SET_ITEM_STUCK_SECONDS", "1")]).await;
    let front = sets.webhook_front(1).await;
    let replicate = &sets.stack.replicate;
    replicate
        .set_faults(json!({"drop_webhooks": true, "processing_ms": 300}))
        .await;
    let (status, started, _) = sets.create(&json!({"count": 2}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap();
    // Created, and first checked only in ten minutes: the checks are then lost.
    let worker = sets.worker_told_by(&front, 600).await;
    let predicting = sets
        .progress_until(set_id, Duration::from_secs(60), |body| {
            body["counts"]["predicting"] == 2
        })
        .await;
    worker.stop().await;
    assert_eq!(predicting["counts"]["stored"], 0, "{predicting}");
    sets.lose_every_message().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let reconciler = LambdaEmulator::start(&sibling_bootstrap("reconciler"), &sets.env).await;
    let pass = reconciler
        .invoke(&testkit::event("reconciler-scheduled.json"))
        .await;
    assert_eq!(pass["items_resent"], 2, "{pass}");
    let worker = sets.worker_told_by(&front, 600).await;
    let done = sets
        .progress_until(set_id, Duration::from_secs(60), final_status)
        .await;
    worker.stop().await;
    assert_eq!(done["counts"]["stored"], 2, "{done}");
    assert_eq!(replicate.counts().await.predictions_created, 2);
}
