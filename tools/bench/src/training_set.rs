//! A training set timed against one image: its wall time beside one generate-single image
//! and beside the seed's script making as many one after another, and the Lambda time billed
//! per image (the worker's and the webhook's REPORT lines) beside generate-single's, which
//! waits for the model. The worker runs under the SQS event source at the template's
//! settings, the webhook function behind an HTTP front, every function as a release bootstrap
//! under the runtime interface emulator.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{CapturedLog, EventSourceSettings, HttpFront, LambdaEmulator, SqsEventSource};

use crate::Bootstraps;
use crate::function_log::{billed_durations, last};
use crate::report::{ms, table};
use crate::seed_script::SeedScript;
use crate::set_stack::{MODEL_MS, SetStack};
use crate::stack::{Environment, expect_ok, generate_event};
use crate::stats::Samples;

/// The template's event source mapping: `BatchSize`, `WorkerMaximumConcurrency` and
/// `WorkerBatchingWindowSeconds`.
const WORKER_SETTINGS: (usize, usize, u64) = (20, 5, 1);
/// Webhook function environments (Lambda would scale them; a few are enough for 20).
const WEBHOOK_ENVIRONMENTS: usize = 4;
/// How often the artist's page reads the set's progress here, as a web UI would: every read
/// is a Query on the one moto the set's own calls queue on, so reading more often slows the
/// set it measures (a read every 100 ms took a tenth of moto's time). The set's time is
/// overstated by at most this much.
const PROGRESS_POLL: Duration = Duration::from_millis(500);

/// How big a run.
pub struct SetRun {
    /// Images in the set, and images the seed's script makes one after another.
    pub size: usize,
    /// generate-single images timed (after one warm-up).
    pub single_images: usize,
    /// The worker's first check of an item (`TRAINING_SET_FIRST_CHECK_SECONDS`; the
    /// template's default is 90): the run waits for those checks, which are billed too.
    pub first_check_seconds: u64,
}

/// What one set gave.
struct SetFigures {
    wall: Duration,
    worker_billed: Vec<u64>,
    webhook_billed: Vec<u64>,
    create_billed: u64,
    checks_reading_predictions: u32,
    webhooks_accepted: u32,
}

/// Runs it all on a stack of its own and prints the two tables.
pub async fn training_set(bootstraps: &Bootstraps, run: &SetRun) -> String {
    let stack = SetStack::start().await;
    let (single_round_trips, single_billed) =
        one_image(&stack, bootstraps, run.single_images).await;
    let script = SeedScript::new(&stack.moto, &stack.replicate, &stack.python_actor);
    let started = Instant::now();
    for seed in 0..run.size {
        script.generate(seed as u64).await;
    }
    let seed_wall = started.elapsed();
    let set = one_set(&stack, bootstraps, run).await;
    report(run, &single_round_trips, &single_billed, seed_wall, &set)
}

