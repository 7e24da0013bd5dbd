"""P5 of scripts/bench.sh: many small AIPs through the running service.

  bench-small.py singles API TOKEN PREFIX N CLIENTS WEBHOOK_LOG
      N single POSTs (archiveIds 019e404e-PREFIX-7000-8000-<i>) from CLIENTS
      concurrent clients; waits until the demo endpoint has verified the
      dissemination.delivered webhook of every one; prints items/s from the
      first POST to the last verified webhook, as JSON.
  bench-small.py batch API TOKEN PREFIX N WEBHOOK_LOG
      the same N archiveIds as one batch (POSTed in chunks of the API's
      1,000-item limit); the same measure.
  bench-small.py requests API TOKEN PRIORITY ARCHIVE_ID...
      one client's single requests, one after another: each POSTed, then
      read every 20 ms on a kept-alive connection until DISSEMINATED; prints
      each one's seconds from its POST and its id, as JSON.
  bench-small.py history TEMPORAL_CLI ADDRESS WORKFLOW_ID [LOCK_ID]
      one dissemination's history (and its lock's) by `temporal workflow
      show`: events, workflow tasks and Temporal Cloud actions, as JSON.
  bench-small.py server-writes METRICS_URL
      the Temporal server's database calls so far, from its Prometheus
      metrics: writes (executions, tasks, visibility records, by name) and
      all calls, as JSON; two readings around a run give its cost.

The webhook log is the demo endpoint's (scripts/webhook-receiver.py): one
line `verified dissemination.delivered <id> ... at=<unix seconds>` per
message it verified with the Standard Webhooks reference library.
"""
import datetime
import http.client
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

VERIFIED = re.compile(r"^verified dissemination\.delivered (\S+) .* at=([\d.]+)$")


def archive_ids(prefix, n):
    return [f"019e404e-{prefix}-7000-8000-{i:012x}" for i in range(n)]


def post(url, token, body):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120) as res:
        return res.status, json.loads(res.read())


def wait_verified(log, ids, timeout=3600):
    """Waits until every id's delivered webhook was verified; the last time."""
    wanted, at = set(ids), {}
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log) as f:
            for line in f:
                m = VERIFIED.match(line.strip())
                if m and m.group(1) in wanted and m.group(1) not in at:
                    at[m.group(1)] = float(m.group(2))
        if len(at) == len(wanted):
            return max(at.values())
        time.sleep(0.5)
    sys.exit(f"only {len(at)} of {len(wanted)} webhooks verified")


