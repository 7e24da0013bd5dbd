#!/usr/bin/env bash
# Installs what the tests need and runs every check and test: formatting,
# clippy, unit tests, replay tests and the end-to-end suite (whose tests
# share one Temporal dev server and SeaweedFS, each on its own namespace
# and buckets, while a test that breaks a server starts its own; all on
# free loopback ports, stopped by PID).
#
# The build is the one scripts/run.sh makes (the dev profile, see
# Cargo.toml): after run.sh, no dependency is built again; the workspace's
# own crates are, by clippy-driver (below), and the tests.
#
# On two cores, in this order:
#   1. the service's binaries and the end-to-end suite are built;
#   2. the suite's tests that wait on a fault's clock start, in their own
#      process, while every other target is built (and linted) and the unit
#      tests run;
#   3. the rest of the suite runs on two threads, with its longest test (a
#      200-item batch through several workers and replicas) in a process
#      of its own beside them.
# More at once than that starves the servers of the shared stack on two
# cores (seen: Temporal's RPCs timing out).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

e2e_log=$(mktemp)
beside_log=$(mktemp)
long_log=$(mktemp)
unit_log=$(mktemp)
install_log=$(mktemp)
e2e_pid=""
beside_pid=""
long_pid=""
install_pid=""
cleanup() {
  for pid in $e2e_pid $beside_pid $long_pid $install_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -f "$e2e_log" "$beside_log" "$long_log" "$unit_log" "$install_log"
}
trap cleanup EXIT
phase() { echo "[test.sh ${SECONDS}s] $*" >&2; }

# What the build needs first; the servers and reference tools the tests
# need install while it compiles.
bash scripts/install-tools.sh build
bash scripts/install-tools.sh >"$install_log" 2>&1 &
install_pid=$!
cargo fmt --all -- --check
# Clippy lints the workspace's own crates while they compile for the tests:
# clippy-driver is their compiler (what `cargo clippy` runs, here with code
# generation), so the dependencies are compiled once instead of checked for
# clippy and then built. Rustc's and clippy's warnings are errors.
clippy_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
[ -x "$clippy_driver" ] || { echo "clippy-driver not found (rustup component add clippy)" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# No incremental compilation: its records cost time in a build that is
# mostly from scratch, and the build beside the waiting tests (step 2)
# stays short. (After run.sh it took 117 s with them and 46 s without,
# and the longer one starved those tests' servers: POST answered 503.)
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# 1. What the end-to-end suite runs: its own executable and the service's
#    binaries (some tests run them as their own processes).
suite_build=(cargo build --workspace --bins --test it)
"${suite_build[@]}" --quiet
phase "the service's binaries and the end-to-end suite are built"
install_status=0
wait "$install_pid" || install_status=$?
install_pid=""
cat "$install_log" >&2
[ "$install_status" = 0 ] || { echo "installing the test tools failed" >&2; exit 1; }

# 2. The tests that mostly wait on a fault's clock (a server down or frozen
#    for minutes, a transfer kept long on purpose) run in their own process
#    while the rest compiles.
beside=(
  outages::s3_gone_for_five_minutes_mid_transfer_delivers
  outages::temporal_down_for_a_minute_mid_transfer_delivers_exactly_once
  outages::s3_frozen_for_a_minute_mid_transfer_delivers
  outages::history_does_not_grow_with_transfer_time
  faults::recovery::after_an_s3_outage_an_operator_reset_delivers
  tape::outages::a_lost_worker_and_a_temporal_restart_during_staging_deliver_once_from_one_request
)
long=scale::workers::a_200_item_batch_survives_a_killed_worker_and_a_restarted_replica
skip=(--skip "$long")
for t in "${beside[@]}"; do skip+=(--skip "$t"); done
# (The same build as above, so nothing compiles: it names the executable.)
it_bin=$("${suite_build[@]}" --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable") and m.get("target", {}).get("name") == "it": print(m["executable"])')
(cd tests && exec "$it_bin" --exact --test-threads "${#beside[@]}" "${beside[@]}") >"$beside_log" 2>&1 &
beside_pid=$!

cargo build --workspace --all-targets --quiet >"$unit_log" 2>&1 ||
  { cat "$unit_log" >&2; echo "the build failed" >&2; exit 1; }
unit_status=0
# The unit tests, the replay of the recorded histories
# (workflows/tests/replay.rs, no server) and the event feed on its own
# SeaweedFS (feed/tests/store): --workspace, so the features are the
# build's above and nothing compiles again.
cargo test --workspace --lib --bins --test replay --test store >"$unit_log" 2>&1 || unit_status=1
phase "every target is built and linted; unit tests done"

# 3. The rest of the suite; two test threads fit two cores.
(cd tests && exec "$it_bin" --exact "$long") >"$long_log" 2>&1 &
long_pid=$!
e2e_status=0
(cd tests && exec "$it_bin" --test-threads 2 "${skip[@]}") 2>&1 | tee "$e2e_log" || e2e_status=1
long_status=0
wait "$long_pid" || long_status=1
long_pid=""
beside_status=0
wait "$beside_pid" || beside_status=1
beside_pid=""
phase "end-to-end suite done"

echo "--- unit tests"
cat "$unit_log"
echo "--- $long (run beside the others)"
cat "$long_log"
echo "--- ${beside[*]} (run beside the others)"
cat "$beside_log"
# One closing line for the whole run, summed over every test binary.
cat "$unit_log" "$e2e_log" "$long_log" "$beside_log" |
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i;
         if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
       END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }'
[ "$unit_status" = 0 ] && [ "$e2e_status" = 0 ] && [ "$long_status" = 0 ] && [ "$beside_status" = 0 ]
