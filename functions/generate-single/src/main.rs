//! Lambda: `POST /api/actors/{actorId}/training-data/generate-single`, and direct, scheduled
//! and batch invocations of the same job.

use lambda_http::{Error, run, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamodb::{DynamoDbActorProfiles, DynamoDbIndexCounter};
use shared::adapters::idempotency::DynamoDbIdempotency;
use shared::adapters::replicate::{ReplicateClient, ReplicateConfig};
use shared::adapters::s3::S3ObjectStore;
use shared::adapters::spend::DynamoDbSpendGuard;
use shared::domain::generate_single::{GenerateSingle, GenerationSettings};
use shared::entry::config;
use shared::entry::generate::GenerateFunction;

// An execution environment runs one invocation at a time: one thread serves it, without the
// hand-offs between worker threads (README, "Benchmark": less CPU and memory per request).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::logging::init();
    let table_name = config::table_name()?;
    let bucket = config::required_env("AWS_SYSTEM_ACTORS_BUCKET")?;
    let sdk_config = load_sdk_config().await;
    let replicate = ReplicateClient::new(ReplicateConfig::from_env(config::replicate_token(
        &sdk_config,
    )?)?)?;
    let region = sdk_config
        .region()
        .map_or("us-east-1".to_owned(), ToString::to_string);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    let function = GenerateFunction {
        service: GenerateSingle {
            profiles: DynamoDbActorProfiles::new(dynamodb.clone(), table_name.clone()),
            objects: S3ObjectStore::new(
                S3ObjectStore::client_for(&sdk_config),
                bucket.clone(),
                region,
            ),
            counter: DynamoDbIndexCounter::new(dynamodb.clone(), table_name.clone()),
            generator: replicate,
            clock: SystemClock,
            settings: GenerationSettings {
                bucket,
                max_base_image_bytes: config::max_base_image_bytes()?,
                base_image_prefixes: config::base_image_prefixes()?,
            },
        },
        idempotency: DynamoDbIdempotency::new(dynamodb.clone(), table_name.clone()),
        spend: DynamoDbSpendGuard::new(
            dynamodb,
            table_name,
            config::daily_caps()?,
            config::generation_disabled()?,
            SystemClock,
        ),
    };
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
