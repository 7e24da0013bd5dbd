#!/usr/bin/env bash
# Benchmarks (not part of the test command): starts the build scripts/run.sh
# and scripts/test.sh use (the dev profile, see Cargo.toml; STACK_PROFILE=release
# for the release build, to compare against) of
# the service on loopback (in-memory Temporal, SeaweedFS), then prints
#   P1  time from POST to verified webhook for a LARGE_MIB AIP, beside
#       `aws s3 cp` of the same bytes to the same S3 server and beside
#       `sha256sum && aws s3 cp`, as ratios;
#       and beside the same delivery without Content-MD5 on the parts
#       (`s3.content_md5 = false`): the cost of S3 checking every part;
#   P2  the worker's peak RSS during that run and during a SMALL_MIB run.
#   P1/P2 bagit: the same AIP delivered as one BagIt bag (format "bagit"):
#       its time beside the plain delivery's, and the worker's peak RSS.
#       BENCH_PARTS=bagit runs only these.
#   P5  (BENCH_PARTS=p5 alone, never in the default run) small AIPs, on a
#       fresh stack with the file-backed and then with the in-memory dev
#       server: P5_ITEMS (1,000) 60 KiB AIPs as single POSTs from 32 clients,
#       in items/s from the first POST to the last webhook the demo endpoint
#       verified; the same count as one batch; beside the floor (the minimal
#       workflow the SDK can run: one activity copying the same bytes with
#       one S3 PUT, `dissemination-worker floor`, same server); and one small
#       dissemination's history, lock included: events, workflow tasks and
#       Temporal Cloud actions through delivery, and over its whole life
#       (through a second API process whose retention is 3 s); and what
#       each costs Temporal's database per item (writes and all calls, from
#       the server's persistence metrics read before and after each run).
#       The floor, the singles and the batch each start on a Temporal
#       server of their own (restarted on the same ports; in memory, or on
#       a new database file): a run after another finds a fuller database
#       and the other's disseminations waiting out their retention. The
#       file-backed server's SQLite runs with scripts/stack.sh's pragmas
#       (STACK_SQLITE_PRAGMAS= measures SQLite's own journal).
#   P6  (with P5, or alone with BENCH_PARTS=p6 on the in-memory server, or
#       the file-backed one with P5_SERVER=file) client B's single requests
#       (P6_REQUESTS, 5, one after another, read every 20 ms by a client
#       that keeps its connection) while client A's 500-item batch runs:
#       their median wait beyond the same requests alone; urgent ones; and
#       where their time went (the first workflow task, which holds the
#       transfer: waiting for a worker, and running; the POST).
#   P3  API latency and throughput under load (wrk, 32 connections, --latency,
#       P3_SECS each): GET of one delivered dissemination (worker running);
#       POST, each request for a distinct AIP (P3_AIPS catalog copies of the
#       small demo AIP, see bench-post.lua) with the worker stopped, so the
#       workflows just queue: the API + Temporal start path, not transfers;
#       beside the raw SDK workflow-start rate (`dissemination-worker
#       start-rate`, same concurrency) as the ratio POST/raw. The rate limit
#       is lifted for the whole run (DISSEMINATION_API__RATE_LIMIT_*).
#   P4  priority: with the worker stopped, 20 priority-90 requests (64 MiB
#       AIPs, the small class) are queued, then one priority-1 request (on
#       the urgent band's queue of the class) and one priority-11 request
#       (on the class's queue, with the 20); the worker is started and its
#       log tells in which order the transfers started: how many
#       priority-90 transfers started before the priority-1 one and before
#       the priority-11 one (the server's priority order on one queue), and
#       how many priority-90 transfers ran at once (the class's slots).
#   P8  recovery: the LARGE_MIB AIP read at a capped rate (P8_RATE_MIB MiB/s),
#       the worker killed (-9) at ~70 %, a new worker started: seconds from
#       the kill to the verified webhook, and bytes the retry read again
#       (from the transfer's result in the history), beside the bytes left.
#   BENCH_PARTS=recovery runs P8 alone; BENCH_PARTS=p1 runs P1 and P2 (with
#   the bagit lines) and stops.
#   TAPE  (BENCH_PARTS=tape alone, never in the default run) tape recalls:
#       TAPE_ITEMS (60) tape-only AIPs of TAPE_KIB (256) KiB on TAPE_VOLUMES
#       (6) volumes, TAPE_ITEMS / TAPE_VOLUMES per volume, the library
#       restarted cold before each run (stopped by PID, its buffer emptied,
#       started again on the same port, dirs, token and CA, with --drives
#       TAPE_DRIVES (2) --mount-ms TAPE_MOUNT_MS (2000), reads unpaced):
#       one batch; the same count as single POSTs from one client, one after
#       the other; and single POSTs one every TAPE_SINGLES_EVERY_MS (500)
#       ms; each in archiveId order, which alternates volumes, and on AIPs
#       of its own (3 x TAPE_ITEMS), after one warm-up dissemination from
#       tape (the demo AIP) that no run pays for. Per run: the first POST
#       to the last verified dissemination.delivered webhook, the library's
#       mounts (GET /admin/state, in all and per volume) and stage requests
#       (its log, with when they came and were polled); batch/singles
#       ratios and whether the targets (batch <= 2 mounts per volume, wall
#       <= 0.5x singles) were met; the load average before and after each
#       run; one item's history per run (scripts/bench-tape.py).
#   P9  (BENCH_PARTS=p9 alone, never in the default run) a small AIP
#       behind its band's large transfers: a P9_SMALL_MIB (16) MiB request
#       alone, then the same posted once 4 requests of P9_LARGE_MIB (1024)
#       MiB of its band (priority 50) are each transferring; each from the
#       POST to the verified webhook, and busy/alone. The large ones are
#       cancelled after. DISSEMINATION_WORKER__SMALL_MAX_BYTES=0 runs it as
#       before the small AIPs' queue (the request waits for a band's slot).
#       P9_BATCH=1: each one a batch of one item instead, timed to the
#       item's webhook (the band's slots for batch items, the batch items'
#       small AIPs' queue). The medium class ends at 3/8 of P9_LARGE_MIB
#       and the large class at 3/4 (DISSEMINATION_WORKER__MEDIUM_MAX_BYTES
#       and __LARGE_MAX_BYTES unless set), so the large ones hold their
#       band's slots: P9_SMALL_MIB=256 measures a medium AIP, 512 one of
#       the large class; DISSEMINATION_WORKER__MEDIUM_MAX_BYTES=0 or
#       DISSEMINATION_WORKER__LARGE_MAX_BYTES=0 runs it as before that
#       class's queues. P9_URGENT=1: an urgent request (priority 1) of a
#       size class while less urgent ones of its class (priority 90, as
#       many as worker.large_slots) hold every slot of the class: the large
#       class then ends at twice P9_LARGE_MIB, so the large AIPs are of it,
#       and P9_SMALL_MIB=512 puts the urgent one in it too;
#       DISSEMINATION_WORKER__URGENT_CLASS_SLOTS=0 runs it as before the
#       urgent band's class queues.
#   P7  scale-out (BENCH_PARTS=p7 alone, never in the default run): with
#       STACK_WORKERS=2, eight concurrent disseminations of eight distinct
#       P7_MIB (256) MiB AIPs, from the first POST to the last of the eight
#       verified webhooks, beside eight parallel `aws s3 cp` of the same files.
# Order on the stack: P1, P2, P3 GET, P4, raw SDK starts, P3 POST last (its
# queued workflows would otherwise keep the worker busy during the others).
# Page cache is warm for every contender alike. Needs wrk (installed with
# apt-get when missing).
#
#   scripts/bench.sh [LARGE_MIB=2048] [SMALL_MIB=256]
set -euo pipefail
LARGE_MIB=${1:-2048}
SMALL_MIB=${2:-256}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# P5 runs this script once per Temporal server, each on a fresh stack.
if [ "${BENCH_PARTS:-all}" = p5 ] && [ -z "${P5_SERVER:-}" ]; then
  mkdir -p "$here/.data"
  for server in file memory; do
    P5_SERVER=$server bash "$here/scripts/bench.sh" "$@" | tee "$here/.data/bench-p5-$server.txt"
  done
  exit 0
