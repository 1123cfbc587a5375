//! Actors own their folders, through the real binary: a caller acting for one actor can
//! neither write into another actor's training set nor use another actor's images as its
//! base photo, and the per-actor daily cap counts the folder that is written.

mod common;

use common::{Stack, start_function};
use serde_json::{Value, json};
use testkit::{GenerationStack, LambdaEmulator, SAMPLE_ACTOR, SeedProfile, status_and_body};

/// An actor with no profile.
const NEWCOMER: &str = "newcomer_7";
const NEWCOMER_PHOTO: &str = "system_actors/base_images/newcomer_7.jpg";
/// One of the sample actor's training images.
const SAMPLE_TRAINING_IMAGE: &str =
    "system_actors/training_data/0000_european_16_male/0000_european_16_male_1.jpg";

/// The sample HTTP API event for `actor_id`'s route, with `body`.
fn request_for(actor_id: &str, body: &Value) -> Value {
    let event = testkit::event_for_actor("generate-single-http-v2.json", actor_id);
    testkit::with_json_body(event, body)
}

/// The stack with the newcomer's photo and a training image of the sample actor, and a
/// function whose environment has `settings`.
async fn stack_with(settings: &[(&str, &str)]) -> Stack {
    let stack = GenerationStack::start().await;
    for key in [NEWCOMER_PHOTO, SAMPLE_TRAINING_IMAGE] {
        testkit::put_object(&stack.sdk, key, testkit::sample_jpeg(32, 32), "image/jpeg").await;
    }
    Stack::over(stack, settings).await
}

/// Asserts that `event` is refused with `status` and `code`, with no Replicate call and
/// nothing written to the bucket or the table.
async fn assert_refused_untouched(
    stack: &GenerationStack,
    function: &LambdaEmulator,
    event: &Value,
    status: u64,
    code: &str,
) -> Value {
    let objects_before = testkit::list_keys(&stack.sdk, "").await;
    let items_before = testkit::table_keys(&stack.sdk).await;
    let (answered, body) = status_and_body(&function.invoke(event).await);
    assert_eq!(answered, status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(testkit::list_keys(&stack.sdk, "").await, objects_before);
    assert_eq!(testkit::table_keys(&stack.sdk).await, items_before);
    assert_eq!(stack.replicate.counts().await.create_requests, 0);
    body
}

#[tokio::test]
async fn a_profile_less_actor_cannot_write_into_another_actors_folder() {
    let stack = stack_with(&[]).await;
    let function = &stack.function;
    let event = request_for(
        NEWCOMER,
        &json!({
            "actor_name": SAMPLE_ACTOR.actor_name,
            "base_image_path": SAMPLE_ACTOR.base_image_key,
            "prompt_id": "bw_charcoal",
        }),
    );
    assert_refused_untouched(&stack, function, &event, 422, "actor_name_mismatch").await;
    // Its own photo does not help: the name is still another actor's.
    let event = request_for(
        NEWCOMER,
        &json!({"actor_name": SAMPLE_ACTOR.actor_name, "base_image_path": NEWCOMER_PHOTO, "prompt_id": "bw_charcoal"}),
    );
    assert_refused_untouched(&stack, function, &event, 422, "actor_name_mismatch").await;
}

#[tokio::test]
async fn a_profile_less_actor_naming_itself_still_generates() {
    let stack = stack_with(&[]).await;
    let function = &stack.function;
    for (expected, path) in [
        (1, NEWCOMER_PHOTO.to_owned()),
        (2, format!("s3://{}/{NEWCOMER_PHOTO}", testkit::BUCKET)),
    ] {
        let event = request_for(
            NEWCOMER,
            &json!({"actor_name": NEWCOMER, "base_image_path": path, "prompt_id": "bw_charcoal"}),
        );
        let (status, body) = status_and_body(&function.invoke(&event).await);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["actor_name"], NEWCOMER);
        assert_eq!(body["index"], expected);
        assert_eq!(
            body["s3_key"],
            format!("system_actors/training_data/{NEWCOMER}/{NEWCOMER}_{expected}.jpg")
        );
    }
    // The body may leave the name out: it is the actor's id.
    let event = request_for(
        NEWCOMER,
        &json!({"base_image_path": NEWCOMER_PHOTO, "prompt_id": "bw_woodcut"}),
    );
    let (status, body) = status_and_body(&function.invoke(&event).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["actor_name"], NEWCOMER);
    assert_eq!(stack.replicate.counts().await.predictions_created, 3);
}

