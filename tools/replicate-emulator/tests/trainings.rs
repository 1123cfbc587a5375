//! The trainings and models APIs over real HTTP: the emulator on a free loopback port, the
//! input zips and a webhook receiver served by a tiny local server of the test's own
//! (`common`).

mod common;

use std::time::Duration;

use common::{Harness, TOKEN, signed, untar};
use replicate_emulator::Counts;
use serde_json::{Value, json};

#[tokio::test]
async fn models_are_created_once_and_read_back() {
    let h = Harness::start().await;
    let (status, absent) = h.call("GET", "/v1/models/me/lora", None).await;
    assert_eq!(status, 404, "{absent}");
    let (status, created) = h.create_model("me", "lora").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["owner"], "me");
    assert_eq!(created["visibility"], "private");
    assert_eq!(created["latest_version"], Value::Null);
    let (status, read) = h.call("GET", "/v1/models/me/lora", None).await;
    assert_eq!((status, &read["name"]), (200, &json!("lora")));
    let (status, again) = h.create_model("me", "lora").await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["title"], "Conflict");
    assert_eq!(again["detail"], "A model with that name already exists");
    let (status, bad) = h.create_model("me", "Bad Name").await;
    assert_eq!(status, 422, "{bad}");
    let no_hardware = json!({"owner": "me", "name": "x", "visibility": "private"});
    let (status, _) = h.call("POST", "/v1/models", Some(no_hardware)).await;
    assert_eq!(status, 422);
    let unauthorized = h.client.get(h.url("/v1/models/me/lora")).send().await;
    assert_eq!(unauthorized.expect("an answer").status(), 401);
    let counts = h.counts().await;
    assert_eq!(
        (
            counts.model_get_requests,
            counts.model_create_requests,
            counts.models_created
        ),
        (3, 4, 1)
    );
}

#[tokio::test]
async fn bad_destinations_and_zips_create_nothing() {
    let h = Harness::start().await;
    let (status, missing) = h.train("/good.zip", json!({}), false).await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(
        missing["detail"],
        "The specified destination does not exist"
    );
    h.create_model("me", "lora").await;
    let refused = [
        (
            "/uncaptioned.zip",
            "input_images: b.jpg has no caption b.txt",
        ),
        ("/forbidden.zip", "(status 403)"),
        ("/not-a.zip", "input_images: not a zip"),
    ];
    for (zip, detail) in refused {
        let (status, answer) = h.train(zip, json!({"autocaption": false}), false).await;
        assert_eq!(status, 422, "{zip}: {answer}");
        assert_eq!(answer["title"], "Input validation failed");
        let said = answer["detail"].as_str().unwrap_or_default();
        assert!(said.contains(detail), "{zip}: {said}");
    }
    assert_eq!(h.counts().await.trainings_created, 0);
    assert_eq!(h.admin_trainings().await, json!([]));
    // With autocaption, captions are not needed.
    let (status, answer) = h.train("/uncaptioned.zip", json!({}), false).await;
    assert_eq!(status, 201, "{answer}");
    let counts = h.counts().await;
    assert_eq!(
        (counts.training_create_requests, counts.trainings_created),
        (5, 1)
    );
}

#[tokio::test]
async fn a_training_succeeds_serves_its_weights_and_is_told_once() {
    let h = Harness::start().await;
    h.create_model("me", "lora").await;
    h.set_faults(json!({
        "training_starting_ms": 150, "training_processing_ms": 500,
        "training_weights_bytes": 100_000, "training_predict_time_secs": 42.5,
    }))
    .await;
    let input = json!({"autocaption": false, "trigger_word": "SAMPLEACTOR", "steps": 800});
    let (status, created) = h.train("/good.zip", input, true).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "starting");
    assert_eq!(created["model"], "ostris/flux-dev-lora-trainer");
    assert_eq!(created["version"], "abc123");
    assert_eq!(
        (&created["output"], created.get("metrics")),
        (&Value::Null, None)
    );
    let id = created["id"].as_str().expect("an id").to_owned();
    assert!(id.starts_with("trn"), "{id}");
    assert!(
        created["urls"]["get"]
            .as_str()
            .is_some_and(|u| u.ends_with(&id))
    );

    let processing = h.wait_for(&id, "processing").await;
    assert!(processing["started_at"].is_string(), "{processing}");
    assert!(
        processing["logs"]
            .as_str()
            .is_some_and(|l| l.contains("flux_train_replicate:  0/800"))
    );
    let done = h.wait_for(&id, "succeeded").await;
    let version = done["output"]["version"].as_str().expect("a version");
    let hash = version
        .strip_prefix("me/lora:")
        .expect("the destination's version");
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    let weights = done["output"]["weights"].as_str().expect("weights");
    assert_eq!(
        weights,
        h.url(&format!("/files/trainings/{id}/trained_model.tar"))
    );
    assert_eq!(done["metrics"]["predict_time"], 42.5);
    assert!(
        done["completed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(done["logs"].as_str().is_some_and(|l| l.contains("800/800")));
    let (_, model) = h.call("GET", "/v1/models/me/lora", None).await;
    assert_eq!(model["latest_version"]["id"], hash);
    let (_, list) = h.call("GET", "/v1/trainings", None).await;
    assert_eq!(list["results"][0]["id"], id.as_str());

    let tar = h.client.get(weights).send().await.expect("the weights");
    assert_eq!(tar.status(), 200);
    assert_eq!(tar.headers()["content-type"], "application/x-tar");
    let files = untar(&tar.bytes().await.expect("the tar"));
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["lora.safetensors", "config.yaml"]);
    assert_eq!(files[0].1.len(), 100_000);
    let config = String::from_utf8_lossy(&files[1].1);
    assert!(
        config.contains("SAMPLEACTOR") && config.contains("steps: 800"),
        "{config}"
    );
    let leaked = h.client.get(weights).bearer_auth(TOKEN).send().await;
    assert_eq!(leaked.expect("the weights").status(), 200);
    let counts = h.counts().await;
    assert_eq!(
        (
            counts.weights_requests,
            counts.weights_requests_with_authorization
        ),
        (2, 1)
    );

    let deliveries = h.deliveries(1).await;
    assert_eq!(deliveries.len(), 1, "one webhook");
    assert!(
        signed(h.emulator.webhook_secret(), &deliveries[0]),
        "a signed webhook"
    );
    let told: Value = serde_json::from_str(&deliveries[0].1).expect("webhook JSON");
    assert_eq!(
        (&told["id"], &told["status"]),
        (&json!(id), &json!("succeeded"))
    );

    let received = h.admin_trainings().await;
    let zip = &received[0]["zip"];
    assert_eq!(
        zip["names"],
        json!(["a.jpg", "a.txt", "b.png", "b.txt", "dataset.json"])
    );
    assert_eq!(zip["images"], 2);
    assert_eq!(zip["captions"]["b.txt"], "TOK at the beach");
    assert_eq!(zip["dataset"]["actor"], "sample");
    assert_eq!(received[0]["destination"], "me/lora");
    assert_eq!(received[0]["input"]["trigger_word"], "SAMPLEACTOR");
}

