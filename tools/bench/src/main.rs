//! The benchmark: the release functions on this machine, against moto and the Replicate
//! emulator, compared with the seed's approach (a Python process per request). Prints one
//! Markdown table per measure. `tools/bench.sh` builds the release bootstraps and runs it.
//!
//! `bench [--quick] [--set-only | --export-only] [--export-env NAME=VALUE]... [--bootstraps
//! DIR]`: DIR holds each function's `{name}/bootstrap` (and its `bootstrap.zip`), as `cargo
//! lambda build` leaves them in `target/lambda`. `--quick` runs a few of each, to check that
//! the benchmark works; `--set-only` runs only the training set's measure, `--export-only`
//! only the export's; `--export-env` adds a variable to the export function's environment.

mod cold_start;
mod critical_path;
mod export;
mod function_log;
mod generate;
mod memory;
mod package;
mod procfs;
mod report;
mod runtime_api;
mod seed_comparison;
mod seed_script;
mod set_stack;
mod stack;
mod stats;
mod training_set;
mod warm_prompts;

use std::path::{Path, PathBuf};

use export::ExportRun;
use report::mib;
use stack::Stack;
use training_set::SetRun;

/// How many of each.
struct Counts {
    cold_starts: usize,
    warm_training_prompts: usize,
    sequential_generations: usize,
    generations_per_environment: usize,
    processes_per_request: usize,
    training_set: SetRun,
    export: ExportRun,
}

const FULL: Counts = Counts {
    cold_starts: 20,
    warm_training_prompts: 2_000,
    sequential_generations: 200,
    generations_per_environment: 25,
    processes_per_request: 20,
    training_set: SetRun {
        size: 20,
        single_images: 3,
        first_check_seconds: 90,
    },
    export: ExportRun {
        images: 100,
        image_bytes: 2 * 1024 * 1024,
        rounds: 5,
        check_targets: true,
        extra_env: Vec::new(),
    },
};

const QUICK: Counts = Counts {
    cold_starts: 3,
    warm_training_prompts: 50,
    sequential_generations: 20,
    generations_per_environment: 2,
    processes_per_request: 3,
    training_set: SetRun {
        size: 3,
        single_images: 1,
        first_check_seconds: 5,
    },
    export: ExportRun {
        images: 12,
        image_bytes: 256 * 1024,
        rounds: 1,
        check_targets: false,
        extra_env: Vec::new(),
    },
};

/// The functions' bootstraps.
struct Bootstraps {
    training_prompts: PathBuf,
    generate_single: PathBuf,
    training_sets: PathBuf,
    training_set_worker: PathBuf,
    replicate_webhook: PathBuf,
    training_export: PathBuf,
}

/// Which measures a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    Everything,
    TrainingSet,
    Export,
}

#[tokio::main]
async fn main() {
    let (counts, dir, only) = parse_args();
    let bootstraps = Bootstraps {
        training_prompts: dir.join("training-prompts/bootstrap"),
        generate_single: dir.join("generate-single/bootstrap"),
        training_sets: dir.join("training-sets/bootstrap"),
        training_set_worker: dir.join("training-set-worker/bootstrap"),
        replicate_webhook: dir.join("replicate-webhook/bootstrap"),
        training_export: dir.join("training-export/bootstrap"),
    };
    let mut needed = Vec::new();
    if only == Only::Everything {
        needed.extend([&bootstraps.training_prompts, &bootstraps.generate_single]);
    }
    if only != Only::Export {
        needed.extend([
            &bootstraps.training_sets,
            &bootstraps.training_set_worker,
            &bootstraps.replicate_webhook,
            &bootstraps.generate_single,
        ]);
    }
    // A `--quick` run of every measure may go without the export's bootstrap (its measure is
    // then skipped, and says so); any other run that measures the export needs it.
    let export_skipped = only == Only::Everything
        && !counts.export.check_targets
        && !bootstraps.training_export.is_file();
    if only != Only::TrainingSet && !export_skipped {
        needed.push(&bootstraps.training_export);
    }
    for path in needed {
        assert!(
            path.is_file(),
            "{} is missing: run tools/bench.sh, which builds it",
            path.display()
        );
    }
    println!("{}", machine());
    if only == Only::Everything {
        every_function_measure(&counts, &bootstraps, &dir).await;
    }
    if only != Only::Export {
        println!(
            "{}",
            training_set::training_set(&bootstraps, &counts.training_set).await
        );
    }
    if export_skipped {
        println!(
            "## An export (issue 18): SKIPPED\n\n{} is missing: this --quick run did not measure the export.\n",
            bootstraps.training_export.display()
        );
    } else if only != Only::TrainingSet {
        let figures = export::export(&bootstraps.training_export, &counts.export).await;
        println!("{}", figures.report);
        assert!(
            !counts.export.check_targets || figures.unmet.is_empty(),
            "the export's targets are not met: {}",
            figures.unmet.join("; ")
        );
    }
}

