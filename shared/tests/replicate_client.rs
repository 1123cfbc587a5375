//! The Replicate client over HTTP against the project's emulator: retries, polling, the
//! deadline, and the checks on outputs. The emulator's counts prove what was paid for.

use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::json;
use shared::adapters::replicate::{ApiToken, ReplicateClient, ReplicateConfig, is_jpeg};
use shared::ports::{
    AtDeadline, GeneratedImage, ImageGenerator, InputImage, PredictionError, PredictionRequest,
};
use testkit::{ReplicateCounts, ReplicateEmulator};

const POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_millis(200);

fn config(emulator: &ReplicateEmulator) -> ReplicateConfig {
    let mut config = ReplicateConfig::new(ApiToken::new(ReplicateEmulator::TOKEN));
    config.base_url = Url::parse(emulator.base_url()).unwrap();
    config.output_hosts = vec!["127.0.0.1".to_owned()];
    config.max_prefer_wait = Duration::from_secs(1);
    config.poll_interval = POLL;
    config.max_poll_interval = MAX_POLL;
    config.request_timeout = Duration::from_secs(3);
    config
}

fn client(emulator: &ReplicateEmulator) -> ReplicateClient {
    ReplicateClient::new(config(emulator)).unwrap()
}

fn request() -> PredictionRequest {
    PredictionRequest {
        prompt: "Redraw this photo as a charcoal drawing of the person.".to_owned(),
        input_image: InputImage::Inline {
            content_type: "image/jpeg".to_owned(),
            bytes: testkit::sample_jpeg(64, 48),
        },
        seed: Some(42),
        webhook: None,
    }
}

/// A whole generation through the port, as a fresh run makes it: start, wait (canceled at
/// the deadline), download.
trait Generate {
    async fn generate(
        &self,
        request: &PredictionRequest,
        deadline: Instant,
    ) -> Result<GeneratedImage, PredictionError>;
}

impl Generate for ReplicateClient {
    async fn generate(
        &self,
        request: &PredictionRequest,
        deadline: Instant,
    ) -> Result<GeneratedImage, PredictionError> {
        let started = self.start(request, deadline).await?;
        let succeeded = self.finish(started, deadline, AtDeadline::Cancel).await?;
        // What the use case gives a download: its own time after the model's deadline.
        self.download(
            &succeeded,
            deadline.max(Instant::now()) + Duration::from_secs(5),
        )
        .await
    }
}

fn in_secs(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

/// Runs one generation with `faults` switched on and returns its result and the counts.
async fn generate_with(
    faults: serde_json::Value,
) -> (Result<GeneratedImage, PredictionError>, ReplicateCounts) {
    let emulator = ReplicateEmulator::start().await;
    emulator.set_faults(faults).await;
    let result = client(&emulator).generate(&request(), in_secs(20)).await;
    (result, emulator.counts().await)
}

#[tokio::test]
async fn prefer_wait_answers_at_once_with_one_billable_prediction() {
    let (result, counts) = generate_with(json!({})).await;
    let image = result.unwrap();
    assert!(is_jpeg(&image.bytes));
    assert!(image.prediction_id.starts_with("emu"));
    assert_eq!(image.model, "black-forest-labs/flux-kontext-pro");
    assert_eq!(counts.create_requests, 1);
    assert_eq!(counts.predictions_created, 1);
    assert_eq!(
        counts.get_requests, 0,
        "Prefer: wait made polling unnecessary"
    );
    assert_eq!(counts.file_requests, 1);
    assert_eq!(
        counts.file_requests_with_authorization, 0,
        "token sent to the output host"
    );
}

#[tokio::test]
async fn a_prediction_stuck_in_starting_is_polled_to_success() {
    let (result, counts) = generate_with(json!({"starting_polls": 4})).await;
    assert!(is_jpeg(&result.unwrap().bytes));
    assert_eq!(counts.predictions_created, 1);
    assert_eq!(
        counts.get_requests, 5,
        "4 reads in `starting`, then the final one"
    );
}

#[tokio::test]
async fn an_output_list_is_read() {
    let (result, counts) = generate_with(json!({"output_as_list": true})).await;
    assert!(is_jpeg(&result.unwrap().bytes));
    assert_eq!(counts.predictions_created, 1);
}

#[tokio::test]
async fn rate_limited_create_waits_for_the_reset_hint_then_succeeds() {
    let started = Instant::now();
    let (result, counts) =
        generate_with(json!({"rate_limit_creates": 1, "rate_limit_reset_secs": 1})).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "the ~1s hint was not honoured"
    );
    assert_eq!(counts.create_requests, 2);
    assert_eq!(counts.predictions_created, 1);
}

