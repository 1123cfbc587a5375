#!/usr/bin/env bash
# The benchmark (docs/benchmark.md): builds the functions as cargo-lambda release
# bootstraps for this machine (x86_64), then runs tools/bench, which starts its own moto and
# Replicate emulator on free loopback ports and prints the tables. Arguments go to the bench
# (`--quick` for a short run, `--set-only` for the training set's measure, `--export-only`
# for the export's: 100 images of 2 MiB against a baseline, failing when a target is missed).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/dev-env.sh

cargo lambda build --release --output-format zip
cargo lambda build --release
cargo build --profile bench-tool -p bench
exec target/bench-tool/bench "$@"
