//! Lambda: `GET /api/actors/{actorId}/training-data` (the actor's images, their decisions
//! and captions) and `PATCH .../training-data/images/{filename}` (keep, reject, caption).

use lambda_http::{Error, run, service_fn};
use shared::entry::compose;

// An execution environment runs one invocation at a time: one thread serves it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::training_data().await?;
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
