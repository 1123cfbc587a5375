//! Warm training-prompts: many invocations in one execution environment, with the profile cache on
//! and off.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::function_log::{last, last_field, messages, reported_durations};
use crate::procfs::per_invocation;
use crate::report::{ms, row, table};
use crate::stack::{Environment, Stack, expect_ok, training_prompts_event};
use crate::stats::Samples;

/// What training-prompts' log and its client gave for `count` invocations on one actor.
struct TrainingPromptsRun {
    /// The handler's whole time, and its own (outside the profile read).
    total: Samples,
    own: Samples,
    reported: Samples,
    round_trip: Samples,
    /// The function process's CPU time per invocation (mean), in microseconds.
    cpu_per_invocation_us: u64,
}

/// `count` timed invocations on one actor, after 20 warm-up.
async fn training_prompts_run(
    stack: &Stack,
    bootstrap: &Path,
    env: &[(String, String)],
    count: usize,
) -> TrainingPromptsRun {
    let environment = Environment::start(bootstrap, env, "list").await;
    let event = training_prompts_event(&stack.actors[0]);
    for _ in 0..20 {
        expect_ok(
            &environment.emulator.invoke(&event).await,
            "training-prompts",
        );
    }
    let cpu_before = environment.function_cpu_us();
    let mut round_trips = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let answer = environment.emulator.invoke(&event).await;
        round_trips.push(started.elapsed());
        expect_ok(&answer, "training-prompts");
    }
    let cpu_used = environment.function_cpu_us().saturating_sub(cpu_before);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = environment.log_lines();
    let answered = messages(&lines, "training-prompts answered");
    TrainingPromptsRun {
        total: last_field(&answered, "total_us", count),
        own: last_field(&answered, "own_us", count),
        reported: last(reported_durations(&lines), count),
        round_trip: Samples::of(&round_trips),
        cpu_per_invocation_us: per_invocation(cpu_used, count),
    }
}

/// The warm training-prompts table: `count` invocations with the cache on, a tenth with it off.
pub async fn warm_training_prompts(stack: &Stack, bootstrap: &Path, count: usize) -> String {
    let env = stack.function_env("training-prompts");
    let cached = training_prompts_run(stack, bootstrap, &env, count).await;
    let mut uncached_env = env.clone();
    testkit::set_env(&mut uncached_env, "ACTOR_PROFILE_CACHE_SECONDS", "0");
    let uncached_count = (count / 10).max(5);
    let uncached = training_prompts_run(stack, bootstrap, &uncached_env, uncached_count).await;
    let rows = vec![
        row("inside the handler (own time)", &cached.own),
        row("runtime emulator's REPORT duration", &cached.reported),
        row("client round trip through the emulator", &cached.round_trip),
        row(
            "profile cache off: inside the handler (DynamoDB read included)",
            &uncached.total,
        ),
        row("profile cache off: own time", &uncached.own),
        row(
            "profile cache off: runtime emulator's REPORT duration",
            &uncached.reported,
        ),
    ];
    format!(
        "## Warm training-prompts through the Runtime API ({count} invocations, one actor, after 20 warm-up; then {uncached_count} with `ACTOR_PROFILE_CACHE_SECONDS=0`)\n\n{}\nCPU time of the function process (user + system from /proc): {} per invocation (mean of {count}, cache on), {} with the cache off (mean of {uncached_count}).\n",
        table(&["measured", "n", "p50", "p99", "max"], &rows),
        ms(cached.cpu_per_invocation_us),
        ms(uncached.cpu_per_invocation_us),
    )
}
