#!/usr/bin/env bash
# The probe under real network latency: the destination in a network
# namespace behind a veth pair with netem delay on both ends (RTT ms in
# all), the proxy and the clients in the host's namespace.  For each RTT:
#
#   setup  N tunnels one after another, each timed from TCP connect to a
#          finished TLS handshake with the destination through the proxy:
#            plain  stream proxy_pass to the destination (no CONNECT)
#            warm   CONNECT, verdict from the cache
#            cold   CONNECT, certguard_cache off: the probe (TCP connect
#                   and TLS handshake with the destination, the scoring)
#                   comes before the tunnel
#          p50 in ms and in RTTs; cold - warm is what the probe adds, which
#          should be one TLS handshake's worth (TCP 1 RTT + TLS 1.3 1 RTT)
#   burst  K clients at once CONNECT to one destination nobody asked for
#          before (a new port of the destination each round, cache on):
#          one probe for all (the probes are joined by key), so each
#          client's setup is about a cold one; the destination's log
#          counts the connections (K tunnels + the probes)
#
# Needs root (ip netns, tc), nginx with libnginx-mod-stream, perl
# IO::Socket::SSL.  Where the kernel has no netem qdisc (sch_netem; the
# Firecracker VMs of the shared machine have none), the latency comes from
# bench/delay_relay.pl in the namespace instead, in front of the
# destination: each chunk held RTT/2 each way, a connection's first bytes
# after one RTT more (its TCP handshake); the first line says which.
#
#   bench/netem.sh [N] [K]          (defaults 50 and 32)
#   env: RTTS ("20 100"), ROUNDS (3), CERTGUARD_BUILD, BENCH_DIR

set -euo pipefail

