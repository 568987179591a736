#!/usr/bin/env bash
# Every certguard benchmark, in one run, and a summary (make bench).
#
#   1. bench/http.sh    nginx + certguard (cold, warm cache) against plain
#                       nginx, full upstream handshakes, wrk
#      the same, ECDSA only, with proxy_ssl_verify on in all three
#      configurations (HTTP_VERIFY=0 skips it)
#   2. engine_micro     the engine's cost per cold verdict, per cache hit,
#                       per CEF record (bench/engine_micro.c, built here
#                       against libcertguard.a)
#   3. bench/engine.sh  certguard check over 1,000 chains (hyperfine)
#   4. bench/stream.sh  the stream module (tunnel setup, tunnel throughput),
#                       when it and the stream module exist
#   5. bench/connect.sh CONNECT tunnels/s warm against plain stream
#                       proxy_pass, and a cold CONNECT's cost split
#   6. bench/netem.sh   tunnel setup under 20 and 100 ms RTT (root only)
#   7. bench/profile.sh the cold path per step under callgrind, before and
#                       after the memo of verified signatures
#
# Benchmarks are not tests: nothing here passes or fails on a number.  Run
# it on a quiet machine; the load average is printed before and after.
#
# env: CERTGUARD_BUILD (default build/), HTTP_REPS (3), HTTP_DUR (10),
#      HTTP_CONNS (16), ENGINE_CHAINS (1000), STREAM (1: run bench/stream.sh
#      when present; 0: skip), CONNECT (1), NETEM (1: when root), PROFILE
#      (1), BENCH_OUT (directory for the results)

set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
out=${BENCH_OUT:-$(mktemp -d /tmp/certguard-bench-XXXXXX)}

. "$top/bench/lib.sh"

"$top/scripts/deps.sh" --bench || exit 1

for f in certguard libcertguard.a ngx_http_certguard_module.so; do
    [ -f "$build/$f" ] || { echo "run.sh: no $build/$f: run make" >&2; exit 2; }
done

mkdir -p "$out"
summary=$out/summary.txt
: > "$summary"
status=0

# section TITLE: a heading on the screen and in the summary
section() {
    printf '\n== %s\n' "$*" | tee -a "$summary"
}

section "machine"
machine_info | tee -a "$summary"

section "HTTP module: full upstream handshakes (bench/http.sh)"
if BENCH_DIR=$out/http CERTGUARD_BUILD=$build "$top/bench/http.sh" \
       "${HTTP_REPS:-3}" "${HTTP_DUR:-10}" "${HTTP_CONNS:-16}" \
       > "$out/http.txt"; then
    cat "$out/http.txt" | tee -a "$summary"
else
    echo "bench/http.sh failed (see $out/http.txt)" | tee -a "$summary"
    status=1
fi

if [ "${HTTP_VERIFY:-1}" = 1 ]; then
    section "HTTP module, proxy_ssl_verify on in all three (bench/http.sh, ECDSA)"
    if VERIFY=on ROWS=ecdsa BENCH_DIR=$out/http-verify CERTGUARD_BUILD=$build \
           "$top/bench/http.sh" "${HTTP_REPS:-3}" "${HTTP_DUR:-10}" \
           "${HTTP_CONNS:-16}" > "$out/http-verify.txt"; then
        tee -a "$summary" < "$out/http-verify.txt"
    else
        echo "bench/http.sh (VERIFY=on) failed" | tee -a "$summary"
        status=1
    fi
fi

section "engine microbenchmark (bench/engine_micro.c)"
micro=$out/engine_micro
if cc -O2 -std=c11 -Wall -Wextra -Wno-unused-parameter -I"$top/src/engine" \
       -o "$micro" "$top/bench/engine_micro.c" "$build/libcertguard.a" \
       -lssl -lcrypto -lpcre2-8 -lmaxminddb -llmdb -lpsl \
   && [ -s "$out/http/ecdsa/chain.pem" ]; then
    for t in ecdsa rsa; do
        echo "-- $t chain (leaf + intermediate), default policy" \
            | tee -a "$summary"
        taskset -c 0 "$micro" "$top/policies/default.policy" \
            "$out/http/$t/root.pem" bench.certguard.test \
            "$out/http/$t/chain.pem" 2 | tee -a "$summary"
    done
else
    echo "engine_micro: not built or no chains from bench/http.sh" \
        | tee -a "$summary"
    status=1
fi

section "engine over ${ENGINE_CHAINS:-1000} chains (bench/engine.sh)"
if CERTGUARD_BUILD=$build \
       "$top/bench/engine.sh" "${ENGINE_CHAINS:-1000}" > "$out/engine.txt"; then
    tee -a "$summary" < "$out/engine.txt"
else
    echo "bench/engine.sh failed" | tee -a "$summary"
    status=1
fi

if [ "${STREAM:-1}" = 1 ] && [ -x "$top/bench/stream.sh" ] \
   && [ -f "$build/ngx_stream_certguard_module.so" ]; then
    section "stream module (bench/stream.sh)"
    if CERTGUARD_BUILD=$build "$top/bench/stream.sh" > "$out/stream.txt" 2>&1
    then
        tee -a "$summary" < "$out/stream.txt"
    else
        { cat "$out/stream.txt"; echo "bench/stream.sh failed"; } \
            | tee -a "$summary"
        status=1
    fi
fi

if [ "${STREAM:-1}" = 1 ] && [ "${CONNECT:-1}" = 1 ] \
   && [ -f "$build/ngx_stream_certguard_module.so" ]; then
    section "CONNECT tunnels/s and the cold CONNECT (bench/connect.sh)"
    if CERTGUARD_BUILD=$build BENCH_DIR=$out/connect "$top/bench/connect.sh" \
           > "$out/connect.txt" 2>&1; then
        tee -a "$summary" < "$out/connect.txt"
    else
        { cat "$out/connect.txt"; echo "bench/connect.sh failed"; } \
            | tee -a "$summary"
        status=1
    fi
fi

if [ "${STREAM:-1}" = 1 ] && [ "${NETEM:-1}" = 1 ] && [ "$(id -u)" = 0 ] \
   && [ -f "$build/ngx_stream_certguard_module.so" ]; then
    section "the probe under network latency (bench/netem.sh)"
    if CERTGUARD_BUILD=$build BENCH_DIR=$out/netem "$top/bench/netem.sh" \
           > "$out/netem.txt" 2>&1; then
        tee -a "$summary" < "$out/netem.txt"
    else
        { cat "$out/netem.txt"; echo "bench/netem.sh failed"; } \
            | tee -a "$summary"
        status=1
    fi
fi

if [ "${PROFILE:-1}" = 1 ]; then
    section "the cold path per step, callgrind (bench/profile.sh)"
    if CERTGUARD_BUILD=$build BENCH_DIR=$out/profile "$top/bench/profile.sh" \
           > "$out/profile.txt" 2>&1; then
        tee -a "$summary" < "$out/profile.txt"
    else
        { cat "$out/profile.txt"; echo "bench/profile.sh failed"; } \
            | tee -a "$summary"
        status=1
    fi
fi

section "after"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)" \
    | tee -a "$summary"
echo "results:  $out" | tee -a "$summary"

exit $status