#[tokio::test]
async fn another_actors_images_are_not_a_base_photo_whether_they_exist_or_not() {
    let stack = stack_with(&[]).await;
    let function = &stack.function;
    let existing = request_for(
        NEWCOMER,
        &json!({"actor_name": NEWCOMER, "base_image_path": SAMPLE_TRAINING_IMAGE, "prompt_id": "bw_charcoal"}),
    );
    let refused =
        assert_refused_untouched(&stack, function, &existing, 422, "base_image_not_allowed").await;
    let missing = request_for(
        NEWCOMER,
        &json!({"actor_name": NEWCOMER, "base_image_path": "system_actors/training_data/0000_european_16_male/0000_european_16_male_99.jpg", "prompt_id": "bw_charcoal"}),
    );
    let refused_missing =
        assert_refused_untouched(&stack, function, &missing, 422, "base_image_not_allowed").await;
    for message in [
        &refused["error"]["message"],
        &refused_missing["error"]["message"],
    ] {
        let message = message.as_str().expect("a message");
        for telling in ["not found", "bytes", "exist", "size"] {
            assert!(!message.contains(telling), "{message:?} says {telling:?}");
        }
    }
    // Another actor's base photo, a key outside every allowed prefix, and a prefix that only
    // starts like the actor's name (another actor's photo) are refused the same way.
    for path in [
        SAMPLE_ACTOR.base_image_key,
        "system_actors/other/photo.jpg",
        "private/photo.jpg",
        "system_actors/base_images/newcomer_7_other.jpg",
        "system_actors/base_images/newcomer_7.v2.jpg",
        "s3://another-bucket/system_actors/base_images/newcomer_7.jpg",
    ] {
        let event = request_for(
            NEWCOMER,
            &json!({"actor_name": NEWCOMER, "base_image_path": path, "prompt_id": "bw_charcoal"}),
        );
        assert_refused_untouched(&stack, function, &event, 422, "base_image_not_allowed").await;
    }
    // The actor's own training images are allowed, and so is the profile's own photo.
    let own = request_for(
        SAMPLE_ACTOR.actor_id,
        &json!({"actor_name": SAMPLE_ACTOR.actor_name, "base_image_path": SAMPLE_TRAINING_IMAGE, "prompt_id": "bw_charcoal"}),
    );
    let (status, body) = status_and_body(&function.invoke(&own).await);
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_allowed_prefixes_are_a_setting() {
    let stack = stack_with(&[(
        "BASE_IMAGE_PREFIXES",
        "system_actors/portraits/{actor_name}/",
    )])
    .await;
    let function = &stack.function;
    let portrait = format!("system_actors/portraits/{NEWCOMER}/front.png");
    testkit::put_object(
        &stack.sdk,
        &portrait,
        testkit::sample_jpeg(16, 16),
        "image/jpeg",
    )
    .await;
    let default_prefix = request_for(
        NEWCOMER,
        &json!({"actor_name": NEWCOMER, "base_image_path": NEWCOMER_PHOTO, "prompt_id": "bw_charcoal"}),
    );
    assert_refused_untouched(
        &stack,
        function,
        &default_prefix,
        422,
        "base_image_not_allowed",
    )
    .await;
    let configured = request_for(
        NEWCOMER,
        &json!({"actor_name": NEWCOMER, "base_image_path": portrait, "prompt_id": "bw_charcoal"}),
    );
    let (status, body) = status_and_body(&function.invoke(&configured).await);
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_per_actor_cap_counts_the_folder_written_not_the_path() {
    let stack = stack_with(&[("DAILY_GENERATION_CAP_PER_ACTOR", "1")]).await;
    let function = &stack.function;
    let alias = SeedProfile {
        actor_id: "0000_european_16_male_alias",
        ..SAMPLE_ACTOR
    };
    testkit::put_profile(&stack.sdk, &alias).await;
    let body = json!({"prompt_id": "bw_charcoal"});
    let (status, answer) = status_and_body(
        &function
            .invoke(&request_for(SAMPLE_ACTOR.actor_id, &body))
            .await,
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        status_and_body(&function.invoke(&request_for(alias.actor_id, &body)).await);
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "budget_exhausted");
    assert_eq!(stack.replicate.counts().await.predictions_created, 1);
}

#[tokio::test]
async fn a_key_another_actor_owns_is_never_read() {
    let stack = GenerationStack::start().await;
    let proxy = testkit::FaultProxy::start(stack.moto.endpoint()).await;
    // Every read of the sample actor's photo is answered by the proxy and counted.
    proxy.inject(testkit::FaultRule {
        method: lambda_http::http::Method::GET,
        path_contains: SAMPLE_ACTOR.base_image_key.to_owned(),
        body_contains: None,
        status: 404,
        content_type: "application/xml",
        body: "<Error><Code>NoSuchKey</Code></Error>".to_owned(),
        times: 100,
        delay: None,
    });
    let mut env = stack.function_env();
    testkit::set_env(&mut env, "AWS_ENDPOINT_URL", proxy.endpoint());
    let function = start_function(&env).await;
    for body in [
        // The body claims the other actor's name, whose prefixes would allow the key.
        json!({"actor_name": SAMPLE_ACTOR.actor_name, "base_image_path": SAMPLE_ACTOR.base_image_key, "prompt_id": "bw_charcoal"}),
        json!({"actor_name": NEWCOMER, "base_image_path": SAMPLE_ACTOR.base_image_key, "prompt_id": "bw_charcoal"}),
    ] {
        let (status, answer) =
            status_and_body(&function.invoke(&request_for(NEWCOMER, &body)).await);
        assert_eq!(status, 422, "{answer}");
    }
    assert_eq!(proxy.injected(), 0, "a refused key was read");
}
