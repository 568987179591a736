#!/usr/bin/env bash
# Builds the engine's libFuzzer targets, replays their kept reproducers and
# fuzzes each from its seed corpus; "make fuzz" and the smoke step of
# "make test" (scripts/test.sh) run it.
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# TARGET is fuzz_X for a t/fuzz/fuzz_X.c (default: every one); its seeds
# are t/fuzz/corpus/X/ (fuzz_chain: corpus/chain/), which must exist.  For
# each target, in order:
#   1. build build/fuzz/fuzz_X with ASan and UBSan;
#   2. run it once on every kept reproducer of its corpus (files named
#      regress-* or crash-*): one that still crashes fails the target
#      before any fuzzing;
#   3. fuzz for SECONDS from a scratch copy of the whole corpus, so a run
#      never writes into the repository, and print
#      "fuzz.sh: fuzz_X: N inputs from S seeds".
# A failed target's log and new crash reproducers stay in the scratch
# directory, which is named; copy a reproducer into the corpus as
# regress-<what> to keep it replayed.
# Environment: CERTGUARD_BUILD (build directory, default build/), CC_FUZZ
# (default clang), FUZZ_JOBS (targets fuzzed at once, default 1), FUZZ_KEEP
# (1: keep the scratch directory of a clean run too).
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
    set -- $(ls t/fuzz/fuzz_*.c 2>/dev/null | sed 's|.*/||; s|\.c$||')
fi
if [ $# -eq 0 ]; then
    echo "fuzz.sh: no targets in t/fuzz/" >&2
    exit 1
fi

# fuzz_X's seeds are t/fuzz/corpus/X/
corpus_of() {
    echo "t/fuzz/corpus/${1#fuzz_}"
}

for t in "$@"; do
    if [ ! -f "t/fuzz/$t.c" ]; then
        echo "fuzz.sh: no such target: t/fuzz/$t.c" >&2
        exit 2
    fi
    if [ ! -d "$(corpus_of "$t")" ]; then
        echo "fuzz.sh: $t: no seed corpus $(corpus_of "$t")/" >&2
        exit 2
    fi
done

mkdir -p "$build"

for t in "$@"; do
    echo "fuzz.sh: building $t"
    "$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Isrc/engine \
        -o "$build/$t" "t/fuzz/$t.c" src/engine/cg_*.c \
        -lssl -lcrypto -lpcre2-8 -lmaxminddb -llmdb -lpsl
done

scratch="$(mktemp -d "${TMPDIR:-/tmp}/certguard-fuzz-XXXXXX")"
keep="${FUZZ_KEEP:-0}"
trap '[ "$keep" = 1 ] || rm -rf "$scratch"' EXIT

export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

# Given files, a libFuzzer binary runs each of them once and stops at the
# first that crashes.
replay() {
    local t="$1" out="$scratch/$1" repros=()

    mkdir -p "$out"
    for f in "$(corpus_of "$t")"/regress-* "$(corpus_of "$t")"/crash-*; do
        [ -f "$f" ] && repros+=("$f")
    done
    [ "${#repros[@]}" -gt 0 ] || return 0

    echo "fuzz.sh: $t: replaying ${#repros[@]} reproducers"
    if ! "$build/$t" -timeout=10 -rss_limit_mb=2048 "${repros[@]}" \
         > "$out/replay.log" 2>&1
    then
        keep=1
        echo "fuzz.sh: $t FAILED on a kept reproducer; log in" \
             "$out/replay.log" >&2
        tail -40 "$out/replay.log" >&2
        return 1
    fi
}

run_one() {
    local t="$1" corpus="$scratch/$1/corpus" out="$scratch/$1"

    mkdir -p "$corpus" "$out/artifacts"
    cp -r "$(corpus_of "$t")/." "$corpus/"
    # -timeout: one input over 10 s is a hang; -rss_limit_mb: a leak or a
    # blow-up, not the machine's memory, ends the run
    "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
        "$corpus" > "$out/log" 2>&1
}

replay_failed=0
for t in "$@"; do
    replay "$t" || replay_failed=1
done
if [ "$replay_failed" = 1 ]; then
    exit 1
fi

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
    seeds=$(find "$(corpus_of "$t")" -type f | wc -l)
    echo "fuzz.sh: $t: ${runs:-?} inputs from $seeds seeds"
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
if [ "$keep" = 1 ]; then
    echo "fuzz.sh: logs in $scratch"
fi
