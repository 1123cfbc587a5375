//! trainings through the real binaries: the routes and the queue of `trainings`, the exports'
//! queue of `training-export`, Replicate's signed webhooks through `replicate-webhook`, and
//! the `reconciler`, over moto and the Replicate emulator (which fetches the export's zip
//! and checks it, as the trainer would).

mod kit;

use std::time::Duration;

use kit::{ACTOR, PRICE_PER_SECOND, TRAINER_VERSION, TrainingStack, id_of, received};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The destination the tests' pattern gives the sample actor.
const DESTINATION: &str = "studio/lora-0000_european_16_male";

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

#[tokio::test]
async fn a_training_of_the_kept_images_ends_with_its_weights_in_s3_its_lora_and_the_manifest() {
    let t = TrainingStack::start(&[]).await;
    t.seed(14, 12).await;
    t.stack
        .replicate
        .set_faults(json!({"training_processing_ms": 300, "duplicate_webhooks": true}))
        .await;
    let profile = t.item(&format!("ACTOR#{ACTOR}"), "PROFILE").await;

    let body = json!({"trigger_word": "ZARA"});
    let (status, accepted) = t.start_training(&body, Some("first-lora")).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "exporting", "the export is made first");
    assert_eq!(accepted["destination"], DESTINATION);
    let id = id_of(&accepted);
    assert!(
        accepted["status_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/trainings/{id}"))
    );
    let (again, replay) = t.start_training(&body, Some("first-lora")).await;
    assert_eq!(
        (again, id_of(&replay)),
        (202, id.clone()),
        "the same key, the same training"
    );

    let done = t.ended(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["predict_time_seconds"], 1234.5);
    assert_eq!(
        done["cost_usd"],
        json!((1234.5 * PRICE_PER_SECOND * 1e4_f64).round() / 1e4)
    );
    assert!(
        done["logs"].as_str().is_some_and(|logs| !logs.is_empty()),
        "{done}"
    );
    let version = done["result"]["version"]
        .as_str()
        .expect("a version")
        .to_owned();
    assert!(version.starts_with(&format!("{DESTINATION}:")), "{version}");
    let weights_key = format!("system_actors/loras/{ACTOR}/{id}.tar");
    assert_eq!(done["result"]["weights_key"], weights_key.as_str());

    // What Replicate got: the export of the 12 kept images, captioned with the word.
    let trainings = received(&t).await;
    assert_eq!(trainings.len(), 1, "{trainings:?}");
    let sent = &trainings[0];
    assert_eq!(sent["model"], "ostris/flux-dev-lora-trainer");
    assert_eq!(sent["version"], TRAINER_VERSION);
    assert_eq!(sent["destination"], DESTINATION);
    assert_eq!(sent["input"]["trigger_word"], "ZARA");
    assert_eq!(sent["input"]["autocaption"], false);
    assert_eq!(sent["input"]["steps"], 1000);
    assert_eq!(sent["input"]["lora_rank"], 16);
    assert!(
        sent["webhook"]
            .as_str()
            .unwrap()
            .ends_with("/api/webhooks/replicate")
    );
    assert_eq!(sent["zip"]["images"], 12, "{}", sent["zip"]);
    let captions = sent["zip"]["captions"].as_object().expect("captions");
    assert_eq!(captions.len(), 12);
    for n in 1..=12 {
        assert_eq!(
            captions[&format!("{ACTOR}_{n}.txt")],
            format!("ZARA, ink sketch number {n}, plain background")
        );
    }
    let counts = t.stack.replicate.counts().await;
    assert_eq!((counts.models_created, counts.trainings_created), (1, 1));
    assert!(
        counts.webhooks_accepted >= 2,
        "each copy of the webhook was taken: {counts:?}"
    );
    assert_eq!(
        counts.weights_requests_with_authorization, 0,
        "no token leaves for an output host"
    );

    // The weights are ours now, byte for byte.
    let replicate_id = done["replicate_training_id"].as_str().unwrap();
    let served = reqwest::get(format!(
        "{}/files/trainings/{replicate_id}/trained_model.tar",
        t.stack.replicate.base_url()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let kept = testkit::get_object(&t.stack.sdk, &weights_key)
        .await
        .expect("the weights in S3");
    assert_eq!(sha256(&kept), sha256(&served));

    let lora = t
        .item(&format!("ACTOR#{ACTOR}"), "LORA")
        .await
        .expect("the LoRA record");
    assert_eq!(lora["version"], version.as_str());
    assert_eq!(lora["weights_key"], weights_key.as_str());
    assert_eq!(lora["training_id"], id.as_str());
    assert_eq!(lora["trigger_word"], "ZARA");
    assert!(
        lora["trained_at"]
            .as_str()
            .is_some_and(|at| at.starts_with("20"))
    );
    assert_eq!(
        t.item(&format!("ACTOR#{ACTOR}"), "PROFILE").await,
        profile,
        "the profile is the operators'"
    );
    assert_eq!(
        t.item(&format!("ACTOR#{ACTOR}"), "TRAINING_LOCK").await,
        None,
        "the actor is free"
    );

    let manifest: Value = serde_json::from_slice(
        &testkit::get_object(&t.stack.sdk, &testkit::curated::manifest_key())
            .await
            .expect("the manifest"),
    )
    .unwrap();
    assert_eq!(
        manifest["images"].as_array().unwrap().len(),
        15,
        "the images stay listed"
    );
    assert_eq!(
        manifest["trainings"].as_array().unwrap().len(),
        1,
        "listed once"
    );
    let listed = &manifest["trainings"][0];
    assert_eq!(listed["training_id"], id.as_str());
    assert_eq!(listed["status"], "succeeded");
    assert_eq!(listed["version"], version.as_str());
    assert_eq!(listed["weights_key"], weights_key.as_str());

    // A second training from the same export: no new export, and its captions' word.
    let export_id = done["export_id"].as_str().unwrap();
    let other_word = json!({"export_id": export_id, "trigger_word": "OTHER"});
    let (status, mismatch) = t.start_training(&other_word, None).await;
    assert_eq!(status, 400, "{mismatch}");
    assert_eq!(mismatch["error"]["code"], "invalid_request");
    let (status, second) = t
        .start_training(&json!({"export_id": export_id}), None)
        .await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["export_id"], export_id);
    assert_eq!(t.ended(&id_of(&second)).await["status"], "succeeded");
    assert_eq!(t.keys_starting("EXPORT#").await.len(), 1);
    let trainings = received(&t).await;
    assert_eq!(trainings.len(), 2);
    assert_eq!(
        trainings[1]["input"]["trigger_word"], "ZARA",
        "the export's word"
    );
    assert_eq!(trainings[1]["zip"]["names"], trainings[0]["zip"]["names"]);
    t.stop().await;
}

