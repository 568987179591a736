#!/usr/bin/env bash
# CONNECT tunnels per second and the cost of a cold CONNECT, stream module,
# against plain stream proxying to the same destination, in one run.
#
#   rate   tunnels per second: CLIENTS clients, each opening tunnels one
#          after another for DUR s (TCP connect, CONNECT and its 200 where
#          asked, a TLS handshake with the destination through the tunnel,
#          close), and the proxy worker's CPU per tunnel (/proc/PID/stat):
#            plain   stream proxy_pass to the destination (no CONNECT)
#            warm    CONNECT, verdict from the shared cache, answered
#                    after it (certguard_connect_sni off)
#            sni     the same with certguard_connect_sni on (the default:
#                    answered first, the ClientHello read, the TLS 1.2
#                    destination's Certificate message compared)
#          REPS times, interleaved; ratio = warm (sni) / plain tunnels per
#          second
#   cold   the cost of a cold CONNECT (certguard_cache off: every tunnel
#          probes), split: proxy worker CPU per tunnel cold with the memo
#          of verified signatures (cold), without it (nomemo:
#          certguard_verify_memo off), and warm; cold - warm is the probe
#          (its TLS handshake with the destination and the scoring); the
#          scoring alone is bench/cold_profile.c timed on the same chain
#          (memo on and off), so the probe's handshake is the rest
#
# The destination sends a leaf and an intermediate under the bench root
# (ECDSA P-256).  The proxy (one worker) runs on PROXY_CPU; the
# destination (another nginx) and the clients on CLIENT_CPU.
#
#   bench/connect.sh [REPS] [DUR] [CLIENTS]     (defaults 3, 10, 8)
#   env: PARTS ("rate cold"), PROXY_CPU (0), CLIENT_CPU (1),
#        CERTGUARD_BUILD, BENCH_DIR

set -euo pipefail

