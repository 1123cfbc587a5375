//! Creates the local stack's table and bucket on a running moto server and seeds the sample
//! actor (its profile, and a synthetic base photo when there is none):
//! `seed-local [ENDPOINT]` (default `http://127.0.0.1:5005`).

#[tokio::main]
async fn main() {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:5005".to_owned());
    let sdk = testkit::sdk_config(&endpoint).await;
    testkit::create_table_and_bucket(&sdk).await;
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
        "seeded {endpoint}: table {}, bucket {}, actor {} with base photo {photo}",
        testkit::TABLE_NAME,
        testkit::BUCKET,
        testkit::SAMPLE_ACTOR.actor_id
    );
}
