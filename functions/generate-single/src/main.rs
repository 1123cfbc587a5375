//! Lambda: `POST /api/actors/{actorId}/training-data/generate-single`, and direct, scheduled
//! and batch invocations of the same job.

use lambda_http::{Error, run, service_fn};
use shared::entry::compose;

// An execution environment runs one invocation at a time: one thread serves it, without the
// hand-offs between worker threads (docs/benchmark.md: less CPU and memory per request).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::generate_single().await?;
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
