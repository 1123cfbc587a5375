//! Creates the local stack's table, bucket and queues (the training-set items', the exports'
//! and the trainings', each with its dead-letter queue, as the template has them) on a running
//! moto server and seeds the sample actor (its profile, and a synthetic base photo when there
//! is none): `seed-local [ENDPOINT]` (default `http://127.0.0.1:5005`). Run again, it leaves
//! what exists as it is. Its last lines are `TRAINING_SET_QUEUE_URL=…`,
//! `TRAINING_SET_QUEUE_ARN=…`, `TRAINING_SET_DLQ_URL=…`, `EXPORT_QUEUE_URL=…`,
//! `EXPORT_QUEUE_ARN=…`, `EXPORT_DLQ_URL=…`, `TRAINING_QUEUE_URL=…`, `TRAINING_QUEUE_ARN=…` and
//! `TRAINING_DLQ_URL=…`, for `tools/local-stack.sh` to read.

#[tokio::main]
async fn main() {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5005".to_owned());
    let sdk = testkit::sdk_config(&endpoint).await;
    testkit::create_table_and_bucket(&sdk).await;
    // CreateQueue with a queue's own attributes answers the existing queue.
    let queues = testkit::create_training_set_queues(&sdk).await;
    let exports = testkit::create_export_queues(&sdk).await;
    let trainings = testkit::create_training_queues(&sdk).await;
    testkit::put_profile(&sdk, &testkit::SAMPLE_ACTOR).await;
    let photo = testkit::SAMPLE_ACTOR.base_image_key;
    if testkit::get_object(&sdk, photo).await.is_none() {
        testkit::put_object(
            &sdk,
            photo,
            testkit::synthetic_portrait(512, 640),
            "image/jpeg",
        )
        .await;
    }
    println!(
        "seeded {endpoint}: table {}, bucket {}, queues {}, {}, {}, {}, {} and {}, actor {} with base photo {photo}",
        testkit::TABLE_NAME,
        testkit::BUCKET,
        testkit::TRAINING_SET_QUEUE,
        testkit::TRAINING_SET_DLQ,
        testkit::EXPORT_QUEUE,
        testkit::EXPORT_DLQ,
        testkit::TRAINING_QUEUE,
        testkit::TRAINING_DLQ,
        testkit::SAMPLE_ACTOR.actor_id
    );
    println!("TRAINING_SET_QUEUE_URL={}", queues.queue_url);
    println!("TRAINING_SET_QUEUE_ARN={}", queues.queue_arn);
    println!("TRAINING_SET_DLQ_URL={}", queues.dlq_url);
    println!("EXPORT_QUEUE_URL={}", exports.queue_url);
    println!("EXPORT_QUEUE_ARN={}", exports.queue_arn);
    println!("EXPORT_DLQ_URL={}", exports.dlq_url);
    println!("TRAINING_QUEUE_URL={}", trainings.queue_url);
    println!("TRAINING_QUEUE_ARN={}", trainings.queue_arn);
    println!("TRAINING_DLQ_URL={}", trainings.dlq_url);
}
