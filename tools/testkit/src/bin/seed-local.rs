//! Creates the local stack's table and bucket on a running moto server and seeds the sample
//! actor: `seed-local [ENDPOINT]` (default `http://127.0.0.1:5555`).

#[tokio::main]
async fn main() {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5555".to_owned());
    let sdk = testkit::sdk_config(&endpoint).await;
    testkit::create_table_and_bucket(&sdk).await;
    testkit::put_profile(&sdk, &testkit::SAMPLE_ACTOR).await;
    println!(
        "seeded {endpoint}: table {}, bucket {}, actor {}",
        testkit::TABLE_NAME,
        testkit::BUCKET,
        testkit::SAMPLE_ACTOR.actor_id
    );
}
