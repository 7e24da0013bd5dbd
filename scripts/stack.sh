# Sourced by run.sh and bench.sh: starts the whole service on loopback and
# stops everything it started, by PID, on exit. Inputs (environment):
#   STACK_DATA       folder for data and logs (default .data)
#   STACK_TEMPORAL_DB  "memory" for an in-memory Temporal server
#   STACK_SQLITE_PRAGMAS  the file-backed server's SQLite pragmas (default
#                    "journal_mode=wal synchronous=normal"; empty for
#                    SQLite's own: a rollback journal synced at every commit)
#   STACK_WORKERS    worker processes (default 1); with more than one, each has
#                    the identity worker-<i>@<host>, its own metrics port and
#                    its own log (logs/worker-<i>.log)
#   STACK_API_REPLICAS  API processes (default 1); with more than one, each on
#                    its own port and metrics port (logs/api-<i>.log), and
#                    haproxy (round-robin, health-checked) in front on the
#                    port the single API would use, so $API stays the address
#   STACK_PROFILE    the cargo profile built and run: dev (default, the one
#                    scripts/test.sh uses) or release (to compare against)
# Sets: API, T_UI, JAEGER, WORKER_METRICS, WORKER_HEALTH, API_METRICS, S3_ENDPOINT, TOKEN, RUN (its folder),
# WORKER_PID (the first worker), WORKER_PIDS, WORKER_METRICS_ALL (ports),
# API_PIDS, API_REPLICAS (base URLs), API_METRICS_ALL (ports), HAPROXY_PID
# (with replicas), TAPE_URL (the tape library's origin; its API is
# $TAPE_URL/api/v1), TAPE_PID, TAPE_CA, TAPE_TOKEN_FILE, bin, tools.
#
# The tape library (target/<profile>/tape-library, docs/tape-library.md) is
# the repository location `hpss` (kind "tape"): its files under
# $STACK_DATA/tape, its disk buffer $STACK_DATA/tape-buffer (kept across
# runs), $STACK_DATA/tape-manifest.json, the token $STACK_DATA/tape-token and
# a CA made with openssl on the first run, $STACK_DATA/tape-tls/. The demo
# AIPs' tape copies are written there before it starts (it reads the
# manifest once, at start).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

STACK_WORKERS=${STACK_WORKERS:-1}
STACK_API_REPLICAS=${STACK_API_REPLICAS:-1}
for stack_n in "$STACK_WORKERS" "$STACK_API_REPLICAS"; do
  case "$stack_n" in '' | *[!0-9]* | 0) echo "STACK_WORKERS and STACK_API_REPLICAS must be whole numbers >= 1" >&2; exit 1 ;; esac
done

# What the build needs first; the servers install while it compiles.
bash scripts/install-tools.sh build
stack_install_log=$(mktemp)
bash scripts/install-tools.sh >"$stack_install_log" 2>&1 &
stack_install_pid=$!
# The one build scripts/test.sh uses too (the dev profile, see Cargo.toml):
# after run.sh, test.sh compiles no dependency again, only the workspace's
# own crates (under clippy-driver) and the tests.
STACK_PROFILE=${STACK_PROFILE:-dev}
case "$STACK_PROFILE" in
  dev) bin="$root/target/debug" ;;
  release) bin="$root/target/release" ;;
  *) echo "STACK_PROFILE must be dev or release" >&2; exit 1 ;;
esac
echo "building ($STACK_PROFILE profile)..." >&2
if ! cargo build --workspace --bins --quiet --profile "$STACK_PROFILE"; then
  kill "$stack_install_pid" 2>/dev/null; wait "$stack_install_pid" 2>/dev/null
  exit 1
fi
if ! wait "$stack_install_pid"; then
  cat "$stack_install_log" >&2
  echo "installing the tools failed" >&2
  exit 1
fi
cat "$stack_install_log" >&2
rm -f "$stack_install_log"
tools="$root/.tools/bin"

data="${STACK_DATA:-$root/.data}"
RUN="$data/run"
mkdir -p "$RUN/logs" "$data/weed"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tape library's CA and server certificate (127.0.0.1, localhost), made
# once with openssl into the data folder and kept: the service trusts the
# CA (ca_path), so a restart needs nothing new.
make_tape_pki() { # dir
  local d=$1
  [ -f "$d/ca.pem" ] && [ -f "$d/server.pem" ] && [ -f "$d/server.key" ] && return 0
  mkdir -p "$d"
  if ! (
    cd "$d" && umask 077 &&
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
        -subj "/CN=Dissemination Service tape-library CA" &&
      printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext &&
      openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -CAserial ca.srl \
        -out server.pem.tmp -days 825 -extfile server.ext &&
      mv server.pem.tmp server.pem
  ) >"$RUN/logs/tape-pki.log" 2>&1; then
    echo "making the tape library's CA failed; see $RUN/logs/tape-pki.log" >&2
    exit 1
  fi
}

