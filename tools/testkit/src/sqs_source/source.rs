//! The event source's handle: its settings, its counts, and starting it against worker
//! environments under the emulator or against a fixed invoke URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::invoke::Target;
use super::poller::Poller;
use super::{TrainingSetQueues, WORKER_TIMEOUT_SECONDS};
use crate::LambdaEmulator;

/// How the event source runs: by default batches of 10 with no batching window and two
/// environments, quick for a test; the benchmark sets the template's own settings.
#[derive(Debug, Clone)]
pub struct EventSourceSettings {
    /// Messages per batch (`BatchSize`): 1 to 10, or up to [`MAX_WINDOWED_BATCH_SIZE`] with a
    /// batching window of at least a second, as SQS allows a standard queue.
    pub batch_size: usize,
    /// How long a batch is gathered before its invocation (`MaximumBatchingWindowInSeconds`):
    /// from its first message until it is full or the window is over. Zero invokes with
    /// what one receive gave.
    pub batching_window: std::time::Duration,
    /// Worker environments (emulators), or invocations of the invoke URL, at once (Lambda's
    /// concurrency).
    pub concurrency: usize,
    /// Invoke every batch twice, concurrently, on two environments: the duplicate delivery that
    /// at-least-once allows, for a test of the worker's idempotency. Needs `concurrency` ≥ 2.
    pub deliver_twice: bool,
    /// Where each settled invocation is told, for a log (the local stack's poller prints them).
    pub reports: Option<mpsc::UnboundedSender<InvocationReport>>,
    /// Where the environments write the function's and the emulator's output (its REPORT
    /// lines, which the benchmark sums), instead of the test's own output.
    pub log: Option<PathBuf>,
}

impl Default for EventSourceSettings {
    fn default() -> Self {
        Self {
            batch_size: 10,
            batching_window: std::time::Duration::ZERO,
            concurrency: 2,
            deliver_twice: false,
            reports: None,
            log: None,
        }
    }
}

/// What the event source did so far, for a test's assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Invocations made (a duplicate delivery counts as one more).
    pub invocations: u64,
    /// Records handed to the function, summed over the invocations.
    pub messages_delivered: u64,
    /// Messages deleted from the queue (once each, whichever invocation settled them).
    pub deleted: u64,
    /// `batchItemFailures` entries of valid answers, summed over the invocations.
    pub reported_failures: u64,
    /// Invocations that failed as a whole (function error, timeout, unparsable answer or an
    /// invalid `itemIdentifier`): nothing of their batch was deleted.
    pub function_errors: u64,
}

/// One settled invocation, as [`EventSourceSettings::reports`] is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationReport {
    /// Records in the batch.
    pub messages: usize,
    /// `batchItemFailures` entries of the answer (none when it failed as a whole).
    pub reported_failures: usize,
    /// Messages this invocation deleted (not those the other one of a duplicate did).
    pub deleted: usize,
    /// Why the invocation failed as a whole (nothing of its batch was deleted), if it did.
    pub error: Option<String>,
    /// From sending the event to the answer.
    pub duration: Duration,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) invocations: AtomicU64,
    pub(super) messages_delivered: AtomicU64,
    pub(super) deleted: AtomicU64,
    pub(super) reported_failures: AtomicU64,
    pub(super) function_errors: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::SeqCst);
    }

    fn snapshot(&self) -> DeliveryStats {
        DeliveryStats {
            invocations: self.invocations.load(Ordering::SeqCst),
            messages_delivered: self.messages_delivered.load(Ordering::SeqCst),
            deleted: self.deleted.load(Ordering::SeqCst),
            reported_failures: self.reported_failures.load(Ordering::SeqCst),
            function_errors: self.function_errors.load(Ordering::SeqCst),
        }
    }
}