n=${1:-50}
k=${2:-32}
rounds=${ROUNDS:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
module=$build/ngx_stream_certguard_module.so
stream=/usr/lib/nginx/modules/ngx_stream_module.so
work=${BENCH_DIR:-$(mktemp -d /tmp/certguard-bench-netem-XXXXXX)}

. "$top/bench/lib.sh"

[ "$(id -u)" = 0 ] || { echo "netem.sh: needs root (ip netns, tc)" >&2; exit 2; }
[ -f "$module" ] || { echo "no $module: run make" >&2; exit 2; }

ns=cgbench$$
v0=cgb0$$
v1=cgb1$$
net=10.231.$(( $$ % 250 ))
hostip=$net.1
dstip=$net.2

relay_pid=
# everything this script started goes, whatever failed first (set -e is off
# here: a kill of what is already gone must not stop the rest)
cleanup() {
    set +e
    [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null
    nginx_stop "$work/px"
    if [ -s "$work/dst/nginx.pid" ]; then
        kill -QUIT "$(cat "$work/dst/nginx.pid")" 2>/dev/null || true
        sleep 0.3
    fi
    ip link del "$v0" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    return 0
}
trap cleanup EXIT

mkdir -p "$work/dst" "$work/px"
chmod 755 "$work"
cd "$work"

ip netns add "$ns"
ip link add "$v0" type veth peer name "$v1"
ip link set "$v1" netns "$ns"
ip addr add "$hostip/24" dev "$v0"
ip link set "$v0" up
ip netns exec "$ns" ip addr add "$dstip/24" dev "$v1"
ip netns exec "$ns" ip link set "$v1" up
ip netns exec "$ns" ip link set lo up

# netem, or the relay: then nginx listens behind it on 127.0.0.1:PORT+10000
delay=netem
if ! tc qdisc replace dev "$v0" root netem delay 1ms 2>/dev/null; then
    delay=relay
fi
echo "# latency: $delay"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.pem -days 3650 -subj '/CN=bench netem root' \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout int.key -out int.csr -subj '/CN=bench netem intermediate' \
    2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" \
    "keyUsage=critical,keyCertSign,cRLSign" > int.ext
openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 \
    -days 1825 -extfile int.ext -out int.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout dst.key -out dst.csr -subj "/CN=$dstip" 2>/dev/null
printf '%s\n' "subjectAltName=IP:$dstip" "extendedKeyUsage=serverAuth" \
    > dst.ext
openssl x509 -req -in dst.csr -CA int.pem -CAkey int.key -set_serial 7 \
    -days 80 -extfile dst.ext -out dst.pem 2>/dev/null
cat dst.pem int.pem > chain.pem

user=""
[ "$(id -u)" = 0 ] && user="user root;"

# the destination: port 8443 for setup, 9000 + round for the bursts
dports="8443 $(seq -s ' ' 9001 $((9000 + rounds * 4)))"
listens=""
for p in $dports; do
    if [ $delay = netem ]; then
        listens="$listens
        listen $dstip:$p ssl backlog=4096;"
    else
        listens="$listens
        listen 127.0.0.1:$((p + 10000)) ssl backlog=4096;"
    fi
done

cat > dst/nginx.conf <<EOF
load_module $stream;
$user
worker_processes 1;
pid $work/dst/nginx.pid;
error_log $work/dst/error.log warn;
events { worker_connections 4096; }
stream {
    log_format port '\$server_port';
    # (behind the relay: PORT+10000)
    access_log $work/dst/access.log port;
    server {
        $listens
        ssl_certificate $work/chain.pem;
        ssl_certificate_key $work/dst.key;
        ssl_session_cache off;
        ssl_session_tickets off;
        return "ok\n";
    }
}
EOF

ip netns exec "$ns" "$nginx_bin" -p "$work/dst/" -c "$work/dst/nginx.conf" \
    -e "$work/dst/error.log"

plain=$(free_port) warm=$(free_port) cold=$(free_port)

cat > px/nginx.conf <<EOF
load_module $stream;
load_module $module;
$user
worker_processes 1;
pid $work/px/nginx.pid;
error_log $work/px/error.log warn;
events { worker_connections 4096; }
stream {
    certguard_policy $top/policies/default.policy;
    certguard_trusted_certificate $work/ca.pem;
    certguard_connect_ports 1024-65535;
    certguard_connect_allow $net.0/24;
    certguard_connect_sni off;
    certguard_cache zone=bench:4m valid=1h;
    certguard_probe_timeout 10s;

    server {
        listen 127.0.0.1:$plain backlog=4096;
        proxy_pass $dstip:8443;
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
}
EOF

nginx_start 0-1 "$work/px" "$work/px/nginx.conf"
wait_port "$cold"

# clients MODE PORT DSTPORT COUNT PARALLEL: setup times (ms), one a line
clients() {
    perl -I"$top/bench" -MCgBench - "$@" "$dstip" <<'PERL'
use strict;
use warnings;
use Time::HiRes qw(time sleep);

my ($connect, $port, $dport, $count, $par, $dstip) = @ARGV;

sub once {
    my $ctx = shift;
    return handshake_ms($ctx, $port, $connect ? "$dstip:$dport" : undef);
}

my $ctx = client_ctx();

if ($par <= 1) {
    printf "%.3f\n", once($ctx) for 1 .. $count;
    exit 0;
}

# all at once: the children wait for the same instant
my $start = time() + 0.5;
my @r;
for (1 .. $par) {
    pipe(my $r, my $w) or die;
    my $pid = fork // die;
    if ($pid == 0) {
        close $r;
        sleep($start - time()) if $start > time();
        printf $w "%.3f\n", once($ctx);
        exit 0;
    }
    close $w;
    push @r, $r;
}
for my $r (@r) { print scalar <$r> }
1 while wait() > 0;
PERL
}

# stats RTT: "p50 ms (RTTs) p90 max" of the times on stdin
stats() {
    perl -e '
        my $rtt = shift;
        my @v = sort { $a <=> $b } map { chomp; $_ } <STDIN>;
        my $p = sub { $v[int($_[0] / 100 * $#v + 0.5)] };
        printf "p50 %8.2f ms (%.2f RTT)  p90 %8.2f  max %8.2f  n %d",
            $p->(50), $p->(50) / $rtt, $p->(90), $v[-1], scalar @v;
    ' "$1"
}

round=0

for rtt in ${RTTS:-20 100}; do
    half=$(echo "$rtt / 2" | bc -l)
    if [ $delay = netem ]; then
        tc qdisc replace dev "$v0" root netem delay "${half}ms"
        ip netns exec "$ns" tc qdisc replace dev "$v1" root netem \
            delay "${half}ms"
    else
        if [ -n "$relay_pid" ]; then
            kill "$relay_pid" 2>/dev/null || true
        fi
        ip netns exec "$ns" perl "$top/bench/delay_relay.pl" "$dstip" 10000 \
            "$rtt" $dports &
        relay_pid=$!
        sleep 0.5
    fi

    printf '# RTT %s ms (%s, %g ms each way); tunnel setup, %s each, one at a time\n' \
        "$rtt" "$delay" "$half" "$n"
    clients 1 "$warm" 8443 1 1 > /dev/null            # fill the cache
    for c in plain warm cold; do
        case $c in
            plain) t=$(clients 0 "$plain" 8443 "$n" 1) ;;
            warm) t=$(clients 1 "$warm" 8443 "$n" 1) ;;
            cold) t=$(clients 1 "$cold" 8443 "$n" 1) ;;
        esac
        echo "$t" > "setup-$rtt-$c.txt"
        printf '%-5s %s\n' "$c" "$(echo "$t" | stats "$rtt")"
    done
    perl -e '
        my ($rtt, @f) = @ARGV;
        my @m = map { open my $h, "<", $_ or die; my @v = sort { $a <=> $b }
                      map { chomp; $_ } <$h>; $v[$#v / 2] } @f;
        printf "cold - warm at p50: %.2f ms = %.2f RTT (the probe); warm - plain: %.2f ms = %.2f RTT\n",
            $m[2] - $m[1], ($m[2] - $m[1]) / $rtt, $m[1] - $m[0],
            ($m[1] - $m[0]) / $rtt;
    ' "$rtt" "setup-$rtt-plain.txt" "setup-$rtt-warm.txt" "setup-$rtt-cold.txt"

    echo "# RTT $rtt ms: $k clients at once to one cold destination, $rounds rounds"
    for r in $(seq 1 "$rounds"); do
        round=$((round + 1))
        dport=$((9000 + round))
        t=$(clients 1 "$warm" "$dport" 1 "$k")
        sleep 0.2
        lport=$dport
        [ $delay = relay ] && lport=$((dport + 10000))
        conns=$(grep -c "^$lport\$" dst/access.log || true)
        printf 'round %d: %s; %d connections at the destination (%d tunnels + %d probes)\n' \
            "$r" "$(echo "$t" | stats "$rtt")" "$conns" "$k" $((conns - k))
    done
done
