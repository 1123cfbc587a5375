//! generate-single timed: one execution environment generating in sequence, then many
//! running concurrently (the throughput).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::function_log::{Run, last, reported_durations, runs, seeds_counter};
use crate::procfs::{children, cpu_us, per_invocation};
use crate::report::{ms, row, table};
use crate::stack::{
    BASE_PHOTO_BYTES, CONCURRENT_ENVIRONMENTS, Environment, OUTPUT_BYTES, Stack, expect_ok,
    generate_event,
};
use crate::stats::Samples;

/// What the sequential generations gave.
pub struct Sequential {
    pub runs: Vec<Run>,
    pub round_trips: Samples,
    pub reported: Samples,
    pub peak_memory: u64,
    /// The function process's CPU time per generation (mean), in microseconds.
    pub cpu_per_generation_us: u64,
}

/// `count` generations in one environment, over the actors in turn, after 3 warm-up.
pub async fn sequential_generations(stack: &Stack, bootstrap: &Path, count: usize) -> Sequential {
    let environment =
        Environment::start(bootstrap, &stack.function_env("generate-single"), "seq").await;
    let actors = stack.function_actors();
    let warm_up = 3;
    let mut round_trips = Vec::with_capacity(count);
    let mut cpu_before = 0;
    for i in 0..warm_up + count {
        if i == warm_up {
            cpu_before = environment.function_cpu_us();
        }
        let actor = &actors[i % actors.len()];
        let event = generate_event(actor, &format!("seq-{i}"), i as u64);
        let started = Instant::now();
        let answer = environment.emulator.invoke(&event).await;
        if i >= warm_up {
            round_trips.push(started.elapsed());
        }
        expect_ok(&answer, "generate-single");
    }
    let cpu_used = environment.function_cpu_us().saturating_sub(cpu_before);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = environment.log_lines();
    let all = runs(&lines);
    Sequential {
        cpu_per_generation_us: per_invocation(cpu_used, count),
        runs: all[all.len().saturating_sub(count)..].to_vec(),
        round_trips: Samples::of(&round_trips),
        reported: last(reported_durations(&lines), count),
        peak_memory: environment.peak_memory(),
    }
}

/// What the concurrent generations gave.
pub struct Concurrent {
    runs: Vec<Run>,
    total: usize,
    /// The answers other than 200, as `status code`.
    failures: Vec<String>,
    wall: Duration,
    /// CPU time used meanwhile by moto, the functions, and the runtime emulators, in
    /// microseconds.
    cpu_us: [u64; 3],
}

/// `per_environment` generations in each of the actors' environments, all running
/// concurrently.
pub async fn concurrent_generations(
    stack: &Stack,
    bootstrap: &Path,
    per_environment: usize,
) -> Concurrent {
    let env = stack.function_env("generate-single");
    let mut environments = Vec::new();
    for (i, actor) in stack.function_actors().iter().enumerate() {
        let environment = Environment::start(bootstrap, &env, &format!("env{i}")).await;
        // Warm each one up (SSM token, connections), as a running service would be.
        let event = generate_event(actor, &format!("warm-{i}"), 0);
        expect_ok(
            &environment.emulator.invoke(&event).await,
            "generate-single",
        );
        environments.push((environment, actor.clone()));
    }
    let pids = |environments: &[(Environment, String)]| {
        let emulators: Vec<u32> = environments.iter().map(|(e, _)| e.emulator.pid()).collect();
        let functions: Vec<u32> = emulators.iter().flat_map(|pid| children(*pid)).collect();
        (emulators, functions)
    };
    let (emulator_pids, function_pids) = pids(&environments);
    let cpu = || {
        let sum = |pids: &[u32]| pids.iter().map(|pid| cpu_us(*pid)).sum::<u64>();
        [
            cpu_us(stack.moto.pid()),
            sum(&function_pids),
            sum(&emulator_pids),
        ]
    };
    let cpu_before = cpu();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (environment, actor)) in environments.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut refused = Vec::new();
            for j in 0..per_environment {
                let event = generate_event(&actor, &format!("par-{i}-{j}"), j as u64);
                let answer = environment.emulator.invoke(&event).await;
                if answer["statusCode"] != 200 {
                    refused.push(answer);
                }
            }
            (environment, refused)
        });
    }
    let (environments, refused): (Vec<Environment>, Vec<Vec<Value>>) =
        tasks.join_all().await.into_iter().unzip();
    let wall = started.elapsed();
    let cpu_after = cpu();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut all = Vec::new();
    for environment in &environments {
        let runs = runs(&environment.log_lines());
        let measured = &runs[runs.len().saturating_sub(per_environment)..];
        // Only answered generations: a refusal under load is counted apart, below.
        all.extend(
            measured
                .iter()
                .filter(|run| run.status == Some(200))
                .cloned(),
        );
    }
    let mut failures: Vec<String> = refused
        .iter()
        .flatten()
        .map(|answer| {
            let body: Value = answer["body"]
                .as_str()
                .and_then(|body| serde_json::from_str(body).ok())
                .unwrap_or_default();
            format!("{} {}", answer["statusCode"], body["error"]["code"])
        })
        .collect();
    failures.sort();
    Concurrent {
        runs: all,
        total: environments.len() * per_environment,
        failures,
        wall,
        cpu_us: [0, 1, 2].map(|i| cpu_after[i].saturating_sub(cpu_before[i])),
    }
}

