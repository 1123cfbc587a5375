//! Lambda: `POST /api/actors/{actorId}/training-data/exports` (accept an export),
//! `GET .../exports/{exportId}` (its status and URL), and the exports' queue (write the zip).

use lambda_http::{Error, run, service_fn};
use shared::entry::compose;

// An execution environment runs one invocation at a time: one thread serves it (a zip's
// parts are sent by tasks on the same thread while the next files are read).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::training_export().await?;
    let function = &function;
    run(service_fn(move |request| function.handle(request))).await
}
