#!/usr/bin/env bash
# Runs ccnode's fuzz targets under AFL++ (cargo-afl), each for SECONDS
# (default 15), and fails if any finds a crash. docs/TESTING.md explains the
# choice of fuzzer, the targets and their contracts, long campaigns and how
# to reproduce a crash.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment: FUZZ_CACHE (default ~/.cache/ccnode-fuzz) holds cargo-afl and
# AFL++, installed there on first use, and the instrumented build
# (FUZZ_TARGET_DIR, default FUZZ_CACHE/target); FUZZ_OUT (default
# $CARGO_TARGET_DIR/fuzz-out, else target/fuzz-out) holds each target's
# findings; FUZZ_NICE (default 19) is the fuzzers' niceness, FUZZ_BUILD_NICE
# (default 10) the build's. Targets run one
# after another, one core at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-15}
shift || true
all=(journal event snapshot bundle workflow http)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")

cache=${FUZZ_CACHE:-$HOME/.cache/ccnode-fuzz}
afl_version=0.18.2
export PATH="$cache/bin:$PATH"
# cargo-afl keeps the AFL++ it builds under XDG_DATA_HOME: keep it in the cache too.
export XDG_DATA_HOME="$cache/data"
if ! cargo afl --version 2>/dev/null | grep -q "$afl_version"; then
    echo "== installing cargo-afl $afl_version into $cache"
    cargo install --locked --root "$cache" --version "$afl_version" cargo-afl
fi
if ! ls "$XDG_DATA_HOME"/afl.rs/*/afl.rs-"$afl_version"/afl/bin/afl-fuzz >/dev/null 2>&1; then
    echo "== building AFL++ (cargo afl config --build)"
    cargo afl config --build
fi

# A build of its own: cargo-afl's instrumentation flags would otherwise
# rebuild the whole workspace's dependencies in the normal target directory.
# It lives in the cache, so that the next run (CI's, in a fresh clone on the
# same machine) rebuilds only what changed.
target_dir=${FUZZ_TARGET_DIR:-$cache/target}
out=${FUZZ_OUT:-${CARGO_TARGET_DIR:-$root/target}/fuzz-out}
echo "== cargo afl build (release, into $target_dir)"
CARGO_TARGET_DIR=$target_dir nice -n "${FUZZ_BUILD_NICE:-10}" \
    cargo afl build --release --locked -p fuzz --features afl --bins

# No core-dump handler or CPU governor checks: this is a shared machine.
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1
export AFL_NO_UI=1 AFL_QUIET=1
# The HTTP target starts a node once per process: let one process run long.
export AFL_FUZZER_LOOPCOUNT=${AFL_FUZZER_LOOPCOUNT:-100000}

# Address-space limits (MB): a reservation driven by a length field rather
# than by the input fails the allocation, which aborts: a crash. The HTTP
# target runs a whole node (threads, sled) and gets none.
declare -A memory=([journal]=1024 [event]=1024 [snapshot]=1024 [bundle]=2048 [workflow]=1024 [http]=none)

failed=()
for target in "${targets[@]}"; do
    corpus=$root/fuzz/corpus/$target
    [[ -d $corpus ]] || { echo "no corpus for target $target" >&2; exit 2; }
    mkdir -p "$out"
    rm -rf "${out:?}/$target"
    echo "== fuzzing $target for ${seconds}s"
    nice -n "${FUZZ_NICE:-19}" cargo afl fuzz -i "$corpus" -o "$out/$target" -V "$seconds" -t 5000 -m "${memory[$target]:-none}" \
        -- "$target_dir/release/$target" > "$out/$target.log" 2>&1 || {
        echo "afl-fuzz failed for $target:" >&2
        tail -30 "$out/$target.log" >&2
        failed+=("$target")
        continue
    }
    stats=$out/$target/default/fuzzer_stats
    field() { awk -v k="$1" '$1 == k { print $3 }' "$stats"; }
    execs=$(field execs_done)
    crashes=$(field saved_crashes)
    hangs=$(field saved_hangs)
    runtime=$(field run_time)
    rate=$(awk -v e="$execs" -v t="$runtime" 'BEGIN { printf "%.0f", (t > 0 ? e / t : 0) }')
    echo "$target: $execs executions in ${runtime}s ($rate/s), $crashes crashes, $hangs hangs, corpus $(field corpus_count)"
    printf 'figure\tfuzz\t%s_execs_per_s\t%s\texec/s\n' "$target" "$rate"
    printf 'figure\tfuzz\t%s_execs\t%s\texecs\n' "$target" "$execs"
    if [[ ${crashes:-0} != 0 ]]; then
        echo "$target found crashes: reproduce with" >&2
        for crash in "$out/$target"/default/crashes/id:*; do
            echo "  cargo run -p fuzz --bin replay -- $target '$crash'" >&2
        done
        failed+=("$target")
    fi
done
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
echo "== fuzzing: no crashes"
