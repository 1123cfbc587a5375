//! What every measure runs against, started once: moto seeded with the benchmark's actors and
//! the token, the Replicate emulator answering at once; and an execution environment (a
//! bootstrap under the runtime interface emulator) with its log captured.

use std::path::Path;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use testkit::{CapturedLog, LambdaEmulator, Moto, ReplicateEmulator, SeedProfile};

use crate::procfs::{children, cpu_us, kib_field};

/// The base photo of the benchmark's actors: a typical phone portrait, sent inline.
pub const BASE_PHOTO_BYTES: usize = 150 * 1024;
/// The model's output in the timed runs.
pub const OUTPUT_BYTES: usize = 512 * 1024;
/// The photo and output of the memory run.
pub const LARGE_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Execution environments running concurrently in the throughput run.
pub const CONCURRENT_ENVIRONMENTS: usize = 16;
/// Where the Replicate token lives, as in the deployed stack.
pub const TOKEN_PARAMETER: &str = "/training-image-service/replicate-api-token";

/// moto with the table, the bucket, the actors and their photos; the Replicate emulator
/// answering at once; the token in SSM, as deployed.
pub struct Stack {
    pub moto: Moto,
    pub replicate: ReplicateEmulator,
    /// One actor per concurrent environment.
    pub actors: Vec<String>,
    /// The actor with a 5 MB base photo.
    pub large_actor: String,
}

impl Stack {
    /// Starts and seeds it all.
    pub async fn start() -> Self {
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
            let bytes = if *actor == large_actor {
                replicate_emulator::padded_jpeg(LARGE_IMAGE_BYTES).to_vec()
            } else {
                photo.clone()
            };
            seed_actor(&sdk, actor, bytes).await;
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
    pub fn function_actors(&self) -> &[String] {
        &self.actors[..CONCURRENT_ENVIRONMENTS]
    }

    /// The Python script's actor.
    pub fn python_actor(&self) -> &str {
        &self.actors[CONCURRENT_ENVIRONMENTS]
    }

    /// A function's environment, as deployed.
    pub fn function_env(&self, function: &str) -> Vec<(String, String)> {
        deployed_env(&self.moto, &self.replicate, function)
    }
}

/// Seeds `actor`'s profile, and `photo` as its base photo.
pub async fn seed_actor(sdk: &SdkConfig, actor: &str, photo: Vec<u8>) {
    let key = format!("system_actors/base_images/{actor}.jpg");
    testkit::put_object(sdk, &key, photo, "image/jpeg").await;
    testkit::put_profile(
        sdk,
        &SeedProfile {
            actor_id: actor,
            actor_name: actor,
            sex: Some("male"),
            base_image_key: &key,
        },
    )
    .await;
}

/// A function's environment on `moto` and `replicate`, as deployed: JSON logs, the token in
/// SSM (at [`TOKEN_PARAMETER`]), daily caps on.
pub fn deployed_env(
    moto: &Moto,
    replicate: &ReplicateEmulator,
    function: &str,
) -> Vec<(String, String)> {
    let mut env = moto.function_env();
    env.extend(replicate.function_env());
    env.retain(|(name, _)| name != "REPLICATE_API_TOKEN");
    for (name, value) in [
        ("REPLICATE_API_TOKEN_PARAMETER", TOKEN_PARAMETER),
        ("DAILY_GENERATION_CAP", "1000000"),
        ("DAILY_GENERATION_CAP_PER_ACTOR", "100000"),
    ] {
        testkit::set_env(&mut env, name, value);
    }
    with_lambda_env(env, function)
}

/// `env` with what Lambda sets for `function` as deployed: JSON logs at INFO, 128 MB.
pub fn with_lambda_env(mut env: Vec<(String, String)>, function: &str) -> Vec<(String, String)> {
    for (name, value) in [
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

/// An API Gateway (HTTP API) event for generate-single, with an idempotency key as the web UI
/// sends.
pub fn generate_event(actor: &str, key: &str, seed: u64) -> Value {
    let event = testkit::event_for_actor("generate-single-http-v2.json", actor);
    testkit::with_json_body(
        testkit::with_idempotency_key(event, key),
        &json!({"actor_name": actor, "prompt_id": "bw_charcoal", "seed": seed}),
    )
}

/// A training-prompts event for `actor`.
pub fn training_prompts_event(actor: &str) -> Value {
    testkit::event_for_actor("training-prompts-http-v2.json", actor)
}

/// Asserts an API Gateway answer is a 200.
pub fn expect_ok(answer: &Value, what: &str) {
    assert_eq!(answer["statusCode"], 200, "{what} failed: {answer}");
}

/// Runs `bootstrap` under the runtime interface emulator, its output in a log file.
pub struct Environment {
    pub emulator: LambdaEmulator,
    log: CapturedLog,
}

impl Environment {
    /// Starts `bootstrap` with `env`; `label` names its log among the run's.
    pub async fn start(bootstrap: &Path, env: &[(String, String)], label: &str) -> Self {
        let (emulator, log) =
            LambdaEmulator::start_capturing(bootstrap, env, &format!("bench-{label}")).await;
        Self { emulator, log }
    }

    /// What the function and the emulator logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// The function's process (the bootstrap the emulator started).
    pub fn function_pid(&self) -> u32 {
        children(self.emulator.pid())
            .into_iter()
            .next()
            .expect("the function runs under the emulator")
    }

    /// The peak resident memory (VmHWM) of the function's process so far.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.function_pid()))
            .expect("the function's /proc status");
        kib_field(&status, "VmHWM:").expect("VmHWM") * 1024
    }

    /// The CPU time (user + system) the function's process has used so far, in microseconds.
    pub fn function_cpu_us(&self) -> u64 {
        cpu_us(self.function_pid())
    }
}