def singles(api, token, prefix, n, clients, log):
    t0 = time.time()
    archives = archive_ids(prefix, n)
    def one(archive_id):
        status, body = post(f"{api}/v1/disseminations", token, {"archiveId": archive_id, "priority": 70})
        if status != 201:
            sys.exit(f"POST {archive_id}: {status} {body}")
        return body["disseminationId"]
    with ThreadPoolExecutor(clients) as pool:
        ids = list(pool.map(one, archives))
    posted = time.time()
    last = wait_verified(log, ids)
    return {"items": n, "seconds": last - t0, "posted_after": posted - t0,
            "items_per_sec": n / (last - t0), "sample": ids[n // 2], "sample_archive": archives[n // 2]}


def batch(api, token, prefix, n, log):
    t0 = time.time()
    ids, all_archives = [], archive_ids(prefix, n)
    for start in range(0, n, 1000):
        status, body = post(f"{api}/v1/dissemination-batches", token,
                            {"archiveIds": all_archives[start:start + 1000], "priority": 70})
        if status != 201:
            sys.exit(f"batch POST: {status} {body}")
        ids += [i["disseminationId"] for i in body["items"] if "disseminationId" in i]
    posted = time.time()
    if len(ids) != n:
        sys.exit(f"the batch started {len(ids)} of {n} items")
    last = wait_verified(log, ids)
    return {"items": n, "seconds": last - t0, "posted_after": posted - t0,
            "items_per_sec": n / (last - t0), "sample": ids[n // 2], "sample_archive": all_archives[n // 2]}


def requests(api, token, priority, archives):
    """As a client polling for its result sees it: no process started per
    read, so what is measured is the service, not the measuring client."""
    url = urllib.parse.urlsplit(api)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    auth = {"Authorization": f"Bearer {token}"}

    def call(method, path, body=None):
        headers = dict(auth, **({"Content-Type": "application/json"} if body else {}))
        conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        res = conn.getresponse()
        return res.status, json.loads(res.read())

    out = []
    for archive_id in archives:
        t0 = time.time()
        status, body = call("POST", "/v1/disseminations", {"archiveId": archive_id, "priority": priority})
        if status != 201:
            sys.exit(f"POST {archive_id}: {status} {body}")
        posted, did = time.time(), body["disseminationId"]
        deadline = t0 + 300
        while True:
            status, view = call("GET", f"/v1/disseminations/{did}")
            if status == 200 and view["status"] == "DISSEMINATED":
                break
            if time.time() > deadline:
                sys.exit(f"{did}: not delivered within 300 s: {view}")
            time.sleep(0.02)
        out.append({"seconds": time.time() - t0, "post": posted - t0, "id": did})
    return out


# History event types that are Temporal Cloud actions (docs.temporal.io/cloud/actions):
# starts, timers, signals received, updates, search-attribute upserts (not the
# TemporalChangeVersion one patches make), each activity attempt; local
# activities count once per workflow task that ran any.
def cloud_actions(events):
    actions, la_tasks, task = 0, set(), 0
    for e in events:
        t = e["eventType"]
        attrs = next((v for k, v in e.items() if k.endswith("EventAttributes")), {})
        if t == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED":
            task += 1
        elif t in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "EVENT_TYPE_TIMER_STARTED",
                   "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
                   "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
                   "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED"):
            actions += 1
        elif t == "EVENT_TYPE_ACTIVITY_TASK_STARTED":
            actions += int(attrs.get("attempt", 1))
        elif t == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            fields = attrs.get("searchAttributes", {}).get("indexedFields", {})
            if set(fields) - {"TemporalChangeVersion"}:
                actions += 1
        elif t == "EVENT_TYPE_MARKER_RECORDED" and attrs.get("markerName") == "core_local_activity":
            la_tasks.add(task)
    return actions + len(la_tasks)


def history(cli, address, workflow_id, lock_id=None):
    out = {"events": 0, "workflow_tasks": 0, "actions": 0, "lock_events": 0}
    for wid, prefix in [(workflow_id, ""), (lock_id, "lock_")]:
        if not wid:
            continue
        raw = subprocess.run([cli, "workflow", "show", "--address", address, "--workflow-id", wid,
                              "--output", "json"], check=True, capture_output=True, text=True).stdout
        events = json.loads(raw)["events"]
        out[prefix + "events"] = len(events)
        if not prefix:
            out["workflow_tasks"] = sum(e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED" for e in events)
            out["actions"] = cloud_actions(events)
            out["types"] = [e["eventType"].removeprefix("EVENT_TYPE_") for e in events]
        else:
            out["lock_actions"] = cloud_actions(events)
    return out


# Calls that change the database (the execution and history, its tasks,
# its visibility record), by the names of the server's persistence metrics.
WRITE = re.compile(r"^(Create|Update|Upsert|Record|Delete|RangeComplete|Complete|ConflictResolve)")
CALL = re.compile(r'^(?:visibility_)?persistence_requests\{([^}]*)\} ([0-9.e+]+)$')


def server_writes(url):
    with urllib.request.urlopen(url, timeout=30) as res:
        text = res.read().decode()
    out = {"writes": 0.0, "calls": 0.0}
    for line in text.splitlines():
        m = CALL.match(line)
        if not m:
            continue
        op = re.search(r'operation="([^"]*)"', m.group(1))
        n = float(m.group(2))
        out["calls"] += n
        if op and WRITE.match(op.group(1)):
            out["writes"] += n
    return out


def timeline(cli, address, workflow_id):
    """Where one dissemination's time went until its first workflow task
    ended (a small AIP is delivered inside it): how long that task waited
    for a worker after the start, and how long it ran (its local transfer
    inside)."""
    raw = subprocess.run([cli, "workflow", "show", "--address", address, "--workflow-id", workflow_id,
                          "--output", "json"], check=True, capture_output=True, text=True).stdout
    events = json.loads(raw)["events"]

    def at(kind):
        e = next(e for e in events if e["eventType"] == "EVENT_TYPE_" + kind)
        return datetime.datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
    start, scheduled = at("WORKFLOW_EXECUTION_STARTED"), at("WORKFLOW_TASK_SCHEDULED")
    started, completed = at("WORKFLOW_TASK_STARTED"), at("WORKFLOW_TASK_COMPLETED")
    return {"task_waited": (started - scheduled).total_seconds(),
            "task_ran": (completed - started).total_seconds(),
            "until_task_end": (completed - start).total_seconds()}


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "singles":
        api, token, prefix, n, clients, log = args
        print(json.dumps(singles(api, token, prefix, int(n), int(clients), log)))
    elif cmd == "batch":
        api, token, prefix, n, log = args
        print(json.dumps(batch(api, token, prefix, int(n), log)))
    elif cmd == "requests":
        api, token, priority, *archives = args
        print(json.dumps(requests(api, token, int(priority), archives)))
    elif cmd == "history":
        print(json.dumps(history(*args)))
    elif cmd == "timeline":
        print(json.dumps(timeline(*args)))
    elif cmd == "server-writes":
        print(json.dumps(server_writes(*args)))
    else:
        sys.exit(__doc__)
