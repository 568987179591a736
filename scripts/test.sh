#!/usr/bin/env bash
# Runs every test; "make test" calls it after building (make all unit).
#
#   1. scripts/deps.sh: what the tests need is installed
#   2. prove over t/: the .t files (CLI, signals, policies, CEF, badssl
#      corpus, GeoIP, nginx modules) and t/unit.t, which runs the C unit
#      tests, plain and under ASan/UBSan
#   3. the libFuzzer smoke: scripts/fuzz.sh, FUZZ_SMOKE_SECONDS per target
#
# Exits non-zero when any step fails; the later steps still run, so one
# report shows everything.  Environment: CERTGUARD_BUILD (default build/),
# PROVE_JOBS (default 2), FUZZ_SMOKE_SECONDS (default 20; 0 skips).
set -uo pipefail

cd "$(dirname "$0")/.."

export CERTGUARD_BUILD="${CERTGUARD_BUILD:-$PWD/build}"
jobs="${PROVE_JOBS:-2}"
fuzz="${FUZZ_SMOKE_SECONDS:-20}"
status=0

step() {
    echo
    echo "=== $* ==="
}

step "dependencies"
if ! ./scripts/deps.sh; then
    echo "test.sh: missing dependencies (scripts/deps.sh as root)" >&2
    exit 1
fi

if [ ! -x "$CERTGUARD_BUILD/certguard" ]; then
    echo "test.sh: no $CERTGUARD_BUILD/certguard: run 'make' first" >&2
    exit 1
fi

# each .t has its own temporary directory and ports: they run in parallel
step "prove -j$jobs -r t/"
prove_log="$(mktemp)"
trap 'rm -f "$prove_log"' EXIT
prove -j"$jobs" -r --timer t/ 2>&1 | tee "$prove_log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ "$fuzz" -gt 0 ]; then
    step "fuzz smoke, ${fuzz}s per target"
    ./scripts/fuzz.sh "$fuzz" || status=1
fi

echo
if [ "$status" = 0 ]; then
    echo "test.sh: all tests passed"
else
    if grep -q '^Test Summary Report' "$prove_log"; then
        # CI shows the last lines only, and the fuzz smoke came after
        # prove: the tests' own diagnostics (what prove printed besides
        # its result lines), then the files that failed
        echo
        sed '/^Test Summary Report/,$d' "$prove_log" \
            | grep -v -E '^(\[[0-9:]+\] |All tests|Files=|Result:|$)' \
            | tail -40
        echo
        sed -n '/^Test Summary Report/,$p' "$prove_log"
    fi
    echo "test.sh: FAILED" >&2
fi
exit "$status"
