//! What the export tests share: the function under the runtime interface emulator for its
//! routes and under the SQS driver for its queue, and a zip read back by Python's `zipfile`
//! (as a trainer reads it). The actor's seeded images and manifest are testkit's.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use testkit::{
    EventSourceSettings, FaultProxy, GenerationStack, LambdaEmulator, SAMPLE_ACTOR, SqsEventSource,
    TrainingSetQueues, status_and_body,
};

/// The function's binary.
pub const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_training-export");
/// The actor exported.
pub const ACTOR: &str = SAMPLE_ACTOR.actor_id;

pub use testkit::curated::{folder, jpeg_of_size, manifest_key, seed_images, write_manifest};

/// The function's routes (one environment) and its queue (the SQS driver's own).
pub struct ExportFunction {
    /// The environment that serves the routes.
    pub http: LambdaEmulator,
    /// The driver that hands the exports' queue to the function.
    source: SqsEventSource,
}

/// How the template's event source hands the exports' queue to the function: one message a
/// batch, one environment.
pub fn queue_settings() -> EventSourceSettings {
    EventSourceSettings {
        batch_size: 1,
        concurrency: 1,
        ..EventSourceSettings::default()
    }
}

impl ExportFunction {
    /// The function with `env`, its queue `queues` driven as deployed.
    pub async fn start(
        stack: &GenerationStack,
        queues: &TrainingSetQueues,
        env: &[(String, String)],
    ) -> Self {
        Self::start_with(stack, queues, env, env, queue_settings()).await
    }

    /// The function with `env` whose queue's runs (driven with `settings`) reach S3 through
    /// a fault proxy, and the proxy (its faults injected by the test).
    pub async fn behind_proxy(
        stack: &GenerationStack,
        queues: &TrainingSetQueues,
        env: &[(String, String)],
        settings: EventSourceSettings,
    ) -> (FaultProxy, Self) {
        let proxy = FaultProxy::start(stack.moto.endpoint()).await;
        let mut queue_env = env.to_vec();
        testkit::set_env(&mut queue_env, "AWS_ENDPOINT_URL", proxy.endpoint());
        let function = Self::start_with(stack, queues, env, &queue_env, settings).await;
        (proxy, function)
    }

    /// The function with `env`, its queue `queues` run by `queue_env`, driven with `settings`.
    async fn start_with(
        stack: &GenerationStack,
        queues: &TrainingSetQueues,
        env: &[(String, String)],
        queue_env: &[(String, String)],
        settings: EventSourceSettings,
    ) -> Self {
        let http = LambdaEmulator::start(Path::new(BOOTSTRAP), env).await;
        let source = SqsEventSource::start(
            &stack.sdk,
            queues,
            Path::new(BOOTSTRAP),
            queue_env,
            settings,
        )
        .await;
        Self { http, source }
    }

    /// Stops the driver (after the invocation it may be making), so that another may take
    /// the queue.
    pub async fn stop(self) {
        self.source.stop().await;
    }

    /// POSTs an export with `body`.
    pub async fn start_export(&self, body: &Value) -> (u64, Value) {
        let event =
            testkit::with_json_body(testkit::event("training-export-start-http-v2.json"), body);
        status_and_body(&self.http.invoke(&event).await)
    }

    /// GETs export `id`.
    pub async fn status(&self, id: &str) -> (u64, Value) {
        let mut event = testkit::event("training-export-status-http-v2.json");
        let path = format!("/api/actors/{ACTOR}/training-data/exports/{id}");
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        event["pathParameters"]["exportId"] = json!(id);
        status_and_body(&self.http.invoke(&event).await)
    }

    /// Export `id` once it is no longer running (at most a minute).
    pub async fn ended(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.status(id).await;
            assert_eq!(status, 200, "{body}");
            if body["status"] != "running" {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "still running: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A zip as Python's `zipfile` reads it: its names in order, `testzip()`'s answer, each
/// file's SHA-256, the text of each `.txt`, and `dataset.json`.
#[derive(Debug)]
pub struct ReadZip {
    /// The names, in the zip's order.
    pub names: Vec<String>,
    /// The first corrupt member, if any (`testzip()`).
    pub corrupt: Value,
    /// Each member's SHA-256, hex.
    pub sha256: Map<String, Value>,
    /// Each `.txt` member's text.
    pub texts: Map<String, Value>,
    /// `dataset.json`, parsed.
    pub dataset: Value,
}

const READ_ZIP: &str = r#"
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = z.namelist()
    print(json.dumps({
        "names": names,
        "corrupt": z.testzip(),
        "sha256": {n: hashlib.sha256(z.read(n)).hexdigest() for n in names},
        "texts": {n: z.read(n).decode("utf-8") for n in names if n.endswith(".txt")},
        "dataset": json.loads(z.read("dataset.json")),
    }))
"#;

/// Downloads `url` and reads it with Python's `zipfile`.
pub async fn download_and_read(url: &str) -> (Vec<u8>, ReadZip) {
    let answer = reqwest::get(url).await.expect("GET the export's URL");
    assert_eq!(answer.status(), 200, "the presigned URL opens the zip");
    let bytes = answer.bytes().await.expect("the zip's bytes").to_vec();
    let path = std::env::temp_dir().join(format!(
        "export-{}-{}.zip",
        std::process::id(),
        testkit::free_port()
    ));
    std::fs::write(&path, &bytes).expect("write the zip");
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(READ_ZIP)
        .arg(&path)
        .output()
        .expect("run python3");
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "zipfile could not read it: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).expect("the reader's JSON");
    let names = read["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().unwrap_or_default().to_owned())
        .collect();
    let object = |name: &str| read[name].as_object().cloned().unwrap_or_default();
    let zip = ReadZip {
        names,
        corrupt: read["corrupt"].clone(),
        sha256: object("sha256"),
        texts: object("texts"),
        dataset: read["dataset"].clone(),
    };
    (bytes, zip)
}

/// The SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys under the exports' folder, and the multipart uploads open in the bucket.
pub async fn exports_left(stack: &GenerationStack) -> (Vec<String>, usize) {
    let keys = testkit::list_keys(&stack.sdk, "system_actors/training_exports/").await;
    let uploads = testkit::s3_client(&stack.sdk)
        .list_multipart_uploads()
        .bucket(testkit::BUCKET)
        .send()
        .await
        .expect("ListMultipartUploads");
    (keys, uploads.uploads().len())
}
