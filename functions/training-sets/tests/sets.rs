//! Training sets through the real binaries: training-sets under the runtime interface
//! emulator, training-set-worker fed by the test kit's SQS event source mapping over moto's
//! queue, the Replicate emulator as the model.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use testkit::{
    EventSourceSettings, GenerationStack, LambdaEmulator, SqsEventSource, TrainingSetQueues,
    status_and_body,
};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_training-sets");
const FOLDER: &str = "system_actors/training_data/0000_european_16_male/";
const MANIFEST: &str = "system_actors/training_data/0000_european_16_male/response.json";
/// The set id in the sample events of `events/`.
const SAMPLE_SET: &str = "01KBE8N4Z8M7D1W5S9Q2X3Y4Z5";

/// The worker's binary, built beside this one by `cargo build --workspace --bins`.
fn worker_bootstrap() -> PathBuf {
    let path = Path::new(BOOTSTRAP).with_file_name("training-set-worker");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p training-set-worker`",
        path.display()
    );
    path
}

/// The stack, the queues, and the routes' function on them.
struct Sets {
    stack: GenerationStack,
    queues: TrainingSetQueues,
    env: Vec<(String, String)>,
    routes: LambdaEmulator,
}

impl Sets {
    async fn start(settings: &[(&str, &str)]) -> Self {
        let stack = GenerationStack::start().await;
        let queues = testkit::create_training_set_queues(&stack.sdk).await;
        let mut env = stack.function_env();
        testkit::set_env(&mut env, "TRAINING_SET_QUEUE_URL", queues.queue_url.clone());
        for (key, value) in settings {
            testkit::set_env(&mut env, key, *value);
        }
        let routes = LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await;
        Self {
            stack,
            queues,
            env,
            routes,
        }
    }

    /// The worker's event source, playing the template's mapping.
    async fn worker(&self, settings: EventSourceSettings) -> SqsEventSource {
        SqsEventSource::start(
            &self.stack.sdk,
            &self.queues,
            &worker_bootstrap(),
            &self.env,
            settings,
        )
        .await
    }

    /// Sends the sample event `file`, for `actor` and `set_id`, with `body` and `key`.
    async fn send(
        &self,
        file: &str,
        actor: &str,
        set_id: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u64, Value, Value) {
        let mut event = testkit::event_for_actor(file, actor);
        if let Some(set_id) = set_id {
            for pointer in ["/rawPath", "/requestContext/http/path"] {
                if let Some(Value::String(path)) = event.pointer_mut(pointer) {
                    *path = path.replace(SAMPLE_SET, set_id);
                }
            }
            event["pathParameters"]["setId"] = json!(set_id);
        }
        if let Some(body) = body {
            event = testkit::with_json_body(event, body);
        }
        if let Some(key) = key {
            event = testkit::with_idempotency_key(event, key);
        }
        let answer = self.routes.invoke(&event).await;
        let (status, body) = status_and_body(&answer);
        (status, body, answer["headers"].clone())
    }

    async fn create(&self, body: &Value, key: Option<&str>) -> (u64, Value, Value) {
        self.send(
            "training-sets-create-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            None,
            Some(body),
            key,
        )
        .await
    }

    async fn progress(&self, set_id: &str) -> Value {
        let (status, body, _) = self
            .send(
                "training-sets-progress-http-v2.json",
                testkit::SAMPLE_ACTOR.actor_id,
                Some(set_id),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Reads the set's progress until `done` says so, for at most `within`.
    async fn progress_until(
        &self,
        set_id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let body = self.progress(set_id).await;
            if done(&body) {
                return body;
            }
            assert!(
                started.elapsed() < within,
                "not there in {within:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn images(&self) -> Vec<String> {
        testkit::list_keys(&self.stack.sdk, FOLDER)
            .await
            .into_iter()
            .filter(|key| key.ends_with(".jpg"))
            .collect()
    }

    /// How many items of sets the table holds.
    async fn set_items(&self) -> usize {
        testkit::table_keys(&self.stack.sdk)
            .await
            .iter()
            .filter(|key| key.starts_with("SET#"))
            .count()
    }
}

fn final_status(body: &Value) -> bool {
    ["done", "failed", "canceled"].contains(&body["status"].as_str().unwrap_or(""))
        && body["counts"]["queued"] == 0
        && body["counts"]["predicting"] == 0
}

#[tokio::test]
async fn a_set_of_20_with_every_batch_delivered_twice_stores_20_images_once_each() {
    let sets = Sets::start(&[]).await;
    let (status, started, headers) = sets.create(&json!({"count": 20}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().expect("set_id").to_owned();
    assert_eq!(started["total"], 20);
    assert_eq!(started["status"], "queued");
    assert_eq!(headers["location"], started["status_url"], "{headers}");
    assert!(started["status_url"].as_str().unwrap().ends_with(&set_id));
    assert_eq!(started["estimated_cost_usd"], 0.8);

    let worker = sets
        .worker(EventSourceSettings {
            concurrency: 4,
            deliver_twice: true,
            ..EventSourceSettings::default()
        })
        .await;
    let done = sets
        .progress_until(&set_id, Duration::from_secs(180), |body| {
            body["status"] == "done" && body["counts"]["stored"] == 20
        })
        .await;
    let stats = worker.stop().await;
    assert!(
        stats.invocations >= 4 && stats.function_errors == 0,
        "{stats:?}"
    );

    let items = done["items"].as_array().unwrap();
    let mut indices: Vec<u64> = items.iter().map(|i| i["index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 20, "distinct indices: {done}");
    assert!(
        items
            .iter()
            .all(|i| i["state"] == "stored" && i["preview_url"].is_string())
    );
    let seeds: std::collections::HashSet<u64> =
        items.iter().map(|i| i["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), 20, "seeds derived per position");
    assert_eq!(sets.images().await.len(), 20);
    let manifest: Value = serde_json::from_slice(
        &testkit::get_object(&sets.stack.sdk, MANIFEST)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["images"].as_array().unwrap().len(), 20);
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 20);
}

#[tokio::test]
async fn a_repeated_key_returns_the_same_set_and_pays_nothing_more() {
    let sets = Sets::start(&[]).await;
    let body = json!({"items": [{"prompt_id": "bw_charcoal"}, {"prompt": "the actor reading in a library", "seed": 5}]});
    let (status, first, _) = sets.create(&body, Some("set-key-1")).await;
    assert_eq!(status, 202, "{first}");
    let (status, again, _) = sets.create(&body, Some("set-key-1")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["set_id"], first["set_id"]);
    let other = json!({"count": 3});
    let (status, reused, _) = sets.create(&other, Some("set-key-1")).await;
    assert_eq!(status, 422, "{reused}");

    let worker = sets.worker(EventSourceSettings::default()).await;
    let set_id = first["set_id"].as_str().unwrap();
    let done = sets
        .progress_until(set_id, Duration::from_secs(120), final_status)
        .await;
    worker.stop().await;
    assert_eq!(done["counts"]["stored"], 2, "{done}");
    assert_eq!(done["items"][1]["seed"], 5);
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 2);
    let (status, listed, _) = sets
        .send(
            "training-sets-list-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["sets"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn a_set_over_the_per_actor_cap_is_refused_whole_and_another_actors_set_is_not_found() {
    let sets = Sets::start(&[("DAILY_GENERATION_CAP_PER_ACTOR", "5")]).await;
    let (status, refused, headers) = sets.create(&json!({"count": 6}), None).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "budget_exhausted");
    assert!(headers["retry-after"].is_string(), "{headers}");
    assert_eq!(sets.set_items().await, 0, "nothing written");
    assert_eq!(
        testkit::queue_depth(&sets.stack.sdk, &sets.queues.queue_url).await,
        (0, 0)
    );

    let (status, started, _) = sets.create(&json!({"count": 5}), None).await;
    assert_eq!(status, 202, "{started}");
    let set_id = started["set_id"].as_str().unwrap();
    let (status, hidden, _) = sets
        .send(
            "training-sets-progress-http-v2.json",
            "0001_another_actor",
            Some(set_id),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "{hidden}");
    assert_eq!(hidden["error"]["code"], "training_set_not_found");
    for file in [
        "training-sets-cancel-http-v2.json",
        "training-sets-retry-http-v2.json",
    ] {
        let (status, _, _) = sets
            .send(file, "0001_another_actor", Some(set_id), None, None)
            .await;
        assert_eq!(status, 404, "{file}");
    }
    assert_eq!(
        sets.progress(set_id).await["counts"]["queued"],
        5,
        "unchanged"
    );
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 0);
}

#[tokio::test]
async fn cancel_stops_paying_for_queued_items_and_cancels_running_predictions() {
    let sets = Sets::start(&[("DAILY_GENERATION_CAP_PER_ACTOR", "100")]).await;
    sets.stack
        .replicate
        .set_faults(json!({"never_finish": true}))
        .await;
    let (status, running, _) = sets.create(&json!({"count": 3}), None).await;
    assert_eq!(status, 202);
    let running_id = running["set_id"].as_str().unwrap().to_owned();
    let worker = sets.worker(EventSourceSettings::default()).await;
    sets.progress_until(&running_id, Duration::from_secs(60), |body| {
        body["counts"]["predicting"] == 3
            && body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["state"] == "predicting")
    })
    .await;
    let (status, canceled, _) = sets
        .send(
            "training-sets-cancel-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            Some(&running_id),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    let ended = sets
        .progress_until(&running_id, Duration::from_secs(60), final_status)
        .await;
    assert_eq!(ended["counts"]["canceled"], 3, "{ended}");
    let counts = sets.stack.replicate.counts().await;
    assert_eq!(counts.predictions_created, 3);
    assert_eq!(counts.cancel_requests, 3);

    // A set canceled before the worker took it pays nothing at all.
    let (_, queued, _) = sets.create(&json!({"count": 4}), None).await;
    let queued_id = queued["set_id"].as_str().unwrap().to_owned();
    let (status, _, _) = sets
        .send(
            "training-sets-cancel-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            Some(&queued_id),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let ended = sets
        .progress_until(&queued_id, Duration::from_secs(30), final_status)
        .await;
    assert_eq!(ended["counts"]["canceled"], 4, "{ended}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.stop().await;
    assert_eq!(sets.stack.replicate.counts().await.predictions_created, 3);
    let budget = aws_sdk_dynamodb::Client::new(&sets.stack.sdk)
        .scan()
        .table_name(testkit::TABLE_NAME)
        .send()
        .await
        .unwrap();
    let actor_used: Vec<&AttributeValue> = budget
        .items()
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("ACTOR#"))
                && item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|pk| pk.starts_with("BUDGET#"))
        })
        .filter_map(|item| item.get("used"))
        .collect();
    assert_eq!(
        actor_used,
        [&AttributeValue::N("3".to_owned())],
        "the 4 canceled units given back"
    );
}
