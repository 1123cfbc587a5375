//! Captions through the real `generate-single` binary (runtime interface emulator, moto, the
//! Replicate emulator): every stored image has its caption in the manifest and in the `.txt`
//! beside it, and a `.txt` the service did not write is never overwritten.

mod common;

use common::{FOLDER, Stack, manifest};
use serde_json::{Value, json};
use shared::domain::prompts::preset;
use testkit::status_and_body;

const ACTOR: &str = "0000_european_16_male";

async fn generate(stack: &Stack, body: Option<&Value>) -> Value {
    let event = testkit::event("generate-single-http-v2.json");
    let event = match body {
        Some(body) => testkit::with_json_body(event, body),
        None => event,
    };
    let (status, body) = status_and_body(&stack.function.invoke(&event).await);
    assert_eq!(status, 200, "{body}");
    body
}

async fn caption_file(stack: &Stack, index: u64) -> Option<String> {
    testkit::get_object(&stack.sdk, &format!("{FOLDER}{ACTOR}_{index}.txt"))
        .await
        .map(|bytes| String::from_utf8(bytes).expect("a UTF-8 caption"))
}

#[tokio::test]
async fn every_stored_image_has_its_caption_listed_and_beside_it() {
    let stack = Stack::with_settings(&[]).await;
    let charcoal = generate(&stack, None).await;
    let expected = preset("bw_charcoal").expect("the preset").caption;
    assert_eq!(charcoal["caption"], expected);
    assert_eq!(charcoal["caption_file_written"], true);
    assert!(!expected.contains("Keep the exact face") && !expected.contains("man"));
    assert_eq!(caption_file(&stack, 1).await.as_deref(), Some(expected));

    let custom = json!({"prompt": "a knight in armour at dawn, oil painting", "seed": 3});
    let knight = generate(&stack, Some(&custom)).await;
    assert_eq!(
        knight["caption"],
        "[trigger], a knight in armour at dawn, oil painting"
    );
    assert_eq!(
        caption_file(&stack, 2).await.as_deref(),
        knight["caption"].as_str()
    );

    let listed: Vec<Value> = manifest(&stack.sdk).await.expect("a manifest")["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|entry| entry["caption"].clone())
        .collect();
    assert_eq!(
        listed,
        [charcoal["caption"].clone(), knight["caption"].clone()]
    );
}

#[tokio::test]
async fn a_caption_file_the_service_did_not_write_is_left_alone() {
    let stack = Stack::with_settings(&[]).await;
    let theirs = b"written by hand".to_vec();
    testkit::put_object(
        &stack.sdk,
        &format!("{FOLDER}{ACTOR}_1.txt"),
        theirs.clone(),
        "text/plain",
    )
    .await;
    let body = generate(&stack, None).await;
    assert_eq!(body["index"], 1);
    assert_eq!(body["caption_file_written"], false, "{body}");
    assert!(body["caption_file_error"].is_string(), "{body}");
    assert_eq!(
        caption_file(&stack, 1).await.map(String::into_bytes),
        Some(theirs)
    );
    let listed = &manifest(&stack.sdk).await.expect("a manifest")["images"][0];
    assert_eq!(listed["caption"], body["caption"]);
}
