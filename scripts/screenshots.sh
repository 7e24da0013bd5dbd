#!/usr/bin/env bash
# Regenerates docs/screenshots/jaeger-trace.png (the Jaeger UI trace view of
# one dissemination) and docs/screenshots/temporal-workflow.png (the Temporal
# Web UI page of its workflow, compact event history).
#
# Starts the whole service like scripts/run.sh (scripts/stack.sh: installs
# tools, the build STACK_PROFILE names, free loopback ports), but on its own data folder
# (.data/screenshots, emptied first, its logs kept) and an in-memory Temporal
# server, so the rest of .data is left alone. Delivers the demo
# AIP with two files, finds its trace id in the verified webhook's
# traceparent, and photographs both UIs with headless Chromium (Debian package
# `chromium`, installed with apt-get when missing) driven by playwright-core
# (npm, pinned, in .tools/node; it never downloads a browser). Every process
# it starts, Chromium included, is stopped by PID on exit. Not part of the
# test suite.
#
#   scripts/screenshots.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/docs/screenshots"
AIP=019e404e-7c1d-7a2b-8f3e-2b5d9c1e4a10 # demo AIP with two files
PLAYWRIGHT_CORE_VERSION=1.65.1
CHROMIUM=/usr/bin/chromium

# The stack's data and logs: its own folder, emptied first, kept afterwards
# for a look at the logs; Chromium's profile and the fresh images in $tmp.
export STACK_DATA="$root/.data/screenshots" STACK_TEMPORAL_DB=memory
rm -rf "$STACK_DATA"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "screenshots: $*" >&2; exit 1; }

# Chromium (Debian package) and playwright-core, before the stack starts.
if [ ! -x "$CHROMIUM" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y chromium >&2 ||
    { $sudo apt-get update >&2 && $sudo apt-get install -y chromium >&2; }
  [ -x "$CHROMIUM" ] || fail "$CHROMIUM missing after apt-get install chromium"
fi
node_dir="$root/.tools/node"
if [ ! -f "$node_dir/.installed-$PLAYWRIGHT_CORE_VERSION" ]; then
  echo "installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $node_dir" >&2
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$node_dir" --no-save --no-audit \
    --no-fund --ignore-scripts --loglevel=error "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
  touch "$node_dir/.installed-$PLAYWRIGHT_CORE_VERSION"
fi

source "$root/scripts/stack.sh" # sets its own EXIT trap (stops by PID); extended below
trap 'cleanup; rm -rf "$tmp" 2>/dev/null || rm -rf "$tmp" 2>/dev/null || true' EXIT
start_stack
# Another stack started at the same moment can win a preferred port (8080,
# 7233, ...): then one of ours exits and wait_port saw the other's listener.
sleep 1
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null ||
    fail "process $pid of the stack exited (port taken by a concurrent run?); see $RUN/logs/"
done

# One dissemination, delivered, webhook verified.
id=""
for _ in $(seq 1 60); do # retried while the API answers 5xx (Temporal still starting)
  answer=$(curl -s -w '\n%{http_code}' -X POST "$API/v1/disseminations" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"archiveId\":\"$AIP\",\"priority\":10}" || true)
  code=${answer##*$'\n'}
  case "$code" in
    2??) id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["disseminationId"])' "${answer%$'\n'*}") && break ;;
    5?? | 000 | "") sleep 0.5 ;;
    *) break ;;
  esac
done
[ -n "$id" ] || fail "POST /v1/disseminations answered ${answer:-nothing}; see $RUN/logs/"
echo "dissemination $id" >&2
status=$(wait_final "$id")
[ "$status" = DISSEMINATED ] || fail "dissemination $id ended $status, not DISSEMINATED; see $RUN/logs/"
wait_webhook "$id" || fail "no verified webhook for $id in $RUN/logs/webhooks.log"
trace=$(grep "verified dissemination.delivered $id" "$RUN/logs/webhooks.log" |
  sed -n 's/.*traceparent=00-\([0-9a-f]\{32\}\)-.*/\1/p' | head -1)
[ -n "$trace" ] || fail "no traceparent in the webhook log line for $id"

