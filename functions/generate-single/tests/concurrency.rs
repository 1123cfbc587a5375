//! 25 clicks at once for one actor, each in its own execution environment (its own runtime
//! interface emulator and bootstrap process), against a moto that serializes requests (so the
//! races tested are the service's, not moto's).

mod common;

use common::{FOLDER, MANIFEST, start_function};
use serde_json::{Value, json};
use testkit::GenerationStack;

const ENVIRONMENTS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_five_concurrent_clicks_take_each_index_once() {
    let stack = GenerationStack::start_serialized().await;
    let (sdk, replicate) = (&stack.sdk, &stack.replicate);
    let before =
        json!({"actor": "0000_european_16_male", "trainer": {"steps": 1500}, "images": []});
    testkit::put_object(
        sdk,
        MANIFEST,
        before.to_string().into_bytes(),
        "application/json",
    )
    .await;

    // Predictions overlap: each takes 300 ms inside the emulator.
    replicate.set_faults(json!({"processing_ms": 300})).await;
    let env = stack.function_env();
    let mut environments = Vec::new();
    for _ in 0..ENVIRONMENTS {
        environments.push(start_function(&env).await);
    }
    let environments = std::sync::Arc::new(environments);

    let mut clicks = tokio::task::JoinSet::new();
    for slot in 0..ENVIRONMENTS {
        let environments = environments.clone();
        clicks.spawn(async move {
            let event = testkit::event("generate-single-http-v2.json");
            environments[slot].invoke(&event).await
        });
    }
    let mut indices = Vec::new();
    while let Some(answer) = clicks.join_next().await {
        let answer = answer.expect("click task");
        let body: Value =
            serde_json::from_str(answer["body"].as_str().expect("body")).expect("JSON");
        assert_eq!(answer["statusCode"], 200, "{body}");
        assert_eq!(body["manifest_updated"], true, "{body}");
        indices.push(body["index"].as_u64().expect("index"));
    }
    indices.sort_unstable();
    assert_eq!(indices, (1..=ENVIRONMENTS as u64).collect::<Vec<_>>());

    let keys = testkit::list_keys(sdk, FOLDER).await;
    let images = keys.iter().filter(|k| k.ends_with(".jpg")).count();
    assert_eq!(images, ENVIRONMENTS, "{keys:?}");

    let manifest = common::manifest(sdk).await.expect("manifest");
    assert_eq!(manifest["actor"], "0000_european_16_male");
    assert_eq!(manifest["trainer"], json!({"steps": 1500}));
    let mut listed: Vec<u64> = manifest["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|entry| entry["index"].as_u64().expect("entry index"))
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, (1..=ENVIRONMENTS as u64).collect::<Vec<_>>());
    assert_eq!(
        replicate.counts().await.predictions_created,
        ENVIRONMENTS as u32
    );
}
