#!/usr/bin/env bash
# Verify the peer harness against the real upstream servers directly (no Warden):
# every driver x every server-everything transport, tool listings of the other
# reference servers over stdio, the inspector CLI, tests/peers/conformance_server.py in
# both protocol eras, and (with --conformance) the conformance suites against both
# HTTP upstreams compared with conformance/baseline-*.json.
#
#   tests/peers/verify.sh [--conformance] [--out DIR]
#
# Prints one line per check and a closing "N passed, N failed"; exits 1 if any
# check failed. Each driver's JSON is kept in DIR (default: a temp dir).
# All servers listen on 127.0.0.1 only and are killed on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CONFORMANCE=0 OUT=""
while (($#)); do
  case "$1" in
    --conformance) CONFORMANCE=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: $0 [--conformance] [--out DIR]" >&2; exit 2 ;;
  esac
done
[[ -f "$ROOT/.peers/env.sh" ]] || bash "$ROOT/scripts/install-peers.sh"
# shellcheck disable=SC1091
source "$ROOT/.peers/env.sh"
# shellcheck source=tests/peers/lib.sh
source "$HERE/lib.sh"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/warden-peers-verify.XXXXXX")}"
mkdir -p "$OUT"

PASS=0 FAIL=0
declare -a FAILED=()
# check NAME JQ-LIKE-PYTHON-EXPR -- COMMAND...: run COMMAND (stdout = one JSON object),
# then evaluate EXPR over it as `d` (python); both must succeed.
check() {
  local name="$1" expr="$2"
  shift 3
  local file="$OUT/${name//[^A-Za-z0-9_.-]/_}.json" rc=0
  "$@" >"$file" 2>"$file.stderr" || rc=$?
  if ((rc == 0)) && "$PYTHON_BIN" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$file" 2>>"$file.stderr"; then
    PASS=$((PASS + 1)); printf 'ok    %s\n' "$name"
  else
    FAIL=$((FAIL + 1)); FAILED+=("$name"); printf 'FAIL  %s (exit %s; see %s)\n' "$name" "$rc" "$file"
    head -c 600 "$file" | sed 's/^/      /'; echo
  fi
}
PYTHON_BIN="${PYTHON:-python3}"

# ---- servers ---------------------------------------------------------------
HTTP_PORT=$(peers_free_port)
peers_start everything-http "$OUT/server-everything-http.log" -- \
  env PORT="$HTTP_PORT" "$NODE22" --require "$LOOPBACK_ONLY_CJS" "$SERVER_EVERYTHING" streamableHttp
SSE_PORT=$(peers_free_port)
peers_start everything-sse "$OUT/server-everything-sse.log" -- \
  env PORT="$SSE_PORT" "$NODE22" --require "$LOOPBACK_ONLY_CJS" "$SERVER_EVERYTHING" sse
peers_wait_port "$HTTP_PORT"
peers_wait_port "$SSE_PORT"
HTTP_URL="http://127.0.0.1:$HTTP_PORT/mcp"
SSE_URL="http://127.0.0.1:$SSE_PORT/sse"

# The fixed scenario: list everything, plain call, sampling, elicitation, roots,
# a resource read, a prompt with arguments.
SCENARIO=(--list
  --call echo --args '{"message":"warden"}'
  --call get-sum --args '{"a":2,"b":3}'
  --call trigger-sampling-request --args '{"prompt":"hello"}'
  --call trigger-elicitation-request
  --call get-roots-list
  --read demo://resource/static/document/architecture.md
  --prompt args-prompt --prompt-args '{"city":"Paris"}')
FULL_OK='d["ok"] and "echo" in d["tools"] and d["calls"][0]["text"] == "Echo: warden"
  and "The sum of 2 and 3 is 5." in d["calls"][1]["text"]
  and "sampled: " in d["calls"][2]["text"] and d["callbacks"]["sampling"]
  and d["callbacks"]["elicitation"] and "User provided the requested information" in d["calls"][3]["text"]
  and "file:///tmp" in d["calls"][4]["text"]
  and d["reads"][0]["ok"] and d["prompts_got"][0]["messages"] == 1'

STDIO_EVERYTHING=(--command "$NODE22" "$SERVER_EVERYTHING" stdio)
for drv in py1 py2 ts20 ts22; do
  case "$drv" in
    py1) run=("$PY1" "$HERE/py_client.py") ;;
    py2) run=("$PY2" "$HERE/py_client.py") ;;
    ts20) run=("$NODE20" "$HERE/ts_client.mjs") ;;
    ts22) run=("$NODE22" "$HERE/ts_client.mjs") ;;
  esac
  check "$drv/everything/streamable-http" "$FULL_OK" -- "${run[@]}" --url "$HTTP_URL" "${SCENARIO[@]}"
  check "$drv/everything/sse" "$FULL_OK" -- "${run[@]}" --transport sse --url "$SSE_URL" "${SCENARIO[@]}"
  check "$drv/everything/stdio" "$FULL_OK" -- "${run[@]}" "${SCENARIO[@]}" "${STDIO_EVERYTHING[@]}"
