//! Lambda: on an EventBridge schedule, collects the paid predictions whose run ended without
//! storing them (docs/operations.md, "Reconciler").

use lambda_runtime::{Error, run, service_fn};
use shared::entry::compose;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = compose::reconciler().await?;
    let function = &function;
    run(service_fn(move |event| function.handle(event))).await
}
