//! The benchmark: the release functions on this machine, against moto and the Replicate
//! emulator, beside the seed's approach (a Python process per request). Prints one Markdown
//! table per measure. `tools/bench.sh` builds the release bootstraps and runs it.
//!
//! `bench [--quick] [--bootstraps DIR]`: DIR holds `list-prompts/bootstrap` and
//! `generate-single/bootstrap` (and their `bootstrap.zip`), as `cargo lambda build` leaves them
//! in `target/lambda`. `--quick` runs a few of each, to check that the benchmark works.

mod runtime_api;
mod stats;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stats::{Samples, mib, ms, table};
use testkit::{LambdaEmulator, Moto, ReplicateEmulator, SeedProfile};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The base photo of the benchmark's actors: a typical phone portrait, sent inline.
const BASE_PHOTO_BYTES: usize = 150 * 1024;
/// The model's output in the timed runs.
const OUTPUT_BYTES: usize = 512 * 1024;
/// The photo and output of the memory run.
const LARGE_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Execution environments side by side in the throughput run.
const CONCURRENT_ENVIRONMENTS: usize = 16;
/// Where the Replicate token lives, as in the deployed stack.
const TOKEN_PARAMETER: &str = "/training-image-service/replicate-api-token";

/// How many of each.
struct Counts {
    cold_starts: usize,
    warm_list_prompts: usize,
    sequential_generations: usize,
    generations_per_environment: usize,
    processes_per_request: usize,
}

const FULL: Counts = Counts {
    cold_starts: 20,
    warm_list_prompts: 2_000,
    sequential_generations: 200,
    generations_per_environment: 25,
    processes_per_request: 20,
};

const QUICK: Counts = Counts {
    cold_starts: 3,
    warm_list_prompts: 50,
    sequential_generations: 20,
    generations_per_environment: 2,
    processes_per_request: 3,
};

/// The two functions' bootstraps.
struct Bootstraps {
    list_prompts: PathBuf,
    generate_single: PathBuf,
}

#[tokio::main]
async fn main() {
    let (counts, dir) = parse_args();
    let bootstraps = Bootstraps {
        list_prompts: dir.join("list-prompts/bootstrap"),
        generate_single: dir.join("generate-single/bootstrap"),
    };
    for path in [&bootstraps.list_prompts, &bootstraps.generate_single] {
        assert!(
            path.is_file(),
            "{} is missing: run tools/bench.sh, which builds it",
            path.display()
        );
    }
    println!("{}", machine());
    let stack = Stack::start().await;

    println!(
        "{}",
        cold_starts(&stack, &bootstraps, counts.cold_starts).await
    );
    println!(
        "{}",
        warm_list_prompts(&stack, &bootstraps.list_prompts, counts.warm_list_prompts).await
    );
    let sequential = sequential_generations(
        &stack,
        &bootstraps.generate_single,
        counts.sequential_generations,
    )
    .await;
    let concurrent = concurrent_generations(
        &stack,
        &bootstraps.generate_single,
        counts.generations_per_environment,
    )
    .await;
    println!("{}", generation_table(&sequential, &concurrent));
    println!("{}", critical_path(&sequential.runs));
    println!(
        "{}",
        peak_memory(&stack, &bootstraps.generate_single, sequential.peak_memory).await
    );
    println!("{}", zip_sizes(&dir));
    println!(
        "{}",
        comparison(
            &stack,
            &bootstraps.generate_single,
            &sequential,
            counts.processes_per_request
        )
        .await
    );
}

fn parse_args() -> (Counts, PathBuf) {
    let mut counts = FULL;
    let mut dir = testkit::repo_root().join("target/lambda");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => counts = QUICK,
            "--bootstraps" => dir = PathBuf::from(args.next().expect("--bootstraps DIR")),
            other => panic!("unknown argument {other}; usage: bench [--quick] [--bootstraps DIR]"),
        }
    }
    (counts, dir)
}

