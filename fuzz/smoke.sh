#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer on the STABLE toolchain and runs each for a few
# seconds from a seeded throw-away corpus. Exits non-zero if any target finds a crash (the
# input is kept under $SMOKE_DIR/artifacts/).
#
#   fuzz/smoke.sh            # 5 s per target
#   SECS=30 fuzz/smoke.sh    # longer
#
# It needs no cargo-fuzz and no nightly: it passes cargo the same flags `cargo fuzz build -s none`
# passes (all of them stable rustc flags). Needs python3 for the seed script, and a C++
# compiler for libfuzzer-sys (g++ is on this project's machines).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

secs="${SECS:-5}"
targets=(decode_frame crc_corrected round_trip verify_envelope skew_parsers)
host="$(rustc -vV | sed -n 's/^host: //p')"
work="${SMOKE_DIR:-$(mktemp -d)}"
bins="${CARGO_TARGET_DIR:-$here/target}/$host/release"

# The instrumentation cargo-fuzz 0.13 applies with `--sanitizer none`.
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing -Cdebug-assertions -Ccodegen-units=1"

start=$(date +%s)
echo "== build ($(rustc --version))"
# --target keeps RUSTFLAGS off build scripts and proc macros, as cargo-fuzz does.
cargo build --release --target "$host" --bins
built=$(date +%s)

echo "== seed corpus in $work"
"$here/seed_corpus.sh" "$work/corpus" >/dev/null
mkdir -p "$work/artifacts"

failed=()
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  if ! "$bins/$t" "$work/corpus/$t" \
      -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t-" >"$work/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "$work/$t.log"
  fi
  grep -E '^stat::number_of_executed_units|^Done ' "$work/$t.log" || true
done

echo "== build $((built - start))s, build + runs $(( $(date +%s) - start ))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crash in: ${failed[*]} (inputs under $work/artifacts/)" >&2
  exit 1
fi
echo "smoke passed: ${#targets[@]} targets, no crash"
