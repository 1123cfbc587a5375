//! The composition root: each function's configuration read and its clients built, once per
//! execution environment, before the runtime polls for the first event (so a bad setting
//! fails the start, not a request).

use lambda_http::Error;

use super::config;
use super::generate_single::GenerateSingleFunction;
use super::reconciler::ReconcilerFunction;
use crate::adapters::aws::load_sdk_config;
use crate::adapters::clock::SystemClock;
use crate::adapters::dynamodb::{DynamoDbActorProfiles, DynamoDbIndexCounter};
use crate::adapters::idempotency::DynamoDbIdempotency;
use crate::adapters::prediction_records::DynamoDbPredictionRecords;
use crate::adapters::profile_cache::CachedActorProfiles;
use crate::adapters::replicate::ReplicateClient;
use crate::adapters::s3::S3ObjectStore;
use crate::adapters::spend::DynamoDbSpendGuard;
use crate::usecases::{GenerateImage, GenerationSettings, GuardedGeneration};

/// The generation as deployed: DynamoDB, S3 and Replicate.
pub type DeployedGeneration = GenerateImage<
    DynamoDbActorProfiles,
    S3ObjectStore,
    DynamoDbIndexCounter,
    ReplicateClient,
    SystemClock,
    DynamoDbPredictionRecords,
>;

/// generate-single as deployed: the generation behind its guards.
pub type GenerateSingle = GenerateSingleFunction<
    GuardedGeneration<
        DynamoDbActorProfiles,
        S3ObjectStore,
        DynamoDbIndexCounter,
        ReplicateClient,
        SystemClock,
        DynamoDbPredictionRecords,
        DynamoDbIdempotency,
        DynamoDbSpendGuard,
    >,
>;

/// The profiles training-prompts reads: DynamoDB behind a per-environment cache.
pub type TrainingPromptsProfiles = CachedActorProfiles<DynamoDbActorProfiles>;

/// Starts logging and builds generate-single.
pub async fn generate_single() -> Result<GenerateSingle, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let table_name = config::table_name()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    Ok(GenerateSingleFunction {
        function_name: config::function_name("generate-single"),
        batch_job_min_time: config::batch_job_min_time()?,
        jobs: GuardedGeneration {
            generation: generation(&sdk_config)?,
            idempotency: DynamoDbIdempotency::new(dynamodb.clone(), table_name.clone()),
            spend: DynamoDbSpendGuard::new(
                dynamodb,
                table_name,
                config::daily_caps()?,
                config::generation_disabled()?,
                SystemClock,
            ),
        },
    })
}

/// Starts logging and builds the reconciler.
pub async fn reconciler() -> Result<ReconcilerFunction, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    Ok(ReconcilerFunction {
        generation: generation(&sdk_config)?,
        batch_size: config::reconcile_batch_size()?,
    })
}

/// The generation's ports and settings, from the environment.
fn generation(sdk_config: &aws_config::SdkConfig) -> Result<DeployedGeneration, Error> {
    let table_name = config::table_name()?;
    let bucket = config::required_env("AWS_SYSTEM_ACTORS_BUCKET")?;
    let replicate = ReplicateClient::new(config::replicate_config(config::replicate_token(
        sdk_config,
    )?)?)?;
    let region = sdk_config
        .region()
        .map_or("us-east-1".to_owned(), ToString::to_string);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk_config);
    Ok(GenerateImage {
        profiles: DynamoDbActorProfiles::new(dynamodb.clone(), table_name.clone()),
        objects: S3ObjectStore::new(
            S3ObjectStore::client_for(sdk_config),
            bucket.clone(),
            region,
        ),
        counter: DynamoDbIndexCounter::new(dynamodb.clone(), table_name.clone()),
        generator: replicate,
        clock: SystemClock,
        records: DynamoDbPredictionRecords::new(dynamodb, table_name),
        settings: GenerationSettings {
            bucket,
            max_base_image_bytes: config::max_base_image_bytes()?,
            base_image_prefixes: config::base_image_prefixes()?,
        },
    })
}

/// Starts logging and builds the profiles training-prompts reads.
pub async fn training_prompts() -> Result<TrainingPromptsProfiles, Error> {
    super::logging::init(&config::log_settings());
    let table_name = config::table_name()?;
    let sdk_config = load_sdk_config().await;
    Ok(CachedActorProfiles::new(
        DynamoDbActorProfiles::new(aws_sdk_dynamodb::Client::new(&sdk_config), table_name),
        config::actor_profile_cache_ttl()?,
    ))
}
