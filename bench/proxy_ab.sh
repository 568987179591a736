#!/usr/bin/env bash
# Two or more proxy configurations of one bench/http.sh run, one after the
# other REPS times, each worker recorded by bench/proxy_perf.sh under the
# same wrk load, and counted in units of the client key share the worker
# generates once a handshake (EVP_PKEY_generate): pure compute, the same
# per request in every configuration.  A request count from wrk's rate
# moved by ±10 % between two perf runs on the development VM, which is
# more than most changes of the engine; the key share does not move.
#
#   bench/proxy_ab.sh BENCH_DIR ROW [REPS] [SECONDS]     (3, 8)
#
# BENCH_DIR: a directory bench/http.sh left (its up/, plain/, cold/ ...
# configurations, rows and new.lua); ROW: ecdsa, rsa, ecdsa-new or
# rsa-new.  env: CONFIGS ("plain cold"; any directory of BENCH_DIR with an
# nginx.conf, e.g. a copy of cold/ loading another build's module),
# PROXY_CPU (0), CLIENT_CPU (1), FREQ (4000).  Prints one line per
# recording, then the medians: certguard, its signature checks, the rest,
# and plain's own X509_verify_cert, in key shares a request.  Needs perf
# and root.

set -euo pipefail

work=$(cd "${1:?usage: proxy_ab.sh BENCH_DIR ROW [REPS] [SECONDS]}" && pwd)
row=${2:?usage: proxy_ab.sh BENCH_DIR ROW [REPS] [SECONDS]}
reps=${3:-3}
secs=${4:-8}
configs=${CONFIGS:-plain cold}
proxy_cpu=${PROXY_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

top=$(cd "$(dirname "$0")/.." && pwd)

. "$top/bench/lib.sh"

command -v wrk >/dev/null || { echo "no wrk: scripts/deps.sh --bench" >&2;
                               exit 2; }

running=""
out=$(mktemp /tmp/certguard-proxy-ab-XXXXXX)

cleanup() {
    local d
    for d in $running; do
        nginx_stop "$d"
    done
    rm -f "$out"
}
trap cleanup EXIT

nginx_start "$client_cpu" "$work/up" "$work/up/nginx.conf"
running="$work/up"

start=1

for rep in $(seq "$reps"); do
    for cfg in $configs; do
        dir=$work/$cfg
        nginx_start "$proxy_cpu" "$dir" "$dir/nginx.conf"
        running="$work/up $dir"

        port=$(sed -n 's/.*listen 127\.0\.0\.1:\([0-9]*\) backlog.*/\1/p' \
               "$dir/nginx.conf" | head -1)
        pid=$(nginx_workers "$dir")

        # a new leaf on every request as bench/http.sh asks for them
        if [ "${row%-new}" != "$row" ]; then
            taskset -c "$client_cpu" wrk -t1 -c16 -d$((secs + 3)) \
                -s "$work/new.lua" "http://127.0.0.1:$port/$row/" \
                -- "/$row/" "$start" 4000 >/dev/null 2>&1 &
            start=$((start + 997))
        else
            taskset -c "$client_cpu" wrk -t1 -c16 -d$((secs + 3)) \
                "http://127.0.0.1:$port/$row/" >/dev/null 2>&1 &
        fi

        sleep 1.5
        line=$(TOP=0 "$top/bench/proxy_perf.sh" $pid "$secs" \
               | sed -n 's/^# in key shares[^:]*: //p')
        wait

        nginx_stop "$dir"
        running="$work/up"

        # "certguard A, its signatures B, the rest C, plain's verification D"
        set -- $(echo "$line" | tr -c '0-9.\n' ' ')
        echo "$row $cfg $rep | certguard ${1:-?} signatures ${2:-?}" \
             "rest ${3:-?} plain_verify ${4:-?}" | tee -a "$out"
    done
done

echo
echo "# medians over $reps recordings, key shares a request"
perl -e '
    use strict;
    use warnings;
    my %v;
    while (<>) {
        my @f = split;
        push @{$v{$f[1]}{$_}}, $f[{certguard => 5, signatures => 7,
                                  rest => 9, plain_verify => 11}->{$_}]
            for qw(certguard signatures rest plain_verify);
    }
    sub med { my @s = sort { $a <=> $b } @_; return $s[$#s / 2] }
    for my $c (sort keys %v) {
        printf "%-10s certguard %.3f  signatures %.3f  rest %.3f"
             . "  plain verify %.3f\n", $c,
             map { med(@{$v{$c}{$_}}) } qw(certguard signatures rest
                                            plain_verify);
    }
' "$out"
