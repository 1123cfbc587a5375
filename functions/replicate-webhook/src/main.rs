//! Lambda: `POST /api/webhooks/replicate`, Replicate's signed webhooks for training-set
//! items (the one route without a JWT: its signature is checked instead).

use lambda_http::{Error, run, service_fn};
use shared::entry::compose;

// One invocation at a time per execution environment: one thread serves it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::replicate_webhook().await?;
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
