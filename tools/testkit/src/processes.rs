//! The processes a test starts: moto server and the AWS Lambda runtime interface emulator, on
//! free loopback ports, each stopped by its own PID when dropped; and the log file a function
//! under the emulator writes to.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::Value;

use crate::{BUCKET, REGION, TABLE_NAME, repo_root, sdk_config};

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
pub(crate) fn verbose_output() -> Stdio {
    if std::env::var_os("TESTKIT_VERBOSE").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// A child process that is killed, by its own PID, when this is dropped.
#[derive(Debug)]
pub(crate) struct OwnedChild(pub(crate) Child);

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

    /// Like [`Self::start`], the function's and the emulator's output captured in a fresh
    /// [`CapturedLog`] named by `label`, for a test that asserts on what was logged.
    pub async fn start_capturing(
        bootstrap: &Path,
        env: &[(String, String)],
        label: &str,
    ) -> (Self, CapturedLog) {
        let log = CapturedLog::new(label);
        let emulator = Self::start_logging(bootstrap, env, Some(log.path())).await;
        (emulator, log)
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

    /// Where the function is invoked: a POST of the event answers what the function returned.
    pub fn invoke_url(&self) -> &str {
        &self.invoke_url
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

/// A log file in the temporary folder, removed when dropped: what a function under the
/// emulator wrote, for a test (or the benchmark) to read back without leaving files behind.
#[derive(Debug)]
pub struct CapturedLog {
    path: PathBuf,
}

impl CapturedLog {
    /// An empty `{label}-{pid}.log`: the label keeps apart the tests of one process, the PID
    /// the test binaries that run concurrently.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{label}-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self { path }
    }

    /// Where the log is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path)
            .unwrap_or_else(|e| panic!("cannot read the captured log {}: {e}", self.path.display()))
    }

    /// What was logged so far, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

impl Drop for CapturedLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
