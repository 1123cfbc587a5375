//! Against the seed's approach: its Python script, a process per request, next to a Rust
//! process per request and the warm function.

use std::path::Path;

use serde_json::Value;

use crate::generate::Sequential;
use crate::report::{ms, table};
use crate::runtime_api::RuntimeApi;
use crate::seed_script::SeedScript;
use crate::stack::{BASE_PHOTO_BYTES, OUTPUT_BYTES, Stack, expect_ok, generate_event};
use crate::stats::Samples;

/// The comparison table: `count` runs of the seed's script and of a fresh Rust process each,
/// next to the warm round trips of `sequential`.
pub async fn comparison(
    stack: &Stack,
    bootstrap: &Path,
    sequential: &Sequential,
    count: usize,
) -> String {
    let script = SeedScript::new(&stack.moto, &stack.replicate, stack.python_actor());
    let mut python = Vec::with_capacity(count);
    for i in 0..count {
        python.push(script.generate(i as u64).await);
    }
    let api = RuntimeApi::start().await;
    let env = stack.function_env("generate-single");
    let mut rust = Vec::with_capacity(count);
    for i in 0..count {
        let event = generate_event(&stack.actors[0], &format!("process-{i}"), i as u64);
        let bytes = serde_json::to_vec(&event).expect("event JSON");
        let start = api.run_once(bootstrap, &env, Some(&bytes)).await;
        let answer: Value = serde_json::from_slice(&start.answer.unwrap_or_default())
            .expect("the function's answer is JSON");
        expect_ok(&answer, "generate-single (process per request)");
        rust.push(start.to_answer.unwrap_or_default());
    }
    let python = Samples::of(&python);
    let rust = Samples::of(&rust);
    let warm = &sequential.round_trips;
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    let line = |label: &str, samples: &Samples, ratio: String| {
        vec![
            label.to_owned(),
            samples.len().to_string(),
            ms(samples.median()),
            ms(samples.max()),
            ratio,
        ]
    };
    let faster =
        |samples: &Samples| format!("{:.1}× faster", ratio(python.median(), samples.median()));
    let rows = vec![
        line(
            "seed's approach: Python process per request (boto3, requests)",
            &python,
            "1.0×".to_owned(),
        ),
        line(
            "Rust bootstrap, a new process per request (cold start + first generation)",
            &rust,
            faster(&rust),
        ),
        line(
            "Rust function, warm execution environment (client round trip)",
            warm,
            faster(warm),
        ),
    ];
    format!(
        "## Against the seed's approach (same moto, same emulator, same {} KiB photo and {} KiB output)\n\n{}",
        BASE_PHOTO_BYTES / 1024,
        OUTPUT_BYTES / 1024,
        table(&["one generation", "n", "p50", "max", "p50 ratio"], &rows)
    )
}