fi
export STACK_DATA="$here/.data/bench"
export STACK_TEMPORAL_DB=memory
[ "${P5_SERVER:-}" = file ] && unset STACK_TEMPORAL_DB
# P3 measures the API, not its rate limit: lift it for every process.
export DISSEMINATION_API__RATE_LIMIT_PER_MINUTE=100000000
export DISSEMINATION_API__RATE_LIMIT_BURST=10000000
P3_SECS=${P3_SECS:-10}
P3_AIPS=${P3_AIPS:-30000}
if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  apt-get install -y wrk >/dev/null
fi
rm -rf "$STACK_DATA"
[ "${BENCH_PARTS:-all}" = p7 ] && export STACK_WORKERS=2
# P9's large AIPs take their band's slots: the medium and large classes end
# below them (at 3/8 and 3/4 of their size) unless the environment says
# otherwise; with P9_URGENT=1, the large class's (it ends at twice theirs).
if [ "${BENCH_PARTS:-all}" = p9 ]; then
  p9_large_max=$((${P9_LARGE_MIB:-1024} * 768 * 1024))
  [ "${P9_URGENT:-0}" = 1 ] && p9_large_max=$((${P9_LARGE_MIB:-1024} * 2048 * 1024))
  export DISSEMINATION_WORKER__MEDIUM_MAX_BYTES=${DISSEMINATION_WORKER__MEDIUM_MAX_BYTES:-$((${P9_LARGE_MIB:-1024} * 384 * 1024))}
  export DISSEMINATION_WORKER__LARGE_MAX_BYTES=${DISSEMINATION_WORKER__LARGE_MAX_BYTES:-$p9_large_max}
fi
source "$here/scripts/stack.sh"
start_stack

LARGE_ID=019e404e-ffff-7000-8000-00000000b001
SMALL_ID=019e404e-ffff-7000-8000-00000000b002
if [ "${BENCH_PARTS:-all}" != p7 ] && [ "${BENCH_PARTS:-all}" != p5 ] && [ "${BENCH_PARTS:-all}" != p6 ] && [ "${BENCH_PARTS:-all}" != tape ] && [ "${BENCH_PARTS:-all}" != p9 ]; then
  echo "creating the $LARGE_MIB MiB and $SMALL_MIB MiB AIPs..." >&2
  "$bin/dissemination-worker" seed-demo --large-mib "$LARGE_MIB" --large-id "$LARGE_ID" >/dev/null
  "$bin/dissemination-worker" seed-demo --large-mib "$SMALL_MIB" --large-id "$SMALL_ID" >/dev/null
fi

