//! The trainings function's composition: its configuration read and its clients built once
//! per execution environment (beside [`super::compose`], which builds the others).

use lambda_http::Error;

use super::compose::deployed_exports;
use super::config;
use super::training_config;
use super::trainings::TrainingsFunction;
use crate::adapters::aws::load_sdk_config;
use crate::adapters::clock::SystemClock;
use crate::adapters::dynamodb::DynamoDbActorProfiles;
use crate::adapters::export_queue::SqsExportQueue;
use crate::adapters::export_records::DynamoDbExportRecords;
use crate::adapters::idempotency::DynamoDbIdempotency;
use crate::adapters::replicate::{ReplicateClient, ReplicateTrainer};
use crate::adapters::s3::S3ObjectStore;
use crate::adapters::spend::DynamoDbSpendGuard;
use crate::adapters::training_queue::SqsTrainingQueue;
use crate::adapters::training_records::DynamoDbTrainingRecords;
use crate::adapters::weights_copy::S3WeightsCopier;
use crate::usecases::trainings::Trainings;

/// trainings as deployed: records, locks and caps in DynamoDB, messages on SQS, the export's
/// start shared with training-export, Replicate's trainings, the weights copied into S3.
pub type TrainingsDeployed = TrainingsFunction<
    DynamoDbActorProfiles,
    S3ObjectStore,
    DynamoDbExportRecords,
    SqsExportQueue,
    DynamoDbTrainingRecords,
    ReplicateTrainer,
    S3WeightsCopier,
    DynamoDbSpendGuard,
    DynamoDbIdempotency,
    SystemClock,
>;

/// Starts logging and builds trainings.
pub async fn trainings() -> Result<TrainingsDeployed, Error> {
    super::logging::init(&config::log_settings());
    let sdk_config = load_sdk_config().await;
    let table_name = config::table_name()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    let bucket = config::required_env("AWS_SYSTEM_ACTORS_BUCKET")?;
    let s3 = S3ObjectStore::client_for(&sdk_config);
    let replicate = ReplicateClient::new(config::replicate_config(config::replicate_token(
        &sdk_config,
    )?)?)?;
    Ok(TrainingsFunction {
        trainings: Trainings {
            exports: deployed_exports(
                &sdk_config,
                &dynamodb,
                &table_name,
                &s3,
                bucket.clone(),
                (),
            )?,
            records: DynamoDbTrainingRecords::new(dynamodb.clone(), table_name.clone()),
            trainer: ReplicateTrainer::new(
                replicate.clone(),
                training_config::trainer_model()?,
                training_config::trainer_version()?,
            ),
            weights: S3WeightsCopier::new(replicate, &s3, bucket),
            queue: SqsTrainingQueue::new(
                aws_sdk_sqs::Client::new(&sdk_config),
                training_config::training_queue_url()?,
            ),
            spend: DynamoDbSpendGuard::for_trainings(
                dynamodb.clone(),
                &table_name,
                training_config::daily_training_cap()?,
                config::generation_disabled()?,
                SystemClock,
            ),
            idempotency: DynamoDbIdempotency::new(dynamodb, table_name),
            settings: training_config::training_settings()?,
        },
    })
}
