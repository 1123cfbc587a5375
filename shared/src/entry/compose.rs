//! The composition root: each function's configuration read and its clients built, once per
//! execution environment, before the runtime polls for the first event (so a bad setting
//! fails the start, not a request).

use lambda_http::Error;

use super::config;
use super::generate_single::GenerateSingleFunction;
use super::reconciler::{ReconcilerFunction, StuckItems};
use super::replicate_webhook::{ReplicateWebhookFunction, TrainingDeliveries};
use super::training_config;
use super::training_data::TrainingDataFunction;
use super::training_export::TrainingExportFunction;
use super::training_set_worker::TrainingSetWorkerFunction;
use super::training_sets::TrainingSetsFunction;
use crate::adapters::aws::load_sdk_config;
use crate::adapters::clock::SystemClock;
use crate::adapters::dynamodb::{DynamoDbActorProfiles, DynamoDbIndexCounter};
use crate::adapters::export_queue::SqsExportQueue;
use crate::adapters::export_records::DynamoDbExportRecords;
use crate::adapters::idempotency::DynamoDbIdempotency;
use crate::adapters::prediction_records::DynamoDbPredictionRecords;
use crate::adapters::profile_cache::CachedActorProfiles;
use crate::adapters::replicate::ReplicateClient;
use crate::adapters::s3::S3ObjectStore;
use crate::adapters::s3_archive::S3Archives;
use crate::adapters::spend::DynamoDbSpendGuard;
use crate::adapters::sqs::SqsItemQueue;
use crate::adapters::training_queue::SqsTrainingQueue;
use crate::adapters::training_records::DynamoDbTrainingRecords;
use crate::adapters::training_sets::DynamoDbTrainingSets;
use crate::usecases::export::TrainingExports;
use crate::usecases::group_commit::GroupCommit;
use crate::usecases::training_sets::{TrainingSetWork, WebhookIntake};
use crate::usecases::{GenerateImage, GenerationSettings, GuardedGeneration, ImageSlots};

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

/// training-sets as deployed: the routes check and count sets, and read and change their
/// items; they never call the model nor store an image, so those ports are `()`.
pub type TrainingSets = TrainingSetsFunction<
    TrainingSetWork<
        DynamoDbActorProfiles,
        S3ObjectStore,
        (),
        (),
        SystemClock,
        (),
        DynamoDbIdempotency,
        DynamoDbSpendGuard,
        DynamoDbTrainingSets,
        SqsItemQueue,
    >,
>;

/// training-set-worker as deployed: the whole generation, without idempotency records (an
/// item's state is its own guard).
pub type TrainingSetWorker = TrainingSetWorkerFunction<
    TrainingSetWork<
        DynamoDbActorProfiles,
        S3ObjectStore,
        DynamoDbIndexCounter,
        ReplicateClient,
        SystemClock,
        DynamoDbPredictionRecords,
        (),
        DynamoDbSpendGuard,
        DynamoDbTrainingSets,
        SqsItemQueue,
    >,
>;

/// replicate-webhook as deployed: a delivery moves its item on and queues its store.
pub type ReplicateWebhook =
    ReplicateWebhookFunction<WebhookIntake<SystemClock, DynamoDbTrainingSets, SqsItemQueue>>;

/// The profiles training-prompts reads: DynamoDB behind a per-environment cache.
pub type TrainingPromptsProfiles = CachedActorProfiles<DynamoDbActorProfiles>;

/// training-data as deployed: the manifest and captions in S3, the profiles in DynamoDB.
pub type TrainingData = TrainingDataFunction<DynamoDbActorProfiles, S3ObjectStore, SystemClock>;

/// training-export as deployed: records in DynamoDB, messages on SQS, zips in S3.
pub type TrainingExport = TrainingExportFunction<
    DynamoDbActorProfiles,
    S3ObjectStore,
    DynamoDbExportRecords,
    SqsExportQueue,
    S3Archives,
    SystemClock,
>;

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
            spend: spend_guard(dynamodb, &table_name)?,
        },
    })
}

