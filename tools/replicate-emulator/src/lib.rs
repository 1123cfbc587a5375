//! A local stand-in for Replicate's predictions API, for tests and the local stack. Never
//! deployed.
//!
//! It creates predictions by model and by version, answers `Prefer: wait` (201 when final,
//! 202 when not), reads and cancels them, checks the Bearer token, and serves the outputs
//! itself: a real JPEG derived from the input image (a data URI, or a URL it fetches). Faults
//! are switched per test with `PUT /admin/faults`; `GET /admin/counts` says how many calls of
//! each kind it got; `POST /admin/reset` forgets everything.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Faults to inject, all off by default. Counters (`*_creates`, `failing_polls`) are used up
/// one per request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next N creates answer 429 with "Your rate limit resets in ~Ns." in the body.
    pub rate_limit_creates: u32,
    /// The N of that text, in seconds (default 1).
    pub rate_limit_reset_secs: Option<u32>,
    /// Also send a `Retry-After` header with the 429s.
    pub retry_after_header: bool,
    /// The next N creates answer 503.
    pub unavailable_creates: u32,
    /// The next N creates are refused with `reject_status`, creating nothing (a bad token, no
    /// credit, the model's input validation).
    pub reject_creates: u32,
    /// The status of those refusals: 401, 402 or 422 (the default).
    pub reject_status: Option<u16>,
    /// The next N reads of a prediction answer 500.
    pub failing_polls: u32,
    /// Delay of every API answer, in milliseconds.
    pub latency_ms: u64,
    /// Extra delay of the creates' answers only, in milliseconds, after the prediction is
    /// made (and billed): a create that times out has still cost money, as on Replicate.
    pub create_latency_ms: u64,
    /// Extra delay of the reads only (a poll that times out), in milliseconds.
    pub poll_latency_ms: u64,
    /// The next N reads of a prediction answer 200 with a body that is not JSON.
    pub malformed_polls: u32,
    /// How long each prediction runs before it finishes, in milliseconds.
    pub processing_ms: u64,
    /// Each prediction stays `starting` for this many reads.
    pub starting_polls: u32,
    /// Predictions never finish (until canceled).
    pub never_finish: bool,
    /// A cancel finds the prediction just succeeded (the race at a deadline).
    pub succeed_on_cancel: bool,
    /// Predictions fail with this error message.
    pub fail_with: Option<String>,
    /// Outputs are a list of URLs instead of one URL.
    pub output_as_list: bool,
    /// Outputs point at this base URL (e.g. `http://localhost:PORT`) instead of the emulator's
    /// own address.
    pub output_base_url: Option<String>,
    /// Output files answer 404.
    pub output_gone: bool,
    /// Output files answer 302 to another URL.
    pub output_redirect: bool,
    /// Output files are PNGs, not JPEGs.
    pub output_not_jpeg: bool,
    /// Outputs are one fixed JPEG padded to at least this many bytes, made without reading
    /// the input: a model that answers at once, for benchmarks.
    pub output_bytes: Option<usize>,
}

/// How many requests of each kind the emulator got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Create requests, whatever their answer.
    pub create_requests: u32,
    /// Predictions actually created: the billable ones.
    pub predictions_created: u32,
    /// Reads of a prediction.
    pub get_requests: u32,
    /// Cancels.
    pub cancel_requests: u32,
    /// Downloads of an output file.
    pub file_requests: u32,
    /// Downloads of an output file that carried an `Authorization` header (a leaked token).
    pub file_requests_with_authorization: u32,
    /// API requests refused for a missing or wrong token.
    pub unauthorized: u32,
}

/// One prediction as the emulator keeps it.
#[derive(Debug)]
struct StoredPrediction {
    model: String,
    version: String,
    input: Value,
    created: Instant,
    processing: Duration,
    starting_polls_left: u32,
    never_finish: bool,
    fail_with: Option<String>,
    canceled: bool,
    forced_success: bool,
    output_list: bool,
    output_base: String,
    /// The output JPEG, or why the input could not be used.
    output: Result<Bytes, String>,
}

