#!/usr/bin/env bash
# Installs what the tests need and runs every check and test: formatting,
# clippy, unit tests, replay tests and the end-to-end suite (which starts
# its own Temporal dev server, SeaweedFS and webhook receiver per test, on
# free loopback ports, and stops them by PID).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-tools.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Some end-to-end tests run the worker binary as its own process.
cargo build --workspace --bins --quiet
# Each end-to-end test runs its own servers: two at a time fit two cores.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets -- --test-threads 2 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i;
       if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