done

# Protocol selection.
check "py2/everything/legacy-2025-03-26" 'd["ok"] and d["protocol_version"] == "2025-03-26"' -- \
  "$PY2" "$HERE/py_client.py" --protocol 2025-03-26 --url "$HTTP_URL" --list
check "py1/everything/2025-06-18" 'd["ok"] and d["protocol_version"] == "2025-06-18"' -- \
  "$PY1" "$HERE/py_client.py" --protocol 2025-06-18 --url "$HTTP_URL" --list
check "ts/everything/2024-11-05" 'd["ok"] and d["protocol_version"] == "2024-11-05"' -- \
  "$NODE20" "$HERE/ts_client.mjs" --protocol 2024-11-05 --url "$HTTP_URL" --list
# A header reaches the server (server-everything ignores it; Warden will check the bearer).
check "py2/everything/header" 'd["ok"]' -- \
  "$PY2" "$HERE/py_client.py" --header "Authorization=Bearer test-token" --url "$HTTP_URL" --list
# A failing call is reported as such (exit 1, ok false, the error recorded).
check_fails() {
  local name="$1"; shift
  local file="$OUT/${name//[^A-Za-z0-9_.-]/_}.json" rc=0
  "$@" >"$file" 2>"$file.stderr" || rc=$?
  if ((rc == 1)) && "$PYTHON_BIN" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if not d['ok'] and d['errors'] else 1)" "$file"; then
    PASS=$((PASS + 1)); printf 'ok    %s\n' "$name"
  else
    FAIL=$((FAIL + 1)); FAILED+=("$name"); printf 'FAIL  %s (exit %s; see %s)\n' "$name" "$rc" "$file"
  fi
}
check_fails "py1/everything/unknown-tool" "$PY1" "$HERE/py_client.py" --url "$HTTP_URL" --call no-such-tool
check_fails "ts/everything/unknown-tool" "$NODE20" "$HERE/ts_client.mjs" --url "$HTTP_URL" --call no-such-tool
check_fails "py2/modern-against-session-era" "$PY2" "$HERE/py_client.py" --protocol 2026-07-28 --url "$HTTP_URL" --list
check_fails "py2/connection-refused" "$PY2" "$HERE/py_client.py" --url "http://127.0.0.1:$(peers_free_port)/mcp" --list --timeout 20

# ---- the other reference servers over stdio --------------------------------
FSROOT="$(mktemp -d "${TMPDIR:-/tmp}/warden-fs.XXXXXX")"
echo "hello from warden" >"$FSROOT/hello.txt"
GITREPO="$(mktemp -d "${TMPDIR:-/tmp}/warden-git.XXXXXX")"
git -C "$GITREPO" init -q && git -C "$GITREPO" -c user.email=t@t -c user.name=t commit -q --allow-empty -m init
MEMFILE="$(mktemp -u "${TMPDIR:-/tmp}/warden-memory.XXXXXX").jsonl"
for drv in py1 py2 ts; do
  case "$drv" in
    py1) run=("$PY1" "$HERE/py_client.py") ;;
    py2) run=("$PY2" "$HERE/py_client.py") ;;
    ts) run=("$NODE20" "$HERE/ts_client.mjs") ;;
  esac
  check "$drv/filesystem/stdio" '"read_text_file" in d["tools"] and d["ok"] and "hello from warden" in d["calls"][0]["text"]' -- \
    "${run[@]}" --list --call read_text_file --args "{\"path\":\"$FSROOT/hello.txt\"}" --command "$NODE20" "$SERVER_FILESYSTEM" "$FSROOT"
  check "$drv/memory/stdio" '"create_entities" in d["tools"] and d["ok"]' -- \
    "${run[@]}" --env MEMORY_FILE_PATH="$MEMFILE" --list --call read_graph --command "$NODE20" "$SERVER_MEMORY"
  check "$drv/time/stdio" '"get_current_time" in d["tools"] and d["ok"]' -- \
    "${run[@]}" --list --call get_current_time --args '{"timezone":"UTC"}' --command "$MCP_SERVER_TIME"
  check "$drv/git/stdio" '"git_status" in d["tools"] and d["ok"]' -- \
    "${run[@]}" --list --call git_status --args "{\"repo_path\":\"$GITREPO\"}" --command "$MCP_SERVER_GIT" --repository "$GITREPO"