impl StoredPrediction {
    fn status(&self) -> &'static str {
        if self.forced_success {
            return "succeeded";
        }
        if self.canceled {
            return "canceled";
        }
        if self.never_finish {
            return "processing";
        }
        if self.starting_polls_left > 0 {
            return "starting";
        }
        if self.created.elapsed() < self.processing {
            return "processing";
        }
        if self.fail_with.is_some() || self.output.is_err() {
            "failed"
        } else {
            "succeeded"
        }
    }

    fn to_json(&self, id: &str, api_base: &str) -> Value {
        let status = self.status();
        let output = (status == "succeeded").then(|| {
            let url = format!("{}/files/{id}.jpg", self.output_base);
            if self.output_list {
                json!([url])
            } else {
                json!(url)
            }
        });
        let error = (status == "failed").then(|| {
            self.fail_with
                .clone()
                .or_else(|| self.output.as_ref().err().cloned())
        });
        json!({
            "id": id,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "status": status,
            "output": output,
            "error": error,
            "logs": "",
            "urls": {
                "get": format!("{api_base}/v1/predictions/{id}"),
                "cancel": format!("{api_base}/v1/predictions/{id}/cancel"),
            },
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    faults: Faults,
    counts: Counts,
    predictions: HashMap<String, StoredPrediction>,
    next_id: u64,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    base_url: String,
    token: Option<String>,
    fetcher: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock only happens in a broken test; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type AppState = Arc<Shared>;

/// A running emulator; it stops when dropped.
#[derive(Debug)]
pub struct Emulator {
    shared: AppState,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Emulator {
    /// Serves on `addr` (port 0 picks a free one). With `token`, only `Bearer {token}` is
    /// accepted; without, any non-empty token.
    pub async fn start(addr: SocketAddr, token: Option<String>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let fetcher = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            base_url,
            token,
            fetcher,
        });
        let router = Router::new()
            .route(
                "/v1/models/{owner}/{name}/predictions",
                post(create_by_model),
            )
            .route("/v1/predictions", post(create_by_version))
            .route("/v1/predictions/{id}", get(read_prediction))
            .route("/v1/predictions/{id}/cancel", post(cancel_prediction))
            .route("/files/{file}", get(output_file))
            .route("/admin/faults", put(set_faults).get(get_faults))
            .route("/admin/counts", get(get_counts))
            .route("/admin/reset", post(reset))
            .with_state(shared.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stop.await;
            };
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(Self {
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The emulator's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({ "title": title, "detail": detail, "status": status.as_u16() });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The Bearer check: the configured token, or any non-empty one when none is configured.
/// Returns the 401 answer when the check fails.
fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let ok = match (&shared.token, presented) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(expected), Some(given)) => expected == given,
    };
    if ok {
        return None;
    }
    shared.lock().counts.unauthorized += 1;
    Some(problem(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "You did not pass a valid authentication token",
    ))
}

async fn latency(shared: &Shared, extra: impl Fn(&Faults) -> u64) {
    let delay = {
        let faults = &shared.lock().faults;
        faults.latency_ms + extra(faults)
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

/// `Prefer: wait` or `wait=N` → N seconds (1..=60); absent → no wait.
fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("prefer")?.to_str().ok()?.trim();
    let seconds = match value.strip_prefix("wait") {
        Some("") => 60,
        Some(rest) => rest.trim_start_matches('=').trim().parse().ok()?,
        None => return None,
    };
    Some(Duration::from_secs(u64::clamp(seconds, 1, 60)))
}

async fn create_by_model(
    State(shared): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create(shared, format!("{owner}/{name}"), None, headers, body).await
}

async fn create_by_version(
    State(shared): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let version = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("version")?.as_str().map(str::to_owned));
    match version {
        Some(version) => {
            create(
                shared,
                "emulator/by-version".to_owned(),
                Some(version),
                headers,
                body,
            )
            .await
        }
        None => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid version",
            "version is required",
        ),
    }
}

async fn create(
    shared: AppState,
    model: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().counts.create_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    {
        let mut inner = shared.lock();
        if inner.faults.rate_limit_creates > 0 {
            inner.faults.rate_limit_creates -= 1;
            let reset = inner.faults.rate_limit_reset_secs.unwrap_or(1);
            let mut response = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "Request was throttled",
                &format!("Request was throttled. Your rate limit resets in ~{reset}s."),
            );
            if inner.faults.retry_after_header {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(reset));
            }
            return response;
        }
        if inner.faults.unavailable_creates > 0 {
            inner.faults.unavailable_creates -= 1;
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "try again later",
            );
        }
        if inner.faults.reject_creates > 0 {
            inner.faults.reject_creates -= 1;
            let status = inner
                .faults
                .reject_status
                .and_then(|status| StatusCode::from_u16(status).ok())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let (title, detail) = match status.as_u16() {
                401 => (
                    "Unauthenticated",
                    "You did not pass a valid authentication token",
                ),
                402 => (
                    "Insufficient credit",
                    "You have insufficient credit to run this model",
                ),
                500.. => ("Internal Server Error", "an unexpected error occurred"),
                _ => ("Input validation failed", "input.seed: must be an integer"),
            };
            return problem(status, title, detail);
        }
    }
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(mut request) => request
            .get_mut("input")
            .map(Value::take)
            .unwrap_or(Value::Null),
        Err(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Invalid JSON",
                "the body is not JSON",
            );
        }
    };
    let prompt_ok = input
        .get("prompt")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.trim().is_empty());
    let Some(image_ref) = input
        .get("input_image")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            "input_image: field required",
        );
    };
    if !prompt_ok {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            "prompt: field required",
        );
    }
    let output_bytes = shared.lock().faults.output_bytes;
    let output = match output_bytes {
        Some(size) => Ok(padded_jpeg(size)),
        None => derive_output(&shared.fetcher, &image_ref)
            .await
            .map(Bytes::from),
    };
    let id = {
        let mut inner = shared.lock();
        inner.next_id += 1;
        inner.counts.predictions_created += 1;
        let id = format!("emu{:08}{:x}", inner.next_id, std::process::id());
        let faults = &inner.faults;
        let stored = StoredPrediction {
            model,
            version: version.unwrap_or_else(|| "hidden".to_owned()),
            input,
            created: Instant::now(),
            processing: Duration::from_millis(faults.processing_ms),
            starting_polls_left: faults.starting_polls,
            never_finish: faults.never_finish,
            fail_with: faults.fail_with.clone(),
            canceled: false,
            forced_success: false,
            output_list: faults.output_as_list,
            output_base: faults
                .output_base_url
                .clone()
                .unwrap_or_else(|| shared.base_url.clone()),
            output,
        };
        inner.predictions.insert(id.clone(), stored);
        id
    };
    let answer_delay = shared.lock().faults.create_latency_ms;
    if answer_delay > 0 {
        tokio::time::sleep(Duration::from_millis(answer_delay)).await;
    }
    if let Some(wait) = prefer_wait(&headers) {
        let until = Instant::now() + wait;
        loop {
            // Final, or held in `starting` until it is polled: answer now.
            let settled = shared.lock().predictions.get(&id).is_some_and(|p| {
                p.starting_polls_left > 0
                    || matches!(p.status(), "succeeded" | "failed" | "canceled")
            });
            if settled || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let inner = shared.lock();
    let Some(prediction) = inner.predictions.get(&id) else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Lost",
            "prediction vanished",
        );
    };
    let status = if matches!(prediction.status(), "succeeded" | "failed" | "canceled") {
        StatusCode::CREATED
    } else if prefer_wait(&headers).is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    (
        status,
        axum::Json(prediction.to_json(&id, &shared.base_url)),
    )
        .into_response()
}

