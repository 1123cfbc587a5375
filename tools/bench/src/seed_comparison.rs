//! Against the seed's approach: its Python script, a process per request, next to a Rust
//! process per request and the warm function.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;
use testkit::ReplicateEmulator;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::generate::Sequential;
use crate::report::{ms, table};
use crate::runtime_api::RuntimeApi;
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
    let script = testkit::repo_root().join("tools/bench/seed_generate.py");
    let saves = std::env::temp_dir().join(format!("bench-seed-{}", std::process::id()));
    let actor = stack.python_actor();
    let mut python = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        let mut script_run = tokio::process::Command::new("python3")
            .arg(&script)
            .args(["--actor-name", actor])
            .args([
                "--base-image-key",
                &format!("system_actors/base_images/{actor}.jpg"),
            ])
            .args(["--prompt", "A charcoal portrait of the man"])
            .args(["--seed", &i.to_string()])
            .args(["--save-dir", &saves.display().to_string()])
            .env("AWS_ENDPOINT_URL", stack.moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", testkit::REGION)
            .env("BUCKET", testkit::BUCKET)
            .env("REPLICATE_BASE_URL", stack.replicate.base_url())
            .env("REPLICATE_API_TOKEN", ReplicateEmulator::TOKEN)
            // Its answer reaches the pipe when printed, not at the interpreter's exit.
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        // Timed to its answer (its one line on stdout), as the Rust runs are: not its exit.
        let mut answer = String::new();
        if let Some(stdout) = script_run.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut answer).await;
        }
        python.push(started.elapsed());
        let status = script_run.wait().await.expect("python3 ends");
        assert!(
            status.success() && answer.contains("\"success\": true"),
            "the seed's script failed: {status} {answer}"
        );
    }
    let _ = std::fs::remove_dir_all(&saves);
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
