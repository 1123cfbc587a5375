//! Training sets through the real binaries: training-sets under the runtime interface
//! emulator, training-set-worker fed by the test kit's SQS event source mapping over moto's
//! queue, the Replicate emulator as the model.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{MANIFEST, Sets};
use serde_json::{Value, json};
use testkit::{EventSourceSettings, set_progress_final as final_status};

#[tokio::test]
async fn a_set_of_20_with_every_batch_delivered_twice_stores_20_images_once_each() {
    let sets = Sets::start(&[]).await;
    let (status, started, headers) = sets.create(&json!({"count": 20}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().expect("set_id").to_owned();
    assert_eq!(started["total"], 20);
    assert_eq!(started["status"], "queued");
    assert_eq!(headers["location"], started["status_url"], "{headers}");
    assert!(started["status_url"].as_str().unwrap().ends_with(&set_id));
    assert_eq!(started["estimated_cost_usd"], 0.8);

    let worker = sets
        .worker(EventSourceSettings {
            concurrency: 4,
            deliver_twice: true,
            ..EventSourceSettings::default()
        })
        .await;
    let done = sets
        .progress_until(&set_id, Duration::from_secs(180), |body| {
            body["status"] == "done" && body["counts"]["stored"] == 20
        })
        .await;
    let stats = worker.stop().await;
    assert!(
        stats.invocations >= 4 && stats.function_errors == 0,
        "{stats:?}"
    );

    let counted: u64 = done["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        counted, 20,
        "the counts moved with the items: {}",
        done["counts"]
    );
    let items = done["items"].as_array().unwrap();
    let mut indices: Vec<u64> = items.iter().map(|i| i["index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 20, "distinct indices: {done}");
    assert!(
        items
            .iter()
            .all(|i| i["state"] == "stored" && i["preview_url"].is_string())
    );
    let seeds: std::collections::HashSet<u64> =
        items.iter().map(|i| i["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), 20, "seeds derived per position");
    assert_eq!(sets.images().await.len(), 20);
    let manifest: Value = serde_json::from_slice(
        &testkit::get_object(&sets.stack.sdk, MANIFEST)
            .await
            .unwrap(),
    )
    .unwrap();
    let entries = manifest["images"].as_array().unwrap();
    assert_eq!(entries.len(), 20);
    // Every image captioned, in the manifest and in the `.txt` beside it.
    for entry in entries {
        let caption = entry["caption"].as_str().expect("a caption");
        assert!(caption.contains("[trigger]"), "{entry}");
        let image_key = entry["s3_key"].as_str().unwrap();
        let caption_key = format!("{}.txt", image_key.trim_end_matches(".jpg"));
        let file = testkit::get_object(&sets.stack.sdk, &caption_key).await;
        assert_eq!(file.as_deref(), Some(caption.as_bytes()), "{caption_key}");
        assert_eq!(
            entry["created_by"], "jwt:artist-7",
            "the set's creator: {entry}"
        );
    }
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 20);
}

#[tokio::test]
async fn a_repeated_key_returns_the_same_set_and_pays_nothing_more() {
    let sets = Sets::start(&[]).await;
    let body = json!({"items": [{"prompt_id": "bw_charcoal"}, {"prompt": "the actor reading in a library", "seed": 5}]});
    let (status, first, _) = sets.create(&body, Some("set-key-1")).await;
    assert_eq!(status, 202, "{first}");
    let (status, again, headers) = sets.create(&body, Some("set-key-1")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(headers["idempotency-replayed"], "true", "{headers}");
    assert_eq!(again["set_id"], first["set_id"]);
    let other = json!({"count": 3});
    let (status, reused, _) = sets.create(&other, Some("set-key-1")).await;
    assert_eq!(status, 422, "{reused}");

    let worker = sets.worker(EventSourceSettings::default()).await;
    let set_id = first["set_id"].as_str().unwrap();
    let done = sets
        .progress_until(set_id, Duration::from_secs(120), final_status)
        .await;
    worker.stop().await;
    assert_eq!(done["counts"]["stored"], 2, "{done}");
    assert_eq!(done["items"][1]["seed"], 5);
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 2);
    let (status, listed, _) = sets
        .send(
            "training-sets-list-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["sets"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn a_set_over_the_per_actor_cap_is_refused_whole_and_another_actors_set_is_not_found() {
    let sets = Sets::start(&[("DAILY_GENERATION_CAP_PER_ACTOR", "5")]).await;
    let (status, refused, headers) = sets.create(&json!({"count": 6}), None).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "budget_exhausted");
    assert!(headers["retry-after"].is_string(), "{headers}");
    assert_eq!(sets.set_items().await, 0, "nothing written");
    assert_eq!(
        testkit::queue_depth(&sets.stack.sdk, &sets.queues.queue_url).await,
        (0, 0)
    );

    let (status, started, _) = sets.create(&json!({"count": 5}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap();
    let (status, hidden, _) = sets
        .send(
            "training-sets-progress-http-v2.json",
            "0001_another_actor",
            Some(set_id),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "{hidden}");
    assert_eq!(hidden["error"]["code"], "training_set_not_found");
    for file in [
        "training-sets-cancel-http-v2.json",
        "training-sets-retry-http-v2.json",
    ] {
        let (status, _, _) = sets
            .send(file, "0001_another_actor", Some(set_id), None, None)
            .await;
        assert_eq!(status, 404, "{file}");
    }
    assert_eq!(
        sets.progress(set_id).await["counts"]["queued"],
        5,
        "unchanged"
    );
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 0);
}

#[tokio::test]
async fn cancel_stops_paying_for_queued_items_and_cancels_running_predictions() {
    let sets = Sets::start(&[("DAILY_GENERATION_CAP_PER_ACTOR", "100")]).await;
    sets.stack
        .replicate
        .set_faults(json!({"never_finish": true}))
        .await;
    let (status, running, _) = sets.create(&json!({"count": 3}), None).await;
    assert_eq!(status, 202);
    let running_id = running["set_id"].as_str().unwrap().to_owned();
    let worker = sets.worker(EventSourceSettings::default()).await;
    sets.progress_until(&running_id, Duration::from_secs(120), |body| {
        body["counts"]["predicting"] == 3
            && body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["state"] == "predicting")
    })
    .await;
    let (status, canceled) = sets.cancel(&running_id).await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    let ended = sets
        .progress_until(&running_id, Duration::from_secs(120), final_status)
        .await;
    assert_eq!(ended["counts"]["canceled"], 3, "{ended}");
    let counts = sets.stack.replicate.counts().await;
    assert_eq!(counts.predictions_created, 3);
    assert_eq!(counts.cancel_requests, 3);

    worker.stop().await;

    // A set canceled before the worker took its items pays nothing at all.
    let (_, queued, _) = sets.create(&json!({"count": 4}), None).await;
    let queued_id = queued["set_id"].as_str().unwrap().to_owned();
    let (status, _) = sets.cancel(&queued_id).await;
    assert_eq!(status, 200);
    let worker = sets.worker(EventSourceSettings::default()).await;
    let ended = sets
        .progress_until(&queued_id, Duration::from_secs(30), final_status)
        .await;
    assert_eq!(ended["counts"]["canceled"], 4, "{ended}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.stop().await;
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 3);
    let budget = aws_sdk_dynamodb::Client::new(&sets.stack.sdk)
        .scan()
        .table_name(testkit::TABLE_NAME)
        .send()
        .await
        .unwrap();
    let actor_used: Vec<&AttributeValue> = budget
        .items()
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("ACTOR#"))
                && item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|pk| pk.starts_with("BUDGET#"))
        })
        .filter_map(|item| item.get("used"))
        .collect();
    assert_eq!(
        actor_used,
        [&AttributeValue::N("3".to_owned())],
        "the 4 canceled units given back"
    );
}

#[tokio::test]
async fn a_prediction_that_succeeds_as_its_set_is_canceled_is_stored() {
    let sets = Sets::start(&[]).await;
    sets.stack
        .replicate
        .set_faults(json!({"never_finish": true, "succeed_on_cancel": true}))
        .await;
    let (_, started, _) = sets.create(&json!({"count": 2}), None).await;
    let set_id = started["set_id"].as_str().unwrap().to_owned();
    let worker = sets.worker(EventSourceSettings::default()).await;
    sets.progress_until(&set_id, Duration::from_secs(120), |body| {
        body["counts"]["predicting"] == 2
            && body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["state"] == "predicting")
    })
    .await;
    let (status, _) = sets.cancel(&set_id).await;
    assert_eq!(status, 200);
    let ended = sets
        .progress_until(&set_id, Duration::from_secs(120), final_status)
        .await;
    worker.stop().await;
    assert_eq!(ended["counts"]["stored"], 2, "{ended}");
    assert_eq!(
        ended["status"], "done",
        "nothing was left to cancel: {ended}"
    );
    assert_eq!(sets.images().await.len(), 2);
    assert_eq!(sets.stack.replicate.counts().await.cancel_requests, 2);
}

