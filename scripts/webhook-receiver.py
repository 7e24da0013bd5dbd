"""A demo webhook endpoint: verifies each Standard Webhooks message with the
reference library and prints it. usage: webhook-receiver.py PORT SECRET"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook

port, secret = int(sys.argv[1]), sys.argv[2]
hook = Webhook(secret)


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
        print(f"verified {msg.get('type')} {data.get('disseminationId')} "
              f"webhook-id={self.headers.get('webhook-id')} "
              f"traceparent={self.headers.get('traceparent')}", flush=True)
        for f in data.get("files", []):
            print(f"  {f['filename']} {f['filesize']} bytes {f['checksumAlgorithm']} {f['checksum']}", flush=True)
            print(f"  {f['downloadURL']}", flush=True)
        if data.get("reasons"):
            print("  " + json.dumps(data["reasons"]), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