async fn read_prediction(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.get_requests += 1;
    latency(&shared, |f| f.poll_latency_ms).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let mut inner = shared.lock();
    if inner.faults.failing_polls > 0 {
        inner.faults.failing_polls -= 1;
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "poll failed",
        );
    }
    if inner.faults.malformed_polls > 0 {
        inner.faults.malformed_polls -= 1;
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"id\": \"truncated",
        )
            .into_response();
    }
    match inner.predictions.get_mut(&id) {
        Some(prediction) => {
            let body = prediction.to_json(&id, &shared.base_url);
            prediction.starting_polls_left = prediction.starting_polls_left.saturating_sub(1);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "Not found", "no such prediction"),
    }
}

async fn cancel_prediction(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.lock().counts.cancel_requests += 1;
    latency(&shared, |_| 0).await;
    if let Some(refused) = unauthorized(&shared, &headers) {
        return refused;
    }
    let mut inner = shared.lock();
    let succeed = inner.faults.succeed_on_cancel;
    match inner.predictions.get_mut(&id) {
        Some(prediction) => {
            if succeed && prediction.output.is_ok() {
                prediction.forced_success = true;
            } else if !matches!(prediction.status(), "succeeded" | "failed") {
                prediction.canceled = true;
            }
            (
                StatusCode::OK,
                axum::Json(prediction.to_json(&id, &shared.base_url)),
            )
                .into_response()
        }
        None => problem(StatusCode::NOT_FOUND, "Not found", "no such prediction"),
    }
}