wait_port() { # port name
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; see $RUN/logs/" >&2
  exit 1
}

WORKER_PIDS=()
WORKER_METRICS_ALL=()
API_PIDS=()
API_REPLICAS=()
API_METRICS_ALL=()
HAPROXY_PID=""

# Starts worker i (default 1) of STACK_WORKERS; a second call restarts it.
start_worker() { # [i]
  local i=${1:-1} pid
  if [ "$STACK_WORKERS" = 1 ]; then
    "$bin/dissemination-worker" run >>"$RUN/logs/worker.log" 2>&1 &
    pid=$!
  else
    DISSEMINATION_WORKER__IDENTITY="worker-$i@${HOSTNAME:-$(uname -n)}" \
      DISSEMINATION_WORKER__METRICS_ADDR="127.0.0.1:${WORKER_METRICS_ALL[i - 1]}" \
      DISSEMINATION_WORKER__HEALTH_ADDR="127.0.0.1:${WORKER_HEALTH_ALL[i - 1]}" \
      "$bin/dissemination-worker" run >>"$RUN/logs/worker-$i.log" 2>&1 &
    pid=$!
  fi
  pids+=("$pid")
  WORKER_PIDS[i - 1]=$pid
  [ "$i" = 1 ] && WORKER_PID=$pid
  return 0
}

start_workers() {
  local i
  for i in $(seq 1 "$STACK_WORKERS"); do start_worker "$i"; done
}

# The API: one process on API_PORT, or STACK_API_REPLICAS processes on their
# own ports behind haproxy on API_PORT.
start_api() {
  if [ "$STACK_API_REPLICAS" = 1 ]; then
    "$bin/dissemination-api" serve >"$RUN/logs/api.log" 2>&1 &
    pids+=($!)
    API_PIDS=($!)
    API_REPLICAS=("http://127.0.0.1:$API_PORT")
    wait_port "$API_PORT" "the API"
    return 0
  fi
  local i port servers=""
  for i in $(seq 1 "$STACK_API_REPLICAS"); do
    port=${API_REPLICA_PORTS[i - 1]}
    DISSEMINATION_API__LISTEN="127.0.0.1:$port" \
      DISSEMINATION_API__METRICS_LISTEN="127.0.0.1:${API_METRICS_ALL[i - 1]}" \
      "$bin/dissemination-api" serve >"$RUN/logs/api-$i.log" 2>&1 &
    pids+=($!)
    API_PIDS+=($!)
    API_REPLICAS+=("http://127.0.0.1:$port")
    servers+="  server api-$i 127.0.0.1:$port check inter 1s fall 2 rise 1"$'\n'
  done
  for i in $(seq 1 "$STACK_API_REPLICAS"); do
    wait_port "${API_REPLICA_PORTS[i - 1]}" "API replica $i"
  done
  cat >"$RUN/haproxy.cfg" <<CFG
global
  maxconn 2048

defaults
  mode http
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  timeout http-request 30s
  timeout http-keep-alive 10s
  retries 2
  option redispatch

frontend api
  bind 127.0.0.1:$API_PORT
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
${servers}
CFG
  "$(command -v haproxy || echo /usr/sbin/haproxy)" -db -f "$RUN/haproxy.cfg" >"$RUN/logs/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  pids+=("$HAPROXY_PID")
  wait_port "$API_PORT" "haproxy"
}

# The Temporal dev server (file-backed, or in memory with
# STACK_TEMPORAL_DB=memory) on the ports start_stack chose; its PID in
# TEMPORAL_PID.
start_temporal() {
  local db=(--db-filename "$data/temporal.db") pragma
  # SQLite with a write-ahead log, synced at checkpoints (STACK_SQLITE_PRAGMAS
  # empty: SQLite's own rollback journal, synced at every commit).
  for pragma in ${STACK_SQLITE_PRAGMAS-journal_mode=wal synchronous=normal}; do
    db+=(--sqlite-pragma "$pragma")
  done
  [ "${STACK_TEMPORAL_DB:-}" = memory ] && db=()
  # Temporal dev server with the service's search attributes, fairness, and
  # one partition per task queue (a band serves in the order a queued
  # request's place counts: priority, then age).
  "$tools/temporal" server start-dev --ip 127.0.0.1 --port "$T_PORT" --ui-port "$T_UI" \
    --http-port "$T_HTTP" --metrics-port "$T_METRICS" "${db[@]}" \
    --log-level warn --ui-disable-news-fetch \
    --search-attribute ArchiveId=Keyword --search-attribute ClientId=Keyword \
    --search-attribute ContractId=Keyword --search-attribute DisseminationStatus=Keyword \
    --search-attribute BatchId=Keyword --search-attribute DisseminationPriority=Int \
    --dynamic-config-value matching.useNewMatcher=true \
    --dynamic-config-value matching.enableFairness=true \
    --dynamic-config-value matching.numTaskqueueReadPartitions=1 \
    --dynamic-config-value matching.numTaskqueueWritePartitions=1 \
    >"$RUN/logs/temporal.log" 2>&1 &
  TEMPORAL_PID=$!
  pids+=("$TEMPORAL_PID")
}

