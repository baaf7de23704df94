#!/usr/bin/env bash
# What the security pipeline costs: in one run, per upstream (the project's
# Rust echo server and, when the peers are installed, server-everything),
# tools/call
#   - directly (session-era client, Streamable HTTP);
#   - through a "bare" Warden: every control that configuration can turn
#     off is off (no identity, no authorization, no limits rules, guards'
#     actions off, audit.enabled: false);
#   - through a "full" Warden: identity (a dev-issuer JWT on every call),
#     authorization (a role granting the tool), the registry (tofu, pinned
#     on first sight), limits (rules that match every call but never
#     refuse), the guards' defaults and the audit trail's default sinks
#     (JSONL + SQLite).
# Both Wardens reach the upstream over Streamable HTTP. At each concurrency
# it prints throughput, p50 and p99, each target's ratios to the direct run,
# full's ratios to bare, and the p50 each Warden adds to the direct p50.
# Then, per Warden, the CPU time it spent per call at the highest
# concurrency (user + system time of the process, all threads, over a run
# of that target alone): on a shared machine the throughput ratios move
# with the neighbours' load; the CPU each call costs moves much less.
#
#   scripts/bench-pipeline.sh [--duration 5s] [--warmup 1s] [--concurrency 1,32]
#                             [--no-everything] [--rss]
#
# --rss also reports the bare Warden's resident memory: idle, after 1,000
# sessions, and with 8 stdio upstreams started. Binaries come from
# $CARGO_TARGET_DIR (default target/); server-everything from
# .peers/env.sh (scripts/install-peers.sh). Every process listens on
# 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EVERYTHING=1
RSS=0
ARGS=()
for a in "$@"; do
  case $a in
  --no-everything) EVERYTHING=0 ;;
  --rss) RSS=1 ;;
  *) ARGS+=("$a") ;;
  esac
done
if ((EVERYTHING)); then
  if [[ -f .peers/env.sh ]]; then
    set -a
    # shellcheck disable=SC1091
    source .peers/env.sh
    set +a
  fi
  if [[ -z ${NODE22:-} || -z ${SERVER_EVERYTHING:-} ]]; then
    echo "bench: server-everything not installed (scripts/install-peers.sh); echo server only" >&2
    EVERYTHING=0
  fi
fi

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

# shellcheck source=scripts/bench-configs.sh
source scripts/bench-configs.sh

# Starts Warden NAME on port PORT (chosen by the caller) with YAML.
start_warden() { # name port yaml
  local name=$1 port=$2
  mkdir -p "$WORK/$name"
  printf '%s\n' "$3" >"$WORK/$name/warden.yaml"
  WARDEN_LOG=warn "$BIN/warden" serve --config "$WORK/$name/warden.yaml" --listen "127.0.0.1:$port" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  WARDEN_PID=$!
  wait_port "$port"
}

# Starts the bare and the full Warden in front of URL; sets BARE_PORT,
# FULL_PORT, TOKEN.
start_pair() { # tag url
  local tag=$1 url=$2
  BARE_PORT=$(free_port)
  mkdir -p "$WORK/$tag-bare"
  start_warden "$tag-bare" "$BARE_PORT" "$(bare_yaml "$WORK/$tag-bare" "$url")"
  BARE_PID=$WARDEN_PID
  FULL_PORT=$(free_port)
  local dir=$WORK/$tag-full
  mkdir -p "$dir"
  full_yaml "$dir" "$url" "$FULL_PORT" >"$dir/warden.yaml"
  TOKEN=$("$BIN/warden" token mint --config "$dir/warden.yaml" --sub bench --roles bench --ttl 2h)
  start_warden "$tag-full" "$FULL_PORT" "$(cat "$dir/warden.yaml")"
  FULL_PID=$WARDEN_PID
}