# TAPE: tape recalls as one batch, as singles at once, as singles over time.
# Restarts the stack's tape library cold (stopped by PID, buffer emptied,
# counters reset) with the same port, folders, token and CA as stack.sh
# gives it, plus the drives and mount time measured; its log per run.
tape_restart() { # log_name
  local pid keep=()
  kill "$TAPE_PID" 2>/dev/null || true
  wait "$TAPE_PID" 2>/dev/null || true
  for pid in "${pids[@]}"; do [ "$pid" = "$TAPE_PID" ] || keep+=("$pid"); done
  pids=("${keep[@]}")
  rm -rf "$data/tape-buffer"
  mkdir -p "$data/tape-buffer"
  # Debug: one line per request it answered (when each stage request was polled).
  RUST_LOG=info,tape_library=debug "$bin/tape-library" --listen "127.0.0.1:$TAPE_PORT" --tape-dir "$data/tape" \
    --buffer-dir "$data/tape-buffer" --manifest "$data/tape-manifest.json" \
    --token-file "$TAPE_TOKEN_FILE" --tls-cert "$data/tape-tls/server.pem" \
    --tls-key "$data/tape-tls/server.key" \
    --drives "${TAPE_DRIVES:-2}" --mount-ms "${TAPE_MOUNT_MS:-2000}" --read-bytes-per-sec 0 \
    >"$RUN/logs/tape-library-$1.log" 2>&1 &
  TAPE_PID=$!
  pids+=("$TAPE_PID")
  wait_port "$TAPE_PORT" "the tape library"
}
tape_part() {
  local n=${TAPE_ITEMS:-60} volumes=${TAPE_VOLUMES:-6} kib=${TAPE_KIB:-256} every=${TAPE_SINGLES_EVERY_MS:-500}
  local run mode prefix out=() commit
  echo "TAPE: creating 3 x $n tape-only AIPs of $kib KiB on $volumes volumes each..." >&2
  python3 scripts/bench-tape.py seed "$data" "$n" "$volumes" "$kib" 7a00:A 7b00:B 7c00:C >/dev/null
  # A warm-up before the measured runs (the demo AIP on tape only), so that
  # no run pays for the stack's first recall, transfer and webhook.
  tape_restart warmup
  echo "TAPE: warm-up (one dissemination from tape)..." >&2
  local warm status
  warm=$(post_dissemination 019e404e-b7a3-7d1e-9c2f-6a5b4c3d2e1f 70)
  status=$(wait_final "$warm")
  [ "$status" = DISSEMINATED ] || { echo "TAPE warm-up $warm ended $status" >&2; exit 1; }
  wait_webhook "$warm" || { echo "no verified webhook for $warm" >&2; exit 1; }
  for run in batch:7a00 now:7b00 every:7c00; do
    mode=${run%%:*} prefix=${run##*:}
    tape_restart "$mode"
    sleep 1 # the worker's pooled connections to the stopped library are closed and dropped
    echo "TAPE: $mode ($n AIPs)..." >&2
    out+=("$(python3 scripts/bench-tape.py run "$mode" "$prefix" --n "$n" --every-ms "$every" \
      --api "$API" --token "$TOKEN" --webhook-log "$RUN/logs/webhooks.log" --worker-log "$RUN/logs/worker.log" \
      --tape-url "$TAPE_URL" --tape-ca "$TAPE_CA" --tape-token-file "$TAPE_TOKEN_FILE" \
      --tape-log "$RUN/logs/tape-library-$mode.log" \
      --temporal-cli "$tools/temporal" --temporal-address "127.0.0.1:$T_PORT")")
  done
  printf '%s\n' "${out[@]}" >"$RUN/tape-raw.txt"
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  python3 scripts/bench-tape.py report "${out[@]}" "$(python3 -c 'import json,sys; print(json.dumps({"commit": sys.argv[1], "profile": sys.argv[2], "drives": int(sys.argv[3]), "mount_ms": int(sys.argv[4]), "volumes": int(sys.argv[5]), "kib": int(sys.argv[6])}))' \
    "$commit" "$STACK_PROFILE" "${TAPE_DRIVES:-2}" "${TAPE_MOUNT_MS:-2000}" "$volumes" "$kib")"
}
if [ "${BENCH_PARTS:-all}" = tape ]; then
  tape_part
  exit 0
fi

if [ ! -x "$root/.tools/awscli/bin/aws" ]; then
  echo "installing awscli into .tools/awscli" >&2
  python3 -m venv "$root/.tools/awscli"
  "$root/.tools/awscli/bin/pip" install --quiet --disable-pip-version-check awscli==1.45.11
fi
aws() {
  AWS_ACCESS_KEY_ID=dissemination AWS_SECRET_ACCESS_KEY=dissemination-secret AWS_DEFAULT_REGION=us-east-1 \
    "$root/.tools/awscli/bin/aws" --endpoint-url "$S3_ENDPOINT" "$@"
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# P7: eight concurrent disseminations over two workers beside eight parallel
# `aws s3 cp` of the same files.
scale_out() {
  local mib=${P7_MIB:-256} aips=() ids=() cps=() i id status t0 t1
  for i in $(seq 1 8); do aips+=("019e404e-ffff-7000-8000-00000000b7$(printf %02d "$i")"); done
  echo "P7: creating 8 AIPs of $mib MiB..." >&2
  for id in "${aips[@]}"; do
    "$bin/dissemination-worker" seed-demo --large-mib "$mib" --large-id "$id" >/dev/null
  done
  sleep 2 # both workers polling
  t0=$(now)
  for id in "${aips[@]}"; do ids+=("$(post_dissemination "$id" 10)"); done
  for id in "${ids[@]}"; do
    status=$(wait_final "$id")
    [ "$status" = DISSEMINATED ] || { echo "P7 $id ended $status" >&2; exit 1; }
    wait_webhook "$id" || { echo "no verified webhook for $id" >&2; exit 1; }
  done
  t1=$(now)
  P7_OURS=$(secs "$t0" "$t1")
  # Which worker ran the transfers (one log per worker).
  P7_SPLIT=""
  for i in $(seq 1 "$STACK_WORKERS"); do
    P7_SPLIT+="${P7_SPLIT:+, }worker-$i $(sed 's/\x1b\[[0-9;]*m//g' "$RUN/logs/worker-$i.log" |
      grep -c 'transfer started' || true)"
  done
  aws s3 mb s3://bench-p7 >/dev/null 2>&1 || true
  t0=$(now)
  for i in "${!aips[@]}"; do
    aws s3 cp --quiet "$STACK_DATA/repository/${aips[i]}/primary_large.tar" "s3://bench-p7/cp-$i.tar" &
    cps+=($!)
  done
  for i in "${cps[@]}"; do wait "$i"; done
  t1=$(now)
  P7_CP=$(secs "$t0" "$t1")
  P7_MIB_USED=$mib
}

if [ "${BENCH_PARTS:-all}" = p7 ]; then
  scale_out
  python3 - "$P7_MIB_USED" "$STACK_WORKERS" "$P7_OURS" "$P7_CP" "$P7_SPLIT" <<'PY'
import sys
mib, workers, ours, cp, split = sys.argv[1:]
ours, cp = float(ours), float(cp)
print(f"P7 8 x {mib} MiB over {workers} workers: {ours:.2f} s beside {cp:.2f} s for 8 parallel aws s3 cp "
      f"-> ratio {ours / cp:.2f} (target <= 1.1)")
print(f"   (transfers started per worker: {split})")
PY
  exit 0
fi

# One dissemination on a fresh worker; sets DUR (seconds) and RSS (peak KiB).
# Runs in this shell (no subshell), so the worker it starts is tracked and stopped.
disseminate() { # archive_id [format]
  kill "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  start_worker
  sleep 2 # let it poll
  local t0 t1 id status
  t0=$(now)
  id=$(post_dissemination "$1" 10 "${2:-}")
  status=$(wait_final "$id")
  wait_webhook "$id" || { echo "no verified webhook for $id" >&2; exit 1; }
  t1=$(now)
  [ "$status" = DISSEMINATED ] || { echo "$id ended $status" >&2; exit 1; }
  DUR=$(secs "$t0" "$t1")
  RSS=$(awk '/VmHWM/ {print $2}' "/proc/$WORKER_PID/status")
}

# P8: kill -9 at ~70 % of a rate-capped transfer; sets P8_* figures.
recovery() {
  local rate=$((${P8_RATE_MIB:-128} * 1024 * 1024)) id t_kill t_done status total
  kill "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  DISSEMINATION_REPOSITORY__MAX_READ_BYTES_PER_SEC=$rate start_worker
  sleep 2
  id=$(post_dissemination "$LARGE_ID" 10)
  total=$((LARGE_MIB * 1024 * 1024))
  for _ in $(seq 1 6000); do
    done_bytes=$(curl -s "$API/v1/disseminations/$id" -H "Authorization: Bearer $TOKEN" |
      sed -n 's/.*"bytesDone":\([0-9]*\).*/\1/p')
    [ -n "$done_bytes" ] && [ "$done_bytes" -ge $((total * 7 / 10)) ] && break
    sleep 0.1
  done
  kill -9 "$WORKER_PID"
  wait "$WORKER_PID" 2>/dev/null || true
  t_kill=$(now)
  DISSEMINATION_REPOSITORY__MAX_READ_BYTES_PER_SEC=$rate start_worker
  status=$(wait_final "$id")
  wait_webhook "$id" || { echo "no verified webhook for $id" >&2; exit 1; }
  t_done=$(now)
  [ "$status" = DISSEMINATED ] || { echo "P8 $id ended $status" >&2; exit 1; }
  P8_SECS=$(secs "$t_kill" "$t_done")
  P8_KILLED_AT=$done_bytes
  read -r P8_RESUMED P8_REREAD < <(
    "$root/.tools/bin/temporal" workflow show --workflow-id "$id" --output json \
      --address "127.0.0.1:$T_PORT" | python3 -c '
import base64, json, sys
for e in json.load(sys.stdin)["events"]:
    a = e.get("activityTaskCompletedEventAttributes")
    for p in (a or {}).get("result", {}).get("payloads", []):
        r = json.loads(base64.b64decode(p["data"]))
        if "partsReused" in r:
            print(r.get("resumedFrom", 0), r["bytesRead"])
')
  kill "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
  start_worker
}

if [ "${BENCH_PARTS:-all}" = recovery ]; then
  recovery
  python3 - "$LARGE_MIB" "$P8_SECS" "$P8_KILLED_AT" "$P8_RESUMED" "$P8_REREAD" "${P8_RATE_MIB:-128}" <<'PY'
import sys
mib, secs, killed, resumed, reread, rate = sys.argv[1:]
total = int(mib) * 1024 * 1024
print(f"P8 kill -9 at {int(killed) / total * 100:.0f} % of {mib} MiB (read capped at {rate} MiB/s): "
      f"delivered {float(secs):.1f} s after the kill; the retry resumed at byte {resumed} and read "
      f"{int(reread) / 2**20:.0f} MiB again ({int(reread) / total * 100:.0f} % of the file; "
      f"before resume: 100 %)")
PY
  exit 0
fi

# P1/P2 for format "bagit": the same AIP as one bag, beside the plain delivery.
bagit() {
  disseminate "$LARGE_ID"
  large_s=$DUR large_rss=$RSS
  disseminate "$LARGE_ID" bagit
  bag_s=$DUR bag_rss=$RSS
  disseminate "$SMALL_ID" bagit
  bag_small_rss=$RSS
}
bagit_lines() {
  python3 - "$LARGE_MIB" "$SMALL_MIB" "$large_s" "$bag_s" "$bag_rss" "$bag_small_rss" <<'PY'
import sys
large, small, plain, bag, rss, small_rss = sys.argv[1:]
plain, bag, rss, small_rss = float(plain), float(bag), int(rss) / 1024, int(small_rss) / 1024
print(f"P1 bagit ({large} MiB AIP as one bag): {bag:.2f} s beside {plain:.2f} s for the plain delivery "
      f"-> bagit/plain = {bag / plain:.2f} (target <= 1.05)")
print(f"P2 bagit worker peak RSS: {rss:.0f} MiB ({large} MiB AIP), {small_rss:.0f} MiB ({small} MiB AIP) "
      f"(target <= 150 MiB)")
PY
}
# P6: client A's 500-item batch under way, then client B's single requests
# (and urgent ones), one after another: how long B waits beyond its own
# transfer. Several of each, read by a client that keeps its connection
# (scripts/bench-small.py requests): one request is one sample of a noisy
# host, and a process started per read would time the measuring client.
batch_completed() { # token batchId
  for _ in $(seq 1 12000); do
    curl -s "$API/v1/dissemination-batches/$2?pageSize=1" -H "Authorization: Bearer $1" |
      grep -q '"status":"COMPLETED"' && return 0
    sleep 0.2
  done
  echo "batch $2 did not complete" >&2
  exit 1
}
ids_json() { # prefix count
  python3 -c "import json,sys; print(json.dumps({'archiveIds': [f'019e404e-{sys.argv[1]}-7000-8000-{i:012x}' for i in range(int(sys.argv[2]))], 'priority': 70}))" "$1" "$2"
}
p6() {
  local a_n=${P6_ITEMS:-500} n=${P6_REQUESTS:-5} batch b
  "$bin/dissemination-worker" seed-demo --small "$a_n" --small-prefix 6a00 >/dev/null
  "$bin/dissemination-worker" seed-demo --small $((3 * n + 1)) --small-prefix 6b00 >/dev/null
  TOKEN_B=$("$bin/dissemination-api" mint-token --client-id bench-client-b --role 2d17_R \
    --key "$data/auth/private.pem" --ttl 86400)
  TOKEN_A=$("$bin/dissemination-api" mint-token --client-id bench-client-a --role 2d17_R \
    --key "$data/auth/private.pem" --ttl 86400)
  b() { # first count: client B's AIPs 6b00-first..first+count-1
    python3 -c 'import sys; f, c = map(int, sys.argv[1:]); print(" ".join(f"019e404e-6b00-7000-8000-{i:012x}" for i in range(f, f + c)))' "$1" "$2"
  }
  local requests=(python3 scripts/bench-small.py requests "$API" "$TOKEN_B")
  # One first (a new stack's first delivery opens its connections), then
  # the reference: requests alone, as the ones during the batch will be.
  "${requests[@]}" 70 $(b "$((3 * n))" 1) >/dev/null
  P6_ALONE=$("${requests[@]}" 70 $(b 0 "$n"))
  ids_json 6a00 "$a_n" >"$RUN/p6-batch.json"
  batch=$(curl -s -X POST "$API/v1/dissemination-batches" -H "Authorization: Bearer $TOKEN_A" \
    -H 'Content-Type: application/json' -d @"$RUN/p6-batch.json" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["batchId"])')
  sleep 2 # the batch's first items at work
  P6_DURING=$("${requests[@]}" 70 $(b "$n" "$n"))
  P6_URGENT=$("${requests[@]}" 1 $(b "$((2 * n))" "$n"))
  # Still under way after them (the batch takes ~30 s, they a few).
  P6_LEFT=$(curl -s "$API/v1/dissemination-batches/$batch?pageSize=1" -H "Authorization: Bearer $TOKEN_A" |
    python3 -c 'import json,sys; c = json.load(sys.stdin)["counts"]; print(c["total"] - c["disseminated"])')
  local cli="$root/.tools/bin/temporal" addr="127.0.0.1:$T_PORT"
  P6_TIMES=$(for run in "$P6_ALONE" "$P6_DURING" "$P6_URGENT"; do
    python3 -c 'import json,sys; print(" ".join(r["id"] for r in json.loads(sys.argv[1])))' "$run" |
      tr ' ' '\n' | while read -r id; do
        python3 scripts/bench-small.py timeline "$cli" "$addr" "$id"
      done | python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in sys.stdin]))'
  done | python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in sys.stdin]))')
  curl -s -o /dev/null -X DELETE "$API/v1/dissemination-batches/$batch" -H "Authorization: Bearer $TOKEN_A"
  batch_completed "$TOKEN_A" "$batch"
}
p6_lines() {
  python3 - "$P6_ALONE" "$P6_DURING" "$P6_URGENT" "$P6_TIMES" "$P6_LEFT" <<'PY'
import json, statistics, sys
alone, during, urgent, times = map(json.loads, sys.argv[1:5])
left = int(sys.argv[5])
med = lambda runs, key="seconds": statistics.median(r[key] for r in runs)
top = lambda runs: max(r["seconds"] for r in runs)
a, d, u = med(alone), med(during), med(urgent)
n = len(during)
print(f"P6 client B's requests during client A's batch ({n} one after another, {left} of its items "
      f"still to deliver after them): {d:.2f} s (median; at most {top(during):.2f} s), alone {a:.2f} s "
      f"(at most {top(alone):.2f} s) -> waited {max(d - a, 0):.2f} s beyond its own transfer "
      f"(target <= one item's, ~{a:.2f} s); urgent (priority 1): {u:.2f} s (at most {top(urgent):.2f} s)")
names = ("alone", "during the batch", "urgent")
print("   their first workflow task (the transfer inside), medians: " + "; ".join(
    f"{name}: waited {med(t, 'task_waited'):.2f} s for a worker, ran {med(t, 'task_ran'):.2f} s, "
    f"ended {med(t, 'until_task_end'):.2f} s after the start" for name, t in zip(names, times)))
waited, ran = med(times[1], "task_waited"), med(times[1], "task_ran")
print(f"   during the batch the wait for a worker was {waited / max(ran, 1e-3):.1f}x their own transfer "
      f"under the same load (an item's); the POST took {med(during, 'post'):.2f} s (alone "
      f"{med(alone, 'post'):.2f} s); the rest of what the client saw "
      f"({max(d - med(times[1], 'until_task_end'), 0):.2f} s) is the POST, its lock and the polling GETs")
PY
}

