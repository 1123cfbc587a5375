//! Lambda: `GET /api/actors/{actorId}/training-prompts`.

use lambda_http::{Error, run, service_fn};
use shared::entry::{compose, training_prompts};

// An execution environment runs one invocation at a time: one thread serves it, without the
// hand-offs between worker threads (docs/benchmark.md: less CPU and memory per request).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let profiles = compose::training_prompts().await?;
    let profiles = &profiles;
    run(service_fn(move |request| {
        training_prompts::handle(profiles, request)
    }))
    .await
}
