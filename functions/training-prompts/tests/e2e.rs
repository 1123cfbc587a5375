//! End to end: the real `training-prompts` binary under the AWS Lambda runtime interface emulator,
//! fed the events in `events/`, reading profiles from a moto server over HTTP.

use std::path::Path;

use serde_json::{Value, json};
use testkit::{CapturedLog, LambdaEmulator, Moto, SeedProfile};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_training-prompts");
const PRESET_IDS: [&str; 8] = [
    "photo_rain_street_run",
    "photo_window_light_closeup",
    "bw_pen_ink",
    "bw_charcoal",
    "bw_woodcut",
    "color_comic_book",
    "color_watercolor",
    "color_gouache",
];

/// A running function with a seeded moto behind it.
struct Stack {
    function: LambdaEmulator,
    _moto: Moto,
}

async fn stack_with(profiles: &[SeedProfile<'_>]) -> Stack {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    testkit::create_table_and_bucket(&sdk).await;
    for profile in profiles {
        testkit::put_profile(&sdk, profile).await;
    }
    let function = LambdaEmulator::start(Path::new(BOOTSTRAP), &moto.function_env()).await;
    Stack {
        function,
        _moto: moto,
    }
}

/// The sample event `file` rewritten for another actor id (and, without path parameters, as
/// `cargo lambda watch` sends it).
fn event_for(file: &str, actor_id: &str, with_path_parameters: bool) -> Value {
    let mut event = testkit::event_for_actor(file, actor_id);
    if !with_path_parameters {
        event["pathParameters"] = Value::Null;
    }
    event
}

/// The status and the parsed JSON body of an API Gateway proxy answer, which must be JSON.
fn status_and_body(answer: &Value) -> (u64, Value) {
    let content_type = answer
        .pointer("/headers/content-type")
        .or_else(|| answer.pointer("/multiValueHeaders/content-type/0"));
    assert_eq!(content_type, Some(&json!("application/json")), "{answer}");
    testkit::status_and_body(answer)
}

fn assert_prompts(body: &Value, actor_id: &str, descriptor: &str, source: &str) {
    assert_eq!(body["actor_id"], actor_id, "{body}");
    assert_eq!(body["descriptor"], descriptor, "{body}");
    assert_eq!(body["descriptor_source"], source, "{body}");
    let prompts = body["prompts"].as_array().expect("prompts");
    let ids: Vec<_> = prompts.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, PRESET_IDS);
    for prompt in prompts {
        let text = prompt["prompt"].as_str().expect("prompt text");
        assert!(text.contains(&format!("the {descriptor}")), "{text}");
        assert!(
            text.contains("identity of the person in the input image"),
            "{text}"
        );
        for field in ["label", "category", "category_label"] {
            assert!(prompt[field].as_str().is_some_and(|s| !s.is_empty()));
        }
    }
}

#[tokio::test]
async fn descriptor_comes_from_profile_then_id_then_default() {
    let profiled = SeedProfile {
        actor_id: "actor_7",
        actor_name: "actor_7",
        sex: Some("Male"),
        base_image_key: "system_actors/base_images/actor_7.jpg",
    };
    let stack = stack_with(&[profiled]).await;
    for (actor_id, descriptor, source) in [
        ("actor_7", "man", "profile"),
        ("0000_european_16_female", "woman", "name"),
        ("unknown_actor_42", "person", "default"),
    ] {
        let answer = stack
            .function
            .invoke(&event_for("training-prompts-http-v2.json", actor_id, true))
            .await;
        let (status, body) = status_and_body(&answer);
        assert_eq!(status, 200, "{body}");
        assert_prompts(&body, actor_id, descriptor, source);
    }
}

#[tokio::test]
async fn rest_and_http_events_give_the_same_prompts() {
    let stack = stack_with(&[testkit::SAMPLE_ACTOR]).await;
    let v2 = status_and_body(
        &stack
            .function
            .invoke(&testkit::event("training-prompts-http-v2.json"))
            .await,
    );
    let v1 = status_and_body(
        &stack
            .function
            .invoke(&testkit::event("training-prompts-rest-v1.json"))
            .await,
    );
    assert_eq!(v2.0, 200);
    assert_prompts(&v2.1, "0000_european_16_male", "man", "profile");
    assert_eq!(v1, v2);
    for file in [
        "training-prompts-http-v2.json",
        "training-prompts-rest-v1.json",
    ] {
        let event = event_for(file, "0000_european_16_female", false);
        let (status, body) = status_and_body(&stack.function.invoke(&event).await);
        assert_eq!(status, 200, "{file} without path parameters: {body}");
        assert_prompts(&body, "0000_european_16_female", "woman", "name");
    }
}

