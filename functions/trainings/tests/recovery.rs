//! Trainings whose news was lost, finished anyway through the real binaries: a webhook
//! Replicate never delivered, and a create whose answer never came back (found on
//! Replicate, never created twice), both by the reconciler's look.

mod kit;

use std::time::Duration;

use kit::{ACTOR, TrainingStack, id_of, received};
use serde_json::{Value, json};

#[tokio::test]
async fn a_lost_webhook_is_finished_by_the_reconciler() {
    let t = TrainingStack::start(&[("TRAINING_CHECK_SECONDS", "1")]).await;
    t.seed(12, 12).await;
    t.stack
        .replicate
        .set_faults(json!({"drop_webhooks": true, "training_processing_ms": 200}))
        .await;
    let (status, accepted) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = id_of(&accepted);
    let started = std::time::Instant::now();
    while received(&t)
        .await
        .first()
        .map(|sent| sent["status"].clone())
        != Some(json!("succeeded"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never succeeded on Replicate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, waiting) = t.status(&id).await;
    assert_eq!(waiting["status"], "processing", "nobody told it: {waiting}");
    assert!(t.stack.replicate.counts().await.webhooks_dropped >= 1);

    let report = t.reconcile().await;
    assert!(report["trainings_queued"].as_u64() >= Some(1), "{report}");
    let done = t.ended(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let key = format!("system_actors/loras/{ACTOR}/{id}.tar");
    assert!(testkit::get_object(&t.stack.sdk, &key).await.is_some());
    t.stop().await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_on_replicate_and_not_paid_twice() {
    let t = TrainingStack::start(&[
        ("TRAINING_CREATE_GRACE_SECONDS", "1"),
        ("TRAINING_CHECK_SECONDS", "1"),
    ])
    .await;
    t.seed(12, 12).await;
    t.stack
        .replicate
        .set_faults(json!({"lose_training_create_answers": 1, "training_processing_ms": 300}))
        .await;
    let (status, accepted) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = id_of(&accepted);
    let uncertain = t
        .until(&id, Duration::from_secs(60), |body| {
            body["status"] == "starting"
        })
        .await;
    assert_eq!(
        uncertain["replicate_training_id"],
        Value::Null,
        "its answer was lost"
    );
    assert_eq!(t.stack.replicate.counts().await.trainings_created, 1);

    // After the create's grace, the reconciler's look finds it on Replicate.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = t.reconcile().await;
    assert!(report["trainings_queued"].as_u64() >= Some(1), "{report}");
    let done = t.ended(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["replicate_training_id"], received(&t).await[0]["id"]);
    let counts = t.stack.replicate.counts().await;
    assert_eq!(
        (counts.training_create_requests, counts.trainings_created),
        (1, 1),
        "never created again: {counts:?}"
    );
    assert!(counts.training_list_requests >= 1);
    t.stop().await;
}
