//! Lambda: `GET /api/actors/{actorId}/training-prompts`.

use lambda_http::{Error, run, service_fn};
use shared::adapters::aws::load_sdk_config;
use shared::adapters::dynamodb::DynamoDbActorProfiles;
use shared::adapters::profile_cache::CachedActorProfiles;
use shared::entry::{config, list_prompts};

// An execution environment runs one invocation at a time: one thread serves it, without the
// hand-offs between worker threads (README, "Benchmark": less CPU and memory per request).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::logging::init();
    let table_name = config::table_name()?;
    let sdk_config = load_sdk_config().await;
    let profiles = CachedActorProfiles::new(
        DynamoDbActorProfiles::new(aws_sdk_dynamodb::Client::new(&sdk_config), table_name),
        config::actor_profile_cache_ttl()?,
    );
    let profiles = &profiles;
    run(service_fn(move |request| {
        list_prompts::handle(profiles, request)
    }))
    .await
}
