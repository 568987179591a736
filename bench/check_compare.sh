#!/usr/bin/env bash
# Two certguard binaries over bench/engine.sh's corpora (generate them with
# it first): `certguard check` of every chain in one run, in each format,
# memo on and off, with the system bundle, the CA file, or both as
# anchors, and DER input and a chain holding one certificate twice; stdout,
# stderr and exit status must be the same bytes.  Exits 1 on a difference.
#
#   bench/check_compare.sh OLD NEW [N]      (N chains a corpus, default 1000)
#   env: BENCH_DIR (as bench/engine.sh)

set -u

old=$(realpath "$1") new=$(realpath "$2") n=${3:-1000}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
pol=$top/policies/default.policy
work=${BENCH_DIR:-/tmp/certguard-bench-engine}
at=1796140800       # a fixed clock: "issued ... ago" moves otherwise
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$work" || exit 2
runs=0 fail=0

same() {
    local tag=$1 so sn
    shift
    "$old" "$@" > "$tmp/o.out" 2> "$tmp/o.err"; so=$?
    "$new" "$@" > "$tmp/n.out" 2> "$tmp/n.err"; sn=$?
    runs=$((runs + 1))

    if [ $so != $sn ] || ! cmp -s "$tmp/o.out" "$tmp/n.out" \
        || ! cmp -s "$tmp/o.err" "$tmp/n.err"
    then
        echo "DIFF $tag (status $so, $sn)"
        fail=$((fail + 1))
    else
        echo "same $tag: $(wc -c < "$tmp/n.out") bytes, status $sn"
    fi
}

for shape in root inter; do
    corpus_files "$shape" "$n"

    for fmt in json text cef; do
        c="check --policy $pol --at $at --format $fmt"
        same "$shape $fmt" $c --ca-file ca.pem "${files[@]}"
        same "$shape $fmt no memo" $c --ca-file ca.pem --no-verify-memo \
            "${files[@]}"
        same "$shape $fmt one chain" $c --ca-file ca.pem "${files[0]}"
        same "$shape $fmt system roots" $c "${files[@]:0:50}"
        same "$shape $fmt CA file only" $c --ca-file ca.pem \
            --no-system-roots "${files[@]:0:50}"
    done

    # DER (the chain's certificates concatenated) and a certificate twice
    openssl crl2pkcs7 -nocrl -certfile "${files[0]}" \
        | openssl pkcs7 -print_certs \
        | awk '/BEGIN/ { n++; f = "'"$tmp"'/c" n ".pem" } n { print > f }'
    for c in "$tmp"/c*.pem; do
        openssl x509 -in "$c" -outform DER
    done > "$tmp/$shape.der"
    cat "${files[0]}" "${files[0]}" > "$tmp/$shape.twice.pem"
    rm -f "$tmp"/c*.pem
    same "$shape DER, twice" check --policy "$pol" --at $at --ca-file ca.pem \
        "$tmp/$shape.der" "$tmp/$shape.twice.pem" "${files[@]:0:3}" \
        "$tmp/$shape.twice.pem"
done

echo "$runs runs, $fail differ"
[ $fail = 0 ]