# The CPU-per-call runs: the highest concurrency asked for, the duration.
arg_of() { printf '%s\n' ${ARGS[@]+"${ARGS[@]}"} | awk -v f="$1" 'p {print; exit} $0 == f {p=1}'; }
CPU_CONCURRENCY=$(arg_of --concurrency | tr ',' '\n' | sort -n | tail -1)
CPU_CONCURRENCY=${CPU_CONCURRENCY:-32}
DURATION=$(arg_of --duration)
DURATION=${DURATION:-5s}
DEFAULTS=()
[[ " ${ARGS[*]-} " == *" --duration"* ]] || DEFAULTS+=(--duration 5s)
[[ " ${ARGS[*]-} " == *" --warmup"* ]] || DEFAULTS+=(--warmup 1s)

# CPU seconds (user + system, every thread) a process has used.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# Microseconds of Warden CPU per call: one target alone at the highest
# concurrency for the run's --duration, no warm-up (the table's run
# warmed it).
cpu_per_call() { # pid name url [header]
  local pid=$1 name=$2 url=$3 hdr=() c0 c1
  [[ -n ${4:-} ]] && hdr=(--target-header "$name=$4")
  c0=$(cpu_s "$pid")
  "$BIN/warden-bench" --json --target "$name=$url" --target-tool "$name=up__echo" ${hdr[@]+"${hdr[@]}"} \
    --concurrency "$CPU_CONCURRENCY" --duration "$DURATION" --warmup 0s >"$WORK/cpu-$name.json"
  c1=$(cpu_s "$pid")
  python3 - "$name" "$c0" "$c1" "$WORK/cpu-$name.json" <<'EOF'
import json, sys
name, c0, c1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
n = sum(r["requests"] for r in json.load(open(path))["rows"])
print(f"  {name}: {(c1 - c0) / max(n, 1) * 1e6:.0f} µs of Warden CPU per call ({n} calls)")
EOF
}

