//! The events a test sends and the answers it reads: the samples of `events/`, rewritten for
//! another actor, key or body, and the parts of an API Gateway answer.

use serde_json::{Value, json};

use crate::{SAMPLE_ACTOR, repo_root};

/// A sample event from `events/`.
pub fn event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The sample event `file` routed to `actor_id`: its paths (HTTP API and REST alike) and its
/// path parameters name that actor instead of the sample actor.
pub fn event_for_actor(file: &str, actor_id: &str) -> Value {
    let mut event = event(file);
    let (sample, actor) = (
        format!("/actors/{}/", SAMPLE_ACTOR.actor_id),
        format!("/actors/{actor_id}/"),
    );
    for pointer in [
        "/rawPath",
        "/path",
        "/requestContext/http/path",
        "/requestContext/path",
    ] {
        if let Some(Value::String(path)) = event.pointer_mut(pointer) {
            *path = path.replace(&sample, &actor);
        }
    }
    event["pathParameters"] = json!({ "actorId": actor_id });
    event
}

/// The set id of the sample training-set events of `events/`.
pub const SAMPLE_SET: &str = "01KBE8N4Z8M7D1W5S9Q2X3Y4Z5";

/// The sample event `file` routed to `actor_id`'s set `set_id`: its paths and its path
/// parameters name that actor and that set instead of the samples'.
pub fn event_for_set(file: &str, actor_id: &str, set_id: &str) -> Value {
    let mut event = event_for_actor(file, actor_id);
    for pointer in ["/rawPath", "/requestContext/http/path"] {
        if let Some(Value::String(path)) = event.pointer_mut(pointer) {
            *path = path.replace(SAMPLE_SET, set_id);
        }
    }
    event["pathParameters"]["setId"] = json!(set_id);
    event
}

/// Whether a set's progress answer is final: the set ended (`done`, `failed`, `canceled`)
/// with nothing queued or predicting.
pub fn set_progress_final(body: &Value) -> bool {
    ["done", "failed", "canceled"].contains(&body["status"].as_str().unwrap_or(""))
        && body["counts"]["queued"] == 0
        && body["counts"]["predicting"] == 0
}

/// `event` with the `idempotency-key` header the web UI sends with each click.
pub fn with_idempotency_key(mut event: Value, key: &str) -> Value {
    event["headers"]["idempotency-key"] = json!(key);
    event
}

/// `event` with `body` as its (JSON text) body.
pub fn with_json_body(mut event: Value, body: &Value) -> Value {
    event["body"] = json!(body.to_string());
    event
}

/// The status and the parsed JSON body of an API Gateway proxy answer.
pub fn status_and_body(answer: &Value) -> (u64, Value) {
    let status = answer["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("no statusCode: {answer}"));
    let body = answer["body"].as_str().expect("a string body");
    (status, serde_json::from_str(body).expect("JSON body"))
}

/// Sets `key` in a function environment, replacing its value if it is there.
pub fn set_env(env: &mut Vec<(String, String)>, key: &str, value: impl Into<String>) {
    let value = value.into();
    match env.iter_mut().find(|(name, _)| name == key) {
        Some((_, slot)) => *slot = value,
        None => env.push((key.to_owned(), value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_for_another_actor_names_it_in_every_path() {
        let rest = event_for_actor("training-prompts-rest-v1.json", "actor_7");
        assert_eq!(rest["path"], "/api/actors/actor_7/training-prompts");
        assert_eq!(
            rest["requestContext"]["path"],
            "/prod/api/actors/actor_7/training-prompts"
        );
        assert_eq!(rest["pathParameters"], json!({"actorId": "actor_7"}));
        let http = event_for_actor("generate-single-http-v2.json", "actor_7");
        let path = "/api/actors/actor_7/training-data/generate-single";
        assert_eq!(http["rawPath"], path);
        assert_eq!(http["requestContext"]["http"]["path"], path);
        assert_eq!(http.get("path"), None);
        let set = event_for_set("training-sets-progress-http-v2.json", "actor_7", "01SET");
        assert_eq!(set["rawPath"], "/api/actors/actor_7/training-sets/01SET");
        assert_eq!(
            set["pathParameters"],
            json!({"actorId": "actor_7", "setId": "01SET"})
        );
        let keyed = with_json_body(with_idempotency_key(http, "k1"), &json!({"seed": 1}));
        assert_eq!(keyed["headers"]["idempotency-key"], "k1");
        assert_eq!(keyed["body"], "{\"seed\":1}");
    }
}