done
check "py2/time/stdio-negotiates-2026-07-28" 'd["ok"] and d["protocol_version"] == "2026-07-28"' -- \
  "$PY2" "$HERE/py_client.py" --list --command "$MCP_SERVER_TIME"

# ---- inspector CLI -----------------------------------------------------------
check "inspector/everything/streamable-http" '"tools" in d["result"] and any(t["name"] == "echo" for t in d["result"]["tools"])' -- \
  "$HERE/inspector.sh" --url "$HTTP_URL" --method tools/list
check "inspector/everything/sse" 'd["result"]["content"][0]["text"] == "Echo: hi"' -- \
  "$HERE/inspector.sh" --url "$SSE_URL" --transport sse --method tools/call --tool-name echo --tool-args-json '{"message":"hi"}'
check "inspector/everything/stdio" 'd["result"]["content"][0]["text"] == "Echo: hi"' -- \
  "$HERE/inspector.sh" --command "$NODE22" "$SERVER_EVERYTHING" stdio -- --method tools/call --tool-name echo --tool-args-json '{"message":"hi"}'

# ---- the conformance reference server (mcp 2.x, both eras) ---------------------
CONF_PORT=$(peers_free_port)
peers_start conformance-server "$OUT/conformance-server.log" -- \
  "$PY2" "$HERE/conformance_server.py" --port "$CONF_PORT"
peers_wait_port "$CONF_PORT"
CONF_URL="http://127.0.0.1:$CONF_PORT/mcp"
CONF_SCENARIO=(--list --call test_simple_text --call test_sampling --args '{"prompt":"hi"}'
  --call test_elicitation --args '{"message":"who?"}' --call test_input_required_result_list_roots
  --read test://static-text --prompt test_prompt_with_arguments --prompt-args '{"arg1":"a","arg2":"b"}')
CONF_OK='d["ok"] and d["calls"][1]["text"] == "LLM response: sampled: hi" and "action=accept" in d["calls"][2]["text"]
  and d["calls"][3]["text"] == "Roots: file:///tmp" and d["reads"][0]["ok"]'
check "py1/conformance-server/session-era" "$CONF_OK"' and d["protocol_version"] == "2025-11-25"' -- \
  "$PY1" "$HERE/py_client.py" --url "$CONF_URL" "${CONF_SCENARIO[@]}"
check "py2/conformance-server/2026-07-28" "$CONF_OK"' and d["protocol_version"] == "2026-07-28"' -- \
  "$PY2" "$HERE/py_client.py" --url "$CONF_URL" "${CONF_SCENARIO[@]}"
check "py2/conformance-server/legacy" "$CONF_OK"' and d["protocol_version"] == "2025-11-25"' -- \
  "$PY2" "$HERE/py_client.py" --protocol legacy --url "$CONF_URL" "${CONF_SCENARIO[@]}"
check "ts/conformance-server/session-era" "$CONF_OK" -- \
  "$NODE20" "$HERE/ts_client.mjs" --url "$CONF_URL" "${CONF_SCENARIO[@]}"
check "inspector/conformance-server/modern" 'd["result"]["content"][0]["text"] == "This is a simple text response for testing."' -- \
  "$HERE/inspector.sh" --era modern --url "$CONF_URL" --method tools/call --tool-name test_simple_text

# ---- conformance suites, each upstream against its baseline --------------------
if ((CONFORMANCE)); then
  for suite in v1 v2; do
    check "conformance/$suite/conformance-server" 'not d["unexpected_failures"]' -- \
      "$ROOT/scripts/conformance.sh" "$suite" "$CONF_URL" /dev/stdout --baseline "$ROOT/conformance/baseline-$suite.json"
    check "conformance/$suite/server-everything" 'not d["unexpected_failures"]' -- \
      "$ROOT/scripts/conformance.sh" "$suite" "$HTTP_URL" /dev/stdout --baseline "$ROOT/conformance/baseline-$suite-server-everything.json"
  done
fi

peers_stop_all
rm -rf "$FSROOT" "$GITREPO" "$MEMFILE"
echo "peers: $PASS passed, $FAIL failed"
((FAIL == 0)) || { printf 'failed: %s\n' "${FAILED[*]}" >&2; exit 1; }
