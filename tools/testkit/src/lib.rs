//! Test kit for the integration and end-to-end tests, and the local stack's seeding.
//!
//! Starts moto server and the AWS Lambda runtime interface emulator on free loopback ports,
//! stops them when dropped (by their own PIDs), and seeds the table and bucket. Dev-only:
//! never deployed, so it panics with a clear message where a test cannot go on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use serde_json::Value;

pub use replicate_emulator::Counts as ReplicateCounts;

mod fault_proxy;
pub use fault_proxy::{FaultProxy, FaultRule};

/// The region every local client uses.
pub const REGION: &str = "us-east-1";
/// The table name of the local stack and the tests.
pub const TABLE_NAME: &str = "training-image-service";
/// The bucket of the local stack and the tests (the template's default).
pub const BUCKET: &str = "story-boards-assets";

/// A profile to seed (`pk = ACTOR#{actor_id}`, `sk = PROFILE`).
#[derive(Debug, Clone, Copy)]
pub struct SeedProfile<'a> {
    /// The actor id.
    pub actor_id: &'a str,
    /// `actor_name`.
    pub actor_name: &'a str,
    /// `sex`, when the profile has one.
    pub sex: Option<&'a str>,
    /// `base_image_key`.
    pub base_image_key: &'a str,
}

/// The sample actor of the quick start.
pub const SAMPLE_ACTOR: SeedProfile<'static> = SeedProfile {
    actor_id: "0000_european_16_male",
    actor_name: "0000_european_16_male",
    sex: Some("male"),
    base_image_key: "system_actors/base_images/0000_european_16_male.jpg",
};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A sample event from `events/`.
pub fn event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A loopback port held while this lives, bound but not listening: connections to it are
/// refused, and no server another test starts meanwhile can take it (as it could a port that
/// [`free_port`] found free a moment ago).
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
    port: u16,
}

impl ClosedPort {
    /// Holds a free loopback port.
    pub fn hold() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("a free loopback port");
        let port = socket.local_addr().expect("its address").port();
        Self { socket, port }
    }

    /// `http://127.0.0.1:{port}`, an endpoint that refuses every connection.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Lets go of the port, for a server to start on it now.
    pub fn release(self) -> u16 {
        drop(self.socket);
        self.port
    }
}

/// Where a child's log goes: the test's stderr when `TESTKIT_VERBOSE` is set, else nowhere.
fn verbose_output() -> Stdio {
    if std::env::var_os("TESTKIT_VERBOSE").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// A child process that is killed, by its own PID, when this is dropped.
#[derive(Debug)]
struct OwnedChild(Child);

impl Drop for OwnedChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `url` answers any HTTP status, or the child exits, or 60 s pass.
async fn wait_until_answering(child: &mut OwnedChild, url: &str, what: &str) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok() {
            return true;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            eprintln!("{what} exited early with {status}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not answer at {url} within 60 s");
}

/// A moto server (S3 and DynamoDB) on a free loopback port, stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: OwnedChild,
    endpoint: String,
}