# P5: small AIPs as singles, as one batch, beside the floor; one small
# dissemination's history through delivery and over its whole life.
# A new Temporal server on the same ports, with no workflow of an earlier
# run (the file-backed one on a new database); the API and the worker
# reconnect, as after an outage.
p5_fresh_temporal() { # n: the warm-up AIP (019e404e-5f00-…-n)
  local pid keep=()
  kill "$TEMPORAL_PID" 2>/dev/null || true
  wait "$TEMPORAL_PID" 2>/dev/null || true
  # Stopped: no longer ours to stop at exit (its PID may be reused).
  for pid in "${pids[@]}"; do [ "$pid" = "$TEMPORAL_PID" ] || keep+=("$pid"); done
  pids=("${keep[@]}")
  rm -f "$data/temporal.db" "$data/temporal.db-"*
  mv "$RUN/logs/temporal.log" "$RUN/logs/temporal-before-$1.log" 2>/dev/null || true
  start_temporal
  wait_port "$T_PORT" "Temporal"
  # The API and the worker find it again (their next call and poll): one
  # small dissemination delivered says both are back.
  local id=""
  for _ in $(seq 1 300); do
    id=$(post_dissemination "019e404e-5f00-7000-8000-00000000000$1" 70 2>/dev/null) && [ -n "$id" ] && break
    sleep 0.2
  done
  [ -n "$id" ] && [ "$(wait_final "$id")" = DISSEMINATED ] ||
    { echo "P5: no dissemination delivered after the Temporal restart" >&2; exit 1; }
}