async fn output_file(
    State(shared): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let inner = {
        let mut inner = shared.lock();
        inner.counts.file_requests += 1;
        if headers.contains_key(header::AUTHORIZATION) {
            inner.counts.file_requests_with_authorization += 1;
        }
        let id = file.trim_end_matches(".jpg").to_owned();
        let faults = inner.faults.clone();
        let bytes = inner
            .predictions
            .get(&id)
            .and_then(|p| p.output.as_ref().ok().cloned());
        (faults, bytes)
    };
    let (faults, bytes) = inner;
    let Some(bytes) = bytes else {
        return problem(StatusCode::NOT_FOUND, "Not found", "no such file");
    };
    if faults.output_gone {
        return problem(StatusCode::NOT_FOUND, "Not found", "the file has expired");
    }
    if faults.output_redirect {
        let location = format!("{}/files/{file}?redirected=1", shared.base_url);
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    if faults.output_not_jpeg {
        let png = reencode(&bytes, image::ImageFormat::Png).unwrap_or_default();
        return ([(header::CONTENT_TYPE, "image/png")], png).into_response();
    }
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

async fn set_faults(
    State(shared): State<AppState>,
    axum::Json(faults): axum::Json<Faults>,
) -> Response {
    let mut inner = shared.lock();
    if !faults.never_finish {
        // Predictions left "never finishing" finish now (a resumed run can collect them).
        for prediction in inner.predictions.values_mut() {
            prediction.never_finish = false;
        }
    }
    inner.faults = faults.clone();
    drop(inner);
    axum::Json(faults).into_response()
}

async fn get_faults(State(shared): State<AppState>) -> Response {
    axum::Json(shared.lock().faults.clone()).into_response()
}

async fn get_counts(State(shared): State<AppState>) -> Response {
    axum::Json(shared.lock().counts).into_response()
}

async fn reset(State(shared): State<AppState>) -> Response {
    *shared.lock() = Inner::default();
    StatusCode::NO_CONTENT.into_response()
}

/// The output of a prediction: the input image, decoded (from a data URI or fetched from its
/// URL), toned sepia so it is visibly new, and encoded as a JPEG. An input it cannot read
/// makes the prediction fail, as the real model would.
async fn derive_output(fetcher: &reqwest::Client, image_ref: &str) -> Result<Vec<u8>, String> {
    let bytes = if let Some(data) = image_ref.strip_prefix("data:") {
        let (_, encoded) = data
            .split_once(";base64,")
            .ok_or("input_image: not a base64 data URI")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "input_image: invalid base64".to_owned())?
    } else {
        let response = fetcher
            .get(image_ref)
            .send()
            .await
            .map_err(|e| format!("input_image: cannot fetch the URL: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "input_image: fetching the URL gave {}",
                response.status()
            ));
        }
        response
            .bytes()
            .await
            .map_err(|e| format!("input_image: {e}"))?
            .to_vec()
    };
    tokio::task::spawn_blocking(move || sepia_jpeg(&bytes))
        .await
        .map_err(|e| format!("image worker failed: {e}"))?
}

fn sepia_jpeg(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut image = image::load_from_memory(bytes)
        .map_err(|e| format!("input_image: not a readable image: {e}"))?
        .to_rgb8();
    for pixel in image.pixels_mut() {
        let [r, g, b] = pixel.0.map(f32::from);
        let tone = |a: f32, b2: f32, c: f32| (a * r + b2 * g + c * b).min(255.0) as u8;
        pixel.0 = [
            tone(0.393, 0.769, 0.189),
            tone(0.349, 0.686, 0.168),
            tone(0.272, 0.534, 0.131),
        ];
    }
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|e| format!("cannot encode the output: {e}"))?;
    Ok(out.into_inner())
}

/// A small JPEG padded with comment segments to at least `size` bytes: still a valid JPEG,
/// and cheap to make (nothing is encoded).
pub fn padded_jpeg(size: usize) -> Bytes {
    /// The most payload one COM segment carries (its length field counts itself).
    const MAX_COMMENT: usize = 65_533;
    static SMALL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let small = SMALL.get_or_init(|| {
        let image =
            image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 128]));
        let mut out = Cursor::new(Vec::new());
        // Encoding a 64×64 image into memory cannot fail.
        let _ = image.write_to(&mut out, image::ImageFormat::Jpeg);
        out.into_inner()
    });
    let mut jpeg = Vec::with_capacity(size.max(small.len()) + 4);
    jpeg.extend_from_slice(&small[..2]);
    let mut missing = size.saturating_sub(small.len());
    while missing > 0 {
        let payload = missing.saturating_sub(4).min(MAX_COMMENT);
        jpeg.extend_from_slice(&[0xFF, 0xFE]);
        jpeg.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
        jpeg.resize(jpeg.len() + payload, b' ');
        missing = missing.saturating_sub(payload + 4);
    }
    jpeg.extend_from_slice(&small[2..]);
    Bytes::from(jpeg)
}

fn reencode(jpeg: &[u8], format: image::ImageFormat) -> Option<Vec<u8>> {
    let image = image::load_from_memory(jpeg).ok()?;
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_output_is_a_readable_jpeg_of_the_asked_size() {
        for size in [0, 1_000, 70_000, 5 * 1024 * 1024] {
            let jpeg = padded_jpeg(size);
            assert!(jpeg.len() >= size, "{} < {size}", jpeg.len());
            assert!(jpeg.len() < size + 4_000, "{} far above {size}", jpeg.len());
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
            assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
            let image = image::load_from_memory(&jpeg).expect("a decodable JPEG");
            assert_eq!((image.width(), image.height()), (64, 64));
        }
    }
}
