//! The seed's script, `tools/bench/seed_generate.py` (the original written plainly): one Python
//! process per image, timed from spawning `python3` to its answer on stdout.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::{Moto, ReplicateEmulator};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The script, set up for one actor against one moto and one emulator; the images it saves
/// locally (as the seed did) are removed when it is dropped.
pub struct SeedScript {
    moto_endpoint: String,
    replicate_base_url: String,
    actor: String,
    saves: PathBuf,
}

impl SeedScript {
    /// The script for `actor`, whose base photo is `system_actors/base_images/{actor}.jpg`.
    pub fn new(moto: &Moto, replicate: &ReplicateEmulator, actor: &str) -> Self {
        Self {
            moto_endpoint: moto.endpoint().to_owned(),
            replicate_base_url: replicate.base_url().to_owned(),
            actor: actor.to_owned(),
            saves: std::env::temp_dir().join(format!("bench-seed-{}-{actor}", std::process::id())),
        }
    }

    /// Generates one image with `seed`: the time from the process's start to its answer (its
    /// one line on stdout, as the Rust runs are timed to theirs, not the interpreter's exit).
    pub async fn generate(&self, seed: u64) -> Duration {
        let actor = &self.actor;
        let started = Instant::now();
        let mut script_run = tokio::process::Command::new("python3")
            .arg(testkit::repo_root().join("tools/bench/seed_generate.py"))
            .args(["--actor-name", actor])
            .args([
                "--base-image-key",
                &format!("system_actors/base_images/{actor}.jpg"),
            ])
            .args(["--prompt", "A charcoal portrait of the man"])
            .args(["--seed", &seed.to_string()])
            .args(["--save-dir", &self.saves.display().to_string()])
            .env("AWS_ENDPOINT_URL", &self.moto_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", testkit::REGION)
            .env("BUCKET", testkit::BUCKET)
            .env("REPLICATE_BASE_URL", &self.replicate_base_url)
            .env("REPLICATE_API_TOKEN", ReplicateEmulator::TOKEN)
            // Its answer reaches the pipe when printed, not at the interpreter's exit.
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut answer = String::new();
        if let Some(stdout) = script_run.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut answer).await;
        }
        let elapsed = started.elapsed();
        let status = script_run.wait().await.expect("python3 ends");
        assert!(
            status.success() && answer.contains("\"success\": true"),
            "the seed's script failed: {status} {answer}"
        );
        elapsed
    }
}

impl Drop for SeedScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.saves);
    }
}
