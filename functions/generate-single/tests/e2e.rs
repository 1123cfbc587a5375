//! End to end: the real `generate-single` binary under the AWS Lambda runtime interface
//! emulator, fed the events in `events/`, with moto (S3, DynamoDB) and the Replicate emulator
//! over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{FOLDER, MANIFEST, Stack, manifest, start_function};
use serde_json::{Value, json};
use testkit::{GenerationStack, Moto, ReplicateEmulator, SAMPLE_ACTOR, status_and_body};

const ACTOR: &str = "0000_european_16_male";

async fn stack() -> Stack {
    Stack::with_settings(&[]).await
}

/// The sample HTTP API event with another body.
fn http_event(body: &Value) -> Value {
    testkit::with_json_body(testkit::event("generate-single-http-v2.json"), body)
}

#[tokio::test]
async fn a_click_stores_numbered_images_and_lists_them_in_the_manifest() {
    let stack = stack().await;
    let before =
        json!({"actor": ACTOR, "lora": {"rank": 16}, "images": ["https://legacy.example/old.jpg"]});
    testkit::put_object(
        &stack.sdk,
        MANIFEST,
        before.to_string().into_bytes(),
        "application/json",
    )
    .await;

    for expected in 1..=2u64 {
        let answer = stack
            .function
            .invoke(&testkit::event("generate-single-http-v2.json"))
            .await;
        let (status, body) = status_and_body(&answer);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["index"], expected);
        let filename = format!("{ACTOR}_{expected}.jpg");
        assert_eq!(body["filename"], filename);
        assert_eq!(body["s3_key"], format!("{FOLDER}{filename}"));
        assert_eq!(body["manifest_key"], MANIFEST);
        assert_eq!(body["manifest_updated"], true);
        assert_eq!(body["prompt_id"], "bw_charcoal");
        assert_eq!(body["seed"], 42);
        assert!(body["prompt"].as_str().unwrap().contains("the man"));
        assert!(
            body["preview_url"]
                .as_str()
                .unwrap()
                .contains("X-Amz-Signature")
        );
        let stored = testkit::get_object(&stack.sdk, &format!("{FOLDER}{filename}"))
            .await
            .expect("stored image");
        assert!(shared::adapters::replicate::is_jpeg(&stored));
    }
    let manifest = manifest(&stack.sdk).await.expect("manifest");
    assert_eq!(manifest["actor"], ACTOR);
    assert_eq!(manifest["lora"], json!({"rank": 16}));
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    assert_eq!(images[0], "https://legacy.example/old.jpg");
    assert_eq!(images[1]["index"], 1);
    assert_eq!(images[2]["index"], 2);
    assert_eq!(
        images[2]["prediction_id"]
            .as_str()
            .map(|id| id.starts_with("emu")),
        Some(true)
    );
    assert_eq!(images[2]["model"], "black-forest-labs/flux-kontext-pro");
    assert_eq!(stack.replicate.counts().await.predictions_created, 2);
}

#[tokio::test]
async fn legacy_files_seed_the_counter_and_a_stray_file_is_never_overwritten() {
    let stack = stack().await;
    for index in 1..=7 {
        testkit::put_object(
            &stack.sdk,
            &format!("{FOLDER}{ACTOR}_{index}.jpg"),
            testkit::sample_jpeg(8, 8),
            "image/jpeg",
        )
        .await;
    }
    let generate = || async {
        let (status, body) = status_and_body(
            &stack
                .function
                .invoke(&testkit::event("generate-single-http-v2.json"))
                .await,
        );
        assert_eq!(status, 200, "{body}");
        body["index"].as_u64().unwrap()
    };
    assert_eq!(generate().await, 8);
    let stray = b"stray file, not ours".to_vec();
    testkit::put_object(
        &stack.sdk,
        &format!("{FOLDER}{ACTOR}_9.jpg"),
        stray.clone(),
        "image/jpeg",
    )
    .await;
    assert_eq!(generate().await, 10, "index 9 is taken by the stray file");
    assert_eq!(
        testkit::get_object(&stack.sdk, &format!("{FOLDER}{ACTOR}_9.jpg")).await,
        Some(stray)
    );
    let listed: Vec<u64> = manifest(&stack.sdk).await.unwrap()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [8, 10]);
}