#[tokio::test]
async fn rate_limit_longer_than_the_deadline_is_returned_with_its_hint() {
    let emulator = ReplicateEmulator::start().await;
    emulator
        .set_faults(json!({"rate_limit_creates": 5, "rate_limit_reset_secs": 30, "retry_after_header": true}))
        .await;
    let started = Instant::now();
    let result = client(&emulator).generate(&request(), in_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it waited for a hopeless retry"
    );
    match result {
        Err(PredictionError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    let counts = emulator.counts().await;
    assert_eq!((counts.create_requests, counts.predictions_created), (1, 0));
}

#[tokio::test]
async fn unavailable_create_is_retried_then_succeeds() {
    let (result, counts) = generate_with(json!({"unavailable_creates": 2})).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(counts.create_requests, 3);
    assert_eq!(counts.predictions_created, 1);
}

#[tokio::test]
async fn a_failing_poll_is_retried_then_succeeds() {
    let (result, counts) = generate_with(json!({"starting_polls": 1, "failing_polls": 2})).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(counts.predictions_created, 1);
    assert_eq!(
        counts.get_requests, 4,
        "2 failed reads, 1 in `starting`, 1 succeeded"
    );
}

#[tokio::test]
async fn a_failed_prediction_returns_the_models_message() {
    let (result, counts) = generate_with(json!({"fail_with": "NSFW content detected"})).await;
    match result {
        Err(PredictionError::Failed {
            message,
            prediction_id,
        }) => {
            assert_eq!(message, "NSFW content detected");
            assert!(prediction_id.starts_with("emu"));
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(counts.predictions_created, 1);
    assert_eq!(counts.file_requests, 0);
}

#[tokio::test]
async fn unauthorized_and_invalid_input_are_not_retried() {
    let emulator = ReplicateEmulator::start().await;
    let mut wrong_token = config(&emulator);
    wrong_token.token = ApiToken::new("r8_wrong").into();
    let result = ReplicateClient::new(wrong_token)
        .unwrap()
        .generate(&request(), in_secs(10))
        .await;
    assert!(
        matches!(&result, Err(PredictionError::Rejected { status: 401, message }) if message.contains("authentication")),
        "{result:?}"
    );
    let counts = emulator.counts().await;
    assert_eq!((counts.create_requests, counts.unauthorized), (1, 1));

    let mut invalid = request();
    invalid.prompt = String::new();
    let result = client(&emulator).generate(&invalid, in_secs(10)).await;
    assert!(
        matches!(&result, Err(PredictionError::Rejected { status: 422, message }) if message.contains("prompt")),
        "{result:?}"
    );
    let counts = emulator.counts().await;
    assert_eq!((counts.create_requests, counts.predictions_created), (2, 0));
}

#[tokio::test]
async fn a_prediction_that_never_finishes_is_canceled_at_the_deadline() {
    let emulator = ReplicateEmulator::start().await;
    emulator.set_faults(json!({"never_finish": true})).await;
    let deadline = in_secs(2);
    let result = client(&emulator).generate(&request(), deadline).await;
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(late <= MAX_POLL, "returned {late:?} after the deadline");
    assert!(
        matches!(&result, Err(PredictionError::TimedOut { prediction_id: Some(id), running: false }) if id.starts_with("emu")),
        "{result:?}"
    );
    let counts = emulator.counts().await;
    assert_eq!(counts.cancel_requests, 1);
    assert_eq!(counts.predictions_created, 1);
    assert!(counts.get_requests >= 3, "it polled until the deadline");
}

#[tokio::test]
async fn a_prediction_that_succeeds_while_being_canceled_is_kept() {
    let emulator = ReplicateEmulator::start().await;
    emulator
        .set_faults(json!({"never_finish": true, "succeed_on_cancel": true}))
        .await;
    let image = client(&emulator)
        .generate(&request(), in_secs(2))
        .await
        .unwrap();
    assert!(is_jpeg(&image.bytes));
    let counts = emulator.counts().await;
    assert_eq!((counts.cancel_requests, counts.predictions_created), (1, 1));
    assert_eq!(counts.file_requests, 1);
}

/// Each refused output: the prediction is named, and the bytes are never returned.
async fn assert_output_refused(
    faults: serde_json::Value,
    cap: Option<u64>,
    reason: &str,
    files: u32,
) {
    let emulator = ReplicateEmulator::start().await;
    emulator.set_faults(faults.clone()).await;
    let mut config = config(&emulator);
    if let Some(cap) = cap {
        config.max_output_bytes = cap;
    }
    let result = ReplicateClient::new(config)
        .unwrap()
        .generate(&request(), in_secs(10))
        .await;
    match result {
        Err(PredictionError::BadOutput {
            prediction_id,
            reason: got,
        }) => {
            assert!(prediction_id.starts_with("emu"), "{faults}");
            assert!(got.contains(reason), "{faults}: {got}");
        }
        other => panic!("{faults}: expected BadOutput, got {other:?}"),
    }
    let counts = emulator.counts().await;
    assert_eq!(counts.predictions_created, 1, "{faults}");
    assert_eq!(counts.file_requests, files, "{faults}");
}

#[tokio::test]
async fn outputs_that_are_not_allowed_are_refused() {
    let emulator = ReplicateEmulator::start().await;
    let other_host = emulator.base_url().replace("127.0.0.1", "localhost");
    assert_output_refused(
        json!({"output_base_url": other_host}),
        None,
        "host localhost is not allowed",
        0,
    )
    .await;
    assert_output_refused(json!({"output_redirect": true}), None, "redirect", 1).await;
    assert_output_refused(json!({}), Some(100), "larger than 100 bytes", 1).await;
    assert_output_refused(json!({"output_not_jpeg": true}), None, "not a JPEG", 1).await;
    assert_output_refused(json!({"output_gone": true}), None, "404", 1).await;
}

#[tokio::test]
async fn an_input_image_url_is_fetched_by_the_model() {
    let emulator = ReplicateEmulator::start().await;
    let client = client(&emulator);
    let first = client.generate(&request(), in_secs(10)).await.unwrap();
    let mut by_url = request();
    by_url.input_image = InputImage::Url(format!(
        "{}/files/{}.jpg",
        emulator.base_url(),
        first.prediction_id
    ));
    let second = client.generate(&by_url, in_secs(10)).await.unwrap();
    assert!(is_jpeg(&second.bytes));
    assert_ne!(
        first.bytes, second.bytes,
        "the second image derives from the first"
    );
    assert_eq!(emulator.counts().await.predictions_created, 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_api_answers() {
    let closed = testkit::ClosedPort::hold();
    let mut config = config(&ReplicateEmulator::start().await);
    config.base_url = Url::parse(&closed.url()).unwrap();
    let late_start = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        ReplicateEmulator::start_on(closed.release()).await
    });
    let result = ReplicateClient::new(config)
        .unwrap()
        .generate(&request(), in_secs(15))
        .await;
    let emulator = late_start.await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    let counts = emulator.counts().await;
    assert_eq!((counts.create_requests, counts.predictions_created), (1, 1));
}
