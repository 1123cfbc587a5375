//! What the trainings tests share: the emulator on a free loopback port, a client of it, and
//! a tiny local server of the input zips and a webhook receiver.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use replicate_emulator::{Counts, Emulator};
use serde_json::{Value, json};
use sha2::Sha256;

pub const TOKEN: &str = "r8_trainings_test";
pub const TRAINER: &str = "ostris/flux-dev-lora-trainer/versions/abc123";

/// A webhook the receiver got: its headers and body.
pub type Delivery = (HeaderMap, String);

/// The emulator, a client of it, and the local server of zips and webhooks.
pub struct Harness {
    pub emulator: Emulator,
    pub client: reqwest::Client,
    files: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

/// A zip written the way the project's exports are: stored entries, in stream mode.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new_stream(Vec::new());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in entries {
        writer
            .start_file(*name, options)
            .expect("start a zip entry");
        writer.write_all(content).expect("write a zip entry");
    }
    writer.finish().expect("finish the zip").into_inner()
}

impl Harness {
    /// The emulator (accepting only [`TOKEN`]) and the local server, each on a free port.
    pub async fn start() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let emulator = Emulator::start(any, Some(TOKEN.to_owned()))
            .await
            .expect("start the emulator");
        let good = zip_of(&[
            ("a.jpg", b"\xFF\xD8 jpeg a"),
            ("a.txt", b"a photo of TOK smiling"),
            ("b.png", b"\x89PNG b"),
            ("b.txt", b"TOK at the beach"),
            ("dataset.json", br#"{"actor": "sample", "images": 2}"#),
        ]);
        let uncaptioned = zip_of(&[("a.jpg", b"a"), ("a.txt", b"TOK"), ("b.jpg", b"b")]);
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let received = deliveries.clone();
        let router = Router::new()
            .route("/good.zip", get(move || async move { good }))
            .route("/uncaptioned.zip", get(move || async move { uncaptioned }))
            .route("/forbidden.zip", get(|| async { StatusCode::FORBIDDEN }))
            .route("/not-a.zip", get(|| async { "just text" }))
            .route(
                "/hook",
                post(move |headers: HeaderMap, body: Bytes| async move {
                    let body = String::from_utf8_lossy(&body).into_owned();
                    received.lock().expect("deliveries").push((headers, body));
                    StatusCode::OK
                }),
            );
        let listener = tokio::net::TcpListener::bind(any).await.expect("bind");
        let files = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            emulator,
            client: reqwest::Client::new(),
            files,
            deliveries,
        }
    }

    /// `path` on the emulator.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }

    /// Switches faults on (`PUT /admin/faults`).
    pub async fn set_faults(&self, faults: Value) {
        let response = self
            .client
            .put(self.url("/admin/faults"))
            .json(&faults)
            .send()
            .await
            .expect("PUT /admin/faults");
        assert_eq!(response.status(), 200, "faults {faults} refused");
    }

    /// The emulator's counts (`GET /admin/counts`).
    pub async fn counts(&self) -> Counts {
        let response = self.client.get(self.url("/admin/counts")).send().await;
        response.expect("counts").json().await.expect("counts JSON")
    }

    /// What each training received (`GET /admin/trainings`).
    pub async fn admin_trainings(&self) -> Value {
        let response = self.client.get(self.url("/admin/trainings")).send().await;
        response.expect("trainings").json().await.expect("JSON")
    }

    /// `method path` with the token and `body`: the status and the JSON answer.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the emulator answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates the model `owner/name`: the status and the JSON answer.
    pub async fn create_model(&self, owner: &str, name: &str) -> (u16, Value) {
        let model =
            json!({"owner": owner, "name": name, "visibility": "private", "hardware": "cpu"});
        self.call("POST", "/v1/models", Some(model)).await
    }

    /// Creates a training into `me/lora` from the zip at `zip` (a path of the local server).
    pub async fn train(&self, zip: &str, input: Value, webhook: bool) -> (u16, Value) {
        let mut input_all = json!({"input_images": format!("{}{zip}", self.files)});
        for (key, value) in input.as_object().into_iter().flatten() {
            input_all[key] = value.clone();
        }
        let mut body = json!({"destination": "me/lora", "input": input_all});
        if webhook {
            body["webhook"] = json!(format!("{}/hook", self.files));
            body["webhook_events_filter"] = json!(["completed"]);
        }
        let path = format!("/v1/models/{TRAINER}/trainings");
        self.call("POST", &path, Some(body)).await
    }

    /// Reads training `id` until its status is `status`; panics after 5 s.
    pub async fn wait_for(&self, id: &str, status: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let (code, training) = self.call("GET", &format!("/v1/trainings/{id}"), None).await;
            assert_eq!(code, 200, "{training}");
            if training["status"] == status {
                return training;
            }
            assert!(Instant::now() < until, "never {status}: {training}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The webhooks received, once `n` came (panics after 5 s), and a moment more for extras.
    pub async fn deliveries(&self, n: usize) -> Vec<Delivery> {
        let until = Instant::now() + Duration::from_secs(5);
        while self.deliveries.lock().expect("deliveries").len() < n {
            assert!(Instant::now() < until, "fewer than {n} webhooks came");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.deliveries.lock().expect("deliveries").clone()
    }
}

/// Whether `delivery` is signed with `secret` the Standard Webhooks way.
pub fn signed(secret: &str, (headers, body): &Delivery) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("an HMAC key");
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    !id.is_empty() && header("webhook-signature") == expected
}

/// The files of a ustar archive, checking each header's magic and checksum.
pub fn untar(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|b| *b != 0) {
        let header = &tar[at..at + 512];
        assert_eq!(&header[257..263], b"ustar\0", "a ustar header");
        let octal = |field: &[u8]| {
            let text = String::from_utf8_lossy(field);
            usize::from_str_radix(text.trim_matches(|c| c == '\0' || c == ' '), 8).expect("octal")
        };
        let sum: usize = (0..512)
            .map(|i| {
                if (148..156).contains(&i) {
                    32
                } else {
                    usize::from(header[i])
                }
            })
            .sum();
        assert_eq!(octal(&header[148..156]), sum, "the header's checksum");
        let name = String::from_utf8_lossy(&header[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size = octal(&header[124..136]);
        files.push((name, tar[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    files
}
