//! The training-data routes through the real binaries under the runtime interface emulator,
//! beside the real generate-single, over moto (answering one request at a time, so that its
//! conditional writes are atomic) and the Replicate emulator: the listing, keep and reject,
//! caption edits and their caption files, legacy entries, and decisions racing generations.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use shared::usecases::concurrently::all;
use testkit::{GenerationStack, LambdaEmulator, SAMPLE_ACTOR, status_and_body};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_training-data");
const ACTOR: &str = SAMPLE_ACTOR.actor_id;

fn folder() -> String {
    format!("system_actors/training_data/{ACTOR}/")
}

fn manifest_key() -> String {
    format!("{}response.json", folder())
}

/// generate-single's binary, built beside this one by `cargo build --workspace --bins`.
fn generate_single() -> PathBuf {
    let path = Path::new(BOOTSTRAP).with_file_name("generate-single");
    assert!(path.exists(), "{} is missing: build it", path.display());
    path
}

/// A manifest with `legacy` old entries: URL strings and objects without an index.
async fn put_legacy_manifest(stack: &GenerationStack, legacy: usize) -> Vec<Value> {
    let entries: Vec<Value> = (1..=legacy)
        .map(|n| {
            let url = format!("https://legacy.example/{}old_{n}.jpg", folder());
            if n % 2 == 1 {
                json!(url)
            } else {
                json!({"s3_url": url, "note": "hand-made"})
            }
        })
        .collect();
    let manifest = json!({"actor": ACTOR, "images": entries});
    testkit::put_object(
        &stack.sdk,
        &manifest_key(),
        serde_json::to_vec_pretty(&manifest).unwrap(),
        "application/json",
    )
    .await;
    entries
}

async fn manifest(stack: &GenerationStack) -> Value {
    let bytes = testkit::get_object(&stack.sdk, &manifest_key())
        .await
        .expect("a manifest");
    serde_json::from_slice(&bytes).expect("manifest JSON")
}

/// One image through generate-single, asked for by the artist `artist-7` (the JWT's subject,
/// as API Gateway's authorizer passes it).
async fn generate(function: &LambdaEmulator) -> Value {
    let mut event = testkit::event("generate-single-http-v2.json");
    event["requestContext"]["authorizer"] =
        json!({"jwt": {"claims": {"sub": "artist-7"}, "scopes": null}});
    let (status, body) = status_and_body(&function.invoke(&event).await);
    assert_eq!(status, 200, "{body}");
    body
}

