#!/usr/bin/env bash
# Engine cost per chain: `certguard check` over N generated chains against the
# same command over one chain; the difference divided by N-1 is the engine's
# time per evaluation, without process start-up, policy load and trust load.
#
#   bench/engine.sh [N]        (default 1000; needs hyperfine)

set -euo pipefail

n=${1:-1000}
top=$(cd "$(dirname "$0")/.." && pwd)
cli=${CERTGUARD_BUILD:-$top/build}/certguard
work=${BENCH_DIR:-/tmp/certguard-bench-engine}

mkdir -p "$work/chains"
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

files=()
for i in $(seq 0 $((n - 1))); do
    files+=("chains/$i.pem")
done
args="check --policy $top/policies/default.policy --ca-file ca.pem"

hyperfine -N --warmup 3 --runs 20 --export-json result.json \
    "$cli $args ${files[0]}" \
    "$cli $args ${files[*]}" > hyperfine.txt

perl -MJSON::PP -e '
    my $n = shift;
    local $/; open my $f, "<", "result.json" or die;
    my $r = decode_json(<$f>)->{results};
    my ($one, $many) = ($r->[0]{mean}, $r->[1]{mean});
    printf "one chain:   %8.2f ms (process start, policy and trust load)\n", $one * 1e3;
    printf "%d chains: %8.2f ms\n", $n, $many * 1e3;
    printf "engine time: %8.2f ms for %d chains, %.1f us per chain\n",
        ($many - $one) * 1e3, $n - 1, ($many - $one) / ($n - 1) * 1e6;
' "$n"
