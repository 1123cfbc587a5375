//! What the export tests share: an actor's seeded images and manifest, the function under
//! the runtime interface emulator for its routes and under the SQS driver for its queue, and
//! a zip read back by Python's `zipfile` (as a trainer reads it).

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

/// The actor's training-data folder.
pub fn folder() -> String {
    format!("system_actors/training_data/{ACTOR}/")
}

/// The actor's manifest's key.
pub fn manifest_key() -> String {
    format!("{}response.json", folder())
}

/// A real JPEG of about `size` bytes: a small encoded picture with comment segments of
/// pseudo-random bytes after its start marker (so it does not compress, as photos do not),
/// different for each `seed`.
pub fn jpeg_of_size(size: usize, seed: u64) -> Vec<u8> {
    let picture = testkit::sample_jpeg(16 + (seed % 16) as u32, 16);
    let mut out = picture[..2].to_vec();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = size.saturating_sub(picture.len());
    while left > 4 {
        let payload = (left - 4).min(65_533);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
        for _ in 0..payload {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(state as u8);
        }
        left -= payload + 4;
    }
    out.extend_from_slice(&picture[2..]);
    out
}

/// One seeded image: its file name, bytes and manifest caption.
#[derive(Debug, Clone)]
pub struct SeededImage {
    /// `{actor}_{n}.jpg`, or a legacy name.
    pub filename: String,
    /// Its bytes as stored.
    pub bytes: Vec<u8>,
    /// Its caption in the manifest, when it has one.
    pub caption: Option<String>,
    /// Its seed in the manifest.
    pub seed: Option<u64>,
}

/// The manifest entry of image `n` (1-based) of `image`.
fn entry(n: usize, image: &SeededImage) -> Value {
    let key = format!("{}{}", folder(), image.filename);
    json!({
        "index": n,
        "filename": image.filename,
        "s3_key": key,
        "s3_url": format!("https://story-boards-assets.s3.amazonaws.com/{key}"),
        "prompt_id": "bw_pen_ink",
        "caption": image.caption,
        "seed": image.seed,
        "prediction_id": format!("pred-{n}"),
        "model": "black-forest-labs/flux-kontext-pro",
        "created_at": "2026-12-03T10:00:00Z",
    })
}

/// Stores `count` images of about `size` bytes and a manifest that lists them (and, first,
/// one legacy URL string without a caption, `old_1.jpg`), with the statuses in `statuses`
/// (by file name) in its curation map; the images in manifest order.
pub async fn seed_images(
    stack: &GenerationStack,
    count: usize,
    size: usize,
    statuses: &[(&str, &str)],
) -> Vec<SeededImage> {
    let mut images = vec![SeededImage {
        filename: "old_1.jpg".to_owned(),
        bytes: jpeg_of_size(size, 1_000),
        caption: None,
        seed: None,
    }];
    for n in 1..=count {
        images.push(SeededImage {
            filename: format!("{ACTOR}_{n}.jpg"),
            bytes: jpeg_of_size(size, n as u64),
            caption: Some(format!(
                "[trigger], ink sketch number {n}, plain background"
            )),
            seed: Some(100 + n as u64),
        });
    }
    for image in &images {
        let key = format!("{}{}", folder(), image.filename);
        testkit::put_object(&stack.sdk, &key, image.bytes.clone(), "image/jpeg").await;
    }
    let mut entries = vec![json!(format!(
        "https://story-boards-assets.s3.amazonaws.com/{}old_1.jpg",
        folder()
    ))];
    entries.extend(
        images[1..]
            .iter()
            .enumerate()
            .map(|(i, image)| entry(i + 1, image)),
    );
    let curation: Map<String, Value> = statuses
        .iter()
        .map(|(name, status)| ((*name).to_owned(), json!({"status": status})))
        .collect();
    write_manifest(
        stack,
        &json!({"actor": ACTOR, "images": entries, "curation": curation}),
    )
    .await;
    images
}

/// Writes the actor's manifest.
pub async fn write_manifest(stack: &GenerationStack, manifest: &Value) {
    testkit::put_object(
        &stack.sdk,
        &manifest_key(),
        serde_json::to_vec_pretty(manifest).unwrap(),
        "application/json",
    )
    .await;
}

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
