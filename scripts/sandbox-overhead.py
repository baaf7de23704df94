#!/usr/bin/env python3
"""What the stdio sandbox costs: start-up and per-call time of one stdio
upstream, sandboxed (profile strict) and not (profile none).

    scripts/sandbox-overhead.py [WARDEN] [ROUNDS] [CALLS]

WARDEN defaults to target/release/warden. Each round starts `warden stdio`
with one echo server (the bundled example server) and times
  start: from the first tools/call (which starts the upstream: spawn,
         sandbox set-up, exec, MCP initialize) to its answer, minus the
         same for a second call (the call itself);
  call:  the median of CALLS further tools/call round trips.
Rounds alternate strict and none; medians are printed per profile.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WARDEN = sys.argv[1] if len(sys.argv) > 1 else "target/release/warden"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
CALLS = int(sys.argv[3]) if len(sys.argv) > 3 else 200


def config(profile: str, directory: str) -> str:
    return f"""
servers:
  echo:
    command: '{os.path.abspath(WARDEN)}'
    args: [example-server, --mode, echo]
    sandbox: {{profile: {profile}}}
registry: {{mode: tofu, lock: '{directory}/warden.lock'}}
audit: {{journal: '{directory}/audit/journal'}}
"""


def one_round(profile: str):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "warden.yaml")
        with open(path, "w") as f:
            f.write(config(profile, d))
        p = subprocess.Popen(
            [WARDEN, "stdio", "--config", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        n = 0

        def rpc(method, params):
            nonlocal n
            n += 1
            p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params}) + "\n")
            p.stdin.flush()
            while True:
                line = p.stdout.readline()
                if not line:
                    raise SystemExit("warden exited")
                msg = json.loads(line)
                if msg.get("id") == n:
                    if "error" in msg:
                        raise SystemExit(f"{method}: {msg['error']}")
                    return msg

        rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
        p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        def args(i):
            # Distinct arguments: identical calls in a row trip the loop detector.
            return {"name": "echo__echo", "arguments": {"message": f"x{i}"}}

        t0 = time.perf_counter()
        rpc("tools/call", args(0))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        rpc("tools/call", args(1))
        second = time.perf_counter() - t0
        calls = []
        for i in range(CALLS):
            t0 = time.perf_counter()
            rpc("tools/call", args(i + 2))
            calls.append(time.perf_counter() - t0)
        p.stdin.close()
        p.wait(timeout=10)
        return first - second, statistics.median(calls)


def main():
    results = {"strict": [], "none": []}
    for i in range(ROUNDS):
        for profile in (("strict", "none") if i % 2 == 0 else ("none", "strict")):
            results[profile].append(one_round(profile))
    for profile, rs in results.items():
        start = statistics.median(r[0] for r in rs) * 1000
        call = statistics.median(r[1] for r in rs) * 1e6
        print(f"{profile:6}  start-up {start:7.1f} ms   per call {call:7.0f} µs   ({len(rs)} rounds, {CALLS} calls each)")


if __name__ == "__main__":
    main()
