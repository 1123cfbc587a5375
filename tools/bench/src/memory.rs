//! Peak memory of the generate-single process, after the sequential run and with large images.

use std::path::Path;

use serde_json::json;

use crate::report::{mib, table};
use crate::stack::{
    BASE_PHOTO_BYTES, Environment, LARGE_IMAGE_BYTES, OUTPUT_BYTES, Stack, expect_ok,
    generate_event,
};

/// The memory table: `typical` (the sequential run's peak) and 3 generations of 5 MiB images.
pub async fn peak_memory(stack: &Stack, bootstrap: &Path, typical: u64) -> String {
    stack
        .replicate
        .set_faults(json!({"output_bytes": LARGE_IMAGE_BYTES}))
        .await;
    let environment =
        Environment::start(bootstrap, &stack.function_env("generate-single"), "memory").await;
    for i in 0..3 {
        let event = generate_event(&stack.large_actor, &format!("large-{i}"), i);
        expect_ok(
            &environment.emulator.invoke(&event).await,
            "generate-single (5 MB)",
        );
    }
    let large = environment.peak_memory();
    stack
        .replicate
        .set_faults(json!({"output_bytes": OUTPUT_BYTES}))
        .await;
    let rows = vec![
        vec![
            format!(
                "after the sequential run ({} KiB photo, {} KiB output)",
                BASE_PHOTO_BYTES / 1024,
                OUTPUT_BYTES / 1024
            ),
            mib(typical),
        ],
        vec![
            "3 generations with a 5 MiB photo and a 5 MiB output".to_owned(),
            mib(large),
        ],
    ];
    format!(
        "## Peak memory of the generate-single process (VmHWM)\n\n{}",
        table(&["run", "VmHWM"], &rows)
    )
}
