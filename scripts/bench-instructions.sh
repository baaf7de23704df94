#!/usr/bin/env bash
# Instructions per call: the work a Warden does for one tools/call,
# counted by valgrind's callgrind, which does not depend on the machine's
# other load (wall-clock figures on a shared 2-core machine do).
#
#   scripts/bench-instructions.sh [bare|full ...] [--calls N] [--top K]
#
# For each Warden named (default: bare and full, configured as in
# scripts/bench-pipeline.sh, in front of the project's echo server over
# Streamable HTTP): starts it under callgrind, warms it with 300 calls
# from `warden-bench --concurrency 1`, zeroes the counters, drives N more
# calls (default 2000), dumps, and prints instructions per call; `--top K`
# also prints the K functions with the most inclusive instructions per
# call (callgrind_annotate); KEEP_PROFILE=PATH keeps each dump as
# PATH.bare / PATH.full. Under valgrind the CPU's SHA extensions are
# hidden, so SHA-256 costs several times what it costs on the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CALLS=2000
TOP=0
WHICH=()
while (($#)); do
  case $1 in
  --calls) CALLS=$2; shift 2 ;;
  --top) TOP=$2; shift 2 ;;
  bare | full) WHICH+=("$1"); shift ;;
  *) echo "usage: $0 [bare|full ...] [--calls N] [--top K]" >&2; exit 2 ;;
  esac
done
((${#WHICH[@]})) || WHICH=(bare full)
command -v valgrind >/dev/null || { echo "bench: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
# shellcheck source=scripts/bench-configs.sh
source scripts/bench-configs.sh

ECHO_PORT=$(free_port)
"$BIN/warden" example-server --mode echo --http "127.0.0.1:$ECHO_PORT" >/dev/null 2>"$WORK/echo.log" &
PIDS+=($!)
wait_port "$ECHO_PORT"
UP="http://127.0.0.1:$ECHO_PORT/mcp"

for which in "${WHICH[@]}"; do
  port=$(free_port)
  dir=$WORK/$which
  mkdir -p "$dir"
  hdr=()
  if [[ $which == bare ]]; then
    bare_yaml "$dir" "$UP" >"$dir/warden.yaml"
  else
    full_yaml "$dir" "$UP" "$port" >"$dir/warden.yaml"
    token=$("$BIN/warden" token mint --config "$dir/warden.yaml" --sub bench --roles bench --ttl 2h)
    hdr=(--target-header "w=Authorization: Bearer $token")
  fi
  out=$dir/callgrind.out
  WARDEN_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$BIN/warden" serve --config "$dir/warden.yaml" --listen "127.0.0.1:$port" \
    >"$dir/out" 2>"$dir/log" &
  pid=$!
  PIDS+=("$pid")
  # Under valgrind start-up takes minutes (the guards compile their
  # automata): wait while the process lives.
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: $which Warden exited:" >&2
      tail -20 "$dir/log" >&2
      exit 1
    fi
    sleep 0.2
  done
  drive() {
    "$BIN/warden-bench" --json --target "w=http://127.0.0.1:$port/mcp" --target-tool w=up__echo \
      ${hdr[@]+"${hdr[@]}"} --concurrency 1 --calls "$1" --warmup 0s >"$dir/bench.json"
  }
  drive 300
  callgrind_control -z "$pid" >/dev/null
  drive "$CALLS"
  callgrind_control -d "$pid" >/dev/null
  dump=$(ls -t "$out".* 2>/dev/null | head -1)
  total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$dump")
  python3 - "$which" "$total" "$CALLS" <<'PY'
import sys
name, total, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"{name}: {total / calls / 1000:.1f} k instructions per call ({calls} calls, {total:,} in all)")
PY
  if ((TOP)); then
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
      awk -v calls="$CALLS" -v top="$TOP" '
        /^-+$/ {sep++; next}
        sep >= 3 && $1 ~ /^[0-9,]+$/ && n < top {
          v = $1; gsub(",", "", v); $1 = ""; $2 = ""
          printf "  %8.1f k  %s\n", v / calls / 1000, substr($0, 1, 160); n++
        }'
  fi
  [[ -n ${KEEP_PROFILE:-} ]] && cp "$dump" "$KEEP_PROFILE.$which"
  kill "$pid" 2>/dev/null || true
done