reps=${1:-3}
dur=${2:-10}
clients=${3:-8}
parts=${PARTS:-rate cold}
proxy_cpu=${PROXY_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
module=$build/ngx_stream_certguard_module.so
stream=/usr/lib/nginx/modules/ngx_stream_module.so
work=${BENCH_DIR:-$(mktemp -d /tmp/certguard-bench-connect-XXXXXX)}

. "$top/bench/lib.sh"

[ -f "$module" ] || { echo "no $module: run make" >&2; exit 2; }

cleanup() {
    set +e
    for d in "$work"/dst "$work"/px; do
        [ -d "$d" ] && nginx_stop "$d"
    done
    return 0
}
trap cleanup EXIT

mkdir -p "$work/dst" "$work/px"
chmod 755 "$work"
cd "$work"

user=""
[ "$(id -u)" = 0 ] && user="user root;"

if [ ! -s chain.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout ca.key -out ca.pem -days 3650 \
        -subj '/CN=bench connect root' \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout int.key -out int.csr -subj '/CN=bench connect intermediate' \
        2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" \
        "keyUsage=critical,keyCertSign,cRLSign" > int.ext
    openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 \
        -days 1825 -extfile int.ext -out int.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout dst.key -out dst.csr -subj '/CN=127.0.0.1' 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
        "keyUsage=critical,digitalSignature" > dst.ext
    openssl x509 -req -in dst.csr -CA int.pem -CAkey int.key -set_serial 7 \
        -days 80 -extfile dst.ext -out dst.pem 2>/dev/null
    cat dst.pem int.pem > chain.pem
fi

dst=$(free_port) plain=$(free_port) warm=$(free_port) cold=$(free_port)
sni=$(free_port)

cat > dst/nginx.conf <<EOF
load_module $stream;
$user
worker_processes 1;
pid $work/dst/nginx.pid;
error_log $work/dst/error.log warn;
events { worker_connections 4096; }
stream {
    server {
        listen 127.0.0.1:$dst ssl backlog=4096;
        ssl_certificate $work/chain.pem;
        ssl_certificate_key $work/dst.key;
        ssl_session_cache off;
        ssl_session_tickets off;
        return "ok\n";
    }
}
EOF

# px_conf MEMO: the proxy, with certguard_verify_memo MEMO
px_conf() {
    cat > px/nginx.conf <<EOF
load_module $stream;
load_module $module;
$user
worker_processes 1;
pid $work/px/nginx.pid;
error_log $work/px/error.log warn;
events { worker_connections 4096; }
stream {
    certguard_verify_memo $1;
    certguard_policy $top/policies/default.policy;
    certguard_trusted_certificate $work/ca.pem;
    certguard_connect_ports 1024-65535;
    certguard_connect_allow 127.0.0.0/8;
    certguard_connect_sni off;
    certguard_cache zone=bench:4m valid=1h;

    server {
        listen 127.0.0.1:$plain backlog=4096;
        proxy_pass 127.0.0.1:$dst;
    }
    server {
        listen 127.0.0.1:$warm backlog=4096;
        certguard_connect on;
        proxy_pass \$certguard_upstream;
    }
    server {
        listen 127.0.0.1:$cold backlog=4096;
        certguard_connect on;
        certguard_cache off;
        proxy_pass \$certguard_upstream;
    }
    server {
        listen 127.0.0.1:$sni backlog=4096;
        certguard_connect on;
        certguard_connect_sni on;
        proxy_pass \$certguard_upstream;
    }
}
EOF
}

nginx_start "$client_cpu" "$work/dst" "$work/dst/nginx.conf"
wait_port "$dst"

# tunnels PORT CONNECT: CLIENTS processes for DUR s; prints the tunnels
tunnels() {
    taskset -c "$client_cpu" perl -I"$top/bench" -MCgBench - "$1" "$2" "$dst" \
        "$clients" "$dur" <<'PERL'
use strict;
use warnings;
use IO::Socket::SSL;
use Time::HiRes qw(time);

my ($port, $connect, $dst, $clients, $dur) = @ARGV;
my @kids;

for my $k (1 .. $clients) {
    pipe(my $r, my $w) or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $r;
        my $ctx = client_ctx();
        my ($n, $end) = (0, time() + $dur);
        while (time() < $end) {
            my $s = tunnel($port, $connect ? "127.0.0.1:$dst" : undef)
                or die "tunnel: $@";
            IO::Socket::SSL->start_SSL($s, SSL_reuse_ctx => $ctx)
                or die "handshake: $SSL_ERROR";
            close $s;
            $n++;
        }
        print $w "$n\n";
        exit 0;
    }
    close $w;
    push @kids, $r;
}

my $total = 0;
for my $r (@kids) { my $n = <$r>; $total += $n // 0; }
1 while wait() > 0;
print "$total\n";
PERL
}

hz=$(getconf CLK_TCK)

# measure NAME PORT CONNECT: "tunnels/s  proxy CPU us/tunnel"
measure() {
    local w t0 t1 n
    w=$(nginx_workers "$work/px")
    t0=$(cpu_ticks $w)
    n=$(tunnels "$2" "$3")
    t1=$(cpu_ticks $w)
    printf '%s %.1f %.1f\n' "$1" "$(echo "$n / $dur" | bc -l)" \
        "$(echo "($t1 - $t0) * 1000000 / $hz / $n" | bc -l)"
}

case " $parts " in *" rate "*)
    echo "# CONNECT tunnels/s, $clients clients for ${dur}s, $reps reps; proxy worker CPU per tunnel (us)"
    px_conf "size=1m"
    nginx_start "$proxy_cpu" "$work/px" "$work/px/nginx.conf"
    wait_port "$warm"
    : > rate.txt
    for rep in $(seq 1 "$reps"); do
        for c in plain warm sni; do
            case $c in
                plain) line=$(measure plain "$plain" 0) ;;
                warm) line=$(measure warm "$warm" 1) ;;
                sni) line=$(measure sni "$sni" 1) ;;
            esac
            echo "$line $rep" | tee -a rate.txt
        done
    done
    nginx_stop "$work/px"
    perl -e '
        my %v;
        while (<>) { my ($c, $r, $cpu) = split; push @{$v{$c}}, [$r, $cpu] }
        sub med { my @s = sort { $a <=> $b } @_; $s[$#s / 2] }
        my ($pr, $pc) = (med(map { $_->[0] } @{$v{plain}}),
                         med(map { $_->[1] } @{$v{plain}}));
        printf "median: plain %.0f/s %.1f us\n", $pr, $pc;
        for my $c (qw(warm sni)) {
            my ($wr, $wc) = (med(map { $_->[0] } @{$v{$c}}),
                             med(map { $_->[1] } @{$v{$c}}));
            printf "median: %-5s %.0f/s %.1f us; ratio %.3f, +%.1f us a tunnel\n",
                $c, $wr, $wc, $wr / $pr, $wc - $pc;
        }
    ' rate.txt
    ;;
esac

case " $parts " in *" cold "*)
    echo "# cold CONNECT (probe every tunnel): proxy worker CPU per tunnel (us), $clients clients for ${dur}s"
    for memo in size=1m off; do
        px_conf "$memo"
        nginx_start "$proxy_cpu" "$work/px" "$work/px/nginx.conf"
        wait_port "$cold"
        for rep in $(seq 1 "$reps"); do
            echo "memo=$memo $(measure cold "$cold" 1) $rep"
            echo "memo=$memo $(measure warm "$warm" 1) $rep"
        done
        nginx_stop "$work/px"
    done

    cc -O2 -std=c11 -Wall -Wextra -Wno-unused-parameter \
        -I"$top/src/engine" -o cold_profile "$top/bench/cold_profile.c" \
        "$build/libcertguard.a" -lssl -lcrypto -lpcre2-8 -lmaxminddb -llmdb -lpsl
    echo "# scoring alone (bench/cold_profile.c, same chain, 2000 handshakes, on PROXY_CPU): us per handshake, parse included"
    for memo in on off; do
        t0=$(date +%s%N)
        NAME=127.0.0.1 taskset -c "$proxy_cpu" ./cold_profile \
            "$top/policies/default.policy" ca.pem "$memo" 2000 chain.pem \
            2> /dev/null
        t1=$(date +%s%N)
        printf 'scoring memo=%s %.1f\n' "$memo" \
            "$(echo "($t1 - $t0) / 1000 / 2000" | bc -l)"
    done
    ;;
esac
