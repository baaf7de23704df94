# Sourced by scripts/bench*.sh: builds the release binaries, sets BIN and
# WORK, stops every process in PIDS and removes WORK on exit; free_port and
# wait_port. WARDEN_BENCH_BIN=DIR runs the `warden` and `warden-bench` in
# DIR instead, unbuilt (e.g. a copy of an earlier build, for an A/B).

if [[ -n ${WARDEN_BENCH_BIN:-} ]]; then
  BIN=$WARDEN_BENCH_BIN
else
  cargo build --release --locked -q -p warden-cli -p warden-bench
  BIN=${CARGO_TARGET_DIR:-target}/release
fi
[[ $BIN == /* ]] || BIN=$PWD/$BIN
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {
  for _ in $(seq 1 400); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on 127.0.0.1:$1" >&2
  return 1
}
