//! A fault-injecting HTTP proxy in front of moto: requests that match a rule get the rule's
//! answer (a 409 on a manifest write, a DynamoDB throttling error) instead of reaching moto;
//! everything else is forwarded as it is.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

/// One injected fault.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// The HTTP method it matches.
    pub method: Method,
    /// Text the path and query must contain.
    pub path_contains: String,
    /// Text the request body must contain (e.g. a DynamoDB key), if any.
    pub body_contains: Option<String>,
    /// The answer's status.
    pub status: u16,
    /// The answer's content type.
    pub content_type: &'static str,
    /// The answer's body.
    pub body: String,
    /// How many matching requests get it.
    pub times: u32,
    /// When set, a matching request is not answered by the rule: it reaches moto this much
    /// later (a slow S3), and its answer is moto's.
    pub delay: Option<std::time::Duration>,
}

impl FaultRule {
    /// S3's 409 for a conditional write racing another on the same key.
    pub fn s3_conflict(path_contains: &str, times: u32) -> Self {
        Self {
            method: Method::PUT,
            path_contains: path_contains.to_owned(),
            body_contains: None,
            status: 409,
            content_type: "application/xml",
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ConditionalRequestConflict</Code><Message>A conflicting operation is in progress.</Message></Error>".to_owned(),
            times,
            delay: None,
        }
    }

    /// S3's 500 for `times` requests of `method` whose path and query contain `path_contains`.
    pub fn s3_internal_error(method: Method, path_contains: &str, times: u32) -> Self {
        Self {
            method,
            status: 500,
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>".to_owned(),
            ..Self::s3_conflict(path_contains, times)
        }
    }

    /// `times` requests of `method` whose path and query contain `path_contains` reach moto
    /// `delay` late.
    pub fn slow(
        method: Method,
        path_contains: &str,
        delay: std::time::Duration,
        times: u32,
    ) -> Self {
        Self {
            method,
            delay: Some(delay),
            ..Self::s3_conflict(path_contains, times)
        }
    }

    /// S3's 412 for a conditional write whose condition no longer holds.
    pub fn s3_precondition_failed(path_contains: &str, times: u32) -> Self {
        Self {
            status: 412,
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PreconditionFailed</Code><Message>At least one of the preconditions you specified did not hold.</Message></Error>".to_owned(),
            ..Self::s3_conflict(path_contains, times)
        }
    }

    /// DynamoDB throttling of requests whose body contains `body_contains`.
    pub fn dynamodb_throttling(body_contains: &str, times: u32) -> Self {
        Self {
            method: Method::POST,
            path_contains: "/".to_owned(),
            body_contains: Some(body_contains.to_owned()),
            status: 400,
            content_type: "application/x-amz-json-1.0",
            body: r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#.to_owned(),
            times,
            delay: None,
        }
    }
}

#[derive(Debug)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<FaultRule>>,
    injected: Mutex<u32>,
}

/// The proxy, stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    state: Arc<ProxyState>,
    endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            rules: Mutex::new(Vec::new()),
            injected: Mutex::new(0),
        });
        // Parts of a multipart upload are larger than axum's default limit (2 MB).
        let router = axum::Router::new()
            .fallback(forward)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
        });
        Self {
            state,
            endpoint,
            shutdown: Some(shutdown),
        }
    }

    /// The endpoint to give the function as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Adds a fault.
    pub fn inject(&self, rule: FaultRule) {
        self.state.rules.lock().expect("rules").push(rule);
    }

    /// How many answers were injected so far.
    pub fn injected(&self) -> u32 {
        *self.state.injected.lock().expect("count")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let injected = {
        let mut rules = state.rules.lock().expect("rules");
        let text = String::from_utf8_lossy(&body);
        let hit = rules.iter_mut().find(|rule| {
            rule.times > 0
                && rule.method == method
                && path.contains(&rule.path_contains)
                && rule
                    .body_contains
                    .as_ref()
                    .is_none_or(|needle| text.contains(needle.as_str()))
        });
        hit.map(|rule| {
            rule.times -= 1;
            (
                rule.status,
                rule.content_type,
                rule.body.clone(),
                rule.delay,
            )
        })
    };
    if let Some((_, _, _, Some(delay))) = injected {
        *state.injected.lock().expect("count") += 1;
        tokio::time::sleep(delay).await;
    } else if let Some((status, content_type, body, None)) = injected {
        *state.injected.lock().expect("count") += 1;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, [("content-type", content_type)], body).into_response();
    }
    let is_head = method == Method::HEAD;
    let mut request = state
        .client
        .request(method, format!("{}{path}", state.upstream));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.body(body).send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut out = HeaderMap::new();
            for (name, value) in answer.headers() {
                // A HEAD answer's length describes the object; other bodies get their own.
                let hop_by_hop = matches!(name.as_str(), "transfer-encoding" | "connection");
                if !hop_by_hop && (is_head || name != "content-length") {
                    out.insert(name.clone(), value.clone());
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