async fn list(function: &LambdaEmulator, query: &[(&str, &str)]) -> (u64, Value) {
    let mut event = testkit::event("training-data-list-http-v2.json");
    let parameters: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    event["rawQueryString"] = json!(
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    event["queryStringParameters"] = Value::Object(parameters);
    status_and_body(&function.invoke(&event).await)
}

async fn decide(function: &LambdaEmulator, filename: &str, body: &Value) -> (u64, Value) {
    let mut event =
        testkit::with_json_body(testkit::event("training-data-decide-http-v2.json"), body);
    let path = format!("/api/actors/{ACTOR}/training-data/images/{filename}");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["filename"] = json!(filename);
    status_and_body(&function.invoke(&event).await)
}

fn filenames(page: &Value) -> Vec<String> {
    page["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|image| image["filename"].as_str().expect("a filename").to_owned())
        .collect()
}

#[tokio::test]
async fn images_are_listed_kept_rejected_and_recaptioned_and_legacy_entries_stay_as_they_were() {
    let stack = GenerationStack::start_serialized().await;
    let legacy = put_legacy_manifest(&stack, 2).await;
    let env = stack.function_env();
    let generator = LambdaEmulator::start(&generate_single(), &env).await;
    let data = LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await;
    for _ in 0..2 {
        generate(&generator).await;
    }

    let (status, page) = list(&data, &[]).await;
    assert_eq!(status, 200, "{page}");
    let newest_first = [
        format!("{ACTOR}_2.jpg"),
        format!("{ACTOR}_1.jpg"),
        "old_2.jpg".into(),
        "old_1.jpg".into(),
    ];
    assert_eq!(filenames(&page), newest_first);
    assert_eq!(
        page["counts"],
        json!({"new": 4, "kept": 0, "rejected": 0, "total": 4})
    );
    let word = page["trigger_word"].as_str().expect("a trigger word");
    assert!(
        word.starts_with("0000european_"),
        "derived from the name: {word}"
    );
    let newest = &page["images"][0];
    assert_eq!(newest["index"], 2);
    assert_eq!(newest["status"], "new");
    assert_eq!(newest["prompt_id"], "bw_charcoal");
    assert!(newest["caption"].as_str().unwrap().contains("[trigger]"));
    assert!(
        newest["preview_url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature")
    );
    assert!(newest["created_at"].is_string());
    assert_eq!(
        newest["created_by"], "jwt:artist-7",
        "the JWT subject that asked"
    );
    assert_eq!(page["images"][3]["index"], Value::Null);
    assert_eq!(page["next_cursor"], Value::Null);

    let (status, kept) = decide(&data, &format!("{ACTOR}_1.jpg"), &json!({"status": "kept"})).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["status"], "kept");
    assert_eq!(kept["decided_by"], "jwt:artist-7");
    let (status, _) = decide(&data, "old_1.jpg", &json!({"status": "rejected"})).await;
    assert_eq!(status, 200);
    let (status, _) = decide(
        &data,
        "old_2.jpg",
        &json!({"status": "kept", "caption": "[trigger] by hand"}),
    )
    .await;
    assert_eq!(status, 200);
    let edited = "[trigger] in charcoal, corrected";
    let (status, recaptioned) = decide(
        &data,
        &format!("{ACTOR}_2.jpg"),
        &json!({"caption": edited}),
    )
    .await;
    assert_eq!(status, 200, "{recaptioned}");
    assert_eq!(recaptioned["caption"], edited);
    assert_eq!(recaptioned["status"], "new");
    let caption_file = testkit::get_object(&stack.sdk, &format!("{}{ACTOR}_2.txt", folder())).await;
    assert_eq!(
        caption_file,
        Some(edited.as_bytes().to_vec()),
        "the caption file follows"
    );

    let after = manifest(&stack).await;
    assert_eq!(
        after["images"][0], legacy[0],
        "a legacy string stays as it was"
    );
    assert_eq!(
        after["images"][1], legacy[1],
        "a legacy object stays as it was"
    );
    assert_eq!(after["curation"]["old_1.jpg"]["status"], "rejected");
    assert_eq!(after["actor"], ACTOR);

    let (_, page) = list(&data, &[("limit", "3")]).await;
    assert_eq!(
        page["counts"],
        json!({"new": 1, "kept": 2, "rejected": 1, "total": 4})
    );
    assert_eq!(filenames(&page).len(), 3);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, rest) = list(&data, &[("limit", "3"), ("cursor", &cursor)]).await;
    assert_eq!(filenames(&rest), ["old_1.jpg"]);
    assert_eq!(rest["images"][0]["status"], "rejected");
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[tokio::test]
async fn bad_decisions_get_4xx_and_change_nothing() {
    let stack = GenerationStack::start_serialized().await;
    put_legacy_manifest(&stack, 1).await;
    let data = LambdaEmulator::start(Path::new(BOOTSTRAP), &stack.function_env()).await;
    let before = testkit::get_object(&stack.sdk, &manifest_key()).await;
    for (filename, body, expected, code) in [
        (
            "old_1.jpg",
            json!({"status": "maybe"}),
            400,
            "invalid_request",
        ),
        ("old_1.jpg", json!({}), 400, "invalid_request"),
        (
            "old_1.jpg",
            json!({"caption": "two\nlines"}),
            400,
            "invalid_request",
        ),
        ("old_1.jpg", json!({"status": 3}), 400, "invalid_request"),
        (
            "nope.jpg",
            json!({"status": "kept"}),
            404,
            "image_not_found",
        ),
    ] {
        let (status, body) = decide(&data, filename, &body).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    for query in [[("limit", "0")], [("limit", "101")], [("cursor", "x")]] {
        let (status, body) = list(&data, &query).await;
        assert_eq!(status, 400, "{query:?}: {body}");
    }
    assert_eq!(
        testkit::get_object(&stack.sdk, &manifest_key()).await,
        before
    );
}

#[tokio::test]
async fn eight_decisions_racing_six_generations_in_separate_environments_lose_nothing() {
    let stack = GenerationStack::start_serialized().await;
    put_legacy_manifest(&stack, 8).await;
    let env = stack.function_env();
    let mut generators = Vec::new();
    for _ in 0..3 {
        generators.push(LambdaEmulator::start(&generate_single(), &env).await);
    }
    let mut deciders = Vec::new();
    for _ in 0..4 {
        deciders.push(LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await);
    }
    // An environment serves one invocation at a time: each takes its share in turn, and the
    // environments race each other.
    let generations = generators.iter().map(|generator| async move {
        for _ in 0..2 {
            generate(generator).await;
        }
    });
    let decisions = deciders.iter().enumerate().map(|(i, decider)| async move {
        for n in [i + 1, i + 5] {
            let status = if n % 2 == 0 { "kept" } else { "rejected" };
            let (code, body) =
                decide(decider, &format!("old_{n}.jpg"), &json!({"status": status})).await;
            assert_eq!(code, 200, "{body}");
        }
    });
    tokio::join!(
        all(generations.collect::<Vec<_>>()),
        all(decisions.collect::<Vec<_>>())
    );

    let after = manifest(&stack).await;
    let images = after["images"].as_array().expect("images");
    assert_eq!(
        images.len(),
        14,
        "8 legacy entries and 6 new images: {after}"
    );
    let indices: Vec<u64> = images.iter().filter_map(|e| e["index"].as_u64()).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2, 3, 4, 5, 6]);
    for n in 1..=8 {
        let status = if n % 2 == 0 { "kept" } else { "rejected" };
        assert_eq!(
            after["curation"][format!("old_{n}.jpg")]["status"],
            status,
            "{after}"
        );
    }
}

#[tokio::test]
async fn a_bucket_that_does_not_answer_is_a_clear_503_for_both_routes() {
    let stack = GenerationStack::start_serialized().await;
    let mut env = stack.function_env();
    let closed = testkit::ClosedPort::hold();
    testkit::set_env(&mut env, "AWS_ENDPOINT_URL_S3", closed.url());
    let data = LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await;
    let (status, body) = list(&data, &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    let (status, body) = decide(&data, "old_1.jpg", &json!({"status": "kept"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
}