#[tokio::test]
async fn refusals_are_json_errors() {
    let stack = stack_with(&[]).await;
    let mut bad_id = event_for("training-prompts-http-v2.json", "a..b", true);
    let mut wrong_method = testkit::event("training-prompts-http-v2.json");
    wrong_method["requestContext"]["http"]["method"] = json!("DELETE");
    let mut wrong_route = testkit::event("training-prompts-http-v2.json");
    wrong_route["rawPath"] = json!("/api/actors/0000_european_16_male/other");
    wrong_route["requestContext"]["http"]["path"] = wrong_route["rawPath"].clone();
    bad_id["pathParameters"] = json!({ "actorId": "../etc" });
    for (event, status, code) in [
        (bad_id, 400, "invalid_request"),
        (wrong_method, 405, "method_not_allowed"),
        (wrong_route, 404, "route_not_found"),
    ] {
        let answer = stack.function.invoke(&event).await;
        let (got, body) = status_and_body(&answer);
        assert_eq!(got, status, "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        if status == 405 {
            assert_eq!(answer.pointer("/headers/allow"), Some(&json!("GET")));
        }
    }
}

#[tokio::test]
async fn a_store_that_does_not_answer_is_a_503_without_internals() {
    let moto = Moto::start().await;
    let mut env = moto.function_env();
    let closed = testkit::ClosedPort::hold();
    testkit::set_env(&mut env, "AWS_ENDPOINT_URL", closed.url());
    let function = LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await;
    let answer = function
        .invoke(&testkit::event("training-prompts-http-v2.json"))
        .await;
    let (status, body) = status_and_body(&answer);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert_eq!(answer.pointer("/headers/retry-after"), Some(&json!("1")));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("127.0.0.1") && !message.contains("GetItem"),
        "{message}"
    );
}

/// The remote time the function logged for each call (`remote_us` of "training-prompts answered").
fn remote_times(log: &CapturedLog) -> Vec<u64> {
    log.text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.pointer("/fields/message") == Some(&json!("training-prompts answered")))
        .filter_map(|line| line.pointer("/fields/remote_us").and_then(Value::as_u64))
        .collect()
}

#[tokio::test]
async fn a_warm_environment_reads_a_profile_once_unless_the_cache_is_off() {
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    testkit::create_table_and_bucket(&sdk).await;
    let mut profile = SeedProfile {
        actor_id: "actor_7",
        actor_name: "actor_7",
        sex: Some("male"),
        base_image_key: "system_actors/base_images/actor_7.jpg",
    };
    testkit::put_profile(&sdk, &profile).await;
    let mut env = moto.function_env();
    env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()));
    let (cached, log) =
        LambdaEmulator::start_capturing(Path::new(BOOTSTRAP), &env, "training-prompts-cache").await;
    testkit::set_env(&mut env, "ACTOR_PROFILE_CACHE_SECONDS", "0");
    let uncached = LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await;
    let event = event_for("training-prompts-http-v2.json", "actor_7", true);

    for function in [&cached, &uncached] {
        let (_, body) = status_and_body(&function.invoke(&event).await);
        assert_prompts(&body, "actor_7", "man", "profile");
    }
    let (_, body) = status_and_body(&cached.invoke(&event).await);
    assert_prompts(&body, "actor_7", "man", "profile");
    let remote = remote_times(&log);
    assert_eq!(remote.len(), 2, "{remote:?}");
    assert!(remote[0] > 0, "the first call reads DynamoDB: {remote:?}");
    assert_eq!(
        remote[1], 0,
        "the repeat is served from the cache: {remote:?}"
    );

    // With the cache off, an operator's edit shows on the next call.
    profile.sex = Some("female");
    testkit::put_profile(&sdk, &profile).await;
    let (_, body) = status_and_body(&uncached.invoke(&event).await);
    assert_prompts(&body, "actor_7", "woman", "profile");
}
