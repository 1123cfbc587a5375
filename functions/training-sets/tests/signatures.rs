//! Only Replicate's signature opens the webhook: deliveries that are unsigned, forged,
//! stale or tampered get 401 and change nothing; one signed by an independent
//! implementation (PyPI's `standardwebhooks`) is taken. And the emulator's own signing
//! verifies with that implementation, so the verifier and the emulator cannot share a bug.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Sets;
use serde_json::{Value, json};
use testkit::{ReplicateEmulator, WebhookReceiver, standard_sign, standard_verifies};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts `body` to `url` with these signature headers: the status and the JSON answer.
async fn deliver(url: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the front answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn deliveries_not_signed_by_replicate_get_401_and_change_nothing() {
    let sets = Sets::start(&[]).await;
    let front = sets.webhook_front(1).await;
    // The item's prediction is made, its own webhook dropped, its check ten minutes away.
    sets.stack
        .replicate
        .set_faults(json!({"drop_webhooks": true}))
        .await;
    let (status, started, _) = sets.create(&json!({"count": 1}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap();
    let worker = sets.worker_told_by(&front, 600).await;
    let predicting = sets
        .progress_until(set_id, Duration::from_secs(60), |body| {
            body["items"][0]["state"] == "predicting"
        })
        .await;
    worker.stop().await;
    let item = &predicting["items"][0];
    let prediction_id = item["prediction_id"].as_str().unwrap();
    let url = format!("{}?set={set_id}&item=1&attempt=1", front.url());
    let body = json!({
        "id": prediction_id,
        "status": "succeeded",
        "input": {"seed": item["seed"]},
        "output": format!("{}/files/{prediction_id}.jpg", sets.stack.replicate.base_url()),
    })
    .to_string();
    let secret = sets.stack.replicate.webhook_secret().to_owned();
    let id = "msg_told";
    let now = now_secs();
    let signed = |timestamp: u64, body: &str| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                standard_sign(&secret, id, timestamp, body),
            ),
        ]
    };
    let forged_secret = "whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ==";
    let forged = vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", now.to_string()),
        (
            "webhook-signature",
            standard_sign(forged_secret, id, now, &body),
        ),
    ];
    let stale = signed(now - 6 * 60, &body);
    let early = signed(now + 6 * 60, &body);
    let tampered_body = body.replace("succeeded", "failed");
    let mut no_signature = signed(now, &body);
    no_signature.pop();
    for (what, headers, sent) in [
        ("unsigned", vec![], body.as_str()),
        ("without its signature", no_signature, body.as_str()),
        ("forged", forged, body.as_str()),
        ("stale", stale, body.as_str()),
        ("from the future", early, body.as_str()),
        ("tampered", signed(now, &body), tampered_body.as_str()),
    ] {
        let (status, answer) = deliver(&url, &headers, sent).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_signature",
            "{what}: {answer}"
        );
    }
    let untouched = sets.progress(set_id).await;
    assert_eq!(untouched["items"][0]["state"], "predicting", "{untouched}");
    let depth = testkit::queue_depth(&sets.stack.sdk, &sets.queues.queue_url).await;
    assert_eq!(
        depth,
        (0, 1),
        "only the item's own message, waiting for its check"
    );

    // Signed by the independent implementation: taken, once.
    let (status, answer) = deliver(&url, &signed(now, &body), &body).await;
    assert_eq!(
        (status, &answer["outcome"]),
        (200, &json!("storing")),
        "{answer}"
    );
    let (status, again) = deliver(&url, &signed(now, &body), &body).await;
    assert_eq!(
        (status, &again["outcome"]),
        (200, &json!("nothing_to_do")),
        "{again}"
    );
    let storing = sets.progress(set_id).await;
    assert_eq!(storing["items"][0]["state"], "storing", "{storing}");
    assert_eq!(
        storing["items"][0]["prediction_id"], prediction_id,
        "{storing}"
    );
    let depth = testkit::queue_depth(&sets.stack.sdk, &sets.queues.queue_url).await;
    assert_eq!(depth, (1, 1), "and one store message");
}

#[tokio::test]
async fn the_emulators_webhooks_verify_with_standardwebhooks() {
    let replicate = ReplicateEmulator::start().await;
    // The first delivery is answered 500: the emulator sends it again, newly signed.
    let receiver = WebhookReceiver::start(1).await;
    replicate
        .set_faults(json!({"webhook_retry_base_ms": 100, "output_bytes": 2000}))
        .await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!(
            "{}/v1/models/black-forest-labs/flux-kontext-pro/predictions",
            replicate.base_url()
        ))
        .bearer_auth(ReplicateEmulator::TOKEN)
        .json(&json!({
            "input": {"prompt": "a charcoal drawing", "input_image": "https://example.com/a.jpg"},
            "webhook": receiver.url(),
            "webhook_events_filter": ["completed"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let served: Value = client
        .get(format!(
            "{}/v1/webhooks/default/secret",
            replicate.base_url()
        ))
        .bearer_auth(ReplicateEmulator::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = served["key"].as_str().unwrap();
    assert_eq!(secret, replicate.webhook_secret());
    assert!(secret.starts_with("whsec_"), "{served}");

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (headers, body) = receiver.next(Duration::from_secs(10)).await;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .unwrap_or_default()
        };
        let signed = ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .map(|name| (name, header(name)));
        assert!(
            standard_verifies(secret, &signed, &body),
            "{signed:?} {body}"
        );
        let tampered = body.replace("succeeded", "failed");
        assert!(
            !standard_verifies(secret, &signed, &tampered),
            "the check can fail"
        );
        let prediction: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(prediction["status"], "succeeded", "{body}");
        ids.push(header("webhook-id").to_owned());
    }
    assert_eq!(ids[0], ids[1], "a retry keeps its webhook-id");
    let counts = replicate.counts().await;
    assert_eq!((counts.webhook_attempts, counts.webhooks_accepted), (2, 1));
}

#[tokio::test]
async fn the_sample_event_with_its_placeholder_signature_is_refused() {
    let sets = Sets::start(&[]).await;
    let mut env = sets.env.clone();
    testkit::set_env(
        &mut env,
        "REPLICATE_WEBHOOK_SECRET",
        sets.stack.replicate.webhook_secret(),
    );
    let function =
        testkit::LambdaEmulator::start(&common::sibling_bootstrap("replicate-webhook"), &env).await;
    let answer = function
        .invoke(&testkit::event("replicate-webhook-http-v2.json"))
        .await;
    let (status, body) = testkit::status_and_body(&answer);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_signature", "{body}");
}
