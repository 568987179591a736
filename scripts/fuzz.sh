#!/usr/bin/env bash
# Builds and runs the engine's libFuzzer targets.
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# TARGET is a name under t/fuzz/ (fuzz_chain, fuzz_policy); default: all of
# t/fuzz/*.c.  Each runs SECONDS with its seed corpus t/fuzz/corpus/<name>/
# (the name without fuzz_: corpus/chain/ for fuzz_chain), copied to a
# scratch directory first so that a run never writes into the repository;
# crash reproducers are kept there and named on failure.
# Environment: CERTGUARD_BUILD (build directory, default build/), CC_FUZZ
# (default clang), FUZZ_JOBS (parallel targets, default 1).
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${1:-}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh SECONDS [TARGET...]" >&2
    exit 2
fi
shift

build="${CERTGUARD_BUILD:-build}/fuzz"
cc="${CC_FUZZ:-clang}"
jobs="${FUZZ_JOBS:-1}"

if [ $# -eq 0 ]; then
    set -- $(ls t/fuzz/*.c 2>/dev/null | sed 's|.*/||; s|\.c$||')
fi
if [ $# -eq 0 ]; then
    echo "fuzz.sh: no targets in t/fuzz/" >&2
    exit 1
fi

mkdir -p "$build"

for t in "$@"; do
    src="t/fuzz/$t.c"
    if [ ! -f "$src" ]; then
        echo "fuzz.sh: no such target: $src" >&2
        exit 2
    fi
    echo "fuzz.sh: building $t"
    "$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Isrc/engine \
        -o "$build/$t" "$src" src/engine/cg_*.c \
        -lssl -lcrypto -lpcre2-8 -lmaxminddb
done

scratch="$(mktemp -d "${TMPDIR:-/tmp}/certguard-fuzz-XXXXXX")"
keep=0
trap '[ "$keep" = 1 ] || rm -rf "$scratch"' EXIT

run_one() {
    local t="$1" corpus="$scratch/$1/corpus" out="$scratch/$1"
    local seeds="t/fuzz/corpus/${1#fuzz_}"

    mkdir -p "$corpus" "$out/artifacts"
    if [ -d "$seeds" ]; then
        cp -r "$seeds/." "$corpus/"
    fi
    # -timeout: one input over 10 s is a hang; -rss_limit_mb: a leak or a
    # blow-up, not the machine's memory, ends the run
    ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
        "$corpus" > "$out/log" 2>&1
}

failed=()
pids=()
names=()
for t in "$@"; do
    echo "fuzz.sh: running $t for ${seconds}s"
    run_one "$t" &
    pids+=($!)
    names+=("$t")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        for i in "${!pids[@]}"; do
            if ! wait "${pids[$i]}"; then failed+=("${names[$i]}"); fi
        done
        pids=()
        names=()
    fi
done
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then failed+=("${names[$i]}"); fi
done

for t in "$@"; do
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
               "$scratch/$t/log" | tail -1)
    echo "fuzz.sh: $t: ${runs:-?} inputs"
done

if [ "${#failed[@]}" -gt 0 ]; then
    keep=1
    for t in "${failed[@]}"; do
        echo "fuzz.sh: $t FAILED; log and reproducers in $scratch/$t" >&2
        tail -40 "$scratch/$t/log" >&2
    done
    exit 1
fi

echo "fuzz.sh: all targets ran clean"
