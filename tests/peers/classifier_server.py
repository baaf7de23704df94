"""A text-classification service in Hugging Face's shape (what Text
Embeddings Inference's /predict and the Inference API answer), for
Warden's registry.scanner.classifier tests. It stands in for a model: text
containing --flag scores high as INJECTION, everything else low.

    python3 tests/peers/classifier_server.py --flag WORD [--status 503] [--sleep S]

Prints the port it listens on (127.0.0.1) on stderr, then serves
until killed. Each request body it received is appended to --log, one
JSON line each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--flag", required=True)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--log")
    a = p.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            n = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(n) or b"{}")
            if a.log:
                with open(a.log, "a") as f:
                    f.write(json.dumps(body) + "\n")
            time.sleep(a.sleep)
            text = body.get("inputs", "")
            score = 0.97 if a.flag.lower() in text.lower() else 0.02
            out = json.dumps(
                [{"label": "INJECTION", "score": score}, {"label": "SAFE", "score": 1 - score}]
            ).encode()
            self.send_response(a.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
