//! Lambda: the training-set routes, `POST`/`GET /api/actors/{actorId}/training-sets`,
//! `GET .../{setId}`, `POST .../{setId}/cancel` and `POST .../{setId}/retry`.

use lambda_http::{Error, run, service_fn};
use shared::entry::compose;

// One invocation at a time per execution environment: one thread serves it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::training_sets().await?;
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