# One warden-bench run per upstream: direct first (the baseline), then
# bare, then full (also compared with bare).
bench_pair() { # tag direct-url
  local tag=$1
  "$BIN/warden-bench" --json \
    --target "direct=$2" \
    --target "bare=http://127.0.0.1:$BARE_PORT/mcp" \
    --target "full=http://127.0.0.1:$FULL_PORT/mcp" \
    --target-tool bare=up__echo --target-tool full=up__echo \
    --target-header "full=Authorization: Bearer $TOKEN" \
    --target-reference full=bare \
    "${DEFAULTS[@]}" ${ARGS[@]+"${ARGS[@]}"} >"$WORK/$tag.json"
  python3 - "$tag" "$WORK/$tag.json" <<'EOF'
import json, sys
tag, path = sys.argv[1], sys.argv[2]
rows = json.load(open(path))["rows"]
direct = {r["concurrency"]: r for r in rows if r["target"] == "direct"}
print(f"\n{tag}: tools/call, session-era client")
print("| target | c | req/s | p50 | p99 | req/s vs direct | added p50 | req/s full/bare | errors |")
print("|---|---|---|---|---|---|---|---|---|")
def us(ms):
    return "–" if ms is None else f"{ms * 1000:.0f} µs"
for r in rows:
    d = direct[r["concurrency"]]
    added = "" if r["target"] == "direct" or r["p50_ms"] is None or d["p50_ms"] is None \
        else f"+{(r['p50_ms'] - d['p50_ms']) * 1000:.0f} µs"
    ratio = "" if r["target"] == "direct" or r["throughput_ratio"] is None else f"{r['throughput_ratio']:.2f}x"
    vs = "" if r.get("throughput_vs_reference") is None else f"{r['throughput_vs_reference']:.2f}x"
    print(f"| {r['target']} | {r['concurrency']} | {r['throughput_rps']:.0f} | {us(r['p50_ms'])} | "
          f"{us(r['p99_ms'])} | {ratio} | {added} | {vs} | {r['errors']} |")
    if r.get("first_error"):
        print(f"  first error: {r['first_error']}", file=sys.stderr)
EOF
  echo "CPU per call at concurrency $CPU_CONCURRENCY:"
  cpu_per_call "$BARE_PID" bare "http://127.0.0.1:$BARE_PORT/mcp"
  cpu_per_call "$FULL_PID" full "http://127.0.0.1:$FULL_PORT/mcp" "Authorization: Bearer $TOKEN"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

ECHO_PORT=$(free_port)
"$BIN/warden" example-server --mode echo --http "127.0.0.1:$ECHO_PORT" >/dev/null 2>"$WORK/echo.log" &
PIDS+=($!)
wait_port "$ECHO_PORT"
start_pair echo "http://127.0.0.1:$ECHO_PORT/mcp"
bench_pair echo "http://127.0.0.1:$ECHO_PORT/mcp"

if ((EVERYTHING)); then
  EV_PORT=$(free_port)
  PORT=$EV_PORT "$NODE22" --require "$LOOPBACK_ONLY_CJS" "$SERVER_EVERYTHING" streamableHttp \
    >"$WORK/everything.log" 2>&1 &
  PIDS+=($!)
  wait_port "$EV_PORT"
  start_pair everything "http://127.0.0.1:$EV_PORT/mcp"
  bench_pair server-everything "http://127.0.0.1:$EV_PORT/mcp"
fi

if ((RSS)); then
  # A fresh bare Warden in front of the echo server: idle, then with 1,000
  # sessions open (initialize, never ended).
  P=$(free_port)
  start_warden rss "$P" "$EDGE
$BARE
registry: {mode: tofu, lock: '$WORK/rss.lock'}
$(servers_yaml "http://127.0.0.1:$ECHO_PORT/mcp")"
  RSS_PID=$WARDEN_PID
  sleep 1
  IDLE=$(rss_kib "$RSS_PID")
  python3 - "$P" <<'EOF'
import http.client, json, sys
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "rss", "version": "1"}}})
for _ in range(1000):
    conn.request("POST", "/mcp", body, {"Content-Type": "application/json",
                                        "Accept": "application/json, text/event-stream"})
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"initialize: HTTP {r.status}")
EOF
  sleep 1
  SESSIONS=$(rss_kib "$RSS_PID")
  # Eight stdio upstreams (the echo server as a child process each),
  # started by listing the tools of each.
  P=$(free_port)
  {
    echo "$EDGE"
    echo "$BARE"
    echo "registry: {mode: tofu, lock: '$WORK/rss8.lock'}"
    echo "servers:"
    for i in 1 2 3 4 5 6 7 8; do
      printf '  s%s:\n    command: %s\n    args: [example-server, --mode, echo]\n    isolation: shared\n' "$i" "$BIN/warden"
    done
  } >"$WORK/rss8.yaml"
  P0=$(free_port)
  start_warden rss0 "$P0" "$EDGE
$BARE
registry: {mode: tofu, lock: '$WORK/rss0.lock'}
servers: {}"
  R0_PID=$WARDEN_PID
  start_warden rss8 "$P" "$(cat "$WORK/rss8.yaml")"
  R8_PID=$WARDEN_PID
  python3 - "$P" <<'EOF'
import http.client, json, sys
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port)
h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "rss", "version": "1"}}}), h)
r = conn.getresponse(); r.read()
h["Mcp-Session-Id"] = r.getheader("Mcp-Session-Id")
conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), h)
r = conn.getresponse(); r.read()
conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), h)
r = conn.getresponse(); body = r.read().decode()
if body.count("__echo") < 8:
    sys.exit("tools/list did not list the eight upstreams' tools")
EOF
  sleep 1
  echo
  echo "resident memory (VmRSS) of a bare Warden:"
  echo "  idle, one HTTP upstream: $IDLE KiB"
  echo "  after 1,000 sessions: $SESSIONS KiB ($(((SESSIONS - IDLE))) KiB per 1,000 sessions)"
  echo "  no upstream: $(rss_kib "$R0_PID") KiB; 8 stdio upstreams started: $(rss_kib "$R8_PID") KiB" \
    "($((($(rss_kib "$R8_PID") - $(rss_kib "$R0_PID")) / 8)) KiB each in Warden, children not counted)"
fi
