#!/usr/bin/env bash
# Runs every fuzz target for a short while (20 s by default) on its committed
# corpus: CI's fuzz smoke, and a quick check after changing a parser.
# New inputs go to fuzz/scratch/ (ignored), never into fuzz/corpus/.
#   fuzz/smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
# The committed lock file, as it is (cargo fuzz has no --locked of its own).
cargo fetch --locked --quiet
start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz build: $(( $(date +%s) - start )) s"
for target in $(cargo +nightly fuzz list); do
  mkdir -p "scratch/$target"
  log="scratch/$target.smoke.log"
  if ! cargo +nightly fuzz run "$target" "scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz smoke: $target failed; its input is in fuzz/artifacts/$target/ (docs/FUZZING.md)"
    exit 1
  fi
  echo "fuzz smoke: $target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | tr '\t' ' ')"
done
echo "fuzz smoke: every target ran ${seconds} s; $(( $(date +%s) - start )) s in all"
