//! What the generate-single test files share: the binary, the sample actor's folder and
//! manifest, and the function started on a generation stack.

// Each test file is its own crate and uses only a part of this module.
#![allow(dead_code)]

use std::path::Path;

use aws_config::SdkConfig;
use serde_json::Value;
use testkit::{CapturedLog, GenerationStack, LambdaEmulator};

/// The binary under test, built by cargo for the integration tests.
pub const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_generate-single");
/// The sample actor's training folder, where the images are stored.
pub const FOLDER: &str = "system_actors/training_data/0000_european_16_male/";
/// The sample actor's manifest, listing its images.
pub const MANIFEST: &str = "system_actors/training_data/0000_european_16_male/response.json";

/// The function under the runtime interface emulator with `env`.
pub async fn start_function(env: &[(String, String)]) -> LambdaEmulator {
    LambdaEmulator::start(Path::new(BOOTSTRAP), env).await
}

/// The function under the runtime interface emulator with `env`, its output captured in a
/// log named by `label`.
pub async fn start_capturing(
    env: &[(String, String)],
    label: &str,
) -> (LambdaEmulator, CapturedLog) {
    LambdaEmulator::start_capturing(Path::new(BOOTSTRAP), env, label).await
}

/// The generation stack and a function on it.
pub struct Stack {
    pub function: LambdaEmulator,
    pub generation: GenerationStack,
}

impl std::ops::Deref for Stack {
    type Target = GenerationStack;

    fn deref(&self) -> &GenerationStack {
        &self.generation
    }
}

impl Stack {
    /// A new generation stack, its function's environment with `settings` over the stack's own.
    pub async fn with_settings(settings: &[(&str, &str)]) -> Self {
        Self::over(GenerationStack::start().await, settings).await
    }

    /// A function on `generation`, its environment with `settings` over the stack's own.
    pub async fn over(generation: GenerationStack, settings: &[(&str, &str)]) -> Self {
        let mut env = generation.function_env();
        for (key, value) in settings {
            testkit::set_env(&mut env, key, *value);
        }
        let function = start_function(&env).await;
        Self {
            function,
            generation,
        }
    }
}

/// The sample actor's manifest, parsed, when there is one.
pub async fn manifest(sdk: &SdkConfig) -> Option<Value> {
    testkit::get_object(sdk, MANIFEST)
        .await
        .map(|bytes| serde_json::from_slice(&bytes).expect("manifest JSON"))
}
