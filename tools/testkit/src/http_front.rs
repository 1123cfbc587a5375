//! A small HTTP front for a function under the runtime interface emulator, playing API
//! Gateway's HTTP API for callers that speak HTTP (Replicate's webhooks): each request
//! becomes a payload-2.0 event (from the sample in `events/`), is invoked on one of a few
//! environments (Lambda's concurrency), and the function's answer becomes the response.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::local_server::LocalServer;
use crate::{LambdaEmulator, event};

/// A running front; it and its environments stop when dropped.
pub struct HttpFront {
    server: LocalServer,
}

struct Pool {
    environments: Vec<LambdaEmulator>,
    free: Mutex<Vec<usize>>,
    permits: Semaphore,
    template: Value,
}

impl HttpFront {
    /// `environments` environments of `bootstrap` with `env`, behind a front on a free
    /// loopback port; the events start from `events/{template}`. With `log`, the function's
    /// and the emulator's output (its REPORT lines) go there.
    pub async fn start(
        bootstrap: &Path,
        env: &[(String, String)],
        environments: usize,
        template: &str,
        log: Option<&Path>,
    ) -> Self {
        let mut started = Vec::new();
        for _ in 0..environments.max(1) {
            started.push(LambdaEmulator::start_logging(bootstrap, env, log).await);
        }
        let pool = Arc::new(Pool {
            free: Mutex::new((0..started.len()).collect()),
            permits: Semaphore::new(started.len()),
            environments: started,
            template: event(template),
        });
        let router = axum::Router::new().fallback(forward).with_state(pool);
        Self {
            server: LocalServer::start(router).await,
        }
    }

    /// The front's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        self.server.url()
    }
}

/// One request: its event invoked on a free environment, its answer sent back.
async fn forward(State(pool): State<Arc<Pool>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 6 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let event = api_event(&pool.template, &parts, &body);
    let Ok(_permit) = pool.permits.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "front closed").into_response();
    };
    let index = pool.free.lock().ok().and_then(|mut free| free.pop());
    let Some(index) = index else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no environment").into_response();
    };
    let taken = Taken { pool: &pool, index };
    let answer = pool.environments[taken.index].invoke(&event).await;
    response_of(&answer)
}

/// An environment in use, given back when the request ends (a panicking invocation too).
struct Taken<'a> {
    pool: &'a Pool,
    index: usize,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.free.lock() {
            free.push(self.index);
        }
    }
}

/// The payload-2.0 event of a request, over the template's fixed fields.
fn api_event(template: &Value, parts: &axum::http::request::Parts, body: &Bytes) -> Value {
    let mut event = template.clone();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.insert(name.as_str().to_owned(), json!(value));
        }
    }
    let mut parameters = Map::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        parameters.insert(name.to_owned(), json!(value));
    }
    let route = format!("{} {path}", parts.method);
    event["routeKey"] = json!(route);
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["headers"] = Value::Object(headers);
    event["queryStringParameters"] = Value::Object(parameters);
    event["requestContext"]["http"]["method"] = json!(parts.method.as_str());
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route);
    match std::str::from_utf8(body) {
        Ok(text) => {
            event["body"] = json!(text);
            event["isBase64Encoded"] = json!(false);
        }
        Err(_) => {
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
            event["isBase64Encoded"] = json!(true);
        }
    }
    event
}

/// The HTTP response of a function's API Gateway answer.
fn response_of(answer: &Value) -> Response {
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|status| StatusCode::from_u16(u16::try_from(status).ok()?).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let text = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Some(headers) = answer["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}
