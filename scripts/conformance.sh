#!/usr/bin/env bash
# Run the official MCP conformance suite's SERVER scenarios against a running
# server and write a machine-readable summary.
#
#   scripts/conformance.sh SUITE URL OUT.json [--baseline FILE] [-- EXTRA-SUITE-ARGS...]
#
# SUITE
#   v1         @modelcontextprotocol/conformance 0.1.x, its default ("active") server suite
#   v2         0.2.0-alpha, `--requirements 2026-07-28`: exactly the scenarios the
#              2026-07-28 revision requires (server-stateless, caching,
#              input-required-result-*, ... and the 2026-07-28 variants of the
#              tools/resources/prompts scenarios), plus the extension and pending
#              ones it runs but does not score
#   v2-active  0.2.0-alpha, its default ("active") suite: the session-era
#              scenarios as that version checks them
# URL         the server's Streamable HTTP endpoint, e.g. http://127.0.0.1:3001/mcp
#             (loopback only)
# OUT.json    summary: {"suite", "package", "version", "url", "scenarios": {NAME:
#             {"status": "pass"|"fail", "passed", "failed", "warnings", "failures":
#             [{"id", "message"}]}}, "totals": {...}, "suite_exit_code"}
# --baseline  conformance/baseline-*.json: {"expected_failures": {NAME: REASON}}.
#             With it, OUT.json also gets "unexpected_failures" and
#             "stale_baseline", and the exit status is 1 when a scenario fails that
#             the baseline does not list.
#
# Exit status: 0 the suite ran (and, with --baseline, nothing failed unexpectedly);
# 1 unexpected failures; 2 usage or the suite could not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

(($# >= 3)) || usage
SUITE="$1" URL="$2" OUT="$3"
shift 3
BASELINE=""
declare -a EXTRA=()
while (($#)); do
  case "$1" in
    --baseline) BASELINE="$2"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage ;;
  esac
done

case "$URL" in
  http://127.0.0.1:*|http://localhost:*|http://\[::1\]:*) ;;
  *) echo "conformance.sh: $URL is not a loopback URL" >&2; exit 2 ;;
esac

if [[ ! -f "$ROOT/.peers/env.sh" ]]; then
  bash "$ROOT/scripts/install-peers.sh"
fi
# shellcheck disable=SC1091
source "${WARDEN_PEERS:-$ROOT/.peers}/env.sh"

declare -a ARGS=(server --url "$URL")
case "$SUITE" in
  v1) CLI="$CONFORMANCE_V1" ;;
  v2) CLI="$CONFORMANCE_V2"; ARGS+=(--requirements 2026-07-28) ;;
  v2-active) CLI="$CONFORMANCE_V2" ;;
  *) echo "conformance.sh: unknown suite $SUITE (v1, v2, v2-active)" >&2; exit 2 ;;
esac

WORK="$(mktemp -d "${TMPDIR:-/tmp}/warden-conformance.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ARGS+=(-o "$WORK/results")
if ((${#EXTRA[@]})); then ARGS+=("${EXTRA[@]}"); fi

echo "[conformance] $SUITE: $(basename "$(dirname "$(dirname "$CLI")")") against $URL" >&2
set +e
(cd "$WORK" && timeout --kill-after=10 1200 "$NODE22" "$CLI" "${ARGS[@]}" >"$WORK/stdout.txt" 2>"$WORK/stderr.txt")
SUITE_RC=$?
set -e
sed -n '/=== SUMMARY ===/,$p' "$WORK/stdout.txt" >&2

mkdir -p "$(dirname "$OUT")"
set +e
"${PYTHON:-python3}" - "$WORK" "$SUITE" "$URL" "$CLI" "$SUITE_RC" "$OUT" "$BASELINE" <<'PY'
import json, os, re, sys

work, suite, url, cli, rc, out, baseline = sys.argv[1:8]
pkg = json.load(open(os.path.join(os.path.dirname(os.path.dirname(cli)), "package.json")))
stdout = open(os.path.join(work, "stdout.txt"), encoding="utf-8", errors="replace").read()

# Scenarios the suite announced, in order (also catches ones that wrote no results).
announced = re.findall(r"^=== Running scenario: (.+?) ===$", stdout, re.M)
scenarios = {name: {"status": "error", "passed": 0, "failed": 0, "warnings": 0, "failures": [],
                    "message": "no results written"} for name in announced}

results = os.path.join(work, "results")
stamp = re.compile(r"^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
for entry in sorted(os.listdir(results)) if os.path.isdir(results) else []:
    m = stamp.match(entry)
    path = os.path.join(results, entry, "checks.json")
    if not m or not os.path.isfile(path):
        continue
    checks = json.load(open(path))
    failures = [{"id": c.get("id"), "message": c.get("errorMessage") or c.get("description")}
                for c in checks if c.get("status") == "FAILURE"]
    rec = {
        "status": "fail" if failures else "pass",
        "passed": sum(1 for c in checks if c.get("status") == "SUCCESS"),
        "failed": len(failures),
        "warnings": sum(1 for c in checks if c.get("status") == "WARNING"),
        "failures": failures,
    }
    scenarios[m.group(1)] = rec

# "Not scored for <rev>: ..." lists scenarios the suite runs but does not count.
not_scored = []
tail = stdout.split("Not scored for", 1)
if len(tail) == 2:
    not_scored = re.findall(r"^\s+[✓✗] (\S+) \((\w+)\)", tail[1], re.M)
for name, why in not_scored:
    if name in scenarios:
        scenarios[name]["scored"] = False
        scenarios[name]["not_scored_because"] = why

summary = {
    "suite": suite,
    "package": pkg["name"],
    "version": pkg["version"],
    "url": url,
    "suite_exit_code": int(rc),
    "scenarios": scenarios,
    "totals": {
        "scenarios": len(scenarios),
        "pass": sum(1 for s in scenarios.values() if s["status"] == "pass"),
        "fail": sum(1 for s in scenarios.values() if s["status"] != "pass"),
    },
}
code = 0 if scenarios else 2
if baseline:
    expected = json.load(open(baseline)).get("expected_failures", {})
    summary["unexpected_failures"] = sorted(n for n, s in scenarios.items() if s["status"] != "pass" and n not in expected)
    summary["stale_baseline"] = sorted(n for n in expected if scenarios.get(n, {}).get("status") == "pass")
    summary["missing_from_run"] = sorted(n for n in expected if n not in scenarios)
    if summary["unexpected_failures"]:
        code = max(code, 1)
with open(out, "w") as f:
    json.dump(summary, f, indent=2, ensure_ascii=False)
    f.write("\n")
t = summary["totals"]
line = f"[conformance] {suite} {pkg['version']}: {t['pass']} of {t['scenarios']} scenarios pass"
if baseline:
    line += f"; unexpected failures: {summary['unexpected_failures'] or 'none'}; stale baseline entries: {summary['stale_baseline'] or 'none'}"
print(line, file=sys.stderr)
sys.exit(code)
PY
RC=$?
set -e
if ((RC == 2)); then
  echo "[conformance] the suite produced no results (exit $SUITE_RC); its stderr:" >&2
  tail -20 "$WORK/stderr.txt" >&2
fi
exit "$RC"
