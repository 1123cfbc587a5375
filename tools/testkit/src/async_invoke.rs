//! Lambda's asynchronous invocation, played for a test: a Runtime API of the test's own,
//! serving one `bootstrap` process, that delivers an event with a request id and a deadline
//! of its choosing and, when the function answers with an error, delivers the same event
//! again under the same request id, up to twice (Lambda's `MaximumRetryAttempts` of 2). The
//! runtime interface emulator cannot do this: it gives each invocation a new request id.
//! Lambda waits a minute, then two, between attempts; this driver retries at once.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::processes::{OwnedChild, verbose_output};

/// One delivery: the event, its request id, its deadline (epoch ms), and where its answer goes.
struct Delivery {
    event: Vec<u8>,
    request_id: String,
    deadline_ms: u64,
    answer: oneshot::Sender<Attempt>,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Whether the function answered (`false`: it reported a function error).
    pub succeeded: bool,
    /// What it answered or reported.
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    deliveries: Arc<Mutex<mpsc::Receiver<Delivery>>>,
    answering: Arc<Mutex<Option<oneshot::Sender<Attempt>>>>,
}

/// A function process driven as Lambda drives asynchronous invocations; stopped when dropped.
pub struct AsyncLambda {
    deliver: mpsc::Sender<Delivery>,
    _child: OwnedChild,
    _stop: oneshot::Sender<()>,
}

impl AsyncLambda {
    /// Starts `bootstrap` with `env` against a Runtime API on a free loopback port.
    pub async fn start(bootstrap: &Path, env: &[(String, String)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let (deliver, deliveries) = mpsc::channel(4);
        let shared = Shared {
            deliveries: Arc::new(Mutex::new(deliveries)),
            answering: Arc::default(),
        };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(succeeded),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(failed))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let child = std::process::Command::new(bootstrap)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "generate-single")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
            .stdout(verbose_output())
            .stderr(verbose_output())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bootstrap.display()));
        Self {
            deliver,
            _child: OwnedChild(child),
            _stop: stop,
        }
    }

    /// Delivers `event` under `request_id` with `timeout` to run, and waits for the answer.
    pub async fn attempt(&self, event: &Value, request_id: &str, timeout: Duration) -> Attempt {
        let (answer, answered) = oneshot::channel();
        let deadline_ms = epoch_ms() + timeout.as_millis() as u64;
        self.deliver
            .send(Delivery {
                event: serde_json::to_vec(event).expect("event as JSON"),
                request_id: request_id.to_owned(),
                deadline_ms,
                answer,
            })
            .await
            .expect("the runtime API is serving");
        tokio::time::timeout(timeout + Duration::from_secs(30), answered)
            .await
            .expect("the function answered")
            .expect("answer noted")
    }

    /// An asynchronous invocation of `event`: delivered under one request id until the
    /// function answers without an error, at most three times in all. Returns every attempt.
    pub async fn invoke_async(
        &self,
        event: &Value,
        request_id: &str,
        timeout: Duration,
    ) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        for _ in 0..3 {
            let attempt = self.attempt(event, request_id, timeout).await;
            let done = attempt.succeeded;
            attempts.push(attempt);
            if done {
                break;
            }
        }
        attempts
    }
}

async fn next(State(shared): State<Shared>) -> Response {
    let delivery = shared.deliveries.lock().await.recv().await;
    let Some(delivery) = delivery else {
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    *shared.answering.lock().await = Some(delivery.answer);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", delivery.request_id),
        (
            "lambda-runtime-deadline-ms",
            delivery.deadline_ms.to_string(),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:generate-single".to_owned(),
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
    (headers, delivery.event).into_response()
}

async fn answered(shared: &Shared, succeeded: bool, body: &Bytes) {
    if let Some(answer) = shared.answering.lock().await.take() {
        let body = serde_json::from_slice(body).unwrap_or(Value::Null);
        let _ = answer.send(Attempt { succeeded, body });
    }
}

async fn succeeded(State(shared): State<Shared>, body: Bytes) -> Response {
    answered(&shared, true, &body).await;
    StatusCode::ACCEPTED.into_response()
}

async fn failed(State(shared): State<Shared>, body: Bytes) -> Response {
    answered(&shared, false, &body).await;
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
