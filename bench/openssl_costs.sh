#!/usr/bin/env bash
# OpenSSL's own costs natively, for an RSA-2048 and a P-256 leaf under an
# issuer of the same key type (bench/openssl_costs.c), beside `openssl
# speed`'s bare verify; pinned to one CPU.  docs/performance.md, "Where a
# new leaf's time goes".
#
#   bench/openssl_costs.sh [N]        (default 5000)
#   env: BENCH_DIR, CPU (default 1)

set -euo pipefail

n=${1:-5000}
cpu=${CPU:-1}
top=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/certguard-bench-openssl}

mkdir -p "$work"
cd "$work"

cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -o openssl_costs \
    "$top/bench/openssl_costs.c" -lcrypto

for kind in rsa ec; do
    if [ "$kind" = rsa ]; then
        new=(-newkey rsa:2048)
    else
        new=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
    fi

    if [ ! -f "$kind-leaf.pem" ]; then
        openssl req -x509 "${new[@]}" -nodes -keyout "$kind-ca.key" \
            -out "$kind-ca.pem" -days 30 -subj "/CN=bench $kind issuer" \
            2>/dev/null
        openssl req -new "${new[@]}" -nodes -keyout "$kind-leaf.key" \
            -subj "/CN=leaf.bench.test" -out "$kind-leaf.csr" 2>/dev/null
        printf 'subjectAltName=DNS:leaf.bench.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
            > leaf.ext
        openssl x509 -req -in "$kind-leaf.csr" -CA "$kind-ca.pem" \
            -CAkey "$kind-ca.key" -CAcreateserial -days 30 \
            -extfile leaf.ext -out "$kind-leaf.pem" 2>/dev/null
    fi

    echo "# $kind leaf, $n runs each, CPU $cpu"
    taskset -c "$cpu" ./openssl_costs "$kind-leaf.pem" "$kind-ca.pem" "$n"
done

echo "# openssl speed, CPU $cpu"
taskset -c "$cpu" openssl speed -seconds 3 rsa2048 ecdsap256 2>/dev/null \
    | grep -E '^rsa 2048|256 bits ecdsa'
