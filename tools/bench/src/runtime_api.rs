//! A Lambda Runtime API for one execution environment at a time, served by the benchmark
//! itself: it notes when a freshly started `bootstrap` first asks for an invocation (its cold
//! start), and can hand it one event and wait for the answer (a process per request).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;

/// What the next environment gets: when it polls, and what it answers.
#[derive(Default)]
struct Armed {
    event: Option<Vec<u8>>,
    polled: Option<oneshot::Sender<Instant>>,
    answered: Option<oneshot::Sender<(Instant, Bytes)>>,
}

type Shared = Arc<Mutex<Armed>>;

/// The Runtime API on a loopback port; stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    armed: Shared,
    _stop: oneshot::Sender<()>,
}

/// What one start of a bootstrap gave.
pub struct Start {
    /// From spawning the process to its first `GET .../invocation/next`.
    pub to_first_poll: Duration,
    /// From spawning the process to its answer, when it was given an event.
    pub to_answer: Option<Duration>,
    /// The answer's body.
    pub answer: Option<Bytes>,
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let armed = Shared::default();
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(response))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(armed.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            armed,
            _stop: stop,
        }
    }

    /// Starts `bootstrap` with `env` against this API and waits for its first poll; with
    /// `event`, hands it that event and waits for its answer too. The process is then killed.
    pub async fn run_once(
        &self,
        bootstrap: &std::path::Path,
        env: &[(String, String)],
        event: Option<&[u8]>,
    ) -> Start {
        let (polled_tx, polled) = oneshot::channel();
        let (answered_tx, answered) = oneshot::channel();
        {
            let mut armed = self.armed.lock().expect("runtime API state");
            *armed = Armed {
                event: event.map(<[u8]>::to_vec),
                polled: Some(polled_tx),
                answered: Some(answered_tx),
            };
        }
        let started = Instant::now();
        let mut child = tokio::process::Command::new(bootstrap)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bootstrap.display()));
        let first_poll = tokio::time::timeout(Duration::from_secs(30), polled)
            .await
            .unwrap_or_else(|_| panic!("{} never polled for an invocation", bootstrap.display()))
            .expect("first poll noted");
        let (to_answer, answer) = if event.is_some() {
            let (at, body) = tokio::time::timeout(Duration::from_secs(60), answered)
                .await
                .expect("an answer within 60 s")
                .expect("answer noted");
            (Some(at - started), Some(body))
        } else {
            (None, None)
        };
        let _ = child.kill().await;
        Start {
            to_first_poll: first_poll - started,
            to_answer,
            answer,
        }
    }
}

async fn next(State(armed): State<Shared>) -> Response {
    let now = Instant::now();
    let event = {
        let mut armed = armed.lock().expect("runtime API state");
        if let Some(polled) = armed.polled.take() {
            let _ = polled.send(now);
        }
        armed.event.take()
    };
    let Some(event) = event else {
        // Nothing to run: hold the poll, as Lambda does between invocations.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let deadline = epoch_ms() + 30_000;
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "bench-request".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, event).into_response()
}

async fn response(State(armed): State<Shared>, body: Bytes) -> Response {
    let now = Instant::now();
    if let Some(answered) = armed.lock().expect("runtime API state").answered.take() {
        let _ = answered.send((now, body));
    }
    StatusCode::ACCEPTED.into_response()
}

async fn init_error(body: Bytes) -> Response {
    eprintln!(
        "the function failed to start: {}",
        String::from_utf8_lossy(&body)
    );
    StatusCode::ACCEPTED.into_response()
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
