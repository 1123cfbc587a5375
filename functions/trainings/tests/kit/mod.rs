//! What the training tests share: the whole path of a training through real binaries over
//! moto and the Replicate emulator. The trainings function serves its routes under the
//! runtime interface emulator and its queue under the SQS driver; training-export writes the
//! zip from its own queue; replicate-webhook sits behind an HTTP front where the emulator
//! posts its signed webhooks; the reconciler is invoked as its schedule would.

// Each test file uses part of the kit.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{
    EventSourceSettings, GenerationStack, HttpFront, LambdaEmulator, SAMPLE_ACTOR, SqsEventSource,
    status_and_body,
};

/// The function's binary.
pub const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_trainings");
/// The actor trained.
pub const ACTOR: &str = SAMPLE_ACTOR.actor_id;
/// The destination pattern the tests deploy with.
pub const DESTINATION: &str = "studio/lora-{actor_name}";
/// The trainer's version the tests deploy with.
pub const TRAINER_VERSION: &str = "0123456789abcdef";
/// The price of a second the tests deploy with.
pub const PRICE_PER_SECOND: f64 = 0.001528;

/// Another function of the workspace, built beside this one.
pub fn sibling_bootstrap(name: &str) -> PathBuf {
    let path = Path::new(BOOTSTRAP).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p {name}`",
        path.display()
    );
    path
}

/// One message a batch, one environment: the template's event sources.
fn one_at_a_time() -> EventSourceSettings {
    EventSourceSettings {
        batch_size: 1,
        concurrency: 1,
        ..EventSourceSettings::default()
    }
}

/// The stack and every function a training passes through.
pub struct TrainingStack {
    /// moto and the Replicate emulator.
    pub stack: GenerationStack,
    /// The environment every function gets.
    pub env: Vec<(String, String)>,
    /// The trainings function's routes.
    pub http: LambdaEmulator,
    /// The webhook function behind its front (where the emulator posts), kept running.
    _webhook: HttpFront,
    /// The drivers of the exports' and the trainings' queues.
    sources: Vec<SqsEventSource>,
}

impl TrainingStack {
    /// Everything up, the environment with `settings` over the deployed defaults.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        let stack = GenerationStack::start().await;
        let exports = testkit::create_export_queues(&stack.sdk).await;
        let trainings = testkit::create_training_queues(&stack.sdk).await;
        // The webhook and reconciler functions serve training sets too: their queue is there.
        let sets = testkit::create_training_set_queues(&stack.sdk).await;
        let mut env = stack.function_env();
        for (key, value) in [
            ("EXPORT_QUEUE_URL", exports.queue_url.as_str()),
            ("TRAINING_QUEUE_URL", trainings.queue_url.as_str()),
            ("TRAINING_SET_QUEUE_URL", sets.queue_url.as_str()),
            ("TRAINER_VERSION", TRAINER_VERSION),
            ("TRAINING_DESTINATION", DESTINATION),
            ("TRAINING_PRICE_PER_SECOND", "0.001528"),
            ("TRAINING_EXPORT_WAIT_SECONDS", "1"),
            ("REPLICATE_WEBHOOK_SECRET", stack.replicate.webhook_secret()),
        ] {
            testkit::set_env(&mut env, key, value);
        }
        for (key, value) in settings {
            testkit::set_env(&mut env, key, *value);
        }
        let webhook = HttpFront::start(
            &sibling_bootstrap("replicate-webhook"),
            &env,
            2,
            "replicate-webhook-http-v2.json",
            None,
        )
        .await;
        let webhook_url = format!("{}/api/webhooks/replicate", webhook.url());
        testkit::set_env(&mut env, "REPLICATE_WEBHOOK_URL", webhook_url);
        let http = LambdaEmulator::start(Path::new(BOOTSTRAP), &env).await;
        let export_source = SqsEventSource::start(
            &stack.sdk,
            &exports,
            &sibling_bootstrap("training-export"),
            &env,
            one_at_a_time(),
        )
        .await;
        let training_source = SqsEventSource::start(
            &stack.sdk,
            &trainings,
            Path::new(BOOTSTRAP),
            &env,
            one_at_a_time(),
        )
        .await;
        Self {
            stack,
            env,
            http,
            _webhook: webhook,
            sources: vec![export_source, training_source],
        }
    }

    /// Seeds `count` images, the first `kept` of them kept, the next one rejected.
    pub async fn seed(&self, count: usize, kept: usize) {
        let names: Vec<String> = (1..=count).map(|n| format!("{ACTOR}_{n}.jpg")).collect();
        let mut statuses: Vec<(&str, &str)> = names[..kept]
            .iter()
            .map(|name| (name.as_str(), "kept"))
            .collect();
        if let Some(rejected) = names.get(kept) {
            statuses.push((rejected, "rejected"));
        }
        // The legacy first entry stays undecided: not in a kept export.
        testkit::curated::seed_images(&self.stack, count, 20 * 1024, &statuses).await;
    }

    /// POSTs a training with `body` (and `key` as its Idempotency-Key).
    pub async fn start_training(&self, body: &Value, key: Option<&str>) -> (u64, Value) {
        let mut event =
            testkit::with_json_body(testkit::event("trainings-start-http-v2.json"), body);
        if let Some(key) = key {
            event = testkit::with_idempotency_key(event, key);
        }
        status_and_body(&self.http.invoke(&event).await)
    }

    /// GETs training `id`.
    pub async fn status(&self, id: &str) -> (u64, Value) {
        let event = with_training(testkit::event("trainings-status-http-v2.json"), id, "");
        status_and_body(&self.http.invoke(&event).await)
    }

    /// POSTs the cancel of training `id`.
    pub async fn cancel(&self, id: &str) -> (u64, Value) {
        let event = with_training(
            testkit::event("trainings-cancel-http-v2.json"),
            id,
            "/cancel",
        );
        status_and_body(&self.http.invoke(&event).await)
    }

    /// Training `id` once `done` says so of its status (at most `within`).
    pub async fn until(&self, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.status(id).await;
            assert_eq!(status, 200, "{body}");
            if done(&body) {
                return body;
            }
            assert!(start.elapsed() < within, "not there in {within:?}: {body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Training `id` once it has ended (at most a minute).
    pub async fn ended(&self, id: &str) -> Value {
        self.until(id, Duration::from_secs(60), |body| {
            matches!(
                body["status"].as_str(),
                Some("succeeded" | "failed" | "canceled")
            )
        })
        .await
    }

    /// One pass of the reconciler, as its schedule invokes it; its report.
    pub async fn reconcile(&self) -> Value {
        let reconciler = LambdaEmulator::start(&sibling_bootstrap("reconciler"), &self.env).await;
        reconciler
            .invoke(&testkit::event("reconciler-scheduled.json"))
            .await
    }

    /// A DynamoDB item of the table, by key.
    pub async fn item(&self, pk: &str, sk: &str) -> Option<Value> {
        let output = aws_sdk_dynamodb::Client::new(&self.stack.sdk)
            .get_item()
            .table_name(testkit::TABLE_NAME)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S(sk.to_owned()),
            )
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        output.item.map(|item| {
            item.into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        aws_sdk_dynamodb::types::AttributeValue::S(text) => json!(text),
                        aws_sdk_dynamodb::types::AttributeValue::N(number) => json!(number),
                        other => json!(format!("{other:?}")),
                    };
                    (name, value)
                })
                .collect()
        })
    }

    /// The table's keys (`pk|sk`) whose partition key starts with `prefix`.
    pub async fn keys_starting(&self, prefix: &str) -> Vec<String> {
        testkit::table_keys(&self.stack.sdk)
            .await
            .into_iter()
            .filter(|key| key.starts_with(prefix))
            .collect()
    }

    /// Stops the queues' drivers.
    pub async fn stop(self) {
        for source in self.sources {
            source.stop().await;
        }
    }
}

/// `event` for training `id`, its path ending in `suffix`.
fn with_training(mut event: Value, id: &str, suffix: &str) -> Value {
    let path = format!("/api/actors/{ACTOR}/trainings/{id}{suffix}");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["trainingId"] = json!(id);
    event
}

/// The trainings the emulator was asked for, as it received them.
pub async fn received(t: &TrainingStack) -> Vec<Value> {
    t.stack
        .replicate
        .trainings()
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The training id of a 202's body.
pub fn id_of(accepted: &Value) -> String {
    accepted["training_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no training id: {accepted}"))
        .to_owned()
}
