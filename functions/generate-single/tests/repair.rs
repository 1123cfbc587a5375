//! The operators' repair of a manifest, through the real binary: images the manifest misses
//! are listed again from their object metadata; a file the service did not write is named,
//! never listed; a second repair changes nothing.

mod common;

use common::{FOLDER, MANIFEST, Stack};
use serde_json::{Value, json};

fn repair() -> Value {
    json!({"action": "repair_manifest", "actor_name": "0000_european_16_male"})
}

#[tokio::test]
async fn a_manifest_that_lost_entries_is_rebuilt_from_the_images_metadata() {
    let stack = Stack::with_settings(&[]).await;
    let mut job =
        json!({"actor_id": "0000_european_16_male", "prompt_id": "bw_charcoal", "seed": 42});
    let first = stack.function.invoke(&job).await;
    job["prompt_id"] = json!("bw_woodcut");
    let second = stack.function.invoke(&job).await;
    assert_eq!(
        (first["index"].as_u64(), second["index"].as_u64()),
        (Some(1), Some(2)),
        "{first} {second}"
    );
    let original = common::manifest(&stack.sdk).await.unwrap();

    // The manifest loses its second entry (a bad hand edit); a file is copied in by hand.
    let mut damaged = original.clone();
    damaged["images"].as_array_mut().unwrap().truncate(1);
    damaged["notes"] = json!("kept");
    testkit::put_object(
        &stack.sdk,
        MANIFEST,
        serde_json::to_vec(&damaged).unwrap(),
        "application/json",
    )
    .await;
    let stray = format!("{FOLDER}0000_european_16_male_9.jpg");
    testkit::put_object(&stack.sdk, &stray, testkit::sample_jpeg(8, 8), "image/jpeg").await;

    let answer = stack.function.invoke(&repair()).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["added"], json!([second["s3_key"]]), "{answer}");
    assert_eq!(answer["not_ours"], json!([stray]), "{answer}");
    let repaired = common::manifest(&stack.sdk).await.unwrap();
    assert_eq!(repaired["notes"], "kept");
    let entries = repaired["images"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for field in [
        "index",
        "filename",
        "s3_key",
        "prompt_id",
        "category",
        "prompt",
        "seed",
        "prediction_id",
        "model",
        "created_at",
    ] {
        assert_eq!(entries[1][field], original["images"][1][field], "{field}");
    }

    let again = stack.function.invoke(&repair()).await;
    assert_eq!(again["added"], json!([]), "{again}");
    assert_eq!(
        common::manifest(&stack.sdk).await.unwrap(),
        repaired,
        "a second repair rewrote it"
    );
}

#[tokio::test]
async fn a_repair_without_an_actor_name_is_refused() {
    let stack = Stack::with_settings(&[]).await;
    for event in [
        json!({"action": "repair_manifest"}),
        json!({"action": "repair_manifest", "actor_name": "../x"}),
        json!({"action": "rebuild"}),
    ] {
        let answer = stack.function.invoke(&event).await;
        assert_eq!(answer["errorType"], "invalid_request", "{event}: {answer}");
    }
    assert!(common::manifest(&stack.sdk).await.is_none());
}