p5() {
  local n=${P5_ITEMS:-1000} kib=${P5_KIB:-60} cli="$root/.tools/bin/temporal" sample lock
  for prefix in 5c00 5d00; do
    "$bin/dissemination-worker" seed-demo --small "$n" --small-prefix "$prefix" --small-kib "$kib" >/dev/null
  done
  "$bin/dissemination-worker" seed-demo --small 1 --small-prefix 5e00 --small-kib "$kib" >/dev/null
  "$bin/dissemination-worker" seed-demo --small 2 --small-prefix 5f00 --small-kib "$kib" >/dev/null
  local files=("$STACK_DATA"/repository/019e404e-5c00-*/primary.tar)
  local writes="python3 scripts/bench-small.py server-writes http://127.0.0.1:$T_METRICS/metrics"
  P5_W0=$($writes)
  P5_FLOOR=$("$bin/dissemination-worker" floor --count "$n" --concurrency 32 --files "${files[@]}" 2>/dev/null | tail -1)
  P5_W1=$($writes)
  # Each on a Temporal server of its own: a run after another finds a
  # fuller database and the other's disseminations waiting out their
  # retention (the second was 10-40 % slower on the in-memory server).
  p5_fresh_temporal 0
  P5_W2=$($writes)
  P5_SINGLES=$(python3 scripts/bench-small.py singles "$API" "$TOKEN" 5c00 "$n" 32 "$RUN/logs/webhooks.log")
  P5_W3=$($writes)
  sample=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sample"])' "$P5_SINGLES")
  lock="lock:demo-client:$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sample_archive"])' "$P5_SINGLES")"
  P5_HISTORY=$(python3 scripts/bench-small.py history "$cli" "127.0.0.1:$T_PORT" "$sample" "$lock")
  # Over a whole life: a second API whose dissemination keeps its objects 3 s.
  local ports port life_api life_pid id
  read -r -a ports < <(python3 scripts/free-ports.py 0 0)
  DISSEMINATION_API__LISTEN="127.0.0.1:${ports[0]}" DISSEMINATION_API__METRICS_LISTEN="127.0.0.1:${ports[1]}" \
    DISSEMINATION_TIMINGS__RETENTION_SECS=3 "$bin/dissemination-api" serve >"$RUN/logs/api-life.log" 2>&1 &
  life_pid=$!
  pids+=("$life_pid")
  life_api="http://127.0.0.1:${ports[0]}"
  wait_port "${ports[0]}" "the second API"
  id=$(curl -s -X POST "$life_api/v1/disseminations" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"archiveId":"019e404e-5e00-7000-8000-000000000000","priority":70}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["disseminationId"])')
  for _ in $(seq 1 600); do
    "$cli" workflow describe --address "127.0.0.1:$T_PORT" --workflow-id "$id" 2>/dev/null |
      grep -q "Status *COMPLETED" && break
    sleep 0.1
  done
  kill "$life_pid" 2>/dev/null || true
  wait "$life_pid" 2>/dev/null || true
  P5_LIFE=$(python3 scripts/bench-small.py history "$cli" "127.0.0.1:$T_PORT" "$id" \
    "lock:demo-client:019e404e-5e00-7000-8000-000000000000")
  p5_fresh_temporal 1
  P5_W4=$($writes)
  P5_BATCH=$(python3 scripts/bench-small.py batch "$API" "$TOKEN" 5d00 "$n" "$RUN/logs/webhooks.log")
  P5_W5=$($writes)
  P5_WRITES="[$P5_W0,$P5_W1,$P5_W2,$P5_W3,$P5_W4,$P5_W5]"
  printf '%s\n' "$P5_FLOOR" "$P5_SINGLES" "$P5_BATCH" "$P5_HISTORY" "$P5_LIFE" "$P5_WRITES" >"$RUN/p5-raw.txt"
}
p5_lines() {
  python3 - "${P5_SERVER:-memory}" "$P5_FLOOR" "$P5_SINGLES" "$P5_BATCH" "$P5_HISTORY" "$P5_LIFE" "$P5_WRITES" <<'PY'
import json, re, sys
server, floor, singles, batch, hist, life, writes = sys.argv[1:]
floor_rate = float(re.match(r"([\d.]+) items/s", floor).group(1))
floor_events = re.search(r"(\d+) events, (\d+) workflow tasks", floor)
singles, batch, hist, life = map(json.loads, (singles, batch, hist, life))
s, b = singles["items_per_sec"], batch["items_per_sec"]
print(f"P5 [{server} Temporal] {singles['items']} small AIPs: singles {s:.1f} items/s "
      f"(32 clients, {singles['seconds']:.1f} s), one batch {b:.1f} items/s ({batch['seconds']:.1f} s, "
      f"its POST answered after {batch['posted_after']:.1f} s); "
      f"floor {floor_rate:.1f} items/s -> singles/floor = {s / floor_rate:.2f}, batch/singles = {b / s:.2f}")
def shape(h):
    return (f"{h['events'] + h['lock_events']} events ({h['events']} + lock {h['lock_events']}), "
            f"{h['workflow_tasks']} workflow tasks, {h['actions'] + h.get('lock_actions', 0)} actions")
print(f"   per small dissemination, through delivery: {shape(hist)}; whole life: {shape(life)}; "
      f"the floor's item: {floor_events.group(1)} events, {floor_events.group(2)} workflow tasks")
print(f"   its events: {' '.join(life['types'])}")
w = json.loads(writes)
n = singles["items"]
def per_item(a, b, key):
    return (b[key] - a[key]) / n
fw, sw, bw = (per_item(w[i], w[i + 1], "writes") for i in (0, 2, 4))
fc, sc, bc = (per_item(w[i], w[i + 1], "calls") for i in (0, 2, 4))
print(f"   Temporal's database per item (its persistence metrics, from the first POST to the last webhook): "
      f"singles {sw:.1f} writes ({sc:.1f} calls), batch {bw:.1f} ({bc:.1f}), floor {fw:.1f} ({fc:.1f}) "
      f"-> singles/floor = {sw / fw:.2f}, batch/floor = {bw / fw:.2f}")
PY
}
if [ "${BENCH_PARTS:-all}" = p6 ]; then
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown) (${STACK_PROFILE} profile), ${P5_SERVER:-memory} Temporal"
  p6
  p6_lines
  exit 0