#[tokio::test]
async fn retry_queues_the_failed_items_again_and_they_are_stored() {
    let sets = Sets::start(&[]).await;
    sets.stack
        .replicate
        .set_faults(json!({"fail_with": "NSFW content detected"}))
        .await;
    let (_, started, _) = sets.create(&json!({"count": 2}), None).await;
    let set_id = started["set_id"].as_str().unwrap().to_owned();
    let worker = sets.worker(EventSourceSettings::default()).await;
    let failed = sets
        .progress_until(&set_id, Duration::from_secs(120), final_status)
        .await;
    assert_eq!(failed["status"], "failed", "none stored: {failed}");
    assert!(
        failed["items"][0]["error"]
            .as_str()
            .unwrap()
            .contains("NSFW"),
        "{failed}"
    );

    sets.stack.replicate.set_faults(json!({})).await;
    let (status, retried, _) = sets
        .send(
            "training-sets-retry-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            Some(&set_id),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["counts"]["queued"], 2, "{retried}");
    let done = sets
        .progress_until(&set_id, Duration::from_secs(120), |body| {
            body["status"] == "done" && body["counts"]["stored"] == 2
        })
        .await;
    worker.stop().await;
    assert!(
        done["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["error"].is_null()),
        "{done}"
    );
    assert_eq!(
        sets.stack.replicate.counts().await.predictions_created,
        4,
        "2 failed, 2 stored"
    );
    assert_eq!(sets.images().await.len(), 2);
}

#[tokio::test]
async fn an_items_own_caption_is_its_images_caption() {
    let sets = Sets::start(&[]).await;
    let body = json!({"items": [
        {"prompt": "a knight in armour at dawn", "caption": "[trigger] as a knight, dawn light"},
        {"prompt_id": "bw_woodcut"},
    ]});
    let (status, started, _) = sets.create(&body, None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap().to_owned();
    let worker = sets.worker(EventSourceSettings::default()).await;
    let done = sets
        .progress_until(&set_id, Duration::from_secs(120), final_status)
        .await;
    worker.stop().await;
    assert_eq!(done["counts"]["stored"], 2, "{done}");
    let manifest: Value = serde_json::from_slice(
        &testkit::get_object(&sets.stack.sdk, MANIFEST)
            .await
            .unwrap(),
    )
    .unwrap();
    let mut captions: Vec<&str> = manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["caption"].as_str().unwrap())
        .collect();
    captions.sort_unstable();
    let woodcut = shared::domain::prompts::preset("bw_woodcut")
        .unwrap()
        .caption;
    assert_eq!(captions, ["[trigger] as a knight, dawn light", woodcut]);
}