/// The machine, as the README's figures need it described.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| kib_field(&info, "MemTotal:"))
        .map_or_else(|| "unknown".to_owned(), |kib| mib(kib * 1024));
    format!(
        "## Machine\n\n{} cores of {cpu}, {memory} memory, {} {}\n",
        cores,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// moto with the table, the bucket, the actors and their photos; the Replicate emulator
/// answering at once; the token in SSM, as deployed.
struct Stack {
    moto: Moto,
    replicate: ReplicateEmulator,
    /// One actor per concurrent environment.
    actors: Vec<String>,
    /// The actor with a 5 MB base photo.
    large_actor: String,
}

impl Stack {
    async fn start() -> Self {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config().await;
        testkit::create_table_and_bucket(&sdk).await;
        testkit::put_secure_parameter(&sdk, TOKEN_PARAMETER, ReplicateEmulator::TOKEN).await;
        let photo = replicate_emulator::padded_jpeg(BASE_PHOTO_BYTES).to_vec();
        let mut actors: Vec<String> = (0..CONCURRENT_ENVIRONMENTS)
            .map(|i| format!("{:04}_bench_30_male", 100 + i))
            .collect();
        let large_actor = "0200_bench_large_30_female".to_owned();
        actors.push("0300_bench_python_30_male".to_owned());
        for actor in actors.iter().chain([&large_actor]) {
            let key = format!("system_actors/base_images/{actor}.jpg");
            let bytes = if *actor == large_actor {
                replicate_emulator::padded_jpeg(LARGE_IMAGE_BYTES).to_vec()
            } else {
                photo.clone()
            };
            testkit::put_object(&sdk, &key, bytes, "image/jpeg").await;
            testkit::put_profile(
                &sdk,
                &SeedProfile {
                    actor_id: actor,
                    actor_name: actor,
                    sex: Some("male"),
                    base_image_key: &key,
                },
            )
            .await;
        }
        let replicate = ReplicateEmulator::start().await;
        replicate
            .set_faults(json!({"output_bytes": OUTPUT_BYTES}))
            .await;
        Self {
            moto,
            replicate,
            actors,
            large_actor,
        }
    }

    /// The benchmark actors a function generates for (the last is the Python script's).
    fn function_actors(&self) -> &[String] {
        &self.actors[..CONCURRENT_ENVIRONMENTS]
    }

    /// The Python script's actor.
    fn python_actor(&self) -> &str {
        &self.actors[CONCURRENT_ENVIRONMENTS]
    }

    /// A function's environment, as deployed: JSON logs, the token in SSM, daily caps on.
    fn function_env(&self, function: &str) -> Vec<(String, String)> {
        let mut env = self.moto.function_env();
        env.extend(self.replicate.function_env());
        env.retain(|(name, _)| name != "REPLICATE_API_TOKEN");
        for (name, value) in [
            ("REPLICATE_API_TOKEN_PARAMETER", TOKEN_PARAMETER),
            ("DAILY_GENERATION_CAP", "1000000"),
            ("DAILY_GENERATION_CAP_PER_ACTOR", "100000"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ] {
            testkit::set_env(&mut env, name, value);
        }
        env
    }
}

/// An API Gateway (HTTP API) event for generate-single, with an idempotency key as the web UI
/// sends.
fn generate_event(actor: &str, key: &str, seed: u64) -> Value {
    let mut event = testkit::event("generate-single-http-v2.json");
    let path = format!("/api/actors/{actor}/training-data/generate-single");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["actorId"] = json!(actor);
    event["headers"]["idempotency-key"] = json!(key);
    event["body"] =
        json!(json!({"actor_name": actor, "prompt_id": "bw_charcoal", "seed": seed}).to_string());
    event
}

/// A list-prompts event for `actor`.
fn list_prompts_event(actor: &str) -> Value {
    let mut event = testkit::event("list-prompts-http-v2.json");
    let path = format!("/api/actors/{actor}/training-prompts");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["actorId"] = json!(actor);
    event
}

/// Asserts an API Gateway answer is a 200.
fn expect_ok(answer: &Value, what: &str) {
    assert_eq!(answer["statusCode"], 200, "{what} failed: {answer}");
}

async fn cold_starts(stack: &Stack, bootstraps: &Bootstraps, count: usize) -> String {
    let api = runtime_api::RuntimeApi::start().await;
    let mut rows = Vec::new();
    for (name, path) in [
        ("list-prompts", &bootstraps.list_prompts),
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

/// Runs `bootstrap` under the runtime interface emulator, its output in a log file.
struct Environment {
    emulator: LambdaEmulator,
    log: PathBuf,
}

impl Environment {
    async fn start(bootstrap: &Path, env: &[(String, String)], label: &str) -> Self {
        let log = std::env::temp_dir().join(format!("bench-{}-{label}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let emulator = LambdaEmulator::start_logging(bootstrap, env, Some(&log)).await;
        Self { emulator, log }
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The function's process (the bootstrap the emulator started).
    fn function_pid(&self) -> u32 {
        children(self.emulator.pid())
            .into_iter()
            .next()
            .expect("the function runs under the emulator")
    }

    /// The peak resident memory (VmHWM) of the function's process so far.
    fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.function_pid()))
            .expect("the function's /proc status");
        kib_field(&status, "VmHWM:").expect("VmHWM") * 1024
    }

    /// The CPU time (user + system) the function's process has used so far, in microseconds.
    fn function_cpu_us(&self) -> u64 {
        cpu_us(self.function_pid())
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The child processes of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc task list");
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A `Name:  1234 kB` field of a /proc file, in KiB.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
}

/// The JSON log lines whose message is `message`.
fn messages(lines: &[String], message: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.pointer("/fields/message") == Some(&json!(message)))
        .collect()
}

/// The durations of the emulator's REPORT lines, in microseconds.
fn reported_durations(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter(|line| line.starts_with("REPORT RequestId"))
        .filter_map(|line| {
            line.split('\t')
                .map(str::trim)
                .find_map(|field| field.strip_prefix("Duration: "))
                .and_then(|value| value.trim_end_matches(" ms").parse::<f64>().ok())
                .map(|millis| (millis * 1000.0) as u64)
        })
        .collect()
}

/// The last `count` values of `field` in `lines` (earlier ones are warm-up).
fn last_field(lines: &[Value], field: &str, count: usize) -> Samples {
    let values: Vec<u64> = lines
        .iter()
        .filter_map(|line| line.pointer(&format!("/fields/{field}")))
        .filter_map(Value::as_u64)
        .collect();
    Samples::new(values[values.len().saturating_sub(count)..].to_vec())
}

fn last(values: Vec<u64>, count: usize) -> Samples {
    Samples::new(values[values.len().saturating_sub(count)..].to_vec())
}

/// What list-prompts' log and its client gave for `count` invocations on one actor.
struct ListPromptsRun {
    /// The handler's whole time, and its own (outside the profile read).
    total: Samples,
    own: Samples,
    reported: Samples,
    round_trip: Samples,
    /// The function process's CPU time per invocation (mean), in microseconds.
    cpu_per_invocation_us: u64,
}

async fn list_prompts_run(
    stack: &Stack,
    bootstrap: &Path,
    env: &[(String, String)],
    count: usize,
) -> ListPromptsRun {
    let environment = Environment::start(bootstrap, env, "list").await;
    let event = list_prompts_event(&stack.actors[0]);
    for _ in 0..20 {
        expect_ok(&environment.emulator.invoke(&event).await, "list-prompts");
    }
    let cpu_before = environment.function_cpu_us();
    let mut round_trips = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let answer = environment.emulator.invoke(&event).await;
        round_trips.push(started.elapsed());
        expect_ok(&answer, "list-prompts");
    }
    let cpu_used = environment.function_cpu_us().saturating_sub(cpu_before);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = environment.log_lines();
    let answered = messages(&lines, "training-prompts answered");
    ListPromptsRun {
        total: last_field(&answered, "total_us", count),
        own: last_field(&answered, "own_us", count),
        reported: last(reported_durations(&lines), count),
        round_trip: Samples::of(&round_trips),
        cpu_per_invocation_us: per_invocation(cpu_used, count),
    }
}

async fn warm_list_prompts(stack: &Stack, bootstrap: &Path, count: usize) -> String {
    let env = stack.function_env("list-prompts");
    let cached = list_prompts_run(stack, bootstrap, &env, count).await;
    let mut uncached_env = env.clone();
    testkit::set_env(&mut uncached_env, "ACTOR_PROFILE_CACHE_SECONDS", "0");
    let uncached_count = (count / 10).max(5);
    let uncached = list_prompts_run(stack, bootstrap, &uncached_env, uncached_count).await;
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
        "## Warm list-prompts through the Runtime API ({count} invocations, one actor, after 20 warm-up; then {uncached_count} with `ACTOR_PROFILE_CACHE_SECONDS=0`)\n\n{}\nCPU time of the function process (user + system from /proc): {} per invocation (mean of {count}, cache on), {} with the cache off (mean of {uncached_count}).\n",
        table(&["measured", "n", "p50", "p99", "max"], &rows),
        ms(cached.cpu_per_invocation_us),
        ms(uncached.cpu_per_invocation_us),
    )
}

fn row(label: &str, samples: &Samples) -> Vec<String> {
    vec![
        label.to_owned(),
        samples.len().to_string(),
        ms(samples.median()),
        ms(samples.percentile(99.0)),
        ms(samples.max()),
    ]
}

/// One timed generation, from its log line.
#[derive(Debug, Clone)]
struct Run {
    /// The HTTP status answered (none if the invocation failed outright).
    status: Option<u64>,
    total_us: u64,
    remote_us: u64,
    own_us: u64,
    calls: Vec<Call>,
}

#[derive(Debug, Clone)]
struct Call {
    name: String,
    start_us: u64,
    duration_us: u64,
}

fn runs(lines: &[String]) -> Vec<Run> {
    messages(lines, "invocation timed")
        .iter()
        .map(|line| {
            let field = |name: &str| {
                line.pointer(&format!("/fields/{name}"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            let calls: Vec<Value> = line
                .pointer("/fields/remote_calls")
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            Run {
                status: line.pointer("/fields/status").and_then(Value::as_u64),
                total_us: field("total_us"),
                remote_us: field("remote_us"),
                own_us: field("own_us"),
                calls: calls
                    .iter()
                    .map(|call| Call {
                        name: call["name"].as_str().unwrap_or("?").to_owned(),
                        start_us: call["start_us"].as_u64().unwrap_or(0),
                        duration_us: call["duration_us"].as_u64().unwrap_or(0),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// What the sequential generations gave.
struct Sequential {
    runs: Vec<Run>,
    round_trips: Samples,
    reported: Samples,
    peak_memory: u64,
    /// The function process's CPU time per generation (mean), in microseconds.
    cpu_per_generation_us: u64,
}

async fn sequential_generations(stack: &Stack, bootstrap: &Path, count: usize) -> Sequential {
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
struct Concurrent {
    runs: Vec<Run>,
    total: usize,
    /// The answers other than 200, as `status code`.
    failures: Vec<String>,
    wall: Duration,
    /// CPU time used meanwhile by moto, the functions, and the runtime emulators, in
    /// microseconds.
    cpu_us: [u64; 3],
}

/// CPU time (user + system) a process has used so far, in microseconds (0 once it is gone).
/// Linux counts it in ticks of 10 ms, so only a sum over many invocations means anything.
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields 14 and 15 (utime, stime), counted after the parenthesised command name, in
    // USER_HZ (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10_000
}

/// CPU time per invocation: `used_us` over `invocations`, in microseconds.
fn per_invocation(used_us: u64, invocations: usize) -> u64 {
    used_us / invocations.max(1) as u64
}

async fn concurrent_generations(
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

fn generation_table(sequential: &Sequential, concurrent: &Concurrent) -> String {
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

/// Whether a generation was its actor's first, which also seeds the actor's counter.
fn seeds_counter(run: &Run) -> bool {
    run.calls
        .iter()
        .any(|call| call.name.contains("counter seed"))
}

/// The remote calls of the median generation, in the order they started, with the calls each
/// overlapped.
fn critical_path(runs: &[Run]) -> String {
    // The steady state: an actor's later image (the first also seeds its counter).
    let mut by_total: Vec<&Run> = runs.iter().filter(|run| !seeds_counter(run)).collect();
    by_total.sort_by_key(|run| run.total_us);
    let Some(run) = by_total.get(by_total.len() / 2) else {
        return String::new();
    };
    let mut calls = run.calls.clone();
    calls.sort_by_key(|call| call.start_us);
    let rows: Vec<Vec<String>> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let end = call.start_us + call.duration_us;
            let beside: Vec<String> = calls
                .iter()
                .enumerate()
                .filter(|(j, other)| {
                    *j != i
                        && other.start_us < end
                        && call.start_us < other.start_us + other.duration_us
                })
                .map(|(j, _)| format!("#{}", j + 1))
                .collect();
            vec![
                format!("#{}", i + 1),
                call.name.clone(),
                ms(call.start_us),
                ms(call.duration_us),
                if beside.is_empty() {
                    "-".to_owned()
                } else {
                    beside.join(", ")
                },
            ]
        })
        .collect();
    let seeded = runs.iter().filter(|run| seeds_counter(run)).count();
    let header = [
        "call",
        "remote call",
        "starts at",
        "takes",
        "side by side with",
    ];
    format!(
        "## Critical path of the median generation of an actor's later image ({} end to end, {} waiting, {} own code)\n\n{}\n{seeded} of the {} generations were an actor's first image, which also seeds its counter (a listing and a put more); they are left out here.\n",
        ms(run.total_us),
        ms(run.remote_us),
        ms(run.own_us),
        table(&header, &rows),
        runs.len(),
    )
}

async fn peak_memory(stack: &Stack, bootstrap: &Path, typical: u64) -> String {
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

fn zip_sizes(dir: &Path) -> String {
    let rows: Vec<Vec<String>> = ["list-prompts", "generate-single"]
        .iter()
        .map(|name| {
            let size = |file: &str| {
                std::fs::metadata(dir.join(name).join(file))
                    .map_or_else(|_| "not built".to_owned(), |m| mib(m.len()))
            };
            vec![(*name).to_owned(), size("bootstrap"), size("bootstrap.zip")]
        })
        .collect();
    format!(
        "## Deployment package (release, x86_64)\n\n{}",
        table(&["function", "bootstrap", "bootstrap.zip"], &rows)
    )
}

async fn comparison(
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
    let api = runtime_api::RuntimeApi::start().await;
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
