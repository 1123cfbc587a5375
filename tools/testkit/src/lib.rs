//! Test kit for the integration and end-to-end tests, and the local stack's seeding.
//!
//! Starts moto server and the AWS Lambda runtime interface emulator on free loopback ports,
//! stops them when dropped (by their own PIDs), and seeds the table and bucket. Dev-only:
//! never deployed, so it panics with a clear message where a test cannot go on.

use std::path::{Path, PathBuf};

mod async_invoke;
pub mod curated;
mod events;
mod fault_proxy;
mod http_front;
mod local_server;
mod processes;
mod seeding;
mod sqs_source;
mod stack;
mod standard_webhooks;
mod webhook_receiver;

pub use async_invoke::{AsyncLambda, Attempt};
pub use events::{
    SAMPLE_SET, event, event_for_actor, event_for_set, set_env, set_progress_final,
    status_and_body, with_idempotency_key, with_json_body,
};
pub use fault_proxy::{FaultProxy, FaultRule};
pub use http_front::HttpFront;
pub use processes::{CapturedLog, ClosedPort, LambdaEmulator, Moto, free_port, rie_path};
pub use replicate_emulator::Counts as ReplicateCounts;
pub use seeding::{
    SAMPLE_ACTOR, SeedProfile, create_table_and_bucket, get_object, list_keys, put_kill_switch,
    put_object, put_profile, put_secure_parameter, s3_client, sample_jpeg, sdk_config,
    synthetic_portrait, table_keys,
};
pub use sqs_source::{
    DeliveryStats, EXPORT_DLQ, EXPORT_MAX_RECEIVE_COUNT, EXPORT_QUEUE,
    EXPORT_VISIBILITY_TIMEOUT_SECONDS, EventSourceSettings, InvocationReport, MAX_RECEIVE_COUNT,
    MAX_WINDOWED_BATCH_SIZE, SqsEventSource, TRAINING_DLQ, TRAINING_MAX_RECEIVE_COUNT,
    TRAINING_QUEUE, TRAINING_SET_DLQ, TRAINING_SET_QUEUE, TRAINING_VISIBILITY_TIMEOUT_SECONDS,
    TRAININGS_TIMEOUT_SECONDS, TrainingSetQueues, VISIBILITY_TIMEOUT_SECONDS,
    WORKER_TIMEOUT_SECONDS, create_export_queues, create_training_queues,
    create_training_set_queues, dead_letters, queue_depth, sqs_event,
};
pub use stack::{GenerationStack, ReplicateEmulator};
pub use standard_webhooks::{standard_sign, standard_verifies};
pub use webhook_receiver::{Delivery, WebhookReceiver};

/// The region every local client uses.
pub const REGION: &str = "us-east-1";
/// The table name of the local stack and the tests.
pub const TABLE_NAME: &str = "training-image-service";
/// The bucket of the local stack and the tests (the template's default).
pub const BUCKET: &str = "story-boards-assets";

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}