/// Lambda's SQS event source mapping for one worker: polls the training-set queue and invokes
/// the worker with each batch until stopped. Dropping it aborts the poller and its
/// invocations, and so stops the emulators it started (each by its own PID).
pub struct SqsEventSource {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl SqsEventSource {
    /// Starts `settings.concurrency` environments of `bootstrap` (with `env`, and the worker's
    /// timeout) under the emulator, their output to `settings.log` if set, then the poller.
    pub async fn start(
        sdk: &SdkConfig,
        queues: &TrainingSetQueues,
        bootstrap: &Path,
        env: &[(String, String)],
        settings: EventSourceSettings,
    ) -> Self {
        check(&settings);
        let mut env = env.to_vec();
        env.push((
            "AWS_LAMBDA_FUNCTION_TIMEOUT".to_owned(),
            WORKER_TIMEOUT_SECONDS.to_string(),
        ));
        let mut starting = JoinSet::new();
        for _ in 0..settings.concurrency {
            let (bootstrap, env, log) = (bootstrap.to_owned(), env.clone(), settings.log.clone());
            starting.spawn(async move {
                LambdaEmulator::start_logging(&bootstrap, &env, log.as_deref()).await
            });
        }
        let mut targets = Vec::with_capacity(settings.concurrency);
        while let Some(started) = starting.join_next().await {
            let environment = started.unwrap_or_else(|e| match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("starting a worker environment: {e}"),
            });
            targets.push(Target::emulator(environment));
        }
        Self::run(sdk, queues, targets, settings)
    }

    /// Starts the poller against a function someone else serves at `invoke_url` (`cargo
    /// lambda watch`'s `http://127.0.0.1:PORT/2015-03-31/functions/NAME/invocations`, say):
    /// each invocation is a POST of the event, up to `settings.concurrency` at once, and its
    /// answer is settled as an environment's is. The function's timeout is the server's.
    pub async fn start_at_url(
        sdk: &SdkConfig,
        queues: &TrainingSetQueues,
        invoke_url: &str,
        settings: EventSourceSettings,
    ) -> Self {
        check(&settings);
        let targets = Target::url_slots(invoke_url, settings.concurrency);
        Self::run(sdk, queues, targets, settings)
    }

    fn run(
        sdk: &SdkConfig,
        queues: &TrainingSetQueues,
        targets: Vec<Target>,
        settings: EventSourceSettings,
    ) -> Self {
        let (free, pool) = mpsc::unbounded_channel();
        for target in targets {
            free.send(target).expect("the pool is held here");
        }
        let counters = Arc::new(Counters::default());
        let poller = Arc::new(Poller {
            sqs: Client::new(sdk),
            queue_url: queues.queue_url.clone(),
            queue_arn: queues.queue_arn.clone(),
            settings,
            counters: counters.clone(),
            free,
        });
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(poller.run(pool, stopping));
        Self {
            stop,
            task: Some(task),
            counters,
        }
    }

    /// What it did so far (the counters move while it runs).
    pub fn stats(&self) -> DeliveryStats {
        self.counters.snapshot()
    }

    /// Stops polling (within about a second, the long poll's wait: no receive starts after
    /// this), lets the invocations under way (and of a batch being received) finish and settle
    /// their batches, as Lambda does when a mapping is disabled, then stops the environments.
    /// Returns the final counts.
    pub async fn stop(mut self) -> DeliveryStats {
        // An error means the poller has already ended: nothing is left to tell.
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("the SQS event source's poller: {e}"),
            }
        }
        self.counters.snapshot()
    }
}

impl Drop for SqsEventSource {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The largest `BatchSize` Lambda takes from a standard queue (with a batching window).
pub const MAX_WINDOWED_BATCH_SIZE: usize = 10_000;

fn check(settings: &EventSourceSettings) {
    let windowed = settings.batching_window >= std::time::Duration::from_secs(1);
    let largest = if windowed {
        MAX_WINDOWED_BATCH_SIZE
    } else {
        10
    };
    assert!(
        (1..=largest).contains(&settings.batch_size),
        "batch_size must be 1 to 10, or up to {MAX_WINDOWED_BATCH_SIZE} with a batching window \
         of at least 1 s; not {} (window {:?})",
        settings.batch_size,
        settings.batching_window
    );
    assert!(settings.concurrency >= 1, "concurrency must be at least 1");
    assert!(
        !settings.deliver_twice || settings.concurrency >= 2,
        "deliver_twice needs two environments (concurrency >= 2)"
    );
}