#[tokio::test]
async fn one_training_at_a_time_a_cap_that_calls_nothing_and_a_kill_switch() {
    let t = TrainingStack::start(&[("DAILY_TRAINING_CAP", "1")]).await;
    t.seed(12, 12).await;
    t.stack
        .replicate
        .set_faults(json!({"training_never_finish": true}))
        .await;
    let (status, accepted) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = id_of(&accepted);
    let running = t
        .until(&id, Duration::from_secs(60), |body| {
            body["status"] == "processing"
        })
        .await;
    assert!(running["replicate_training_id"].is_string(), "{running}");

    let (status, refused) = t.start_training(&json!({"steps": 500}), None).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "training_running");
    assert!(refused["error"]["message"].as_str().unwrap().contains(&id));
    assert_eq!(t.stack.replicate.counts().await.training_create_requests, 1);
    assert_eq!(
        t.keys_starting("EXPORT#").await.len(),
        1,
        "no second export"
    );

    let (status, canceling) = t.cancel(&id).await;
    assert_eq!(status, 202, "{canceling}");
    let canceled = t.ended(&id).await;
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    assert_eq!(
        t.item(&format!("ACTOR#{ACTOR}"), "TRAINING_LOCK").await,
        None
    );
    let (status, ended) = t.cancel(&id).await;
    assert_eq!(
        (status, &ended["error"]["code"]),
        (409, &json!("training_ended"))
    );

    // It ran, so it counted: the cap of 1 is used, and the next is refused before any call.
    let (status, capped) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 429, "{capped}");
    assert_eq!(capped["error"]["code"], "budget_exhausted");
    assert_eq!(t.stack.replicate.counts().await.training_create_requests, 1);
    assert_eq!(t.keys_starting("EXPORT#").await.len(), 1);
    assert_eq!(
        t.item(&format!("ACTOR#{ACTOR}"), "TRAINING_LOCK").await,
        None,
        "a refusal holds nothing"
    );

    testkit::put_kill_switch(&t.stack.sdk, true).await;
    let (status, off) = t.start_training(&json!({}), None).await;
    assert_eq!(
        (status, &off["error"]["code"]),
        (503, &json!("generation_disabled"))
    );
    t.stop().await;
}

#[tokio::test]
async fn a_training_replicate_refuses_fails_frees_the_actor_and_gives_its_unit_back() {
    let t = TrainingStack::start(&[("DAILY_TRAINING_CAP", "1")]).await;
    t.seed(12, 12).await;
    t.stack
        .replicate
        .set_faults(json!({"reject_training_creates": 1, "training_reject_status": 402}))
        .await;
    let (status, accepted) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "{accepted}");
    let failed = t.ended(&id_of(&accepted)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("402"),
        "{failed}"
    );
    assert_eq!(failed["cost_usd"], Value::Null);
    assert_eq!(t.stack.replicate.counts().await.trainings_created, 0);

    // Nothing was billed: the unit came back, so the cap of 1 admits the next.
    let (status, next) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "{next}");
    assert_eq!(t.ended(&id_of(&next)).await["status"], "succeeded");
    t.stop().await;
}

#[tokio::test]
async fn the_kill_switch_stops_a_training_accepted_before_it_and_gives_its_unit_back() {
    let t = TrainingStack::start(&[("DAILY_TRAINING_CAP", "1")]).await;
    t.seed(12, 12).await;
    let (status, accepted) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "{accepted}");
    // Switched off while its export is written (a second or so): it must not pay.
    testkit::put_kill_switch(&t.stack.sdk, true).await;
    let stopped = t.ended(&id_of(&accepted)).await;
    assert_eq!(stopped["status"], "failed", "{stopped}");
    assert!(
        stopped["error"].as_str().unwrap().contains("switched off"),
        "{stopped}"
    );
    assert_eq!(t.stack.replicate.counts().await.training_create_requests, 0);

    testkit::put_kill_switch(&t.stack.sdk, false).await;
    let (status, next) = t.start_training(&json!({}), None).await;
    assert_eq!(status, 202, "the unit came back under the cap of 1: {next}");
    t.stop().await;
}