fi
if [ "${BENCH_PARTS:-all}" = p5 ]; then
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown) (${STACK_PROFILE} profile), ${P5_SERVER} Temporal"
  p5
  p5_lines
  p6
  p6_lines
  exit 0
fi

stop_worker() {
  kill "$WORKER_PID" 2>/dev/null || true
  wait "$WORKER_PID" 2>/dev/null || true
}

# Copies catalog entry $1 under fresh archive ids (same repository files);
# writes the new ids to file $3, one a line.
copy_aip() { # archive_id count ids_file
  python3 - "$STACK_DATA/catalog" "$1" "$2" "$3" <<'PY'
import json, os, sys, uuid
catalog, source, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with open(os.path.join(catalog, source + ".json")) as f:
    aip = json.load(f)
ids = [str(uuid.uuid4()) for _ in range(count)]
for i in ids:
    aip["intellectualEntity"]["archiveId"] = i
    with open(os.path.join(catalog, i + ".json"), "w") as f:
        json.dump(aip, f)
with open(out, "w") as f:
    f.write("\n".join(ids) + "\n")
PY
}

# P9: a small AIP's request while its band's slots all hold large transfers.
# Seeds P9_LARGE_MIB (1024) and P9_SMALL_MIB (16) MiB AIPs; the small one
# alone (POST to verified webhook), then the same beside 4 large requests
# of its band (each transferring before it is posted); prints the P9 lines.
# P9_URGENT=1: the small one at priority 1, beside as many large ones as
# the large class has slots, at priority 90.
p9() {
  local large_mib=${P9_LARGE_MIB:-1024} small_mib=${P9_SMALL_MIB:-16} id status t0 t1 s
  P9_HELD=4 P9_PRIO=50 P9_HELD_PRIO=50
  if [ "${P9_URGENT:-0}" = 1 ]; then
    P9_HELD=${DISSEMINATION_WORKER__LARGE_SLOTS:-2} P9_PRIO=1 P9_HELD_PRIO=90
  fi
  local large=019e404e-ffff-7000-8000-00000000b009 small=019e404e-ffff-7000-8000-00000000b00a
  echo "P9: creating the $large_mib MiB and $small_mib MiB AIPs..." >&2
  "$bin/dissemination-worker" seed-demo --large-mib "$large_mib" --large-id "$large" >/dev/null
  "$bin/dissemination-worker" seed-demo --large-mib "$small_mib" --large-id "$small" >/dev/null
  copy_aip "$large" "$P9_HELD" "$RUN/p9-large"
  copy_aip "$small" 2 "$RUN/p9-small"
  local larges smalls busy=()
  mapfile -t larges <"$RUN/p9-large"
  mapfile -t smalls <"$RUN/p9-small"
  P9_LARGE_MIB=$large_mib P9_SMALL_MIB=$small_mib
  # A request, or (P9_BATCH=1) a batch of it alone; its disseminationId.
  p9_post() { # archive_id priority
    if [ "${P9_BATCH:-0}" = 1 ]; then
      curl -s -X POST "$API/v1/dissemination-batches" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "{\"archiveIds\":[\"$1\"],\"priority\":$2}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["disseminationId"])'
    else
      post_dissemination "$1" "$2"
    fi
  }
  # Each one timed from its POST to its verified webhook.
  p9_one() { # archive_id; sets DUR
    t0=$(now)
    id=$(p9_post "$1" "$P9_PRIO")
    status=$(wait_final "$id")
    wait_webhook "$id" || { echo "no verified webhook for $id" >&2; exit 1; }
    t1=$(now)
    [ "$status" = DISSEMINATED ] || { echo "$id ended $status" >&2; exit 1; }
    DUR=$(secs "$t0" "$t1")
  }
  echo "P9: the $small_mib MiB request alone..." >&2
  p9_one "${smalls[0]}"
  P9_ALONE=$DUR
  echo "P9: $P9_HELD requests of $large_mib MiB, then the $small_mib MiB one..." >&2
  for a in "${larges[@]}"; do
    busy+=("$(p9_post "$a" "$P9_HELD_PRIO")")
  done
  for id in "${busy[@]}"; do
    for _ in $(seq 1 600); do
      s=$(curl -s "$API/v1/disseminations/$id" -H "Authorization: Bearer $TOKEN" |
        sed -n 's/.*"status":"\([A-Z_]*\)".*/\1/p')
      [ "$s" != QUEUED ] && [ "$s" != RECEIVED ] && break
      sleep 0.1
    done
  done
  p9_one "${smalls[1]}"
  P9_BUSY=$DUR
  P9_RUNNING=0
  for id in "${busy[@]}"; do
    s=$(curl -s "$API/v1/disseminations/$id" -H "Authorization: Bearer $TOKEN" |
      sed -n 's/.*"status":"\([A-Z_]*\)".*/\1/p')
    case "$s" in DISSEMINATED | FAILED | REJECTED | CANCELLED) ;; *) P9_RUNNING=$((P9_RUNNING + 1)) ;; esac
    curl -s -o /dev/null -X DELETE "$API/v1/disseminations/$id" -H "Authorization: Bearer $TOKEN"
  done
  for id in "${busy[@]}"; do wait_final "$id" >/dev/null; done
  p9_lines
}