/// The generate-single table and its throughput paragraph.
pub fn generation_table(sequential: &Sequential, concurrent: &Concurrent) -> String {
    let field = |runs: &[Run], pick: fn(&Run) -> u64| Samples::new(runs.iter().map(pick).collect());
    let rows = vec![
        row(
            "end to end, inside the function",
            &field(&sequential.runs, |r| r.total_us),
        ),
        row(
            "  waiting on S3, DynamoDB, Replicate",
            &field(&sequential.runs, |r| r.remote_us),
        ),
        row(
            "  our own code (outside remote calls)",
            &field(&sequential.runs, |r| r.own_us),
        ),
        row("runtime emulator's REPORT duration", &sequential.reported),
        row(
            "client round trip through the emulator",
            &sequential.round_trips,
        ),
        row(
            &format!("{CONCURRENT_ENVIRONMENTS} environments: end to end"),
            &field(&concurrent.runs, |r| r.total_us),
        ),
        row(
            &format!("{CONCURRENT_ENVIRONMENTS} environments: our own code (outside remote calls)"),
            &field(&concurrent.runs, |r| r.own_us),
        ),
    ];
    let wall = concurrent.wall.as_secs_f64();
    let generated = concurrent.total - concurrent.failures.len();
    let throughput = generated as f64 / wall;
    let [moto, functions, emulators] = concurrent.cpu_us.map(|us| us as f64 / 1e6);
    let failures = if concurrent.failures.is_empty() {
        "Every request answered 200.".to_owned()
    } else {
        format!(
            "{} of {} requests did not answer 200 ({}); the others did.",
            concurrent.failures.len(),
            concurrent.total,
            concurrent.failures.join(", ")
        )
    };
    format!(
        "## generate-single, Replicate emulator answering at once ({} KiB photo inline, {} KiB output, idempotency key and daily caps on)\n\n{}\n{} of the {} sequential generations were an actor's first image, which also seeds its counter (a listing and a put more). CPU time of the function process (user + system from /proc, so with the SDKs' signing, hashing and parsing that the rows above count as waiting): {} per sequential generation (mean of {}).\n\nThroughput with {CONCURRENT_ENVIRONMENTS} execution environments side by side: {generated} generations in {wall:.2} s = **{throughput:.1} generations/s**. {failures} CPU used meanwhile: moto {moto:.1} s ({:.0}% of one core), the {CONCURRENT_ENVIRONMENTS} functions {functions:.1} s ({} per generation), their runtime emulators {emulators:.1} s.\n",
        BASE_PHOTO_BYTES / 1024,
        OUTPUT_BYTES / 1024,
        table(&["measured", "n", "p50", "p99", "max"], &rows),
        sequential
            .runs
            .iter()
            .filter(|run| seeds_counter(run))
            .count(),
        sequential.runs.len(),
        ms(sequential.cpu_per_generation_us),
        sequential.runs.len(),
        100.0 * moto / wall,
        ms(per_invocation(concurrent.cpu_us[1], generated)),
    )
}