/// `count` generate-single images for the set's actor, after one warm-up: their round trips
/// and billed durations.
async fn one_image(stack: &SetStack, bootstraps: &Bootstraps, count: usize) -> (Samples, Samples) {
    let env = stack.function_env("generate-single");
    let environment = Environment::start(&bootstraps.generate_single, &env, "set-single").await;
    let mut round_trips = Vec::with_capacity(count);
    for i in 0..=count {
        let event = generate_event(&stack.actor, &format!("single-{i}"), i as u64);
        let started = Instant::now();
        let answer = environment.emulator.invoke(&event).await;
        if i > 0 {
            round_trips.push(started.elapsed());
        }
        expect_ok(&answer, "generate-single");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let billed = last(billed_durations(&environment.log_lines()), count);
    (Samples::of(&round_trips), billed)
}

/// One set of `run.size`, from its create request to `done`, then until the queue is empty
/// (the items' checks, after `run.first_check_seconds`).
async fn one_set(stack: &SetStack, bootstraps: &Bootstraps, run: &SetRun) -> SetFigures {
    let env = stack.function_env("training-sets");
    let (routes, routes_log) =
        LambdaEmulator::start_capturing(&bootstraps.training_sets, &env, "bench-set-routes").await;
    let webhook_log = CapturedLog::new("bench-set-webhook");
    let front = HttpFront::start(
        &bootstraps.replicate_webhook,
        &stack.function_env("replicate-webhook"),
        WEBHOOK_ENVIRONMENTS,
        "replicate-webhook-http-v2.json",
        Some(webhook_log.path()),
    )
    .await;
    let worker_log = CapturedLog::new("bench-set-worker");
    let mut worker_env = stack.function_env("training-set-worker");
    let webhook_url = format!("{}/api/webhooks/replicate", front.url());
    testkit::set_env(&mut worker_env, "REPLICATE_WEBHOOK_URL", webhook_url);
    testkit::set_env(
        &mut worker_env,
        "TRAINING_SET_FIRST_CHECK_SECONDS",
        run.first_check_seconds.to_string(),
    );
    let (batch_size, concurrency, window_seconds) = WORKER_SETTINGS;
    let worker = SqsEventSource::start(
        &stack.queue_sdk,
        &stack.queues,
        &bootstraps.training_set_worker,
        &worker_env,
        EventSourceSettings {
            batch_size,
            concurrency,
            batching_window: Duration::from_secs(window_seconds),
            log: Some(worker_log.path().to_owned()),
            ..EventSourceSettings::default()
        },
    )
    .await;
    let before = stack.replicate.counts().await;
    let images_before = images(stack).await;

    let started = Instant::now();
    let create = testkit::with_json_body(
        testkit::event_for_actor("training-sets-create-http-v2.json", &stack.actor),
        &json!({"count": run.size}),
    );
    let (status, body) = testkit::status_and_body(&routes.invoke(&create).await);
    assert_eq!(status, 202, "the set was refused: {body}");
    let set_id = body["set_id"].as_str().expect("a set id").to_owned();
    let progress =
        testkit::event_for_set("training-sets-progress-http-v2.json", &stack.actor, &set_id);
    let done = loop {
        let (status, body) = testkit::status_and_body(&routes.invoke(&progress).await);
        assert_eq!(status, 200, "progress: {body}");
        if testkit::set_progress_final(&body) {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the set did not end: {body}"
        );
        tokio::time::sleep(PROGRESS_POLL).await;
    };
    let wall = started.elapsed();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["counts"]["stored"], run.size, "{done}");

    let drained_by = Instant::now() + Duration::from_secs(run.first_check_seconds + 60);
    while testkit::queue_depth(&stack.queue_sdk, &stack.queues.queue_url).await != (0, 0) {
        assert!(Instant::now() < drained_by, "the items' checks did not end");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deliveries = worker.stop().await;
    assert_eq!(deliveries.function_errors, 0, "{deliveries:?}");
    drop(front);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = stack.replicate.counts().await;
    assert_eq!(
        after.predictions_created - before.predictions_created,
        run.size as u32,
        "one prediction per image"
    );
    assert_eq!(
        images(stack).await - images_before,
        run.size,
        "one image per item"
    );
    SetFigures {
        wall,
        worker_billed: billed_durations(&worker_log.lines()),
        webhook_billed: billed_durations(&webhook_log.lines()),
        create_billed: billed_durations(&routes_log.lines())
            .first()
            .copied()
            .unwrap_or(0),
        checks_reading_predictions: after.get_requests - before.get_requests,
        webhooks_accepted: after.webhooks_accepted - before.webhooks_accepted,
    }
}

/// The images in the actor's folder.
async fn images(stack: &SetStack) -> usize {
    let folder = format!("system_actors/training_data/{}/", stack.actor);
    testkit::list_keys(&stack.s3_sdk, &folder)
        .await
        .iter()
        .filter(|key| key.ends_with(".jpg"))
        .count()
}

fn report(
    run: &SetRun,
    single_round_trips: &Samples,
    single_billed: &Samples,
    seed_wall: Duration,
    set: &SetFigures,
) -> String {
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let one = Duration::from_micros(single_round_trips.median());
    let times = |d: Duration| format!("{:.1}×", d.as_secs_f64() / one.as_secs_f64().max(1e-6));
    let size = run.size;
    let wall_rows = vec![
        vec![
            "one image through generate-single (client round trip, p50)".to_owned(),
            single_round_trips.len().to_string(),
            secs(one),
            "1.0×".to_owned(),
        ],
        vec![
            format!("a set of {size}: from its create request to `done`"),
            "1".to_owned(),
            secs(set.wall),
            format!("{} (target: under 3×)", times(set.wall)),
        ],
        vec![
            format!("the seed's approach: {size} images one after another (its Python script)"),
            size.to_string(),
            secs(seed_wall),
            times(seed_wall),
        ],
    ];
    let sum = |values: &[u64]| values.iter().sum::<u64>();
    let per_image = |us: u64| us / size.max(1) as u64;
    let (worker, webhook) = (sum(&set.worker_billed), sum(&set.webhook_billed));
    let set_per_image = per_image(worker + webhook);
    let single = single_billed.median();
    let billed_rows = vec![
        vec![
            "generate-single, one image (p50)".to_owned(),
            single_billed.len().to_string(),
            ms(single),
            ms(single),
        ],
        vec![
            "the set's worker (creates, stores, checks)".to_owned(),
            set.worker_billed.len().to_string(),
            ms(worker),
            ms(per_image(worker)),
        ],
        vec![
            "the set's webhook deliveries".to_owned(),
            set.webhook_billed.len().to_string(),
            ms(webhook),
            ms(per_image(webhook)),
        ],
        vec![
            "**the set: worker + webhook**".to_owned(),
            (set.worker_billed.len() + set.webhook_billed.len()).to_string(),
            ms(worker + webhook),
            format!(
                "**{}** = 1/{:.0} of one generate-single image (target: under 1/10)",
                ms(set_per_image),
                single as f64 / set_per_image.max(1) as f64
            ),
        ],
        vec![
            "the set's create request (training-sets), once per set".to_owned(),
            "1".to_owned(),
            ms(set.create_billed),
            ms(per_image(set.create_billed)),
        ],
    ];
    format!(
        "## A training set of {size} against one image (local figures: moto's own latency dominates them)\n\n\
         The emulator's model takes {:.1} s per image; DynamoDB on a moto answering one request at a time, S3 on another, SSM and SQS each on its own moto; the worker under the SQS event source at the template's settings (batches of {}, {} at once, each gathered for up to {} s), the webhook function in {WEBHOOK_ENVIRONMENTS} environments behind an HTTP front, items first checked {} s after their create.\n\n{}\nThe set took {:.1}× less time than the seed's one-after-another approach.\n\nLambda time billed (the runtime emulator's `Billed Duration`, init not included):\n\n{}\nDuring the set: {} webhook deliveries answered 2xx; the items' checks read {} predictions from Replicate (0: every webhook came first).\n",
        MODEL_MS as f64 / 1000.0,
        WORKER_SETTINGS.0,
        WORKER_SETTINGS.1,
        WORKER_SETTINGS.2,
        run.first_check_seconds,
        table(&["measured", "n", "time", "against one image"], &wall_rows),
        seed_wall.as_secs_f64() / set.wall.as_secs_f64().max(1e-6),
        table(&["invocations", "n", "billed", "per image"], &billed_rows),
        set.webhooks_accepted,
        set.checks_reading_predictions,
    )
}