# The trace is complete in the viewer once the notify activity's span is in.
spans=""
for _ in $(seq 1 150); do
  spans=$(curl -s "$JAEGER/api/traces/$trace" | python3 -c '
import json, sys
spans = json.load(sys.stdin)["data"][0]["spans"]
names = {s["operationName"] for s in spans}
print(len(spans) if "RunActivity:notify" in names else 0)' 2>/dev/null || true)
  [ -n "$spans" ] && [ "$spans" -ge 7 ] && break
  sleep 0.2
done
[ -n "$spans" ] && [ "$spans" -ge 7 ] || fail "trace $trace incomplete in the viewer ($JAEGER/api/traces/$trace)"
echo "trace $trace: $spans spans" >&2

# Headless Chromium (these flags keep it off the network), stopped by PID;
# playwright-core drives it over the DevTools protocol. The Temporal Web UI
# long-polls the history of a running workflow, so the one-shot
# `--screenshot --virtual-time-budget` mode never finishes on it.
profile="$tmp/chromium-profile"
mkdir -p "$profile"
TMPDIR="$tmp" "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1600,1000 --hide-scrollbars \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 about:blank \
  >"$RUN/logs/chromium.log" 2>&1 &
chromium_pid=$!
pids+=("$chromium_pid")
cdp_port=""
for _ in $(seq 1 300); do
  kill -0 "$chromium_pid" 2>/dev/null || fail "chromium exited; see $RUN/logs/chromium.log"
  [ -s "$profile/DevToolsActivePort" ] && cdp_port=$(head -1 "$profile/DevToolsActivePort")
  [ -n "$cdp_port" ] && break
  sleep 0.1
done
[ -n "$cdp_port" ] || fail "chromium opened no DevTools port; see $RUN/logs/chromium.log"

shots="$tmp/shots"
mkdir -p "$shots"
NODE_PATH="$node_dir/node_modules" timeout 300 node - "http://127.0.0.1:$cdp_port" \
  "$JAEGER/trace/$trace" "$spans" "http://127.0.0.1:$T_UI/namespaces/default/workflows/$id" "$id" "$shots" <<'JS'
const { chromium } = require('playwright-core');
const [cdp, traceUrl, spans, workflowUrl, id, dir] = process.argv.slice(2);
const TIMEOUT = 60000;

(async () => {
  const browser = await chromium.connectOverCDP(cdp, { timeout: TIMEOUT });
  const page = await browser.contexts()[0].newPage();
  page.setDefaultTimeout(TIMEOUT);

  // Jaeger UI: the trace view, tall enough for every span's row (about 28 px
  // each below 270 px of header), the operation column widened.
  await page.setViewportSize({ width: 1600, height: Math.max(1000, 270 + 28 * Number(spans)) });
  await page.goto(traceUrl);
  for (const text of ['POST /v1/disseminations', 'RunWorkflow:DisseminationWorkflow',
                      'RunActivity:notify']) {
    await page.getByText(text).filter({ visible: true }).first().waitFor();
  }
  try {
    const b = await page.locator('.VerticalResizer--dragger').first().boundingBox({ timeout: 5000 });
    await page.mouse.move(b.x + b.width / 2, b.y + 10);
    await page.mouse.down();
    await page.mouse.move(b.x + 200, b.y + 10, { steps: 10 });
    await page.mouse.up();
  } catch (e) {
    console.error(`(operation column not widened: ${e.message.split('\n')[0]})`);
  }
  await page.waitForTimeout(1000);
  await page.screenshot({ path: `${dir}/jaeger-trace.png` });

  // Temporal Web UI: the workflow's page (status, details), Event History tab
  // in its compact view, the viewport grown until the whole history shows.
  await page.setViewportSize({ width: 1600, height: 1320 });
  await page.goto(workflowUrl);
  await page.getByText(id, { exact: true }).filter({ visible: true }).first().waitFor();
  await page.getByText('Event History').filter({ visible: true }).first().click();
  await page.getByText('Compact', { exact: true }).filter({ visible: true }).first().click();
  const notify = page.getByText('notify', { exact: true }).filter({ visible: true }).first();
  await notify.waitFor();
  const body = await page.evaluate(() => document.body.innerText);
  if (!/\b(running|completed)\b/i.test(body)) throw new Error('no workflow status on the page');
  const hidden = await notify.evaluate((n) => { // what its scrolling containers hide
    let h = 0;
    for (let e = n; e && e !== document.documentElement; e = e.parentElement) {
      const o = getComputedStyle(e).overflowY;
      if (o === 'auto' || o === 'scroll') h += e.scrollHeight - e.clientHeight;
    }
    return h;
  });
  if (hidden > 0) await page.setViewportSize({ width: 1600, height: Math.min(1320 + hidden, 2400) });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `${dir}/temporal-workflow.png` });

  await page.close();
  await browser.close(); // disconnects; the script stops Chromium by PID
})().catch((e) => { console.error(e); process.exit(1); });
JS

# Stop Chromium now (by PID), check the images, then put them in place.
kill "$chromium_pid" 2>/dev/null || true
wait "$chromium_pid" 2>/dev/null || true
mkdir -p "$out"
for name in jaeger-trace temporal-workflow; do
  f="$shots/$name.png"
  [ -s "$f" ] || fail "$name.png was not written"
  size=$(stat -c %s "$f")
  [ "$size" -lt 1048576 ] || fail "$name.png is $size bytes (over 1 MiB)"
  cp "$f" "$out/$name.png"
  echo "saved $out/$name.png ($size bytes)"
done
echo "dissemination $id, trace $trace"
