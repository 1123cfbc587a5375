//! What the training-set test files share: the binaries, the stack with its queues, the
//! routes' function on it, and the requests a test sends.

// Each test file is its own crate and uses only a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{
    EventSourceSettings, GenerationStack, HttpFront, LambdaEmulator, SqsEventSource,
    TrainingSetQueues, status_and_body,
};

pub const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_training-sets");
pub const FOLDER: &str = "system_actors/training_data/0000_european_16_male/";
pub const MANIFEST: &str = "system_actors/training_data/0000_european_16_male/response.json";

/// A sibling function's binary, built beside this one by `cargo build --workspace --bins`.
pub fn sibling_bootstrap(name: &str) -> PathBuf {
    let path = Path::new(BOOTSTRAP).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p {name}`",
        path.display()
    );
    path
}

/// The worker's binary.
pub fn worker_bootstrap() -> PathBuf {
    sibling_bootstrap("training-set-worker")
}

/// The stack, the queues, and the routes' function on them.
pub struct Sets {
    pub stack: GenerationStack,
    pub queues: TrainingSetQueues,
    pub env: Vec<(String, String)>,
    pub routes: LambdaEmulator,
}

impl Sets {
    /// Over moto answering one request at a time: threaded, its conditional writes are not
    /// atomic, and a set's deliveries and routes race on the same items (DynamoDB's are).
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        Self::over(GenerationStack::start_serialized().await, settings).await
    }

    /// The routes' function on `stack`, its environment with `settings` over the stack's.
    pub async fn over(stack: GenerationStack, settings: &[(&str, &str)]) -> Self {
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
    pub async fn worker(&self, settings: EventSourceSettings) -> SqsEventSource {
        self.worker_with(settings, &[]).await
    }

    /// The worker's event source, its environment with `settings` over the routes' own.
    pub async fn worker_with(
        &self,
        source: EventSourceSettings,
        settings: &[(&str, &str)],
    ) -> SqsEventSource {
        let mut env = self.env.clone();
        for (key, value) in settings {
            testkit::set_env(&mut env, key, *value);
        }
        SqsEventSource::start(
            &self.stack.sdk,
            &self.queues,
            &worker_bootstrap(),
            &env,
            source,
        )
        .await
    }

    /// The webhook function in `environments` environments behind an HTTP front (API
    /// Gateway's part), verifying with the emulator's secret.
    pub async fn webhook_front(&self, environments: usize) -> WebhookFront {
        let mut env = self.env.clone();
        testkit::set_env(
            &mut env,
            "REPLICATE_WEBHOOK_SECRET",
            self.stack.replicate.webhook_secret(),
        );
        let front = HttpFront::start(
            &sibling_bootstrap("replicate-webhook"),
            &env,
            environments,
            "replicate-webhook-http-v2.json",
            None,
        )
        .await;
        WebhookFront { front }
    }

    /// The worker's event source with webhooks sent to `front`, first checked after
    /// `first_check_s` seconds.
    pub async fn worker_told_by(&self, front: &WebhookFront, first_check_s: u64) -> SqsEventSource {
        let first_check = first_check_s.to_string();
        self.worker_with(
            EventSourceSettings::default(),
            &[
                ("REPLICATE_WEBHOOK_URL", &front.url()),
                ("TRAINING_SET_FIRST_CHECK_SECONDS", &first_check),
            ],
        )
        .await
    }

    /// Purges the items' queue, in flight messages too: every message lost.
    pub async fn lose_every_message(&self) {
        aws_sdk_sqs::Client::new(&self.stack.sdk)
            .purge_queue()
            .queue_url(&self.queues.queue_url)
            .send()
            .await
            .expect("purge the queue");
    }

    /// Waits until the items' queue is empty, visible and in flight, for at most `within`.
    pub async fn queue_drained(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let depth = testkit::queue_depth(&self.stack.sdk, &self.queues.queue_url).await;
            if depth == (0, 0) {
                return;
            }
            assert!(started.elapsed() < within, "queue not drained: {depth:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends the sample event `file`, for `actor` and `set_id`, with `body` and `key`.
    pub async fn send(
        &self,
        file: &str,
        actor: &str,
        set_id: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u64, Value, Value) {
        let mut event = match set_id {
            Some(set_id) => testkit::event_for_set(file, actor, set_id),
            None => testkit::event_for_actor(file, actor),
        };
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

    pub async fn create(&self, body: &Value, key: Option<&str>) -> (u64, Value, Value) {
        self.send(
            "training-sets-create-http-v2.json",
            testkit::SAMPLE_ACTOR.actor_id,
            None,
            Some(body),
            key,
        )
        .await
    }

    /// Cancels the sample actor's set `set_id`; its answer's status and body.
    pub async fn cancel(&self, set_id: &str) -> (u64, Value) {
        let (status, body, _) = self
            .send(
                "training-sets-cancel-http-v2.json",
                testkit::SAMPLE_ACTOR.actor_id,
                Some(set_id),
                None,
                None,
            )
            .await;
        (status, body)
    }

    pub async fn progress(&self, set_id: &str) -> Value {
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
    pub async fn progress_until(
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

    pub async fn images(&self) -> Vec<String> {
        testkit::list_keys(&self.stack.sdk, FOLDER)
            .await
            .into_iter()
            .filter(|key| key.ends_with(".jpg"))
            .collect()
    }

    /// How many items of sets the table holds.
    pub async fn set_items(&self) -> usize {
        testkit::table_keys(&self.stack.sdk)
            .await
            .iter()
            .filter(|key| key.starts_with("SET#"))
            .count()
    }
}

/// The webhook function behind its HTTP front.
pub struct WebhookFront {
    front: HttpFront,
}

impl WebhookFront {
    /// The webhook route's URL.
    pub fn url(&self) -> String {
        format!("{}/api/webhooks/replicate", self.front.url())
    }
}