/// Starts logging and builds training-sets.
pub async fn training_sets() -> Result<TrainingSets, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let table_name = config::table_name()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    Ok(TrainingSetsFunction {
        price_per_image_usd: config::price_per_image_usd()?,
        work: TrainingSetWork {
            generation: route_generation(&sdk_config, &dynamodb, &table_name)?,
            idempotency: DynamoDbIdempotency::new(dynamodb.clone(), table_name.clone()),
            spend: spend_guard(dynamodb.clone(), &table_name)?,
            sets: DynamoDbTrainingSets::new(dynamodb, table_name),
            queue: item_queue(&sdk_config)?,
            stuck_after: config::item_stuck_after()?,
            webhooks: None,
        },
    })
}

/// Starts logging and builds training-set-worker.
pub async fn training_set_worker() -> Result<TrainingSetWorker, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let table_name = config::table_name()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    let queue = item_queue(&sdk_config)?;
    Ok(TrainingSetWorkerFunction {
        queue: queue.clone(),
        work: TrainingSetWork {
            generation: generation(&sdk_config)?,
            idempotency: (),
            spend: spend_guard(dynamodb.clone(), &table_name)?,
            sets: DynamoDbTrainingSets::new(dynamodb, table_name),
            queue,
            stuck_after: config::item_stuck_after()?,
            webhooks: config::item_webhooks()?,
        },
    })
}

/// Starts logging and builds replicate-webhook.
pub async fn replicate_webhook() -> Result<ReplicateWebhook, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    Ok(ReplicateWebhookFunction {
        trainings: training_deliveries(&sdk_config)?,
        secret: config::webhook_secret(&sdk_config)?,
        intake: WebhookIntake {
            clock: SystemClock,
            sets: DynamoDbTrainingSets::new(
                aws_sdk_dynamodb::Client::new(&sdk_config),
                config::table_name()?,
            ),
            queue: item_queue(&sdk_config)?,
            stuck_after: config::item_stuck_after()?,
        },
    })
}

/// The items' queue, from `TRAINING_SET_QUEUE_URL`.
fn item_queue(sdk_config: &aws_config::SdkConfig) -> Result<SqsItemQueue, Error> {
    Ok(SqsItemQueue::new(
        aws_sdk_sqs::Client::new(sdk_config),
        config::training_set_queue_url()?,
    ))
}

/// The spend guard, from the caps and kill switch settings.
fn spend_guard(
    dynamodb: aws_sdk_dynamodb::Client,
    table_name: &str,
) -> Result<DynamoDbSpendGuard, Error> {
    Ok(DynamoDbSpendGuard::new(
        dynamodb,
        table_name,
        config::daily_caps()?,
        config::generation_disabled()?,
        SystemClock,
    ))
}

/// Starts logging and builds the reconciler.
pub async fn reconciler() -> Result<ReconcilerFunction, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let sets = if config::has_training_sets() {
        Some(StuckItems {
            sets: DynamoDbTrainingSets::new(
                aws_sdk_dynamodb::Client::new(&sdk_config),
                config::table_name()?,
            ),
            queue: item_queue(&sdk_config)?,
            stuck_after: config::item_stuck_after()?,
        })
    } else {
        None
    };
    Ok(ReconcilerFunction {
        generation: generation(&sdk_config)?,
        batch_size: config::reconcile_batch_size()?,
        sets,
        trainings: training_deliveries(&sdk_config)?,
    })
}

/// The trainings' records and queue, when the stack has them (`TRAINING_QUEUE_URL`).
fn training_deliveries(
    sdk_config: &aws_config::SdkConfig,
) -> Result<Option<TrainingDeliveries>, Error> {
    if !training_config::has_trainings() {
        return Ok(None);
    }
    Ok(Some(TrainingDeliveries {
        records: DynamoDbTrainingRecords::new(
            aws_sdk_dynamodb::Client::new(sdk_config),
            config::table_name()?,
        ),
        queue: SqsTrainingQueue::new(
            aws_sdk_sqs::Client::new(sdk_config),
            training_config::training_queue_url()?,
        ),
        look_every: training_config::training_check_every()?,
    }))
}

