"""The tape part of scripts/bench.sh (BENCH_PARTS=tape): tape-only AIPs
recalled through the tape library (WLCG Tape REST API stand-in, location
`hpss`) as one batch, as single requests posted at once, and as single
requests arriving over time.

  bench-tape.py seed DATA N VOLUMES KIB PREFIX:VOLTAG [PREFIX:VOLTAG ...]
      per PREFIX, N tape-only AIPs, archiveIds 019e404e-PREFIX-7000-8000-<i>,
      one TAR each (a METS and KIB KiB of pseudo-random content: real bytes,
      MD5, SHA-1 and SHA-256 in the catalog). AIP i is on volume
      VOLTAG<i % VOLUMES + 1> at position i // VOLUMES: in archiveId order
      the AIPs alternate volumes (V1, V2, ..., V1, V2, ...). Writes the
      tape copies under DATA/tape/aips/ (the library's --tape-dir, the
      location's path_prefix /aips), their entries in
      DATA/tape-manifest.json (read by the library at start: restart it
      after seeding) and the catalog documents DATA/catalog/<id>.json.
  bench-tape.py run MODE PREFIX [options]
      MODE batch: the N archiveIds as one POST /v1/dissemination-batches;
      MODE now: N single POSTs /v1/disseminations, one after the other from
      one client, without waiting for any to complete; MODE every: the same,
      one POST every --every-ms. Always in archiveId order (alternating
      volumes). Measures from the first POST to the last
      dissemination.delivered webhook the demo endpoint verified (its
      `at=`); meanwhile reads the library's GET /admin/state every 0.25 s
      (when every recalled file was in its buffer, the stage requests it
      saw); then its mounts (in all and per volume), the stage requests it
      logged ("stage request submitted" in its log, and when), when it
      began its mounts and reads and when each stage request was polled
      (its debug line per request), the files per request the worker
      logged, the load average before and after, and one item's history
      (the middle one), as bench-small.py counts it. Prints JSON.
  bench-tape.py report BATCH_JSON NOW_JSON EVERY_JSON HEADER_JSON
      the lines bench.sh prints, with whether the targets were met (batch
      at most two mounts per volume, wall time at most half the singles').
"""
import argparse
import datetime
import hashlib
import importlib.util
import io
import json
import os
import random
import re
import ssl
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request