/// Every measure but the training set's, on one stack.
async fn every_function_measure(counts: &Counts, bootstraps: &Bootstraps, dir: &Path) {
    let stack = Stack::start().await;

    println!(
        "{}",
        cold_start::cold_starts(&stack, bootstraps, counts.cold_starts).await
    );
    println!(
        "{}",
        warm_prompts::warm_training_prompts(
            &stack,
            &bootstraps.training_prompts,
            counts.warm_training_prompts
        )
        .await
    );
    let sequential = generate::sequential_generations(
        &stack,
        &bootstraps.generate_single,
        counts.sequential_generations,
    )
    .await;
    let concurrent = generate::concurrent_generations(
        &stack,
        &bootstraps.generate_single,
        counts.generations_per_environment,
    )
    .await;
    println!("{}", generate::generation_table(&sequential, &concurrent));
    println!("{}", critical_path::critical_path(&sequential.runs));
    println!(
        "{}",
        memory::peak_memory(&stack, &bootstraps.generate_single, sequential.peak_memory).await
    );
    println!("{}", package::zip_sizes(dir));
    println!(
        "{}",
        seed_comparison::comparison(
            &stack,
            &bootstraps.generate_single,
            &sequential,
            counts.processes_per_request
        )
        .await
    );
}

/// The counts, the bootstraps' folder, and which measures are made.
fn parse_args() -> (Counts, PathBuf, Only) {
    let mut counts = FULL;
    let mut only = Only::Everything;
    let mut dir = testkit::repo_root().join("target/lambda");
    let mut args = std::env::args().skip(1);
    let mut extra_env = Vec::new();
    let usage = "usage: bench [--quick] [--set-only | --export-only] [--export-env NAME=VALUE]... \
                 [--bootstraps DIR]";
    while let Some(arg) = args.next() {
        let mut choose = |chosen: Only| {
            assert!(only == Only::Everything, "{usage}");
            only = chosen;
        };
        match arg.as_str() {
            "--quick" => counts = QUICK,
            "--set-only" => choose(Only::TrainingSet),
            "--export-only" => choose(Only::Export),
            "--bootstraps" => dir = PathBuf::from(args.next().expect("--bootstraps DIR")),
            "--export-env" => {
                let setting = args.next().expect("--export-env NAME=VALUE");
                let (name, value) = setting.split_once('=').expect("--export-env NAME=VALUE");
                extra_env.push((name.to_owned(), value.to_owned()));
            }
            other => panic!("unknown argument {other}; {usage}"),
        }
    }
    counts.export.extra_env = extra_env;
    (counts, dir, only)
}

/// The machine, as the figures of docs/benchmark.md need it described.
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
        .and_then(|info| procfs::kib_field(&info, "MemTotal:"))
        .map_or_else(|| "unknown".to_owned(), |kib| mib(kib * 1024));
    format!(
        "## Machine\n\n{} cores of {cpu}, {memory} memory, {} {}\n",
        cores,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