#[tokio::test]
async fn a_never_finishing_training_is_canceled_and_told() {
    let h = Harness::start().await;
    h.create_model("me", "lora").await;
    h.set_faults(json!({"training_never_finish": true})).await;
    let (_, created) = h.train("/good.zip", json!({}), true).await;
    let id = created["id"].as_str().expect("an id").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, still) = h.call("GET", &format!("/v1/trainings/{id}"), None).await;
    assert_eq!(still["status"], "processing");
    let (status, canceled) = h
        .call("POST", &format!("/v1/trainings/{id}/cancel"), None)
        .await;
    assert_eq!((status, &canceled["status"]), (200, &json!("canceled")));
    let ran = canceled["metrics"]["predict_time"]
        .as_f64()
        .expect("a predict time");
    assert!((0.25..5.0).contains(&ran), "{ran}");
    let deliveries = h.deliveries(1).await;
    assert_eq!(deliveries.len(), 1);
    assert!(signed(h.emulator.webhook_secret(), &deliveries[0]));
    assert!(
        deliveries[0].1.contains(r#""status":"canceled""#),
        "{}",
        deliveries[0].1
    );
    let (_, again) = h
        .call("POST", &format!("/v1/trainings/{id}/cancel"), None)
        .await;
    assert_eq!(
        again["metrics"]["predict_time"],
        canceled["metrics"]["predict_time"]
    );
    let weights = h
        .client
        .get(h.url(&format!("/files/trainings/{id}/trained_model.tar")));
    assert_eq!(weights.send().await.expect("an answer").status(), 404);

    // Canceled while starting: it never ran.
    h.set_faults(json!({"training_starting_ms": 60_000})).await;
    let (_, created) = h.train("/good.zip", json!({}), false).await;
    let path = format!(
        "/v1/trainings/{}/cancel",
        created["id"].as_str().expect("an id")
    );
    let (_, canceled) = h.call("POST", &path, None).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["metrics"]["predict_time"], 0.0);
    assert_eq!(canceled["started_at"], Value::Null);
    assert_eq!(h.counts().await.training_cancel_requests, 3);
}

#[tokio::test]
async fn switches_refuse_fail_release_and_reset() {
    let h = Harness::start().await;
    h.create_model("me", "lora").await;
    h.set_faults(json!({
        "unavailable_training_creates": 1, "reject_training_creates": 1,
        "training_reject_status": 402, "training_fail_with": "CUDA out of memory",
    }))
    .await;
    let (status, _) = h.train("/good.zip", json!({}), false).await;
    assert_eq!(status, 503);
    let (status, refused) = h.train("/good.zip", json!({}), false).await;
    assert_eq!(
        (status, &refused["title"]),
        (402, &json!("Insufficient credit"))
    );
    assert_eq!(h.counts().await.trainings_created, 0);
    let (status, created) = h.train("/good.zip", json!({}), false).await;
    assert_eq!(status, 201, "{created}");
    let failed = h
        .wait_for(created["id"].as_str().expect("an id"), "failed")
        .await;
    assert_eq!(failed["error"], "CUDA out of memory");
    assert_eq!(failed["output"], Value::Null);

    h.set_faults(json!({"training_never_finish": true, "training_weights_gone": true}))
        .await;
    let (_, created) = h.train("/good.zip", json!({}), false).await;
    let id = created["id"].as_str().expect("an id").to_owned();
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.set_faults(json!({"training_weights_gone": true})).await;
    let done = h.wait_for(&id, "succeeded").await;
    let weights = done["output"]["weights"].as_str().expect("weights");
    let gone = h.client.get(weights).send().await.expect("an answer");
    assert_eq!(gone.status(), 404);

    let (_, list) = h.call("GET", "/v1/trainings", None).await;
    assert_eq!(list["results"].as_array().map(Vec::len), Some(2));
    let reset = h.client.post(h.url("/admin/reset")).send().await;
    assert_eq!(reset.expect("reset").status(), 204);
    assert_eq!(h.counts().await, Counts::default());
    let (status, _) = h.call("GET", "/v1/models/me/lora", None).await;
    assert_eq!(status, 404);
    let (status, _) = h.call("GET", &format!("/v1/trainings/{id}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(h.admin_trainings().await, json!([]));
}
