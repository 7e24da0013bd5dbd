#!/usr/bin/env bash
# Installs what the tests need and runs every check and test: formatting,
# clippy, unit tests, replay tests and the end-to-end suite (whose tests
# share one Temporal dev server and SeaweedFS, each on its own namespace
# and buckets, while a test that breaks a server starts its own; all on
# free loopback ports, stopped by PID).
#
# The build is the one scripts/run.sh makes (the dev profile, see
# Cargo.toml): after run.sh, nothing is built again but the tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log=$(mktemp)
slow_log=$(mktemp)
install_log=$(mktemp)
slow_pid=""
install_pid=""
cleanup() {
  for pid in $slow_pid $install_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -f "$log" "$slow_log" "$install_log"
}
trap cleanup EXIT

# What the build needs first; the servers and reference tools the tests
# need install while it compiles.
bash scripts/install-tools.sh build
bash scripts/install-tools.sh >"$install_log" 2>&1 &
install_pid=$!
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Some end-to-end tests run the service's binaries as their own processes.
cargo build --workspace --bins --quiet
# The test build's list of executables is noise; its errors are not.
build_log=$(mktemp)
cargo test --workspace --all-targets --no-run --quiet 2>"$build_log" ||
  { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
rm -f "$build_log"
install_status=0
wait "$install_pid" || install_status=$?
install_pid=""
cat "$install_log" >&2
[ "$install_status" = 0 ] || { echo "installing the test tools failed" >&2; exit 1; }

# The five-minute S3 outage is mostly waiting: it runs in its own process,
# beside the rest, instead of holding one of the two test threads.
slow='outages::s3_gone_for_five_minutes_mid_transfer_delivers'
it_bin=$(cargo test -p e2e-tests --test it --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable") and m.get("target", {}).get("name") == "it": print(m["executable"])')
(cd tests && exec "$it_bin" --exact "$slow") > "$slow_log" 2>&1 &
slow_pid=$!

# Two test threads fit two cores.
status=0
cargo test --workspace --all-targets -- --test-threads 2 --skip "$slow" 2>&1 | tee "$log" || status=1
slow_status=0
wait "$slow_pid" || slow_status=1
slow_pid=""
echo "--- $slow (run beside the others)"
cat "$slow_log"
cat "$slow_log" >> "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i;
       if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
[ "$status" = 0 ] && [ "$slow_status" = 0 ]