impl Moto {
    /// Starts `moto_server` (or the command in `MOTO_SERVER`) on 127.0.0.1.
    pub async fn start() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        Self::start_with(|port| {
            let mut command = Command::new(&program);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            command
        })
        .await
    }

    /// Starts moto answering one request at a time (`tools/moto_single_thread.py`), for the
    /// concurrency tests: moto's own conditional writes are not atomic when it is threaded.
    pub async fn start_serialized() -> Self {
        let script = repo_root().join("tools/moto_single_thread.py");
        Self::start_with(|port| {
            let mut command = Command::new("python3");
            command.arg(&script).args(["127.0.0.1", &port.to_string()]);
            command
        })
        .await
    }

    async fn start_with(command_for_port: impl Fn(u16) -> Command) -> Self {
        for _attempt in 0..3 {
            let port = free_port();
            let child = command_for_port(port)
                .stdout(Stdio::null())
                .stderr(verbose_output())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start moto (pip install 'moto[server]'): {e}"));
            let mut child = OwnedChild(child);
            let endpoint = format!("http://127.0.0.1:{port}");
            let probe = format!("{endpoint}/moto-api/");
            if wait_until_answering(&mut child, &probe, "moto server").await {
                return Self { child, endpoint };
            }
        }
        panic!("moto server did not start in 3 attempts");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:43817`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK configuration that talks to this server with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// The environment a function needs to use this server as its AWS.
    pub fn function_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("TABLE_NAME", TABLE_NAME),
            ("AWS_SYSTEM_ACTORS_BUCKET", BUCKET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// An SDK configuration for a local endpoint, with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "testkit",
        ))
        .load()
        .await
}

/// Creates the service's table and bucket, leaving them as they are when they exist.
pub async fn create_table_and_bucket(sdk: &SdkConfig) {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("key schema")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let created = dynamodb
        .create_table()
        .table_name(TABLE_NAME)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .send()
        .await;
    if let Err(error) = created {
        let exists = error
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        assert!(exists, "CreateTable failed: {error:?}");
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    let created = s3.create_bucket().bucket(BUCKET).send().await;
    if let Err(error) = created {
        let exists = error
            .as_service_error()
            .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists());
        assert!(exists, "CreateBucket failed: {error:?}");
    }
}

/// Writes an actor profile item.
pub async fn put_profile(sdk: &SdkConfig, profile: &SeedProfile<'_>) {
    let mut item = vec![
        ("pk", format!("ACTOR#{}", profile.actor_id)),
        ("sk", "PROFILE".to_owned()),
        ("actor_name", profile.actor_name.to_owned()),
        ("base_image_key", profile.base_image_key.to_owned()),
    ];
    if let Some(sex) = profile.sex {
        item.push(("sex", sex.to_owned()));
    }
    aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(TABLE_NAME)
        .set_item(Some(
            item.into_iter()
                .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
                .collect(),
        ))
        .send()
        .await
        .expect("PutItem of a profile");
}

/// The runtime interface emulator binary: `AWS_LAMBDA_RIE`, else the one in the
/// `aws-sam-cli` wheel.
pub fn rie_path() -> PathBuf {
    if let Ok(path) = std::env::var("AWS_LAMBDA_RIE") {
        return PathBuf::from(path);
    }
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, samcli; print(os.path.dirname(samcli.__file__))",
        ])
        .output()
        .expect("python3 to locate samcli");
    assert!(
        output.status.success(),
        "aws-sam-cli is not installed (pip install aws-sam-cli), and AWS_LAMBDA_RIE is unset"
    );
    let samcli = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    PathBuf::from(samcli).join("local/rapid/aws-lambda-rie-x86_64")
}

/// A function binary running under the AWS Lambda runtime interface emulator, one
/// invocation at a time, stopped when dropped.
#[derive(Debug)]
pub struct LambdaEmulator {
    child: OwnedChild,
    invoke_url: String,
    client: reqwest::Client,
}

impl LambdaEmulator {
    /// Starts `bootstrap` under the emulator, with this environment added to the test's own.
    pub async fn start(bootstrap: &Path, env: &[(String, String)]) -> Self {
        Self::start_logging(bootstrap, env, None).await
    }

    /// Like [`Self::start`], writing the function's and the emulator's output to `log`.
    pub async fn start_logging(
        bootstrap: &Path,
        env: &[(String, String)],
        log: Option<&Path>,
    ) -> Self {
        let output = |log: Option<&Path>| match log {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Stdio::from)
                .expect("open the log file"),
            None => verbose_output(),
        };
        let rie = rie_path();
        for _attempt in 0..3 {
            let (port, runtime_port) = (free_port(), free_port());
            let child = Command::new(&rie)
                .arg("--runtime-interface-emulator-address")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--runtime-api-address")
                .arg(format!("127.0.0.1:{runtime_port}"))
                .arg(bootstrap)
                .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "30")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(output(log))
                .stderr(output(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", rie.display()));
            let mut child = OwnedChild(child);
            let base = format!("http://127.0.0.1:{port}");
            if wait_until_answering(&mut child, &base, "runtime interface emulator").await {
                return Self {
                    child,
                    invoke_url: format!("{base}/2015-03-31/functions/function/invocations"),
                    client: reqwest::Client::new(),
                };
            }
        }
        panic!("the runtime interface emulator did not start in 3 attempts");
    }

    /// The emulator's process id (the function's bootstrap runs as its child).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Invokes the function with `event` and returns what it answered.
    pub async fn invoke(&self, event: &Value) -> Value {
        let response = self
            .client
            .post(&self.invoke_url)
            .json(event)
            .send()
            .await
            .expect("invoke the function");
        let text = response.text().await.expect("invocation answer");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"))
    }
}

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
}

/// A small JPEG photo stand-in: a synthetic gradient, `width` × `height` pixels.
pub fn sample_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            128,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode a JPEG");
    out.into_inner()
}

/// An S3 client for a local endpoint (path-style).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Writes an object into the test bucket.
pub async fn put_object(sdk: &SdkConfig, key: &str, bytes: Vec<u8>, content_type: &str) {
    s3_client(sdk)
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .content_type(content_type)
        .body(bytes.into())
        .send()
        .await
        .expect("PutObject");
}

/// An object of the test bucket, or `None`.
pub async fn get_object(sdk: &SdkConfig, key: &str) -> Option<Vec<u8>> {
    let output = s3_client(sdk)
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(output.body.collect().await.expect("object body").to_vec())
}

/// Every key of the test bucket under `prefix`, sorted.
pub async fn list_keys(sdk: &SdkConfig, prefix: &str) -> Vec<String> {
    let output = s3_client(sdk)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectsV2");
    let mut keys: Vec<String> = output
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// Every item of the test table, as `pk|sk` strings, sorted.
pub async fn table_keys(sdk: &SdkConfig) -> Vec<String> {
    let output = aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(TABLE_NAME)
        .send()
        .await
        .expect("Scan");
    let text = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut keys: Vec<String> = output
        .items()
        .iter()
        .map(|item| format!("{}|{}", text(item, "pk"), text(item, "sk")))
        .collect();
    keys.sort();
    keys
}

/// Writes an SSM SecureString parameter.
pub async fn put_secure_parameter(sdk: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");
}

/// A synthetic portrait for the sample actor, made here (no real person): a head and shoulders
/// in flat shapes on a studio gradient, `width` × `height` pixels, as a JPEG.
pub fn synthetic_portrait(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as f32, height as f32);
    let inside = |x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32| {
        ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0
    };
    let image = image::RgbImage::from_fn(width, height, |px, py| {
        let (x, y) = (px as f32, py as f32);
        let eye = |cx: f32| inside(x, y, cx, h * 0.40, w * 0.035, h * 0.025);
        let color = if eye(w * 0.43) || eye(w * 0.57) {
            [40, 30, 25]
        } else if inside(x, y, w * 0.5, h * 0.54, w * 0.07, h * 0.02) && y > h * 0.54 {
            [150, 60, 60]
        } else if inside(x, y, w * 0.5, h * 0.30, w * 0.17, h * 0.10) && y < h * 0.33 {
            [60, 40, 30]
        } else if inside(x, y, w * 0.5, h * 0.42, w * 0.15, h * 0.19) {
            [224, 182, 150]
        } else if inside(x, y, w * 0.5, h * 1.05, w * 0.38, h * 0.40) {
            [50, 70, 110]
        } else {
            let shade = 200 - (y / h * 90.0) as u8;
            [shade, shade, shade.saturating_add(20)]
        };
        image::Rgb(color)
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode a JPEG");
    out.into_inner()
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
        env
    }
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
