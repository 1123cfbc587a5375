//! What the training-set measure runs against: DynamoDB on a moto answering one request at a
//! time (moto's conditional writes are atomic only so, and a set's workers race on its items
//! and counts), S3 on another such moto (they race on one manifest), SSM and SQS each on a moto
//! of its own (as in AWS, the services do not queue behind each other; a long poll would hold
//! the others up), and the Replicate emulator with its model taking 2 s and its webhooks
//! signed. The seed's script runs against the first moto alone.

use aws_config::SdkConfig;
use serde_json::json;
use testkit::{Moto, ReplicateEmulator, TrainingSetQueues};

use crate::stack::{BASE_PHOTO_BYTES, OUTPUT_BYTES, TOKEN_PARAMETER, deployed_env, seed_actor};

/// The emulator's model time: what one image waits for, and each item of a set.
pub const MODEL_MS: u64 = 2_000;
/// Where the webhook secret lives, as in the deployed stack.
const WEBHOOK_SECRET_PARAMETER: &str = "/training-image-service/replicate-webhook-secret";

/// The stack, seeded: the set's actor and the seed script's, each with the benchmark's photo.
pub struct SetStack {
    pub moto: Moto,
    pub s3_moto: Moto,
    /// The S3 side, where the images are.
    pub s3_sdk: SdkConfig,
    pub ssm_moto: Moto,
    pub queue_moto: Moto,
    pub queue_sdk: SdkConfig,
    pub queues: TrainingSetQueues,
    pub replicate: ReplicateEmulator,
    /// The actor the set and generate-single generate for.
    pub actor: String,
    /// The seed script's actor.
    pub python_actor: String,
}

impl SetStack {
    /// Starts and seeds it all.
    pub async fn start() -> Self {
        let moto = Moto::start_serialized().await;
        let sdk = moto.sdk_config().await;
        let s3_moto = Moto::start_serialized().await;
        let s3_sdk = s3_moto.sdk_config().await;
        testkit::create_table_and_bucket(&sdk).await;
        testkit::create_table_and_bucket(&s3_sdk).await;
        testkit::put_secure_parameter(&sdk, TOKEN_PARAMETER, ReplicateEmulator::TOKEN).await;
        let replicate = ReplicateEmulator::start().await;
        replicate
            .set_faults(json!({"output_bytes": OUTPUT_BYTES, "processing_ms": MODEL_MS}))
            .await;
        testkit::put_secure_parameter(&sdk, WEBHOOK_SECRET_PARAMETER, replicate.webhook_secret())
            .await;
        let (actor, python_actor) = (
            "0400_bench_set_30_male".to_owned(),
            "0401_bench_set_python_30_male".to_owned(),
        );
        let photo = replicate_emulator::padded_jpeg(BASE_PHOTO_BYTES).to_vec();
        // Each actor's profile and photo on both (the functions read the profile from one,
        // the photo from the other; the seed's script reads both from the first).
        for sdk in [&sdk, &s3_sdk] {
            for actor in [&actor, &python_actor] {
                seed_actor(sdk, actor, photo.clone()).await;
            }
        }
        let ssm_moto = Moto::start().await;
        let ssm_sdk = ssm_moto.sdk_config().await;
        testkit::put_secure_parameter(&ssm_sdk, TOKEN_PARAMETER, ReplicateEmulator::TOKEN).await;
        testkit::put_secure_parameter(
            &ssm_sdk,
            WEBHOOK_SECRET_PARAMETER,
            replicate.webhook_secret(),
        )
        .await;
        let queue_moto = Moto::start().await;
        let queue_sdk = queue_moto.sdk_config().await;
        let queues = testkit::create_training_set_queues(&queue_sdk).await;
        Self {
            moto,
            s3_moto,
            s3_sdk,
            ssm_moto,
            queue_moto,
            queue_sdk,
            queues,
            replicate,
            actor,
            python_actor,
        }
    }

    /// A function's environment, as deployed (the token and the webhook secret in SSM), with
    /// the queue on its own moto.
    pub fn function_env(&self, function: &str) -> Vec<(String, String)> {
        let mut env = deployed_env(&self.moto, &self.replicate, function);
        for (name, value) in [
            ("AWS_ENDPOINT_URL_SQS", self.queue_moto.endpoint()),
            ("AWS_ENDPOINT_URL_S3", self.s3_moto.endpoint()),
            ("AWS_ENDPOINT_URL_SSM", self.ssm_moto.endpoint()),
            ("TRAINING_SET_QUEUE_URL", &self.queues.queue_url),
            (
                "REPLICATE_WEBHOOK_SECRET_PARAMETER",
                WEBHOOK_SECRET_PARAMETER,
            ),
        ] {
            testkit::set_env(&mut env, name, value);
        }
        env
    }
}
