#!/usr/bin/env bash
# Runs every check the project has: formatting, clippy with warnings as errors, all Rust
# tests (unit, adapters against moto, functions under the runtime interface emulator), the
# template linters, the cargo-lambda smoke test, schemathesis against the OpenAPI contract, and
# a short run of the benchmark on the debug builds (so it keeps working; its figures come
# from tools/bench.sh). Installs what it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/dev-env.sh

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# Every function's binary first: a function's tests may run a sibling's (the reconciler's
# run beside generate-single's), and cargo test builds only the binaries of packages it tests.
cargo build --workspace --bins --locked
cargo test --workspace --locked
echo "== cfn-lint"
cfn-lint template.yaml
echo "== template checks (alarms reach a person, money metrics alarmed, no TRACE)"
python3 tools/check_template.py template.yaml
echo "== sam validate --lint"
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} sam validate --lint
echo "== smoke test through cargo lambda watch/invoke"
python3 tools/smoke_cargo_lambda.py
echo "== the API contract (docs/openapi.yaml) against the running functions"
python3 tools/schemathesis_local.py
echo "== the benchmark, a short run on the debug builds"
bootstraps=$(mktemp -d)
trap 'rm -rf "$bootstraps"' EXIT
for function in training-prompts generate-single training-sets training-set-worker replicate-webhook training-export; do
    mkdir -p "$bootstraps/$function"
    ln -s "$PWD/target/debug/$function" "$bootstraps/$function/bootstrap"
done
cargo run --quiet --locked -p bench -- --quick --bootstraps "$bootstraps"