#[tokio::test]
async fn model_failures_store_nothing() {
    let stack = stack().await;
    stack
        .replicate
        .set_faults(json!({"fail_with": "NSFW content detected"}))
        .await;
    let (status, body) = status_and_body(
        &stack
            .function
            .invoke(&testkit::event("generate-single-http-v2.json"))
            .await,
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "prediction_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("NSFW content detected")
    );

    let other_host = stack.replicate.base_url().replace("127.0.0.1", "localhost");
    stack
        .replicate
        .set_faults(json!({"output_base_url": other_host}))
        .await;
    let (status, body) = status_and_body(
        &stack
            .function
            .invoke(&testkit::event("generate-single-http-v2.json"))
            .await,
    );
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "output_refused");
    let prediction_id = body["error"]["prediction_id"].as_str().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(prediction_id)
    );

    assert_eq!(
        testkit::list_keys(&stack.sdk, FOLDER).await,
        Vec::<String>::new()
    );
    assert!(
        testkit::table_keys(&stack.sdk)
            .await
            .iter()
            .all(|k| !k.starts_with("IMAGES#")),
        "an index was taken"
    );
}

#[tokio::test]
async fn the_deadline_cancels_and_answers_504_before_api_gateway_gives_up() {
    let stack = stack().await;
    stack
        .replicate
        .set_faults(json!({"never_finish": true}))
        .await;
    let started = Instant::now();
    let (status, body) = status_and_body(
        &stack
            .function
            .invoke(&testkit::event("generate-single-http-v2.json"))
            .await,
    );
    let elapsed = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "generation_timeout");
    assert!(
        elapsed < Duration::from_secs(29),
        "answered after {elapsed:?}"
    );
    assert_eq!(stack.replicate.counts().await.cancel_requests, 1);
    assert_eq!(
        testkit::list_keys(&stack.sdk, FOLDER).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_touch_nothing() {
    let stack = stack().await;
    testkit::put_object(
        &stack.sdk,
        "system_actors/base_images/0000_european_16_male/notes.jpg",
        b"not an image at all".to_vec(),
        "image/jpeg",
    )
    .await;
    testkit::put_object(
        &stack.sdk,
        "system_actors/base_images/0000_european_16_male/huge.jpg",
        vec![0xFF; 10 * 1024 * 1024 + 1],
        "image/jpeg",
    )
    .await;
    let objects_before = testkit::list_keys(&stack.sdk, "").await;
    let items_before = testkit::table_keys(&stack.sdk).await;

    let with_body = |body: &str| {
        let mut event = testkit::event("generate-single-http-v2.json");
        event["body"] = json!(body);
        event
    };
    let with_json = |body: Value| http_event(&body);
    let mut cases: Vec<(Value, u64)> = vec![
        (with_body(""), 400),
        (with_body("   "), 400),
        (with_body("{not json"), 400),
        (with_body("[1,2,3]"), 400),
        (with_body("\"text\""), 400),
        (
            with_body(&format!("{{\"prompt\": \"{}\"}}", "x".repeat(70 * 1024))),
            413,
        ),
        (with_json(json!({})), 400),
        (with_json(json!({"prompt_id": 5})), 400),
        (with_json(json!({"prompt_id": "no_such_preset"})), 400),
        (with_json(json!({"prompt": ""})), 400),
        (with_json(json!({"prompt": "x".repeat(1_001)})), 400),
        (
            with_json(json!({"prompt_id": "bw_charcoal", "seed": "42"})),
            400,
        ),
        (
            with_json(json!({"prompt_id": "bw_charcoal", "seed": -1})),
            400,
        ),
        (
            with_json(json!({"prompt_id": "bw_charcoal", "actor_name": "../../etc"})),
            400,
        ),
        (
            with_json(json!({"prompt_id": "bw_charcoal", "actor_name": "someone_else"})),
            422,
        ),
        (
            with_json(
                json!({"prompt_id": "bw_charcoal", "base_image_path": "system_actors/../secrets/a.jpg"}),
            ),
            400,
        ),
        (
            with_json(json!({"prompt_id": "bw_charcoal", "base_image_path": "private/photo.jpg"})),
            422,
        ),
        (
            with_json(
                json!({"prompt_id": "bw_charcoal", "base_image_path": "s3://another-bucket/system_actors/a.jpg"}),
            ),
            422,
        ),
        (
            with_json(
                json!({"prompt_id": "bw_charcoal", "base_image_path": "system_actors/base_images/readme.txt"}),
            ),
            400,
        ),
        (
            with_json(
                json!({"prompt_id": "bw_charcoal", "base_image_path": "system_actors/base_images/0000_european_16_male/missing.jpg"}),
            ),
            404,
        ),
        (
            with_json(
                json!({"prompt_id": "bw_charcoal", "base_image_path": "system_actors/base_images/0000_european_16_male/notes.jpg"}),
            ),
            422,
        ),
        (
            with_json(
                json!({"prompt_id": "bw_charcoal", "base_image_path": "system_actors/base_images/0000_european_16_male/huge.jpg"}),
            ),
            422,
        ),
    ];
    let no_profile = testkit::with_json_body(
        testkit::event_for_actor("generate-single-http-v2.json", "nobody_known"),
        &json!({"prompt_id": "bw_charcoal"}),
    );
    cases.push((no_profile, 404));
    let mut bad_id = testkit::event("generate-single-http-v2.json");
    bad_id["pathParameters"] = json!({"actorId": "..%2Fetc"});
    cases.push((bad_id, 400));
    let mut not_utf8 = testkit::event("generate-single-http-v2.json");
    not_utf8["body"] = json!("/2R1a/7+"); // base64 of ff d9 1d 6b fe fe: not UTF-8, not JSON
    not_utf8["isBase64Encoded"] = json!(true);
    cases.push((not_utf8, 400));
    let mut wrong_method = testkit::event("generate-single-http-v2.json");
    wrong_method["requestContext"]["http"]["method"] = json!("GET");
    cases.push((wrong_method, 405));

    assert!(cases.len() >= 20);
    for (event, expected) in &cases {
        let (status, body) = status_and_body(&stack.function.invoke(event).await);
        assert_eq!(status, *expected, "{} -> {body}", event["body"]);
        assert_eq!(body["success"], false);
        assert!(
            body["error"]["code"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let counts = stack.replicate.counts().await;
    assert_eq!(
        counts.create_requests, 0,
        "a refused request reached Replicate"
    );
    assert_eq!(testkit::list_keys(&stack.sdk, "").await, objects_before);
    assert_eq!(testkit::table_keys(&stack.sdk).await, items_before);
}

#[tokio::test]
async fn direct_eventbridge_and_batch_invocations() {
    let stack = stack().await;
    let direct = stack
        .function
        .invoke(&testkit::event("generate-single-direct.json"))
        .await;
    assert_eq!(direct["success"], true, "{direct}");
    assert_eq!(direct["index"], 1);
    assert_eq!(direct["prompt_id"], "photo_window_light_closeup");

    let scheduled = stack
        .function
        .invoke(&testkit::event("generate-single-eventbridge.json"))
        .await;
    assert_eq!(scheduled["index"], 2, "{scheduled}");
    assert_eq!(scheduled["prompt_id"], "bw_woodcut");

    let mut batch = testkit::event("generate-single-batch.json");
    batch["jobs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"actor_id": ACTOR, "prompt_id": "nope"}));
    let answer = stack.function.invoke(&batch).await;
    assert_eq!(answer["succeeded"], 3, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let indices: Vec<_> = results[..3]
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [3, 4, 5]);
    assert_eq!(
        results[2]["prompt_id"],
        Value::Null,
        "a custom prompt has no id"
    );
    assert_eq!(results[3]["success"], false);
    assert_eq!(results[3]["error"]["code"], "unknown_prompt_id");
    assert_eq!(results[3]["job"], 3);

    // A single job that fails is a Lambda error, so retries and the failure destination apply.
    let failed = stack
        .function
        .invoke(&json!({"actor_id": ACTOR, "prompt_id": "nope"}))
        .await;
    // Typed: Lambda's errorType is the error's code, errorMessage the HTTP body.
    assert_eq!(failed["errorType"], "unknown_prompt_id", "{failed}");
    let message: Value = serde_json::from_str(failed["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(message["error"]["code"], "unknown_prompt_id", "{failed}");
    assert_eq!(message["success"], false);
    assert_eq!(
        manifest(&stack.sdk).await.unwrap()["images"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn the_token_comes_from_an_ssm_secure_string_when_not_in_the_environment() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    testkit::create_table_and_bucket(&sdk).await;
    testkit::put_profile(&sdk, &SAMPLE_ACTOR).await;
    testkit::put_object(
        &sdk,
        SAMPLE_ACTOR.base_image_key,
        testkit::sample_jpeg(32, 32),
        "image/jpeg",
    )
    .await;
    let parameter = "/training-image-service/replicate-api-token";
    testkit::put_secure_parameter(&sdk, parameter, ReplicateEmulator::TOKEN).await;
    let replicate = ReplicateEmulator::start().await;
    let mut env: Vec<(String, String)> = moto
        .function_env()
        .into_iter()
        .chain(replicate.function_env())
        .filter(|(key, _)| key != "REPLICATE_API_TOKEN")
        .collect();
    env.push((
        "REPLICATE_API_TOKEN_PARAMETER".to_owned(),
        parameter.to_owned(),
    ));
    let function = start_function(&env).await;
    for expected in 1..=2 {
        let (status, body) = status_and_body(
            &function
                .invoke(&testkit::event("generate-single-http-v2.json"))
                .await,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["index"], expected);
    }
    assert_eq!(replicate.counts().await.unauthorized, 0);
}

#[tokio::test]
async fn a_rotated_ssm_token_is_read_again_after_a_401_without_a_cold_start() {
    let stack = GenerationStack::start().await;
    let parameter = "/training-image-service/replicate-api-token";
    testkit::put_secure_parameter(&stack.sdk, parameter, "r8_revoked_token").await;
    let mut env: Vec<(String, String)> = stack
        .function_env()
        .into_iter()
        .filter(|(key, _)| key != "REPLICATE_API_TOKEN")
        .collect();
    testkit::set_env(&mut env, "REPLICATE_API_TOKEN_PARAMETER", parameter);
    let function = start_function(&env).await;
    let event = testkit::event("generate-single-http-v2.json");

    // The parameter holds a revoked token: read again once, still refused, no retry loop.
    let (status, body) = status_and_body(&function.invoke(&event).await);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "model_rejected_request");
    assert_eq!(stack.replicate.counts().await.unauthorized, 1);

    // The operator rotates the token; the warm environment still holds the old one.
    testkit::put_secure_parameter(&stack.sdk, parameter, ReplicateEmulator::TOKEN).await;
    let (status, body) = status_and_body(&function.invoke(&event).await);
    assert_eq!(status, 200, "{body}");
    let counts = stack.replicate.counts().await;
    assert_eq!(
        counts.unauthorized, 2,
        "one 401 with the cached token, then the new one"
    );
    assert_eq!(counts.predictions_created, 1);
}

#[tokio::test]
async fn rate_limits_and_store_faults_are_503s_that_say_when_to_retry() {
    let stack = stack().await;
    stack
        .replicate
        .set_faults(json!({"rate_limit_creates": 10, "rate_limit_reset_secs": 30}))
        .await;
    let answer = stack
        .function
        .invoke(&testkit::event("generate-single-http-v2.json"))
        .await;
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(answer.pointer("/headers/retry-after"), Some(&json!("30")));
    assert_eq!(stack.replicate.counts().await.predictions_created, 0);

    // DynamoDB and S3 that do not answer: a clear 503, no Replicate call.
    let replicate = ReplicateEmulator::start().await;
    let mut env = stack.moto.function_env();
    env.extend(replicate.function_env());
    let closed = testkit::ClosedPort::hold();
    testkit::set_env(&mut env, "AWS_ENDPOINT_URL", closed.url());
    let function = start_function(&env).await;
    let answer = function
        .invoke(&testkit::event("generate-single-http-v2.json"))
        .await;
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert_eq!(answer.pointer("/headers/retry-after"), Some(&json!("1")));
    assert_eq!(replicate.counts().await.create_requests, 0);
}
