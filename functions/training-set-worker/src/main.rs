//! Lambda: the training-set items' queue (SQS event source with `ReportBatchItemFailures`):
//! each item taken one step on, its message delayed until its next step is due.

use lambda_runtime::{Error, run, service_fn};
use shared::entry::compose;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::training_set_worker().await?;
    let function = &function;
    run(service_fn(move |event| function.handle(event))).await
}
