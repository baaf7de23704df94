#!/usr/bin/env bash
# Fuzz smoke test: builds every fuzz target in fuzz/ once (nightly,
# cargo-fuzz, AddressSanitizer), then runs each for a bounded time from a
# temporary copy of its committed seed corpus (fuzz/corpus/<target>/), so
# the committed seeds never change. Exits non-zero if any target crashes,
# times out on an input or runs out of memory; the input that did it is
# kept in fuzz/artifacts/<target>/.
#   FUZZ_SECONDS  seconds per target (default 15)
#   FUZZ_TARGETS  space-separated subset of the targets (default: all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Outside the clone, so a later run (CI included) reuses the nightly build;
# absent, it is built from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-fuzz-target}"

seconds="${FUZZ_SECONDS:-15}"
step() { printf '\n==> %s\n' "$*" >&2; }
t_start=$SECONDS
elapsed() { printf '    (%ss)\n' "$((SECONDS - t_start))" >&2; t_start=$SECONDS; }

step "nightly toolchain and cargo-fuzz"
rustup toolchain install nightly --profile minimal >&2
if ! cargo fuzz --version >/dev/null 2>&1; then
  # A throwaway target directory: cargo install's build is not ours to keep.
  install_dir="$(mktemp -d)"
  CARGO_TARGET_DIR="$install_dir" cargo install cargo-fuzz --locked
  rm -rf "$install_dir"
fi
elapsed

read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo +nightly fuzz list --fuzz-dir fuzz | tr '\n' ' ')}"

step "cargo +nightly fuzz build (${#targets[@]} targets)"
cargo +nightly fuzz build --fuzz-dir fuzz
elapsed

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  step "fuzz $target for ${seconds}s"
  corpus="$work/$target"
  mkdir -p "$corpus"
  if [[ -d "fuzz/corpus/$target" ]]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  fi
  # -timeout: one input running this long is a finding (a stall);
  # -rss_limit_mb: libFuzzer's default, written down.
  if ! cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$target")
  fi
  elapsed
done

if ((${#failed[@]})); then
  printf '\nfuzz smoke: %s failed (inputs in fuzz/artifacts/<target>/)\n' "${failed[*]}" >&2
  exit 1
fi
printf '\nfuzz smoke: %s targets ran %ss each without a finding\n' "${#targets[@]}" "$seconds" >&2
