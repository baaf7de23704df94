"""A session-era Streamable HTTP MCP server (standard library only) whose
tool results are SSE streams written in several TCP writes, so that a
secret is split across writes. Used by Warden's test that a secret split
across chunks of a streamed response is still caught (issue 7,
crates/cli/tests/it/guard_stream.rs).

    python3 tests/peers/chunked_sse_server.py --secret AKIA... [--port 0] [--delay 0.05]

Listens on 127.0.0.1 (an ephemeral port by default) and prints
`chunked_sse_server: listening on 127.0.0.1:PORT` on stderr.

POST /mcp:
- `initialize` -> JSON result (capabilities.tools), `Mcp-Session-Id` header;
- notifications and responses -> 202;
- `tools/list` -> one tool, `leak {case: string}`;
- `tools/call leak {case}` -> `text/event-stream`, chunked transfer
  encoding, one HTTP chunk per write, TCP_NODELAY, a flush and `--delay`
  seconds between writes. The result's text is
  `deploy key <SECRET> → rotate now (<case>)`. Cases:
  - `split_key`: one `data:` line cut after `AKIA`, again inside the key,
    inside the UTF-8 bytes of `→`, and before the blank line;
  - `multiline`: the JSON spread over five `data:` lines of one event, cut
    between `data:` lines, inside a `data:` prefix and inside the key;
  - `progress_first`: a `notifications/progress` event (with the request's
    `progressToken`; none without one), itself cut in two, then the
    result cut inside the key;
  - `progress_leak`: `progress_first` whose progress message carries the
    secret too (`scanning the deploy notes of <SECRET>`), cut inside it;
  - `crlf`: CRLF line endings, cut between a `\\r` and its `\\n` and
    inside the key;
  every stream starts with a priming event (an `id:` and empty data).
- anything else -> a JSON-RPC error -32601.
GET /mcp -> 405 (no standalone stream); DELETE /mcp -> 200.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
SESSION = "chunked-sse-session-1"
CASES = ("split_key", "multiline", "progress_first", "progress_leak", "crlf")
TOOL = {
    "name": "leak",
    "description": "Returns a deploy note, streamed in pieces.",
    "inputSchema": {
        "type": "object",
        "properties": {"case": {"type": "string", "enum": list(CASES)}},
        "required": ["case"],
        "additionalProperties": False,
    },
}

ARGS = argparse.Namespace()


def text_for(case: str) -> str:
    return f"deploy key {ARGS.secret} \u2192 rotate now ({case})"


def after(body: bytes, needle: bytes, plus: int = 0, start: int = 0) -> int:
    """The offset just after `needle` (plus `plus` bytes) in `body`."""
    i = body.index(needle, start)
    return i + len(needle) + plus


def pieces(body: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(set(c for c in cuts if 0 < c < len(body)))
    out, prev = [], 0
    for c in cuts:
        out.append(body[prev:c])
        prev = c
    out.append(body[prev:])
    return out


def key_cuts(body: bytes, start: int = 0) -> list[int]:
    """After `AKIA`, and in the middle of the 16 characters that follow."""
    k = body.index(ARGS.secret.encode(), start)
    return [k + 4, k + 11]


def result_message(req_id, case: str) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": req_id,
        "result": {"content": [{"type": "text", "text": text_for(case)}], "isError": False},
    }


def stream_for(req_id, case: str, progress_token) -> list[bytes]:
    prime = b"id: ev-0\ndata: \n\n"
    if case == "split_key":
        data = json.dumps(result_message(req_id, case), ensure_ascii=False)
        body = prime + f"id: ev-1\ndata: {data}\n\n".encode()
        arrow = "\u2192".encode()
        cuts = key_cuts(body) + [after(body, arrow, -2), len(body) - 1]
        return pieces(body, cuts)
    if case == "multiline":
        text = json.dumps(text_for(case), ensure_ascii=False)
        lines = [
            '{"jsonrpc": "2.0",',
            f'"id": {json.dumps(req_id)},',
            '"result": {"content": [{"type": "text",',
            f'"text": {text}}}],',
            '"isError": false}}',
        ]
        body = prime + b"event: message\nid: ev-1\n"
        body += "".join(f"data: {line}\n" for line in lines).encode() + b"\n"
        first = after(body, b"data: {")
        second_line = after(body, b"\n", 0, first)  # between data: lines
        third_prefix = after(body, b"\nda", 0, second_line)  # inside "data:"
        cuts = [second_line, third_prefix] + key_cuts(body)
        cuts.append(body.index(b'data: "isError"'))  # between the last two data: lines
        cuts.append(len(body) - 1)  # before the blank line
        return pieces(body, cuts)
    if case in ("progress_first", "progress_leak"):
        body = prime
        cuts = []
        if progress_token is not None:
            message = "scanning the deploy notes"
            if case == "progress_leak":
                message += f" of {ARGS.secret}"
            progress = {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {
                    "progressToken": progress_token,
                    "progress": 1,
                    "total": 2,
                    "message": message,
                },
            }
            p = f"id: ev-1\ndata: {json.dumps(progress)}\n\n".encode()
            cuts.append(len(body) + p.index(b"progress", p.index(b"params")) + 4)
            if case == "progress_leak":
                cuts += [len(body) + c for c in key_cuts(p)]
            body += p
        data = json.dumps(result_message(req_id, case), ensure_ascii=False)
        start = len(body)
        body += f"id: ev-2\ndata: {data}\n\n".encode()
        cuts += [start] + key_cuts(body, start)
        return pieces(body, cuts)
    if case == "crlf":
        data = json.dumps(result_message(req_id, case), ensure_ascii=False)
        body = b"id: ev-0\r\ndata: \r\n\r\n" + f"id: ev-1\r\ndata: {data}\r\n\r\n".encode()
        cr = body.index(b"\r\n\r\n", body.index(ARGS.secret.encode()))
        cuts = key_cuts(body) + [cr + 1, cr + 3]  # \r | \n\r | \n
        return pieces(body, cuts)
    raise ValueError(case)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chunked-sse-server/1"

    def log_message(self, fmt, *args):  # quiet; stderr is the test's
        pass

    def send_json(self, obj, status=200, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_empty(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()

    def do_GET(self):
        self.send_response(405)
        self.send_header("Allow", "POST, DELETE")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self):
        self.send_empty(200)

    def do_POST(self):
        if self.path.split("?")[0] != "/mcp":
            self.send_empty(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            msg = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_json(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}},
                400,
            )
            return
        if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
            self.send_empty(202)  # notifications and responses
            return
        req_id, method = msg["id"], msg["method"]
        params = msg.get("params") or {}
        if method == "initialize":
            asked = params.get("protocolVersion")
            self.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": req_id,
                    "result": {
                        "protocolVersion": asked if asked in VERSIONS else "2025-06-18",
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "chunked-sse-server", "version": "1.0.0"},
                    },
                },
                headers=[("Mcp-Session-Id", SESSION)],
            )
        elif method == "ping":
            self.send_json({"jsonrpc": "2.0", "id": req_id, "result": {}})
        elif method == "tools/list":
            self.send_json({"jsonrpc": "2.0", "id": req_id, "result": {"tools": [TOOL]}})
        elif method == "tools/call" and params.get("name") == "leak":
            case = (params.get("arguments") or {}).get("case")
            if case not in CASES:
                self.send_json(
                    {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32602, "message": "unknown case"}}
                )
                return
            token = (params.get("_meta") or {}).get("progressToken")
            self.stream(stream_for(req_id, case, token))
        else:
            self.send_json(
                {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": "method not found"}}
            )

    def stream(self, parts: list[bytes]):
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Mcp-Session-Id", SESSION)
        self.end_headers()
        self.wfile.flush()
        for part in parts:
            time.sleep(ARGS.delay)
            # One write per piece: the chunk's size line, the piece, CRLF.
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
        time.sleep(ARGS.delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True, help="the (fake) secret the results carry")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.05, help="seconds between writes")
    ap.parse_args(namespace=ARGS)
    if not ARGS.secret.startswith("AKIA") or len(ARGS.secret) != 20:
        ap.error("--secret: an AWS access key id shape, AKIA + 16 characters")
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    print(f"chunked_sse_server: listening on 127.0.0.1:{srv.server_address[1]}", file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
