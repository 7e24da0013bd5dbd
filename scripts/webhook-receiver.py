"""A demo webhook endpoint: verifies each Standard Webhooks message with the
reference library and prints it (with the time it was verified, unix
seconds, which the benchmark reads). usage: webhook-receiver.py PORT SECRET"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

port, secret = int(sys.argv[1]), sys.argv[2]
hook = Webhook(secret)
# One message's lines stay together whatever the other threads print.
out = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            msg = hook.verify(body, dict(self.headers))
        except Exception as e:  # noqa: BLE001 - report any verification failure
            print(f"REJECTED webhook: {e}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        data = msg.get("data", {})
        lines = [f"verified {msg.get('type')} {data.get('disseminationId') or data.get('batchId')} "
                 f"webhook-id={self.headers.get('webhook-id')} "
                 f"traceparent={self.headers.get('traceparent')} at={time.time():.3f}"]
        for f in data.get("files", []):
            lines.append(f"  {f['filename']} {f['filesize']} bytes {f['checksumAlgorithm']} {f['checksum']}")
            lines.append(f"  {f['downloadURL']}")
        if data.get("reasons"):
            lines.append("  " + json.dumps(data["reasons"]))
        with out:
            print("\n".join(lines), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