start_stack() {
  # Extra ports for workers 2..N (metrics) and, with replicas, each
  # replica's listener and replicas 2..M's metrics: all chosen in one go.
  local extra=() ports=() i
  for i in $(seq 2 "$STACK_WORKERS"); do extra+=(0 0); done
  if [ "$STACK_API_REPLICAS" != 1 ]; then
    for i in $(seq 1 $((2 * STACK_API_REPLICAS - 1))); do extra+=(0); done
  fi
  read -r -a ports < <(
    python3 scripts/free-ports.py 7233 8233 0 0 8333 0 0 0 0 0 0 8080 16686 4317 9464 9090 9465 8444 "${extra[@]}")
  read -r T_PORT T_UI T_HTTP T_METRICS S3_PORT M_PORT V_PORT F_PORT A_PORT W_METRICS HOOK_PORT API_PORT \
    J_UI J_OTLP WORKER_METRICS API_METRICS WORKER_HEALTH TAPE_PORT <<<"${ports[*]:0:18}"
  extra=("${ports[@]:18}")
  WORKER_METRICS_ALL=("$WORKER_METRICS" "${extra[@]:0:STACK_WORKERS-1}")
  extra=("${extra[@]:STACK_WORKERS-1}")
  WORKER_HEALTH_ALL=("$WORKER_HEALTH" "${extra[@]:0:STACK_WORKERS-1}")
  extra=("${extra[@]:STACK_WORKERS-1}")
  API_METRICS_ALL=("$API_METRICS")
  API_REPLICA_PORTS=()
  if [ "$STACK_API_REPLICAS" != 1 ]; then
    API_REPLICA_PORTS=("${extra[@]:0:STACK_API_REPLICAS}")
    API_METRICS_ALL+=("${extra[@]:STACK_API_REPLICAS}")
  fi

  # The trace viewer (Jaeger UI and query API; OTLP/gRPC in).
  "$bin/dissemination-trace-viewer" --ui "127.0.0.1:$J_UI" --otlp "127.0.0.1:$J_OTLP" \
    >"$RUN/logs/trace-viewer.log" 2>&1 &
  pids+=($!)
  JAEGER="http://127.0.0.1:$J_UI"

  start_temporal

  # SeaweedFS with one identity: signatures are checked.
  S3_ACCESS=dissemination
  S3_SECRET=dissemination-secret
  S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
  cat >"$RUN/s3.json" <<JSON
{"identities":[{"name":"svc","credentials":[{"accessKey":"$S3_ACCESS","secretKey":"$S3_SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
  "$tools/weed" mini -dir="$data/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$RUN/s3.json" \
    -s3.port="$S3_PORT" -master.port="$M_PORT" -volume.port="$V_PORT" -filer.port="$F_PORT" \
    -admin.port="$A_PORT" -metricsPort="$W_METRICS" -master.telemetry=false -admin.ui=false \
    -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 >"$RUN/logs/seaweedfs.log" 2>&1 &
  pids+=($!)

  # A demo webhook endpoint for the demo client, with its own secret.
  [ -f "$RUN/webhook-secret" ] || echo "whsec_$(head -c 24 /dev/urandom | base64)" >"$RUN/webhook-secret"
  local secret
  secret=$(cat "$RUN/webhook-secret")
  PYTHONPATH="$root/.tools/py" python3 scripts/webhook-receiver.py "$HOOK_PORT" "$secret" \
    >"$RUN/logs/webhooks.log" 2>&1 &
  pids+=($!)

  # The tape library's folders, manifest, token and CA (started below, once
  # the demo AIPs' tape copies are in its manifest).
  mkdir -p "$data/tape" "$data/tape-buffer"
  [ -f "$data/tape-manifest.json" ] || echo '{"files": {}}' >"$data/tape-manifest.json"
  TAPE_TOKEN_FILE="$data/tape-token"
  [ -s "$TAPE_TOKEN_FILE" ] ||
    (umask 077 && echo "tape-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$TAPE_TOKEN_FILE")
  make_tape_pki "$data/tape-tls"
  TAPE_CA="$data/tape-tls/ca.pem"
  TAPE_URL="https://127.0.0.1:$TAPE_PORT"

  cat >"$RUN/config.toml" <<TOML
[temporal]
address = "http://127.0.0.1:$T_PORT"
[api]
listen = "127.0.0.1:$API_PORT"
metrics_listen = "127.0.0.1:$API_METRICS"
[auth]
jwks_path = "$data/auth/jwks.json"
issuer = "http://localhost/realms/dps"
audience = "dissemination-service"
[catalog]
root = "$data/catalog"
[repository.locations.disk]
kind = "disk"
root = "$data/repository"
[repository.locations.s3]
kind = "s3"
bucket = "repository"
[repository.locations.hpss]
kind = "tape"
api_url = "$TAPE_URL/api/v1"
path_prefix = "/aips"
token_file = "$TAPE_TOKEN_FILE"
ca_path = "$TAPE_CA"
preference = 90
[s3]
endpoint = "$S3_ENDPOINT"
access_key = "$S3_ACCESS"
secret_key = "$S3_SECRET"
[worker]
metrics_addr = "127.0.0.1:$WORKER_METRICS"
health_addr = "127.0.0.1:$WORKER_HEALTH"
[telemetry]
otlp_endpoint = "http://127.0.0.1:$J_OTLP"
[clients.demo-client]
webhook_url = "http://127.0.0.1:$HOOK_PORT/webhooks/dissemination"
webhook_secret = "$secret"
TOML
  export DISSEMINATION_CONFIG="$RUN/config.toml"

  wait_port "$J_UI" "the trace viewer"
  wait_port "$T_PORT" "Temporal"
  wait_port "$S3_PORT" "SeaweedFS"
  "$bin/dissemination-api" keygen --dir "$data/auth"
  for _ in $(seq 1 50); do
    "$bin/dissemination-worker" seed-demo ${SEED_ARGS:-} \
      --tape-dir "$data/tape" --tape-manifest "$data/tape-manifest.json" \
      >"$RUN/logs/seed.log" 2>&1 && break
    sleep 0.2
  done
  # The tape library, after the seed: it reads its manifest once, at start.
  "$bin/tape-library" --listen "127.0.0.1:$TAPE_PORT" --tape-dir "$data/tape" \
    --buffer-dir "$data/tape-buffer" --manifest "$data/tape-manifest.json" \
    --token-file "$TAPE_TOKEN_FILE" --tls-cert "$data/tape-tls/server.pem" \
    --tls-key "$data/tape-tls/server.key" >"$RUN/logs/tape-library.log" 2>&1 &
  TAPE_PID=$!
  pids+=("$TAPE_PID")
  wait_port "$TAPE_PORT" "the tape library"
  start_workers
  start_api
  # A port taken by someone else between choosing and binding: fail, do not
  # talk to a stranger's server.
  sleep 0.5
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a component exited at start; see $RUN/logs/" >&2; exit 1; }
  done

  API="http://127.0.0.1:$API_PORT"
  TOKEN=$("$bin/dissemination-api" mint-token --client-id demo-client --role 2d17_R \
    --key "$data/auth/private.pem" --ttl 86400)
  echo "$TOKEN" >"$RUN/token"
}

# POSTs a dissemination; prints its id.
post_dissemination() { # archiveId priority [format]
  local format=""
  [ -n "${3:-}" ] && format=",\"format\":\"$3\""
  curl -s -X POST "$API/v1/disseminations" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d "{\"archiveId\":\"$1\",\"priority\":${2:-50}$format}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["disseminationId"])'
}

# Waits for a final status (bounded); prints it.
wait_final() { # disseminationId
  local status=""
  for _ in $(seq 1 6000); do
    # curl and sed only: a poll must not steal CPU from what is measured.
    status=$(curl -s "$API/v1/disseminations/$1" -H "Authorization: Bearer $TOKEN" |
      sed -n 's/.*"status":"\([A-Z_]*\)".*/\1/p')
    case "$status" in DISSEMINATED | FAILED | REJECTED | CANCELLED) break ;; esac
    sleep 0.1
  done
  echo "$status"
}

# Waits (bounded) until the demo endpoint verified the delivered webhook.
wait_webhook() { # disseminationId
  for _ in $(seq 1 600); do
    grep -q "verified dissemination.delivered $1" "$RUN/logs/webhooks.log" && return 0
    sleep 0.05
  done
  return 1
}