/// The generation's ports and settings, from the environment.
fn generation(sdk_config: &aws_config::SdkConfig) -> Result<DeployedGeneration, Error> {
    let table_name = config::table_name()?;
    let replicate = ReplicateClient::new(config::replicate_config(config::replicate_token(
        sdk_config,
    )?)?)?;
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk_config);
    let (settings, objects) = generation_settings_and_bucket(sdk_config)?;
    Ok(GenerateImage {
        profiles: DynamoDbActorProfiles::new(dynamodb.clone(), table_name.clone()),
        objects,
        counter: DynamoDbIndexCounter::new(dynamodb.clone(), table_name.clone()),
        generator: replicate,
        clock: SystemClock,
        records: DynamoDbPredictionRecords::new(dynamodb, table_name),
        settings,
        manifests: GroupCommit::default(),
        image_slots: ImageSlots::default(),
    })
}

/// The generation's settings and the bucket, from the environment.
fn generation_settings_and_bucket(
    sdk_config: &aws_config::SdkConfig,
) -> Result<(GenerationSettings, S3ObjectStore), Error> {
    let bucket = config::required_env("AWS_SYSTEM_ACTORS_BUCKET")?;
    let region = sdk_config
        .region()
        .map_or("us-east-1".to_owned(), ToString::to_string);
    let objects = S3ObjectStore::new(
        S3ObjectStore::client_for(sdk_config),
        bucket.clone(),
        region,
    );
    let settings = GenerationSettings {
        bucket,
        max_base_image_bytes: config::max_base_image_bytes()?,
        base_image_prefixes: config::base_image_prefixes()?,
    };
    Ok((settings, objects))
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

/// Starts logging and builds training-data.
pub async fn training_data() -> Result<TrainingData, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let table_name = config::table_name()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    Ok(TrainingDataFunction {
        data: route_generation(&sdk_config, &dynamodb, &table_name)?,
    })
}

/// The generation's ports a route needs that reads profiles and the bucket but never calls
/// the model nor numbers an image: those ports are `()`.
fn route_generation(
    sdk_config: &aws_config::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
    table_name: &str,
) -> Result<GenerateImage<DynamoDbActorProfiles, S3ObjectStore, (), (), SystemClock, ()>, Error> {
    let (settings, objects) = generation_settings_and_bucket(sdk_config)?;
    Ok(GenerateImage {
        profiles: DynamoDbActorProfiles::new(dynamodb.clone(), table_name.to_owned()),
        objects,
        counter: (),
        generator: (),
        clock: SystemClock,
        records: (),
        settings,
        manifests: GroupCommit::default(),
        image_slots: ImageSlots::default(),
    })
}

/// Starts logging and builds training-export.
pub async fn training_export() -> Result<TrainingExport, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let table_name = config::table_name()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    let bucket = config::required_env("AWS_SYSTEM_ACTORS_BUCKET")?;
    let s3 = S3ObjectStore::client_for(&sdk_config);
    let archives = S3Archives::new(&s3, bucket.clone());
    Ok(TrainingExportFunction {
        exports: deployed_exports(&sdk_config, &dynamodb, &table_name, &s3, bucket, archives)?,
    })
}

/// The exports' use cases as deployed over `bucket`, writing zips with `archives` (a
/// training's request starts exports without a zip writer: `()`).
pub(super) fn deployed_exports<A>(
    sdk_config: &aws_config::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
    table_name: &str,
    s3: &aws_sdk_s3::Client,
    bucket: String,
    archives: A,
) -> Result<
    TrainingExports<
        DynamoDbActorProfiles,
        S3ObjectStore,
        DynamoDbExportRecords,
        SqsExportQueue,
        A,
        SystemClock,
    >,
    Error,
> {
    let region = sdk_config
        .region()
        .map_or("us-east-1".to_owned(), ToString::to_string);
    Ok(TrainingExports {
        profiles: DynamoDbActorProfiles::new(dynamodb.clone(), table_name.to_owned()),
        objects: S3ObjectStore::new(s3.clone(), bucket, region)
            .with_signing_credentials(sdk_config.credentials_provider()),
        records: DynamoDbExportRecords::new(dynamodb.clone(), table_name.to_owned()),
        queue: SqsExportQueue::new(
            aws_sdk_sqs::Client::new(sdk_config),
            config::export_queue_url()?,
        ),
        archives,
        clock: SystemClock,
        settings: config::export_settings()?,
    })
}
