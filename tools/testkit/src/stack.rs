//! The whole local stack a generate-single test (or the benchmark) runs against: moto seeded
//! with the sample actor, and the Replicate emulator served from the test process.

use aws_config::SdkConfig;
use serde_json::Value;

use crate::{Moto, SAMPLE_ACTOR, create_table_and_bucket, put_object, put_profile, sample_jpeg};

/// The Replicate emulator, served from the test process on a free loopback port, with its
/// admin endpoints called over HTTP like any client would.
#[derive(Debug)]
pub struct ReplicateEmulator {
    emulator: replicate_emulator::Emulator,
    client: reqwest::Client,
}

impl ReplicateEmulator {
    /// The token the emulator accepts.
    pub const TOKEN: &'static str = "r8_test_token";

    /// Starts an emulator that accepts only [`Self::TOKEN`], on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts an emulator that accepts only [`Self::TOKEN`], on this loopback port.
    pub async fn start_on(port: u16) -> Self {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let emulator = replicate_emulator::Emulator::start(addr, Some(Self::TOKEN.to_owned()))
            .await
            .expect("start the Replicate emulator");
        Self {
            emulator,
            client: reqwest::Client::new(),
        }
    }

    /// Its base URL.
    pub fn base_url(&self) -> &str {
        self.emulator.base_url()
    }

    /// The `whsec_` secret its webhooks are signed with.
    pub fn webhook_secret(&self) -> &str {
        self.emulator.webhook_secret()
    }

    /// The environment a function needs to use this emulator as its Replicate.
    pub fn function_env(&self) -> Vec<(String, String)> {
        [
            ("REPLICATE_BASE_URL", self.base_url()),
            ("REPLICATE_API_TOKEN", Self::TOKEN),
            ("REPLICATE_OUTPUT_HOSTS", "127.0.0.1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Switches faults on (`PUT /admin/faults`), e.g. `json!({"rate_limit_creates": 1})`.
    pub async fn set_faults(&self, faults: Value) {
        let response = self
            .client
            .put(format!("{}/admin/faults", self.base_url()))
            .json(&faults)
            .send()
            .await
            .expect("PUT /admin/faults");
        assert!(response.status().is_success(), "faults refused: {faults}");
    }

    /// The calls it got so far (`GET /admin/counts`).
    pub async fn counts(&self) -> replicate_emulator::Counts {
        self.client
            .get(format!("{}/admin/counts", self.base_url()))
            .send()
            .await
            .expect("GET /admin/counts")
            .json()
            .await
            .expect("counts JSON")
    }

    /// What each created training received, oldest first (`GET /admin/trainings`): its id,
    /// model, version, destination, input, webhook, status, and the input zip's entry
    /// names, image count, captions and `dataset.json`.
    pub async fn trainings(&self) -> Value {
        self.client
            .get(format!("{}/admin/trainings", self.base_url()))
            .send()
            .await
            .expect("GET /admin/trainings")
            .json()
            .await
            .expect("trainings JSON")
    }

    /// Creates the model `owner/name` (private, on CPU) with `POST /v1/models`, as a
    /// training's destination must exist; panics unless it is created.
    pub async fn create_model(&self, owner: &str, name: &str) {
        let response = self
            .client
            .post(format!("{}/v1/models", self.base_url()))
            .bearer_auth(Self::TOKEN)
            .json(&serde_json::json!({
                "owner": owner,
                "name": name,
                "visibility": "private",
                "hardware": "cpu",
            }))
            .send()
            .await
            .expect("POST /v1/models");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status.as_u16(),
            201,
            "creating the model {owner}/{name} in the emulator: {body}"
        );
    }
}

/// What a generate-single test runs against: moto with the table, the bucket, the sample actor
/// and a synthetic base photo, and the Replicate emulator.
#[derive(Debug)]
pub struct GenerationStack {
    /// moto (S3, DynamoDB, SSM).
    pub moto: Moto,
    /// An SDK configuration for moto.
    pub sdk: SdkConfig,
    /// The Replicate emulator.
    pub replicate: ReplicateEmulator,
}

impl GenerationStack {
    /// The stack over a threaded moto.
    pub async fn start() -> Self {
        Self::over(Moto::start().await).await
    }

    /// The stack over a moto that answers one request at a time (for races).
    pub async fn start_serialized() -> Self {
        Self::over(Moto::start_serialized().await).await
    }

    async fn over(moto: Moto) -> Self {
        let sdk = moto.sdk_config().await;
        create_table_and_bucket(&sdk).await;
        put_profile(&sdk, &SAMPLE_ACTOR).await;
        put_object(
            &sdk,
            SAMPLE_ACTOR.base_image_key,
            sample_jpeg(48, 48),
            "image/jpeg",
        )
        .await;
        let replicate = ReplicateEmulator::start().await;
        Self {
            moto,
            sdk,
            replicate,
        }
    }

    /// The environment a generate-single function needs to use this stack.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.function_env();
        env.extend(self.replicate.function_env());
        // The functions here run with a 30 s timeout (the runtime interface emulator's
        // `AWS_LAMBDA_FUNCTION_TIMEOUT`), not the template's 300 s.
        env.push(("BATCH_JOB_MIN_SECONDS".to_owned(), "20".to_owned()));
        env
    }
}
