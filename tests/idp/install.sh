#!/usr/bin/env bash
# Install the authorization-server fixture (npm oidc-provider, pinned by the
# package-lock.json beside this script) into a git-ignored folder:
# .peers/idp by default, WARDEN_PEERS_DIR/idp when that is set.
#
# Idempotent: a stamp holds the hash of the inputs; a second run with the same
# inputs returns at once. Needs npm (node >= 20). scripts/install-peers.sh
# calls this; warden-identity's integration tests look for
# $WARDEN_PEERS_DIR/idp/node_modules (or .peers/idp) and skip with a notice
# when it is missing, unless WARDEN_REQUIRE_PEERS=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="${WARDEN_PEERS_DIR:-$ROOT/.peers}"
DIR="$PEERS/idp"

log() { printf '[install-idp] %s\n' "$*" >&2; }
die() { printf '[install-idp] error: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null || die "npm not found (need node >= 20 with npm)"

HASH="$({ sha256sum "$HERE/install.sh" "$HERE/package.json" "$HERE/package-lock.json" | awk '{print $1}'; } | sha256sum | awk '{print $1}')"
STAMP="$DIR/.warden-stamp"
if [[ "${WARDEN_PEERS_FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]]; then
  log "up to date ($DIR)"
  exit 0
fi

log "installing oidc-provider into $DIR"
rm -rf "$DIR"
mkdir -p "$DIR"
cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
if ! (cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$DIR/.npm-ci.log" 2>&1); then
  cat "$DIR/.npm-ci.log" >&2
  die "npm ci failed in $DIR"
fi
node -e '
  const fs = require("fs"), path = require("path");
  const dir = process.argv[1];
  const deps = require(path.join(dir, "package.json")).dependencies;
  for (const [name, want] of Object.entries(deps)) {
    const p = path.join(dir, "node_modules", name, "package.json");
    if (!fs.existsSync(p)) { console.error("missing " + name); process.exit(1); }
    const got = JSON.parse(fs.readFileSync(p, "utf8")).version;
    if (got !== want) { console.error(name + " is " + got + ", wanted " + want); process.exit(1); }
  }' "$DIR" || die "npm ci in $DIR did not install what package.json pins"
printf '%s' "$HASH" >"$STAMP"
log "done"
