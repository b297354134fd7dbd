#!/usr/bin/env bash
# Runs the whole oxr test suite: formatting, lints, unit tests and the end-to-end tests in
# network namespaces. Needs root for the namespace tests (they report themselves skipped
# without it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests start the daemons from target/debug, so build every binary first.
cargo build --workspace --bins --locked
cargo test --workspace --locked -- --test-threads 2
