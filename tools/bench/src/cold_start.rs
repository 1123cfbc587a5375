//! Cold starts: from spawning a bootstrap to its first poll of the Runtime API.

use crate::Bootstraps;
use crate::report::{ms, table};
use crate::runtime_api::RuntimeApi;
use crate::stack::Stack;
use crate::stats::Samples;

/// The cold-start table: `count` starts of each function.
pub async fn cold_starts(stack: &Stack, bootstraps: &Bootstraps, count: usize) -> String {
    let api = RuntimeApi::start().await;
    let mut rows = Vec::new();
    for (name, path) in [
        ("training-prompts", &bootstraps.training_prompts),
        ("generate-single", &bootstraps.generate_single),
    ] {
        let env = stack.function_env(name);
        let mut starts = Vec::new();
        for _ in 0..count {
            starts.push(api.run_once(path, &env, None).await.to_first_poll);
        }
        let samples = Samples::of(&starts);
        rows.push(vec![
            name.to_owned(),
            samples.len().to_string(),
            ms(samples.median()),
            ms(samples.max()),
        ]);
    }
    format!(
        "## Cold start: process start to the first poll of the Runtime API (SDK clients built)\n\n{}",
        table(&["function", "starts", "median", "max"], &rows)
    )
}