p9_lines() {
  python3 - "$P9_SMALL_MIB" "$P9_LARGE_MIB" "$P9_ALONE" "$P9_BUSY" "$P9_RUNNING" \
    "${DISSEMINATION_WORKER__SMALL_MAX_BYTES:-default}" "${P9_BATCH:-0}" \
    "$DISSEMINATION_WORKER__MEDIUM_MAX_BYTES" "$DISSEMINATION_WORKER__LARGE_MAX_BYTES" \
    "$P9_HELD" "${P9_URGENT:-0}" "${DISSEMINATION_WORKER__URGENT_CLASS_SLOTS:-default}" <<'PY'
import sys
(small, large, alone, busy, running, small_max, batch, medium_max, large_max, held, urgent,
 urgent_slots) = sys.argv[1:]
alone, busy = float(alone), float(busy)
what, slots = ("batch item", "slots for batch items") if batch == "1" else ("request", "slots")
holders = f"its band's {held} {slots} hold"
if urgent == "1":
    what, holders = f"urgent {what}", f"priority-90 requests hold the large class's {held} {slots} with"
print(f"P9 a {small} MiB {what} while {holders} {large} MiB transfers: {busy:.2f} s "
      f"(POST -> verified webhook), beside {alone:.2f} s alone -> busy/alone = {busy / alone:.2f}")
print(f"   ({running} of the {held} large transfers still running when it was delivered; "
      f"worker.small_max_bytes {small_max}, worker.medium_max_bytes {medium_max}, "
      f"worker.large_max_bytes {large_max}, worker.urgent_class_slots {urgent_slots})")
PY
}
if [ "${BENCH_PARTS:-all}" = p9 ]; then
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown) (${STACK_PROFILE} profile)"
  p9
  exit 0
fi

if [ "${BENCH_PARTS:-all}" = bagit ]; then
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), $LARGE_MIB MiB and $SMALL_MIB MiB AIPs"
  bagit
  bagit_lines
  exit 0
fi

disseminate "$SMALL_ID"
small_s=$DUR small_rss=$RSS
bagit
# The same without Content-MD5 on the parts: what S3's check of every part costs.
DISSEMINATION_S3__CONTENT_MD5=false disseminate "$LARGE_ID"
nomd5_s=$DUR

file="$STACK_DATA/repository/$LARGE_ID/primary_large.tar"
aws s3 mb s3://bench-baseline >/dev/null 2>&1 || true
t0=$(now)
aws s3 cp --quiet "$file" s3://bench-baseline/cp.tar
t1=$(now)
cp_s=$(secs "$t0" "$t1")
t0=$(now)
sha256sum "$file" >/dev/null && aws s3 cp --quiet "$file" s3://bench-baseline/naive.tar
t1=$(now)
naive_s=$(secs "$t0" "$t1")

# The P1 and P2 lines, from the figures measured above.
p1p2_lines() {
  local commit
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  python3 - "$commit" "$STACK_PROFILE" "$LARGE_MIB" "$SMALL_MIB" "$large_s" "$cp_s" "$naive_s" "$large_rss" "$small_rss" "$small_s" "$nomd5_s" <<'PY'
import sys
commit, profile, large, small, ours, cp, naive, large_rss, small_rss, small_s, nomd5_s = sys.argv[1:]
ours, cp, naive, small_s = float(ours), float(cp), float(naive), float(small_s)
lr, sr = int(large_rss) / 1024, int(small_rss) / 1024
print(f"commit {commit} ({profile} profile), {large} MiB and {small} MiB AIPs, SeaweedFS on loopback")
print(f"P1 POST -> verified webhook ({large} MiB): {ours:.2f} s "
      f"({int(large) / 1024 / ours:.2f} GiB/s)")
print(f"   aws s3 cp of the same bytes:        {cp:.2f} s  -> ratio ours/cp = {ours / cp:.2f} (target <= 1.0)")
print(f"   sha256sum && aws s3 cp:             {naive:.2f} s  -> naive/ours = {naive / ours:.2f} (target >= 1.5)")
print(f"   without Content-MD5 on the parts: {float(nomd5_s):.2f} s -> with/without = "
      f"{ours / float(nomd5_s):.2f} (the cost of S3 checking every part)")
print(f"   ({small} MiB AIP: {small_s:.2f} s)")
print(f"P2 worker peak RSS: {lr:.0f} MiB ({large} MiB AIP), {sr:.0f} MiB ({small} MiB AIP); "
      f"difference {abs(lr - sr) / sr * 100:.0f} % (target <= 150 MiB, within 20 %)")
PY
}

if [ "${BENCH_PARTS:-all}" = p1 ]; then
  p1p2_lines
  bagit_lines
  exit 0
fi