VERIFIED = re.compile(r"^verified dissemination\.(\S+) (\S+) .* at=([\d.]+)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A stage request's progress asked for (the library's debug line per request).
POLL = re.compile(r"^request method=GET uri=\S*/stage/[0-9a-fA-F-]+ status=")
# A line of the tape library's log: its UTC timestamp and message.
LIB_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\s+\w+\s+\S+: (.*)$")
FINAL = {"DISSEMINATED", "FAILED", "REJECTED", "CANCELLED"}


def archive_ids(prefix, n):
    return [f"019e404e-{prefix}-7000-8000-{i:012x}" for i in range(n)]


def volume_of(tag, i, volumes):
    return f"{tag}{i % volumes + 1}"


# --- seed -------------------------------------------------------------------

def small_tar(archive_id, i, kib):
    rng = random.Random(f"{archive_id}-{i}")
    entries = [("METS.xml", f'<mets OBJID="{archive_id}" n="{i}"/>\n'.encode()),
               ("content/page.bin", rng.randbytes(kib * 1024))]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 1_742_860_800  # fixed, so digests are stable
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def write_atomically(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def seed(data, n, volumes, kib, runs):
    manifest_path = os.path.join(data, "tape-manifest.json")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        manifest = {}
    files = manifest.setdefault("files", {})
    for run in runs:
        prefix, tag = run.split(":")
        for i, archive_id in enumerate(archive_ids(prefix, n)):
            name = "primary.tar"
            rel = f"{archive_id}/{name}"
            body = small_tar(archive_id, i, kib)
            write_atomically(os.path.join(data, "tape", "aips", rel), body)
            files[f"/aips/{rel}"] = {"volume": volume_of(tag, i, volumes), "position": i // volumes}
            fixities = [{"algorithm": alg, "digest": hashlib.new(h, body).hexdigest(), "originator": "dps-ingest"}
                        for alg, h in (("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"))]
            aip = {
                "intellectualEntity": {
                    "archiveId": archive_id,
                    "accessGroupId": "2d17",
                    "objectId": f"tape-{prefix}-{i}",
                    "sumSizeInBytes": len(body),
                    "status": "preserved",
                    "createdDate": "2025-03-25T10:00:00.000000+01:00",
                },
                "repositoryFiles": [{
                    "relativePath": name,
                    "size": len(body),
                    "fixities": fixities,
                    "locations": [{"locationId": "hpss", "filePath": rel, "fixityStatus": "valid"}],
                }],
            }
            write_atomically(os.path.join(data, "catalog", f"{archive_id}.json"),
                             json.dumps(aip, indent=2).encode())
    write_atomically(manifest_path, json.dumps(manifest, indent=2).encode())
    return {"aips": n * len(runs), "volumes": volumes, "kib": kib}


# --- run --------------------------------------------------------------------

def call(url, token, body=None, method=None, ctx=None, timeout=60):
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class Library:
    """The tape library's admin state, read every 0.25 s while a run lasts."""

    def __init__(self, url, ca, token_file, paths):
        self.url = url.rstrip("/") + "/admin/state"
        self.ctx = ssl.create_default_context(cafile=ca)
        with open(token_file) as f:
            self.token = f.read().strip()
        self.paths = set(paths)
        self.requests = {}  # stage request id -> files, as seen
        self.all_online_at = None
        self.most_busy = 0
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def state(self):
        status, body = call(self.url, self.token, ctx=self.ctx, timeout=10)
        if status != 200:
            raise RuntimeError(f"GET /admin/state: {status} {body}")
        return body

    def watch(self):
        while not self.stop.is_set():
            try:
                st = self.state()
            except Exception:  # noqa: BLE001 - a missed sample is only a missed sample
                self.errors += 1
                self.stop.wait(0.25)
                continue
            at = time.time()
            for r in st.get("requests", []):
                self.requests[r["id"]] = len(r.get("files", []))
            self.most_busy = max(self.most_busy, st.get("drivesBusy", 0))
            if self.all_online_at is None:
                online = {f["path"] for f in st.get("buffer", {}).get("files", [])}
                if self.paths <= online:
                    self.all_online_at = at
            self.stop.wait(0.25)


def read_from(path, offset):
    with open(path, errors="replace") as f:
        f.seek(offset)
        return ANSI.sub("", f.read())


def wait_delivered(api, token, log, ids, timeout):
    """Until every id's delivered webhook was verified (its time, by id);
    any item ending otherwise stops the benchmark."""
    wanted, at = set(ids), {}
    deadline, next_check = time.time() + timeout, time.time() + 2
    while time.time() < deadline:
        with open(log, errors="replace") as f:
            for line in f:
                m = VERIFIED.match(line.strip())
                if m and m.group(1) == "delivered" and m.group(2) in wanted:
                    at.setdefault(m.group(2), float(m.group(3)))
        if len(at) == len(wanted):
            return at
        if time.time() >= next_check:
            for i in wanted - set(at):
                status, body = call(f"{api}/v1/disseminations/{i}", token)
                s = body.get("status") if isinstance(body, dict) else None
                if s in FINAL and s != "DISSEMINATED":
                    sys.exit(f"dissemination {i} ended {s}: {json.dumps(body)[:600]}")
            next_check = time.time() + 2
        time.sleep(0.25)
    sys.exit(f"only {len(at)} of {len(wanted)} deliveries verified in {timeout} s")


def library_events(text):
    """(unix time, message) of each line of the tape library's log."""
    out = []
    for line in text.splitlines():
        m = LIB_LINE.match(line.strip())
        if m:
            at = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
            out.append((at, m.group(2)))
    return out


def load_bench_small():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-small.py")
    spec = importlib.util.spec_from_file_location("bench_small", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(a):
    archives = archive_ids(a.prefix, a.n)
    paths = [f"/aips/{x}/primary.tar" for x in archives]
    lib = Library(a.tape_url, a.tape_ca, a.tape_token_file, paths)
    st = lib.state()
    if st["mounts"] or st["buffer"]["files"] or st["requests"]:
        sys.exit(f"the tape library is not cold: {st['mounts']} mounts, "
                 f"{len(st['buffer']['files'])} files in its buffer, {len(st['requests'])} requests")
    worker_offset = os.path.getsize(a.worker_log)
    load_before = os.getloadavg()
    lib.thread.start()
    ids = []
    t0 = time.time()
    if a.mode == "batch":
        status, body = call(f"{a.api}/v1/dissemination-batches", a.token,
                            {"archiveIds": archives, "priority": 70})
        if status != 201:
            sys.exit(f"batch POST: {status} {body}")
        batch_id = body["batchId"]
        ids = [i["disseminationId"] for i in body["items"] if "disseminationId" in i]
        if len(ids) != a.n or any(i.get("existing") for i in body["items"]):
            sys.exit(f"the batch started {len(ids)} of {a.n} new items: {json.dumps(body)[:600]}")
    else:
        batch_id = None
        for k, archive_id in enumerate(archives):
            if a.mode == "every":
                # On a fixed schedule (not sleep after each POST): arrivals
                # every EVERY ms whatever a POST takes.
                delay = t0 + k * a.every_ms / 1000 - time.time()
                if delay > 0:
                    time.sleep(delay)
            status, body = call(f"{a.api}/v1/disseminations", a.token,
                                {"archiveId": archive_id, "priority": 70})
            if status != 201:
                sys.exit(f"POST {archive_id}: {status} {body}")
            ids.append(body["disseminationId"])
    posted = time.time()
    at = wait_delivered(a.api, a.token, a.webhook_log, ids, a.timeout)
    last = max(at.values())
    time.sleep(0.5)  # a last sample of the admin state
    lib.stop.set()
    lib.thread.join()
    load_after = os.getloadavg()
    st = lib.state()
    tape_log = read_from(a.tape_log, 0)
    events = library_events(tape_log)
    submitted = [at - t0 for at, msg in events if msg.startswith("stage request submitted")]
    mounting = [at - t0 for at, msg in events if msg.startswith("mounting")]
    reads = [at - t0 for at, msg in events if msg.startswith("reading")]
    polls = [at - t0 for at, msg in events if POLL.match(msg)]
    worker_log = read_from(a.worker_log, worker_offset)
    logged_requests = len(re.findall(r"stage request submitted", tape_log))
    # The worker names the files of each request it submitted.
    files_per_request = [int(m) for m in re.findall(r"stage request submitted[^\n]*?\bfiles=(\d+)", worker_log)]
    not_answering = len(re.findall(r"tape system not answering", worker_log))
    sample = len(ids) // 2
    bs = load_bench_small()
    address = a.temporal_address
    hist = bs.history(a.temporal_cli, address, ids[sample], f"lock:demo-client:{archives[sample]}")
    out = {
        "mode": a.mode,
        "items": a.n,
        "seconds": last - t0,
        "posted_after": posted - t0,
        "first_delivered_after": min(at.values()) - t0,
        "all_online_after": (lib.all_online_at - t0) if lib.all_online_at else None,
        "first_stage_request_after": min(submitted) if submitted else None,
        "last_stage_request_after": max(submitted) if submitted else None,
        "last_mount_after": max(mounting) if mounting else None,
        "last_read_after": max(reads) if reads else None,
        "polls_after": [round(x, 2) for x in polls],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "mounts": st["mounts"],
        "mounts_per_volume": st["mountsPerVolume"],
        "stage_requests": logged_requests,
        "files_per_request_worker": files_per_request,
        "requests_seen": sorted(lib.requests.values(), reverse=True),
        "most_drives_busy": lib.most_busy,
        "admin_errors": lib.errors,
        "tape_not_answering": not_answering,
        "every_ms": a.every_ms if a.mode == "every" else None,
        "sample": ids[sample],
        "history": {k: v for k, v in hist.items() if k != "types"},
        "history_types": hist.get("types", []),
    }
    if batch_id:
        out["batch_id"] = batch_id
        bh = bs.history(a.temporal_cli, address, batch_id)
        out["batch_history"] = {"events": bh["events"], "workflow_tasks": bh["workflow_tasks"],
                                "actions": bh["actions"]}
    return out


# --- report -----------------------------------------------------------------

def requests_text(r):
    counts = r["files_per_request_worker"]
    n = r["stage_requests"]
    text = f"{n} stage request{'s' if n != 1 else ''}"
    if counts and len(counts) == n:
        sizes = sorted(set(counts))
        if len(sizes) == 1:
            text += f" ({sizes[0]} file{'s' if sizes[0] != 1 else ''} each)" if n > 1 else \
                f" ({sizes[0]} file{'s' if sizes[0] != 1 else ''})"
        else:
            text += f" ({'+'.join(map(str, counts))} files)"
    return text


def load_text(x):
    return " ".join(f"{v:.2f}" for v in x)


def report(batch, now, every, header):
    b, s, t = batch, now, every
    every_ms = t["every_ms"]
    over = f"one per {every_ms} ms"
    most_mounts = 2 * header["volumes"]
    print(f"commit {header['commit']} ({header['profile']} profile), tape library: {header['drives']} drives, "
          f"mount {header['mount_ms']} ms, reads unpaced; {header['kib']} KiB AIPs; "
          f"load average {load_text(b['load_before'])} at the start, {load_text(t['load_after'])} at the end "
          f"({os.cpu_count()} CPUs)")
    print(f"TAPE {b['items']} tape-only AIPs on {header['volumes']} volumes, {header['drives']} drives, "
          f"mount {header['mount_ms'] / 1000:g} s: one batch {b['seconds']:.1f} s, {b['mounts']} mounts, "
          f"{requests_text(b)}; {s['items']} singles at once {s['seconds']:.1f} s, {s['mounts']} mounts, "
          f"{requests_text(s)}; {t['items']} singles {over} {t['seconds']:.1f} s, {t['mounts']} mounts, "
          f"{requests_text(t)} -> batch/singles = {b['seconds'] / s['seconds']:.2f} (at once), "
          f"{b['seconds'] / t['seconds']:.2f} (over time); mounts batch/singles = "
          f"{b['mounts'] / max(s['mounts'], 1):.2f} (at once), {b['mounts'] / max(t['mounts'], 1):.2f} (over time) "
          f"(target: batch <= {most_mounts} mounts, wall <= 0.5x singles)")
    def met(ok):
        return "met" if ok else "NOT met"
    at_once, over_time = b["seconds"] / s["seconds"], b["seconds"] / t["seconds"]
    print(f"   target: batch mounts {b['mounts']} <= {most_mounts}: {met(b['mounts'] <= most_mounts)}; "
          f"batch wall <= 0.5x singles: {met(at_once <= 0.5)} against singles at once ({at_once:.2f}), "
          f"{met(over_time <= 0.5)} against singles {over} ({over_time:.2f})")
    for name, r in (("batch", b), ("singles at once", s), (f"singles {over}", t)):
        per_volume = ", ".join(f"{v} {n}" for v, n in sorted(r["mounts_per_volume"].items()))
        if r.get("first_stage_request_after") is None:
            stage = "no stage request in the library's log"
        elif r["stage_requests"] == 1:
            stage = f"stage request {r['first_stage_request_after']:.1f} s after the first POST"
        else:
            stage = (f"stage requests from {r['first_stage_request_after']:.1f} s to "
                     f"{r['last_stage_request_after']:.1f} s after the first POST")
        polls = r.get("polls_after", [])
        if r["stage_requests"] == 1 and polls:
            stage += f", polled at {', '.join(f'{x:.1f}' for x in polls)} s"
        elif polls:
            stage += f", {len(polls)} polls"
        if r["all_online_after"] is not None:
            online = (f"every file in the buffer at {r['all_online_after']:.1f} s (last mount begun at "
                      f"{r['last_mount_after']:.1f} s)")
            tail = f" ({r['seconds'] - r['all_online_after']:.1f} s after every file was in the buffer)"
        else:
            online, tail = "not every file seen in the buffer", ""
        print(f"   {name}: posted in {r['posted_after']:.1f} s; {stage}; {online}; first delivered "
              f"{r['first_delivered_after']:.1f} s, last {r['seconds']:.1f} s{tail}; mounts per volume: "
              f"{per_volume}; both drives busy at once: {'yes' if r['most_drives_busy'] >= 2 else 'no'}; "
              f"load average {load_text(r['load_before'])} -> {load_text(r['load_after'])}")
        if r["tape_not_answering"] or r["admin_errors"]:
            print(f"   ({name}: the worker logged 'tape system not answering' {r['tape_not_answering']} times; "
                  f"{r['admin_errors']} admin-state reads failed)")
    def shape(h):
        return (f"{h['events'] + h['lock_events']} events ({h['events']} + lock {h['lock_events']}), "
                f"{h['workflow_tasks']} workflow tasks, {h['actions'] + h.get('lock_actions', 0)} actions")
    bh = b.get("batch_history")
    print(f"   per tape dissemination, through delivery: batch item {shape(b['history'])}; "
          f"single at once {shape(s['history'])}; single over time {shape(t['history'])}"
          + (f"; the batch's own workflow: {bh['events']} events, {bh['workflow_tasks']} workflow tasks, "
             f"{bh['actions']} actions" if bh else ""))
    print(f"   a batch item's events: {' '.join(b['history_types'])}")
    print(f"   a single's events: {' '.join(s['history_types'])}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "seed":
        if len(args) < 5:
            sys.exit(__doc__)
        data, n, volumes, kib, *runs = args
        print(json.dumps(seed(data, int(n), int(volumes), int(kib), runs)))
    elif cmd == "run":
        p = argparse.ArgumentParser(prog="bench-tape.py run")
        p.add_argument("mode", choices=["batch", "now", "every"])
        p.add_argument("prefix")
        p.add_argument("--n", type=int, default=60)
        p.add_argument("--every-ms", type=int, default=500)
        p.add_argument("--api", required=True)
        p.add_argument("--token", required=True)
        p.add_argument("--webhook-log", required=True)
        p.add_argument("--worker-log", required=True)
        p.add_argument("--tape-url", required=True)
        p.add_argument("--tape-ca", required=True)
        p.add_argument("--tape-token-file", required=True)
        p.add_argument("--tape-log", required=True)
        p.add_argument("--temporal-cli", required=True)
        p.add_argument("--temporal-address", required=True)
        p.add_argument("--timeout", type=int, default=1800)
        print(json.dumps(run(p.parse_args(args))))
    elif cmd == "report":
        if len(args) != 4:
            sys.exit(__doc__)
        report(*map(json.loads, args))
    else:
        sys.exit(__doc__)
