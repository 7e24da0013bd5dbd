#!/usr/bin/env bash
# Runs the whole Dissemination Service locally on its embedded default:
# installs what is missing, builds, starts the Temporal dev server (with its
# Web UI), SeaweedFS (S3), a demo webhook receiver, the worker and the API on
# loopback, creates the demo AIPs, and prints URLs, a token and a curl line.
# Everything it starts is stopped by PID on exit or Ctrl-C.
#
#   scripts/run.sh            run until Ctrl-C
#   scripts/run.sh --check    start, deliver one dissemination via curl, stop
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
check=0
[ "${1:-}" = "--check" ] && check=1

bash scripts/install-tools.sh
echo "building (release)..." >&2
cargo build --release --quiet -p api -p worker
bin="$root/target/release"
tools="$root/.tools/bin"

data="$root/.data"
run="$data/run"
mkdir -p "$run/logs" "$data/weed"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r T_PORT T_UI T_HTTP T_METRICS S3_PORT M_PORT V_PORT F_PORT A_PORT W_METRICS HOOK_PORT API_PORT < <(
  python3 scripts/free-ports.py 7233 8233 0 0 8333 0 0 0 0 0 0 8080)

wait_port() { # port name
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; see $run/logs/" >&2
  exit 1
}

# Temporal dev server, file-backed, with the service's search attributes.
"$tools/temporal" server start-dev --ip 127.0.0.1 --port "$T_PORT" --ui-port "$T_UI" \
  --http-port "$T_HTTP" --metrics-port "$T_METRICS" --db-filename "$data/temporal.db" \
  --log-level warn --ui-disable-news-fetch \
  --search-attribute ArchiveId=Keyword --search-attribute ClientId=Keyword \
  --search-attribute ContractId=Keyword --search-attribute DisseminationStatus=Keyword \
  --dynamic-config-value matching.useNewMatcher=true \
  --dynamic-config-value matching.enableFairness=true \
  >"$run/logs/temporal.log" 2>&1 &
pids+=($!)

# SeaweedFS with one identity: signatures are checked.
S3_ACCESS=dissemination
S3_SECRET=dissemination-secret
cat >"$run/s3.json" <<JSON
{"identities":[{"name":"svc","credentials":[{"accessKey":"$S3_ACCESS","secretKey":"$S3_SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
"$tools/weed" mini -dir="$data/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$run/s3.json" \
  -s3.port="$S3_PORT" -master.port="$M_PORT" -volume.port="$V_PORT" -filer.port="$F_PORT" \
  -admin.port="$A_PORT" -metricsPort="$W_METRICS" -master.telemetry=false -admin.ui=false \
  -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 >"$run/logs/seaweedfs.log" 2>&1 &
pids+=($!)

# A demo webhook endpoint for the demo client, with its own secret.
[ -f "$run/webhook-secret" ] || echo "whsec_$(head -c 24 /dev/urandom | base64)" >"$run/webhook-secret"
SECRET=$(cat "$run/webhook-secret")
PYTHONPATH="$root/.tools/py" python3 scripts/webhook-receiver.py "$HOOK_PORT" "$SECRET" \
  >"$run/logs/webhooks.log" 2>&1 &
pids+=($!)

cat >"$run/config.toml" <<TOML
[temporal]
address = "http://127.0.0.1:$T_PORT"
[api]
listen = "127.0.0.1:$API_PORT"
[auth]
jwks_path = "$data/auth/jwks.json"
[catalog]
root = "$data/catalog"
[repository]
disk_root = "$data/repository"
[s3]
endpoint = "http://127.0.0.1:$S3_PORT"
access_key = "$S3_ACCESS"
secret_key = "$S3_SECRET"
[worker]
staging_dir = "$data/staging"
[clients.demo-client]
webhook_url = "http://127.0.0.1:$HOOK_PORT/webhooks/dissemination"
webhook_secret = "$SECRET"
TOML
export DISSEMINATION_CONFIG="$run/config.toml"

wait_port "$T_PORT" "Temporal"
wait_port "$S3_PORT" "SeaweedFS"
"$bin/dissemination-api" keygen --dir "$data/auth"
for _ in $(seq 1 50); do
  "$bin/dissemination-worker" seed-demo >"$run/logs/seed.log" 2>&1 && break
  sleep 0.2
done
"$bin/dissemination-worker" run >"$run/logs/worker.log" 2>&1 &
pids+=($!)
"$bin/dissemination-api" serve >"$run/logs/api.log" 2>&1 &
pids+=($!)
wait_port "$API_PORT" "the API"

API="http://127.0.0.1:$API_PORT"
TOKEN=$("$bin/dissemination-api" mint-token --client-id demo-client --role 2d17_R \
  --key "$data/auth/private.pem" --ttl 86400)
echo "$TOKEN" >"$run/token"
curl_line="curl -s -X POST $API/v1/disseminations -H \"Authorization: Bearer \$(cat $run/token)\" -H 'Content-Type: application/json' -d '{\"archiveId\":\"019e404e-60ab-7457-b7c9-94c453242c69\",\"priority\":10}'"

cat <<INFO

Dissemination Service is running (logs in $run/logs/):
  API              $API/v1/disseminations
  Temporal Web UI  http://127.0.0.1:$T_UI
  Temporal gRPC    127.0.0.1:$T_PORT
  S3 (SeaweedFS)   http://127.0.0.1:$S3_PORT
  Webhooks         $run/logs/webhooks.log (verified with standardwebhooks)

Token for demo-client (roles 2d17_R), also in $run/token:
  $TOKEN

Create a dissemination:
  $curl_line
Then read it (use the disseminationId from the answer):
  curl -s $API/v1/disseminations/<disseminationId> -H "Authorization: Bearer \$(cat $run/token)"
Demo AIPs: $(cut -d' ' -f1 "$run/logs/seed.log" | tr '\n' ' ')
INFO

if [ "$check" = 1 ]; then
  start=$(date +%s.%N)
  answer=$(eval "$curl_line")
  echo "POST answered: $answer"
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["disseminationId"])' "$answer")
  for _ in $(seq 1 600); do
    status=$(curl -s "$API/v1/disseminations/$id" -H "Authorization: Bearer $TOKEN" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    case "$status" in DISSEMINATED | FAILED | REJECTED) break ;; esac
    sleep 0.1
  done
  for _ in $(seq 1 100); do grep -q "verified dissemination.delivered $id" "$run/logs/webhooks.log" && break; sleep 0.1; done
  end=$(date +%s.%N)
  echo "status $status after $(python3 -c "print(round($end-$start,2))") s; webhook log:"
  cat "$run/logs/webhooks.log"
  [ "$status" = DISSEMINATED ]
  exit 0
fi
echo "Press Ctrl-C to stop everything."
wait
