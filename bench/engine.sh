#!/usr/bin/env bash
# Engine cost per chain: `certguard check` over N generated chains against the
# same command over one chain; the difference divided by N-1 is the engine's
# time per evaluation, without process start-up, policy load and trust load.
#
# Two corpora, each with the memo of verified signatures (the CLI's
# default) and without it (--no-verify-memo):
#   root   each chain an ECDSA leaf directly under the root (the anchor,
#          whose signature is not checked): one signature a chain, never
#          the same, so the memo only costs its lookups
#   inter  each chain an ECDSA leaf + the one intermediate they share
#          (bench/leaves.c), as real egress sees: two signatures a chain,
#          the intermediate's the same bytes every time
#
#   bench/engine.sh [N]        (default 1000; needs hyperfine)
#   env: SHAPES ("root inter"), BENCH_DIR

set -euo pipefail

n=${1:-1000}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
cli=${CERTGUARD_BUILD:-$top/build}/certguard
work=${BENCH_DIR:-/tmp/certguard-bench-engine}

mkdir -p "$work/chains" "$work/inter"
cd "$work"

if [ ! -f ca.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout ca.key -out ca.pem -days 3650 -subj '/CN=bench root' \
        2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out leaf.key
fi

have=$(ls chains | wc -l)
if [ "$have" -lt "$n" ]; then
    echo "generating $n chains ..." >&2
    for i in $(seq "$have" $((n - 1))); do
        openssl req -new -key leaf.key -subj "/CN=host$i.bench.test" \
            -out leaf.csr 2>/dev/null
        printf 'subjectAltName=DNS:host%d.bench.test\n' "$i" > ext.cnf
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key \
            -set_serial $((i + 1000)) -days 90 -extfile ext.cnf \
            -out "chains/$i.pem" 2>/dev/null
        cat ca.pem >> "chains/$i.pem"
    done
fi

if [ ! -s "inter/n$n.inter.bench.test.pem" ]; then
    echo "generating $n chains under an intermediate ..." >&2
    printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" \
        "keyUsage=critical,keyCertSign,cRLSign" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always" \
        > int.ext
    openssl ecparam -name prime256v1 -genkey -noout -out int.key
    openssl req -new -key int.key -subj '/CN=bench intermediate' \
        -out int.csr 2>/dev/null
    openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 \
        -days 1825 -extfile int.ext -out int.pem 2>/dev/null
    cc -O2 -std=c11 -o leaves "$top/bench/leaves.c" -lcrypto
    rm -f inter/*.pem
    ./leaves int.pem int.key leaf.key inter.bench.test "$n" inter
fi

args="check --policy $top/policies/default.policy --ca-file ca.pem"

for shape in ${SHAPES:-root inter}; do
    corpus_files "$shape" "$n"

    hyperfine -N --warmup 3 --runs "${RUNS:-20}" \
        --export-json "result-$shape.json" \
        "$cli $args ${files[0]}" \
        "$cli $args ${files[*]}" \
        "$cli $args --no-verify-memo ${files[*]}" > "hyperfine-$shape.txt"

    perl -MJSON::PP -e '
        my ($n, $shape) = @ARGV;
        local $/; open my $f, "<", "result-$shape.json" or die;
        my $r = decode_json(<$f>)->{results};
        my ($one, $many, $off) = map { $r->[$_]{mean} } 0 .. 2;
        print "# $shape: ", $shape eq "root" ? "leaf under the root"
            : "leaf + shared intermediate", "\n";
        printf "one chain:   %8.2f ms (process start, policy and trust load)\n", $one * 1e3;
        printf "%d chains: %8.2f ms\n", $n, $many * 1e3;
        printf "engine time: %8.2f ms for %d chains, %.1f us per chain\n",
            ($many - $one) * 1e3, $n - 1, ($many - $one) / ($n - 1) * 1e6;
        printf "no memo:     %8.2f ms for %d chains, %.1f us per chain\n",
            ($off - $one) * 1e3, $n - 1, ($off - $one) / ($n - 1) * 1e6;
    ' "$n" "$shape"
done
