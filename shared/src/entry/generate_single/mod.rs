//! The generate-single function: `POST /api/actors/{actorId}/training-data/generate-single`
//! from API Gateway (HTTP API v2 or REST v1), and direct invocations (`aws lambda invoke`,
//! schedules, batches). Both run their jobs through the guarded generation use case; this
//! module only reads the invocation, gives it a deadline and reports how it went.

mod direct;
mod http_route;
pub mod wire;

use std::time::{Duration, Instant};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use super::invocation_error::InvocationError;
use super::metrics::InvocationMetrics;
use crate::timing::{elapsed_ms, epoch_ms, timed};
use crate::usecases::GuardedJobs;

pub use http_route::ROUTE;

/// The largest request body accepted (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long after API Gateway received a request its answer must be ready: API Gateway
/// answers 504 itself after 29 s (REST) or 30 s (HTTP API).
pub const HTTP_ANSWER_BUDGET: Duration = Duration::from_secs(27);
/// What an HTTP answer keeps back after the model for storing the image.
pub const HTTP_STORE_RESERVE: Duration = Duration::from_secs(5);
/// What a direct invocation keeps back from its function timeout for storing the image.
pub const DIRECT_STORE_RESERVE: Duration = Duration::from_secs(15);
/// What a direct invocation keeps back from its function timeout for recording and
/// answering, after everything else.
pub const DIRECT_ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// The function: the guarded generation, answering invocations. Build it once per execution
/// environment.
#[derive(Debug)]
pub struct GenerateSingleFunction<J> {
    /// The use case.
    pub jobs: J,
    /// The function's name in metrics.
    pub function_name: String,
    /// The least time left for a batch job to be started (`BATCH_JOB_MIN_SECONDS`).
    pub batch_job_min_time: Duration,
}

/// When an invocation must be done by: as an instant, and as epoch milliseconds (for the
/// holds of its idempotency key and prediction records).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    function: Instant,
    epoch_ms: u64,
}

impl<J: GuardedJobs> GenerateSingleFunction<J> {
    /// Answers one invocation: an API Gateway request, or a direct one (passed through as a
    /// request with a JSON body). Logs where its time went: our code, or waiting on remote
    /// calls (each with its start and duration).
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, InvocationError> {
        let (answer, timings) = timed(self.answer(&request)).await;
        let status = answer
            .as_ref()
            .ok()
            .map(|response| response.status().as_u16());
        super::logging::log_timings(status, &timings);
        answer
    }

    async fn answer(&self, request: &Request) -> Result<Response<Body>, InvocationError> {
        let started = Instant::now();
        let deadline = function_deadline(request);
        let mut metrics = InvocationMetrics::new(&self.function_name);
        let answer = if matches!(
            request.request_context_ref(),
            Some(RequestContext::PassThrough)
        ) {
            let request_id = request_id(request);
            self.direct(request.body(), &request_id, deadline, &mut metrics)
                .await
        } else {
            let response = self.http(request, deadline, &mut metrics).await;
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = elapsed_ms(started),
                "generate-single answered"
            );
            Ok(response)
        };
        metrics.emit(&request_id(request), elapsed_ms(started));
        answer
    }
}

/// The moment the function is stopped, from the invocation's context.
fn function_deadline(request: &Request) -> Deadline {
    let now = Instant::now();
    let now_ms = epoch_ms();
    let deadline_ms = request
        .lambda_context_ref()
        .map(|context| context.deadline)
        .filter(|deadline| *deadline > now_ms)
        .unwrap_or(now_ms + 30_000);
    Deadline {
        function: now + Duration::from_millis(deadline_ms - now_ms),
        epoch_ms: deadline_ms,
    }
}

/// The invocation's request id, for the metrics line.
fn request_id(request: &Request) -> String {
    request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default()
}

/// `margin` before `deadline`, or the deadline itself if that is not representable.
fn before(deadline: Instant, margin: Duration) -> Instant {
    deadline.checked_sub(margin).unwrap_or(deadline)
}
