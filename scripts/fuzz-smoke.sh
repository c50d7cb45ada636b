#!/usr/bin/env bash
# Fuzz smoke test (CI): build every cargo-fuzz target and run each one briefly.
#
#   scripts/fuzz-smoke.sh                 # all targets
#   scripts/fuzz-smoke.sh sdp pcap        # only these
#
# Tunables (environment):
#   FUZZ_RUNS=20000        libFuzzer -runs per target
#   FUZZ_SECONDS=20        libFuzzer -max_total_time per target (whichever comes first)
#   FUZZ_SEED=1            libFuzzer -seed (fixed, so a CI run is repeatable)
#   FUZZ_TIMEOUT=10        seconds one input may take before it counts as a hang
#   FUZZ_RSS_MB=2048       memory limit per target process (an OOM counts as a crash)
#   CARGO_FUZZ_VERSION     cargo-fuzz version installed when missing (default 0.13.2)
#
# The toolchain is stable-only; cargo-fuzz passes nightly-only flags (-Zsanitizer=address,
# ...) to rustc, which stable accepts with RUSTC_BOOTSTRAP=1. That is set here and only here.
#
# Each target starts from fuzz/seeds/<target>/ (committed, read-only) plus the gitignored
# working corpus fuzz/corpus/<target>/ (new inputs are written there), and replays every
# input committed under fuzz/regressions/<target>/ first, so a crash that was fixed stays
# fixed. A crash, hang, OOM or failed assertion in any target fails the script (after all
# targets ran); the input is left in fuzz/artifacts/<target>/ — upload that directory from CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
RUNS="${FUZZ_RUNS:-20000}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"

export RUSTC_BOOTSTRAP=1

now() { date +%s; }
t0=$(now)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
t_install=$(( $(now) - t0 ))
echo "==> $(cargo fuzz --version) (install step: ${t_install}s)"

cd "$FUZZ_DIR"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

t1=$(now)
echo "==> building ${#targets[@]} fuzz targets"
cargo fuzz build
t_build=$(( $(now) - t1 ))
echo "==> build: ${t_build}s"

failed=()
t2=$(now)
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    dirs=("corpus/$target")
    [ -d "seeds/$target" ] && dirs+=("seeds/$target")
    [ -d "regressions/$target" ] && dirs+=("regressions/$target")
    echo "==> $target: -runs=$RUNS -max_total_time=$SECONDS_PER_TARGET (corpus: ${dirs[*]})"
    ts=$(now)
    if cargo fuzz run "$target" "${dirs[@]}" -- \
        -runs="$RUNS" \
        -seed="${FUZZ_SEED:-1}" \
        -max_total_time="$SECONDS_PER_TARGET" \
        -timeout="$TIMEOUT" \
        -rss_limit_mb="$RSS_MB" \
        -print_final_stats=1; then
        echo "==> $target: ok ($(( $(now) - ts ))s)"
    else
        echo "==> $target: FAILED ($(( $(now) - ts ))s); input in fuzz/artifacts/$target/" >&2
        failed+=("$target")
    fi
done
t_runs=$(( $(now) - t2 ))

echo "==> timings: install ${t_install}s, build ${t_build}s, runs ${t_runs}s, total $(( $(now) - t0 ))s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "==> fuzz smoke FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "==> fuzz smoke passed: ${targets[*]}"
