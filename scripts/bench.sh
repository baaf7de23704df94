#!/usr/bin/env bash
# The load benchmark: in one run, the echo MCP server called directly over
# Streamable HTTP (a session-era client), and through Warden with that server
# as a stdio upstream and as an HTTP upstream, each Warden driven by a
# session-era client and by a stateless 2026-07-28 client; tools/call at each
# concurrency; throughput, p50, p99, the ratios to the direct run, and each
# 2026-07-28 run's ratios to the session run of the same Warden.
#
#   scripts/bench.sh [--duration 5s] [--warmup 1s] [--concurrency 1,32] [--json]
#
# Five targets at two levels take about a minute with the defaults. Binaries
# come from $CARGO_TARGET_DIR (default target/). Every process listens on
# 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

ECHO_PORT=$(free_port)
"$BIN/warden" example-server --mode echo --http "127.0.0.1:$ECHO_PORT" >/dev/null 2>"$WORK/echo.log" &
PIDS+=($!)
wait_port "$ECHO_PORT"

# Every client of the load generator is one anonymous caller on one
# address, and sessions are not ended between levels: the per-address and
# per-principal edge caps are raised so that they do not refuse it.
EDGE="listen: {max_connections_per_ip: 100000}
gateway: {max_sessions_per_principal: 100000}"

# Starts Warden on a free port; sets PORT. (Not in $(...): a background
# child would hold the substitution's pipe open.)
start_warden() { # name yaml
  local name=$1
  PORT=$(free_port)
  # One directory per Warden: each keeps its own audit trail next to its config.
  mkdir -p "$WORK/$name"
  printf '%s\n%s\n' "$EDGE" "$2" >"$WORK/$name/warden.yaml"
  WARDEN_LOG=warn "$BIN/warden" serve --config "$WORK/$name/warden.yaml" --listen "127.0.0.1:$PORT" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  wait_port "$PORT"
}

# The limits stage runs with rules that never refuse: the benchmark sends
# one principal's identical calls as fast as it can, which the default
# rate rule and loop detection would (rightly) cut.
LIMITS="limits:
  rate: [{id: bench, per: [principal], rate: 1000000/s, burst: 1000000}]
  concurrency: [{id: bench, per: [principal], max: 100000}]
  loops: {max_repeats: 1000000, window: 1s}
"

# Trust on first use: the benchmark measures the pipeline, not pinning.
start_warden stdio "$LIMITS
registry: {mode: tofu, lock: '$WORK/stdio.lock'}
servers:
  echo:
    command: '$BIN/warden'
    args: [example-server, --mode, echo]
    isolation: shared
"
STDIO_PORT=$PORT
start_warden http "$LIMITS
registry: {mode: tofu, lock: '$WORK/http.lock'}
servers:
  echo:
    url: http://127.0.0.1:$ECHO_PORT/mcp
    isolation: shared
"
HTTP_PORT=$PORT

# Shorter windows than the bench's own defaults: five targets per level.
DEFAULTS=()
[[ " $* " == *" --duration"* ]] || DEFAULTS+=(--duration 5s)
[[ " $* " == *" --warmup"* ]] || DEFAULTS+=(--warmup 1s)

# Each Warden serves both clients: the modern runs follow the session runs of
# the same process, and are also compared with them (--target-reference).
TARGETS=(--target "direct=http://127.0.0.1:$ECHO_PORT/mcp")
for w in stdio http; do
  port=$STDIO_PORT
  [[ $w == http ]] && port=$HTTP_PORT
  TARGETS+=(
    --target "warden-$w=http://127.0.0.1:$port/mcp"
    --target "warden-$w-modern=http://127.0.0.1:$port/mcp"
    --target-tool "warden-$w=echo__echo"
    --target-tool "warden-$w-modern=echo__echo"
    --target-protocol "warden-$w-modern=modern"
    --target-reference "warden-$w-modern=warden-$w"
  )
done

"$BIN/warden-bench" "${TARGETS[@]}" "${DEFAULTS[@]}" "$@"
