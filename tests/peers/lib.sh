# shellcheck shell=bash
# Helpers for scripts that start real MCP peers on loopback and stop them again.
#   source tests/peers/lib.sh
#   port=$(peers_free_port)
#   peers_start NAME LOGFILE -- env PORT=$port "$NODE22" --require "$LOOPBACK_ONLY_CJS" "$SERVER_EVERYTHING" streamableHttp
#   peers_wait_port $port
#   ...
#   peers_stop_all        (also runs on EXIT once peers_start was used)
# Every server is started in its own process group and killed by that group's id.

PEERS_PIDS=()

peers_free_port() {
  "${PYTHON:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

peers_start() {
  local name="$1" log="$2"
  shift 2
  [[ "${1:-}" == -- ]] && shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  local pid=$!
  PEERS_PIDS+=("$pid")
  printf '[peers] started %s (pid %s): %s\n' "$name" "$pid" "$*" >&2
  trap peers_stop_all EXIT
}

peers_wait_port() {
  local port="$1" deadline=$((SECONDS + ${2:-20}))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "[peers] nothing listens on 127.0.0.1:$port after ${2:-20}s" >&2
  return 1
}

peers_stop_all() {
  local pid
  for pid in "${PEERS_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PEERS_PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  PEERS_PIDS=()
}