# wrk's --latency output -> "p50_ms p99_ms req_per_s non_2xx_3xx socket_errors".
wrk_stats() { # wrk_output_file
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
def pct(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    return float(m.group(1)) * unit[m.group(2)]
rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: (.*)", text)
print(f"{pct(50):.2f} {pct(99):.2f} {rps:.1f} {non2xx.group(1) if non2xx else 0} "
      f"{sock.group(1).replace(' ', '') if sock else 'none'}")
PY
}

# P3 GET: one delivered dissemination, read by 32 connections (worker running).
get_id=$(post_dissemination 019e404e-60ab-7457-b7c9-94c453242c69 50)
status=$(wait_final "$get_id")
[ "$status" = DISSEMINATED ] || { echo "$get_id ended $status" >&2; exit 1; }
echo "P3: wrk GET for ${P3_SECS} s..." >&2
wrk -t2 -c32 -d"${P3_SECS}s" --timeout 5s --latency -H "Authorization: Bearer $TOKEN" \
  "$API/v1/disseminations/$get_id" >"$RUN/logs/wrk-get.txt"
read -r get_p50 get_p99 get_rps get_bad get_sock < <(wrk_stats "$RUN/logs/wrk-get.txt")

# P4: 20 priority-90 requests queued before one priority-1 request (on its
# band's queue of the small class) and one priority-11 request (the high
# band, on the class's queue every other band shares with the 20).
P4_BASE=019e404e-ffff-7000-8000-00000000b004
echo "P4: queueing 20 priority-90 requests, then one priority-1 and one priority-11..." >&2
"$bin/dissemination-worker" seed-demo --large-mib 64 --large-id "$P4_BASE" >/dev/null
copy_aip "$P4_BASE" 22 "$RUN/p4-aips"
mapfile -t p4_aips <"$RUN/p4-aips"
stop_worker
p90_ids=()
for aip in "${p4_aips[@]:0:20}"; do
  p90_ids+=("$(post_dissemination "$aip" 90)")
done
p1_id=$(post_dissemination "${p4_aips[20]}" 1)
p11_id=$(post_dissemination "${p4_aips[21]}" 11)
printf '%s\n' "p1 $p1_id" "p11 $p11_id" "${p90_ids[@]/#/p90 }" >"$RUN/p4-disseminations"
start_worker
for id in "$p1_id" "$p11_id"; do
  status=$(wait_final "$id")
  [ "$status" = DISSEMINATED ] || { echo "priority-1 or -11 $id ended $status" >&2; exit 1; }
done
for id in "${p90_ids[@]}"; do
  status=$(wait_final "$id")
  [ "$status" = DISSEMINATED ] || { echo "priority-90 $id ended $status" >&2; exit 1; }
done
# The order of the first "transfer started" (streaming) or "download started"
# (staged) line per dissemination; a p90 transfer ends at its "delivered" line.
# Prints: p90 transfers started before the p1 one, most p90 transfers at once,
# ms from the first of these 22 transfers starting to the p1 one starting,
# p90 transfers that had ended before the p1 one started; p90 transfers
# started before the p11 one.
read -r p4_before p4_slots p4_delay_ms p4_waited p4_high < <(
  sed 's/\x1b\[[0-9;]*m//g' "$RUN/logs/worker.log" |
    python3 -c '
import datetime, re, sys
p1, p11, p90 = sys.argv[1], sys.argv[2], set(sys.argv[3:])
start, end, order, at = {}, {}, [], {}
for n, line in enumerate(sys.stdin):
    m = re.search(r"(transfer started|download started|delivered) .*dissemination_id=(\S+)", line)
    if not m:
        continue
    what, id = m.groups()
    if what == "delivered":
        end.setdefault(id, n)
    elif id not in start and (id in (p1, p11) or id in p90):
        start[id] = n
        order.append(id)
        t = re.match(r"\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)", line)
        if t:
            at[id] = datetime.datetime.fromisoformat(t.group(1)[:26])
def ahead(first):
    return sum(1 for id in order[:order.index(first)] if id in p90) if first in order else -1
before, high = ahead(p1), ahead(p11)
# p90 transfers that had ended before the p1 one started (it waited for them)
waited = sum(1 for i in p90 if i in end and p1 in start and end[i] < start[p1])
delay = "?"
if p1 in at and order[0] in at:
    delay = f"{(at[p1] - at[order[0]]).total_seconds() * 1000:.0f}"
# most priority-90 transfers in progress at once (log line order)
events = sorted([(start[i], 1) for i in p90 if i in start] + [(end[i], -1) for i in p90 if i in end])
running = most = 0
for _, d in events:
    running += d
    most = max(most, running)
print(before, most, delay, waited, high)
' "$p1_id" "$p11_id" "${p90_ids[@]}"
)

# Raw SDK start rate, then P3 POST with the worker stopped (workflows queue).
stop_worker
echo "P3: creating $P3_AIPS catalog entries, raw SDK start rate..." >&2
copy_aip 019e404e-60ab-7457-b7c9-94c453242c69 "$P3_AIPS" "$RUN/p3-aips"
raw=$("$bin/dissemination-worker" start-rate --count 3000 --concurrency 32 | grep 'starts/s')
echo "raw SDK: $raw" >&2
raw_rate=${raw%% starts/s*}
echo "P3: wrk POST for ${P3_SECS} s..." >&2
wrk -t2 -c32 -d"${P3_SECS}s" --timeout 5s --latency -s "$root/scripts/bench-post.lua" \
  "$API/v1/disseminations" -- "$RUN/p3-aips" "$TOKEN" 2 >"$RUN/logs/wrk-post.txt"
read -r post_p50 post_p99 post_rps _ post_sock < <(wrk_stats "$RUN/logs/wrk-post.txt")
post_non201=$(awk '/^non201 / {print $2}' "$RUN/logs/wrk-post.txt")
post_reused=$(awk '/^reused / {print $2}' "$RUN/logs/wrk-post.txt")
post_statuses=$(awk '/^status / {printf "%s%s x%s", sep, $2, $3; sep=", "}' "$RUN/logs/wrk-post.txt")

p1p2_lines
python3 - "$post_p50" "$post_p99" "$post_rps" "$post_non201" "$post_statuses" "$post_reused" "$post_sock" \
  "$get_p50" "$get_p99" "$get_rps" "$get_bad" "$get_sock" "$raw_rate" "$P3_SECS" "$p4_before" "$p4_slots" "$p4_delay_ms" "$p4_waited" "$p4_high" <<'PY'
import sys
(post_p50, post_p99, post_rps, post_non201, post_statuses, post_reused, post_sock,
 get_p50, get_p99, get_rps, get_bad, get_sock, raw_rate, p3_secs, p4_before, p4_slots,
 p4_delay_ms, p4_waited, p4_high) = sys.argv[1:]
post_p50, post_p99, post_rps, raw_rate = map(float, (post_p50, post_p99, post_rps, raw_rate))
get_p50, get_p99, get_rps = map(float, (get_p50, get_p99, get_rps))
print(f"P3 POST: p50 {post_p50:.2f} ms, p99 {post_p99:.2f} ms, {post_rps:.0f} req/s ({post_non201} non-201); "
      f"GET: p50 {get_p50:.2f} ms, p99 {get_p99:.2f} ms, {get_rps:.0f} req/s; "
      f"raw SDK starts: {raw_rate:.0f}/s -> POST/raw = {post_rps / raw_rate:.2f} "
      f"(target >= 0.9; POST p99 <= 50 ms, GET p99 <= 25 ms)")
print(f"   (wrk -t2 -c32, {p3_secs} s each; a POST starts two workflows, the lock and the dissemination)")
if int(post_non201) or int(post_reused) or post_sock != "none":
    print(f"   NOT ALL POSTs ANSWERED 201: {post_non201} non-201 ({post_statuses or '-'}); "
          f"{post_reused} reused an archive id; socket errors: {post_sock}")
if int(get_bad) or get_sock != "none":
    print(f"   GET: {get_bad} non-2xx answers; socket errors: {get_sock}")
if int(p4_before) < 0:
    print("P4 the priority-1 transfer's start was not found in the worker log")
else:
    print(f"P4 priority 1 started after {p4_before} of the 20 queued priority-90 requests "
          f"(they run {p4_slots} at a time on the small class's queue; target: starts next)")
    print(f"   (its transfer started {p4_delay_ms} ms after the first of the 22; "
          f"{p4_waited} priority-90 transfers had ended before it started; priority 11, on "
          f"their queue, started after {p4_high} of them)")
PY
bagit_lines
