//! Lambda: `POST /api/actors/{actorId}/trainings` (accept a training), `GET
//! .../trainings/{trainingId}` (its status, logs, cost and result), `POST
//! .../trainings/{trainingId}/cancel`, and the trainings' queue (move each training on: create
//! it on Replicate once its export is done, finish it once Replicate has).

use lambda_http::{Error, run, service_fn};
use shared::entry::compose_trainings;

// An execution environment runs one invocation at a time: one thread serves it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose_trainings::trainings().await?;
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
