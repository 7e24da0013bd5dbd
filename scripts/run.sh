#!/usr/bin/env bash
# Runs the whole Dissemination Service locally on its embedded default:
# installs what is missing, builds, starts the Temporal dev server (with its
# Web UI), SeaweedFS (S3), the tape library (a WLCG Tape REST API stand-in,
# location hpss), a demo webhook receiver, the worker and the API on
# loopback, creates the demo AIPs (two with copies on tape), and prints URLs,
# a token and a curl line.
# Everything it starts is stopped by PID on exit or Ctrl-C.
#
#   scripts/run.sh            run until Ctrl-C
#   scripts/run.sh --check    start, deliver one dissemination via curl, stop
set -euo pipefail
check=0
[ "${1:-}" = "--check" ] && check=1
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
start_stack

curl_line="curl -s -X POST $API/v1/disseminations -H \"Authorization: Bearer \$(cat $RUN/token)\" -H 'Content-Type: application/json' -d '{\"archiveId\":\"019e404e-60ab-7457-b7c9-94c453242c69\",\"priority\":10}'"

cat <<INFO

Dissemination Service is running (logs in $RUN/logs/):
  API              $API/v1/disseminations
  Swagger UI       $API/swagger-ui/   (OpenAPI: $API/openapi.json)
  Temporal Web UI  http://127.0.0.1:$T_UI
  Jaeger UI        $JAEGER   (traces of the API and the worker; query API $JAEGER/api/traces/<traceId>)
  Metrics          http://127.0.0.1:$API_METRICS/metrics (API), http://127.0.0.1:$WORKER_METRICS/metrics (worker and Temporal SDK)
  Worker probes    http://127.0.0.1:$WORKER_HEALTH/readyz (every repository location readable)
  S3 (SeaweedFS)   $S3_ENDPOINT
  Tape library     $TAPE_URL/api/v1 (WLCG Tape REST API stand-in, location hpss; CA $TAPE_CA, token in $TAPE_TOKEN_FILE)
  Webhooks         $RUN/logs/webhooks.log (verified with standardwebhooks)

Token for demo-client (roles 2d17_R), also in $RUN/token:
  $TOKEN

Create a dissemination:
  $curl_line
Then read it (use the disseminationId from the answer):
  curl -s $API/v1/disseminations/<disseminationId> -H "Authorization: Bearer \$(cat $RUN/token)"
Demo AIPs: $(cut -d' ' -f1 "$RUN/logs/seed.log" | tr '\n' ' ')
  with copies on tape (recalled from the tape library when asked for): $(grep -F 'copies=' "$RUN/logs/seed.log" | cut -d' ' -f1,5 | tr '\n' ' ' || true)
INFO
if [ "$STACK_WORKERS" != 1 ] || [ "$STACK_API_REPLICAS" != 1 ]; then
  echo "Scale-out: $STACK_WORKERS worker(s), logs in $RUN/logs/worker*.log, metrics ports ${WORKER_METRICS_ALL[*]};"
  echo "  $STACK_API_REPLICAS API replica(s) ${API_REPLICAS[*]}, metrics ports ${API_METRICS_ALL[*]}${HAPROXY_PID:+, behind haproxy at $API}"
fi

if [ "$check" = 1 ]; then
  start=$(date +%s.%N)
  answer=$(eval "$curl_line")
  echo "POST answered: $answer"
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["disseminationId"])' "$answer")
  status=$(wait_final "$id")
  wait_webhook "$id" || true
  end=$(date +%s.%N)
  echo "status $status after $(python3 -c "print(round($end-$start,2))") s; webhook log:"
  cat "$RUN/logs/webhooks.log"
  [ "$status" = DISSEMINATED ]
  trace=$(grep "verified dissemination.delivered $id" "$RUN/logs/webhooks.log" | sed -n 's/.*traceparent=00-\([0-9a-f]*\)-.*/\1/p')
  spans=""
  for _ in $(seq 1 50); do
    spans=$(curl -s "$JAEGER/api/traces/$trace" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"][0]["spans"]))' 2>/dev/null || true)
    [ -n "$spans" ] && [ "$spans" -ge 7 ] && break
    sleep 0.2
  done
  echo "trace $trace: $spans spans, $JAEGER/trace/$trace"
  [ -n "$spans" ] && [ "$spans" -ge 7 ]
  exit 0
fi
echo "Press Ctrl-C to stop everything."
wait
