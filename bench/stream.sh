#!/usr/bin/env bash
# Stream module: tunnel setup latency and tunnel throughput, in one run on
# one nginx, against plain stream proxying of the same destination.
#
#   setup  time from TCP connect to a finished TLS handshake with the
#          destination, N times each (sequential, one connection at a time):
#            plain  stream proxy_pass to the destination (no CONNECT)
#            cold   CONNECT, certguard_cache off: every tunnel probes
#            warm   CONNECT, verdict from the shared cache
#   bulk   download of SIZE MB through an established tunnel (curl -x)
#          against the same download through the plain stream proxy
#   flood  setup latency of a warm CONNECT (as in setup) while one client
#          floods the proxy with CONNECTs to cold names, each one a probe:
#            none       no flood
#            flood-1    FLOOD_CONC CONNECTs at a time, to names whose
#                       server sends one certificate
#            flood-100  the same, the server sends 100 certificates (a
#                       linear chain under the bench root, 45 KB: more
#                       than the probe reads)
#            flood-K    the same with the K certificates of that chain
#                       that fit the probe's 32 KB: the worst case
#          FLOOD_N warm CONNECTs in each case.  The proxy (its own nginx,
#          one worker) runs on CPU PROXY_CPU; the destinations (another
#          nginx), the flood and the measuring client on CLIENT_CPU
#   limit  legitimate CONNECTs, warm (127.0.0.1, a cached verdict) and
#          cold (a new name each, from one of 200 addresses 127.0.1.x:
#          many clients), with certguard_connect_sni on (the default:
#          the ClientHello after the 200), while one client (127.0.0.2)
#          floods cold names whose server sends the flood-K chain,
#          LIMIT_CONC CONNECTs at a time, each with a ClientHello:
#            none     no flood
#            flood    the flood, no certguard_probe_limit
#            limited  the flood, certguard_probe_limit LIMIT (a client
#                     past it held up to wait=, default 1s)
#            nowait   the flood, certguard_probe_limit LIMIT wait=0 (past
#                     it refused at once)
#          FLOOD_N warm and FLOOD_N cold CONNECTs in each case, one of each
#          in turn; p50 ratios against none
#
#   bench/stream.sh [N] [SIZE_MB]      (defaults 300 and 512)
#   env: PARTS ("setup bulk flood limit"), FLOOD_N (300), FLOOD_CONC (4),
#        LIMIT_CONC (16), LIMIT ("4 rate=10"), PROXY_CPU (0), CLIENT_CPU
#        (1)
#
# Needs nginx, libnginx-mod-stream, curl, perl with IO::Socket::SSL and the
# module in ${CERTGUARD_BUILD:-build}/ngx_stream_certguard_module.so.

set -euo pipefail

n=${1:-300}
size=${2:-512}
parts=${PARTS:-setup bulk flood limit}
flood_n=${FLOOD_N:-300}
flood_conc=${FLOOD_CONC:-4}
limit_conc=${LIMIT_CONC:-16}
limit=${LIMIT:-4 rate=10}
# LIMIT_CONN=N: the limited server also caps each client address at N
# connections with nginx's own limit_conn (refused at accept, before any
# CONNECT is read)
limit_conn=${LIMIT_CONN:-}
lc_zone=""
lc_line=""
if [ -n "$limit_conn" ]; then
    lc_zone="limit_conn_zone \$binary_remote_addr zone=cgperip:1m;"
    lc_line="limit_conn cgperip $limit_conn;"
fi
proxy_cpu=${PROXY_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
module=$build/ngx_stream_certguard_module.so
stream=/usr/lib/nginx/modules/ngx_stream_module.so
work=$(mktemp -d /tmp/certguard-bench-stream-XXXXXX)

. "$top/bench/lib.sh"

dns_pid=
trap 'test -f $work/nginx.pid && kill -QUIT $(cat $work/nginx.pid) 2>/dev/null;
      nginx_stop $work/fproxy; nginx_stop $work/fdst;
      [ -n "$dns_pid" ] && kill $dns_pid 2>/dev/null;
      sleep 0.3; rm -rf $work' EXIT

[ -f "$module" ] || { echo "no $module: run make" >&2; exit 2; }

port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'
}

chmod 755 "$work"
cd "$work"
mkdir -p logs tmp

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.pem -days 30 -subj '/CN=bench root' 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout dst.key -out dst.csr -subj '/CN=127.0.0.1' 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in dst.csr -CA ca.pem -CAkey ca.key -set_serial 7 \
    -days 30 -extfile ext.cnf -out dst.pem 2>/dev/null
printf 'include %s/policies/default.policy;\n' "$top" > bench.policy
case " $parts " in
    *" bulk "*) head -c $((size * 1024 * 1024)) /dev/zero > big ;;
esac

cold=$(port) warm=$(port) plain=$(port) dst=$(port) backend=$(port)

cat > nginx.conf <<EOF
load_module $stream;
load_module $module;
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }

http {
    access_log off;
    client_body_temp_path $work/tmp;
    server {
        listen 127.0.0.1:$backend;
        location / { root $work; }
    }
}

stream {
    certguard_policy $work/bench.policy;
    certguard_trusted_certificate $work/ca.pem;
    certguard_connect_ports 1024-65535;
    certguard_connect_allow 127.0.0.0/8;
    certguard_connect_sni off;
    certguard_cache zone=bench:4m valid=1h;

    server {
        listen 127.0.0.1:$cold;
        certguard_connect on;
        certguard_cache off;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$warm;
        certguard_connect on;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$plain;
        proxy_pass 127.0.0.1:$dst;
    }

    server {
        listen 127.0.0.1:$dst ssl;
        ssl_certificate $work/dst.pem;
        ssl_certificate_key $work/dst.key;
        ssl_session_cache off;
        ssl_session_tickets off;
        proxy_pass 127.0.0.1:$backend;
    }
}
EOF

/usr/sbin/nginx -p "$work/" -c "$work/nginx.conf"
sleep 0.5

case " $parts " in *" setup "*) ;; *) n=0 ;; esac

[ "$n" -gt 0 ] && echo "# tunnel setup: TCP connect to finished TLS handshake, $n each (ms)"

perl -I"$top/bench" -MCgBench - "$n" "$plain" "$cold" "$warm" "$dst" <<'PERL'
use strict;
use warnings;

my ($n, $plain, $cold, $warm, $dst) = @ARGV;
my $ctx = client_ctx();

sub once {
    my ($port, $connect) = @_;
    return handshake_ms($ctx, $port, $connect ? "127.0.0.1:$dst" : undef);
}

exit 0 unless $n;

once($warm, 1);                      # fill the cache

for my $case (['plain', $plain, 0], ['cold', $cold, 1],
              ['warm', $warm, 1])
{
    my ($name, $port, $connect) = @$case;
    my @t;

    once($port, $connect) for 1 .. 10;          # warm up
    push @t, once($port, $connect) for 1 .. $n;

    printf "%-6s p50 %.3f  p90 %.3f  p99 %.3f\n", $name,
           pct(50, @t), pct(90, @t), pct(99, @t);
}
PERL

case " $parts " in *" bulk "*) bulk=3 ;; *) bulk=0 ;; esac

[ $bulk -gt 0 ] && echo "# established tunnel: download of $size MB (MB/s), 3 runs each"

for i in $(seq 1 $bulk); do
    p=$(curl -sS -k -o /dev/null -w '%{size_download} %{time_total}' \
            "https://127.0.0.1:$plain/big")
    t=$(curl -sS -k -x "http://127.0.0.1:$warm" -o /dev/null \
            -w '%{size_download} %{time_total}' "https://127.0.0.1:$dst/big")
    echo "$p $t" | awk -v want=$((size * 1048576)) '{
        if ($1 != want || $3 != want) { print "download failed: " $0; exit 1 }
        p = $1 / $2 / 1048576; t = $3 / $4 / 1048576;
        printf "plain %.0f  certguard %.0f  ratio %.3f\n", p, t, t / p }'
done

case " $parts " in *" flood "*|*" limit "*) ;; *) exit 0 ;; esac

# --- flood: warm CONNECTs while one client floods cold names -------------

# 100 certificates: the leaf and 99 intermediates in a line under the bench
# root, as a server sends them (leaf first, no root)
mkdir -p long
cp ca.pem long/i0.pem
cp ca.key long/i0.key
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' \
    > long/ca.cnf
: > long/above
for i in $(seq 1 99); do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout long/i$i.key -out long/i$i.csr -subj "/CN=bench int $i" \
        2>/dev/null
    openssl x509 -req -in long/i$i.csr -CA long/i$((i - 1)).pem \
        -CAkey long/i$((i - 1)).key -set_serial $((1000 + i)) -days 30 \
        -extfile long/ca.cnf -out long/i$i.pem 2>/dev/null
    cat long/i$i.pem long/above > long/above.new
    mv long/above.new long/above
done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout long/leaf.key -out long/leaf.csr -subj '/CN=flood leaf' 2>/dev/null
printf 'subjectAltName=DNS:*.flood.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
    > long/leaf.cnf
openssl x509 -req -in long/leaf.csr -CA long/i99.pem -CAkey long/i99.key \
    -set_serial 7 -days 30 -extfile long/leaf.cnf -out long/leaf.pem 2>/dev/null
cat long/leaf.pem long/above > long/chain.pem
[ "$(grep -c BEGIN long/chain.pem)" = 100 ] || { echo "no 100-chain" >&2; exit 1; }

# the most of those that fit the probe's 32 KB (NGX_CERTGUARD_CERT_LIST_MAX,
# with 8 bytes a certificate for the TLS 1.3 framing): what an adversary
# who knows the bound sends
bytes=$(openssl x509 -in long/leaf.pem -outform DER | wc -c)
cp long/leaf.pem long/under.pem
fit=1
for i in $(seq 99 -1 1); do
    b=$(openssl x509 -in long/i$i.pem -outform DER | wc -c)
    [ $((bytes + b + 8 * (fit + 1))) -lt 32000 ] || break
    bytes=$((bytes + b)) fit=$((fit + 1))
    cat long/i$i.pem >> long/under.pem
done

fproxy=$(port) fdns=$(port) legit=$(port) one=$(port) hundred=$(port)
under=$(port) fbackend=$(port) lfree=$(port) llim=$(port) llim0=$(port)
mkdir -p fproxy/logs fdst/logs

# *.flood.test is 127.0.0.1
perl - "$fdns" <<'DNS' &
use strict;
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0],
                              Proto => 'udp') or die "dns: $!";
while (1) {
    my $peer = $s->recv(my $q, 512);
    next unless defined $peer && length $q > 12;
    my ($id) = unpack 'n', $q;
    my $pos = 12;
    $pos += 1 + ord substr($q, $pos, 1) while ord substr($q, $pos, 1);
    my ($type) = unpack 'n', substr($q, $pos + 1, 2);
    my $an = $type == 1 ? pack('n n n N n C4', 0xc00c, 1, 1, 3600, 4,
                               127, 0, 0, 1) : '';
    $s->send(pack('n6', $id, 0x8180, 1, $an ? 1 : 0, 0, 0)
             . substr($q, 12, $pos + 5 - 12) . $an, 0, $peer);
}
DNS
dns_pid=$!

cat > fdst/nginx.conf <<CONF
load_module $stream;
worker_processes 1;
pid $work/fdst/nginx.pid;
error_log $work/fdst/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server { listen 127.0.0.1:$fbackend; return 200 "ok\n"; }
}
stream {
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$legit ssl;
        listen 127.0.0.1:$one ssl;
        ssl_certificate $work/dst.pem;
        ssl_certificate_key $work/dst.key;
        proxy_pass 127.0.0.1:$fbackend;
    }
    server {
        listen 127.0.0.1:$hundred ssl;
        ssl_certificate $work/long/chain.pem;
        ssl_certificate_key $work/long/leaf.key;
        proxy_pass 127.0.0.1:$fbackend;
    }
    server {
        listen 127.0.0.1:$under ssl;
        ssl_certificate $work/long/under.pem;
        ssl_certificate_key $work/long/leaf.key;
        proxy_pass 127.0.0.1:$fbackend;
    }
}
CONF

# limit_server PORT ZONE LINES: a server of the limit part, its own cache
limit_server() {
    cat <<SERVER
    server {
        listen 127.0.0.1:$1;
        certguard_connect on;
        certguard_connect_ports $legit $under;
        certguard_connect_allow 127.0.0.0/8;
        certguard_mode monitor;
        certguard_policy $work/bench.policy;
        certguard_trusted_certificate $work/ca.pem;
        certguard_cache zone=$2:4m valid=1h;
        $3
        proxy_pass \$certguard_upstream;
    }
SERVER
}

cat > fproxy/nginx.conf <<CONF
load_module $stream;
load_module $module;
worker_processes 1;
pid $work/fproxy/nginx.pid;
error_log $work/fproxy/logs/error.log warn;
events { worker_connections 4096; }
stream {
    resolver 127.0.0.1:$fdns ipv6=off;
    $lc_zone
    server {
        listen 127.0.0.1:$fproxy;
        certguard_connect on;
        certguard_connect_ports $legit $one $hundred $under;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_mode monitor;
        certguard_policy $work/bench.policy;
        certguard_trusted_certificate $work/ca.pem;
        certguard_cache zone=flood:4m valid=1h;
        proxy_pass \$certguard_upstream;
    }
$(limit_server "$lfree" lfree "")
$(limit_server "$llim" llim "certguard_probe_limit $limit; $lc_line")
$(limit_server "$llim0" llim0 "certguard_probe_limit $limit wait=0; $lc_line")
}
CONF

nginx_start "$client_cpu" "$work/fdst" "$work/fdst/nginx.conf"
nginx_start "$proxy_cpu" "$work/fproxy" "$work/fproxy/nginx.conf"
wait_port "$fproxy"

case " $parts " in *" flood "*)

echo "# warm CONNECT setup (ms) under a flood of cold names, $flood_n each," \
     "flood $flood_conc at a time; flood-$fit: $fit certificates, $bytes bytes"

taskset -c "$client_cpu" perl -I"$top/bench" -MCgBench - "$flood_n" \
    "$flood_conc" "$fproxy" "$legit" "$one" "$hundred" "$under" "$fit" <<'PERL'
use strict;
use warnings;
use Time::HiRes qw(time sleep);

my ($n, $conc, $proxy, $legit, $one, $hundred, $under, $fit) = @ARGV;
my $ctx = client_ctx();

# a warm CONNECT and the TLS handshake through it
sub once {
    return handshake_ms($ctx, $proxy, "127.0.0.1:$legit");
}

# $conc children, each CONNECTs to new names one after the other until
# told to stop; each writes how many it got answered
sub flood {
    my ($port, $tag) = @_;
    my @pids;

    for my $c (1 .. $conc) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my ($i, $ok, $stop) = (0, 0, 0);
            local $SIG{TERM} = sub { $stop = 1 };
            while (!$stop) {
                $i++;
                my $s = tunnel($proxy, "f$c-$i-$tag.flood.test:$port");
                $ok++ if $s;
                close $s if $s;
            }
            open my $f, '>', "flood-$tag-$c" or exit 1;
            print $f "$ok\n";
            exit 0;
        }
        push @pids, $pid;
    }

    return @pids;
}

once() for 1 .. 10;                 # the legit destination is warm
my $base;

for my $case (['none', 0], ['flood-1', $one], ['flood-100', $hundred],
              ["flood-$fit", $under])
{
    my ($name, $port) = @$case;
    my @pids = $port ? flood($port, $name) : ();
    my (@t, $t0);

    sleep 0.5 if @pids;             # the flood is going
    $t0 = time();
    push @t, once() for 1 .. $n;
    my $dur = time() - $t0 + (@pids ? 0.5 : 0);

    kill 'TERM', @pids;
    waitpid($_, 0) for @pids;

    my $flooded = 0;
    for my $c (1 .. $conc) {
        next unless $port && open my $f, '<', "flood-$name-$c";
        $flooded += <$f>;
    }

    my $p50 = pct(50, @t);
    $base //= $p50;
    printf "%-9s p50 %.3f  p90 %.3f  p99 %.3f  x%.2f of none at p50%s\n",
           $name, $p50, pct(90, @t), pct(99, @t), $p50 / $base,
           $port ? sprintf("  (%.0f cold CONNECTs/s answered)",
                           $flooded / $dur) : '';
}
PERL
;;
esac

case " $parts " in *" limit "*) ;; *) exit 0 ;; esac

echo "# legitimate CONNECT setup (ms), certguard_connect_sni on, $flood_n warm" \
     "and $flood_n cold each, while 127.0.0.2 floods cold names of $fit" \
     "certificates ($bytes bytes), $limit_conc at a time;" \
     "limited: certguard_probe_limit $limit${limit_conn:+, limit_conn $limit_conn}"

taskset -c "$client_cpu" perl -I"$top/bench" -MCgBench - "$flood_n" \
    "$limit_conc" "$lfree" "$llim" "$legit" "$under" "$llim0" <<'PERL'
use strict;
use warnings;
use Net::SSLeay;
use Time::HiRes qw(time sleep);

my ($n, $conc, $free, $lim, $legit, $under, $lim0) = @ARGV;
my $ctx = client_ctx();

# the flood's ClientHello, OpenSSL's defaults without SNI, made once
my $hello = do {
    my $c = Net::SSLeay::CTX_new() or die;
    my $ssl = Net::SSLeay::new($c) or die;
    my $rb = Net::SSLeay::BIO_new(Net::SSLeay::BIO_s_mem());
    my $wb = Net::SSLeay::BIO_new(Net::SSLeay::BIO_s_mem());
    Net::SSLeay::set_bio($ssl, $rb, $wb);
    Net::SSLeay::connect($ssl);
    Net::SSLeay::BIO_read($wb);
};

# a CONNECT and the TLS handshake through it, in ms
sub once {
    my ($port, $from, $target) = @_;
    return handshake_ms($ctx, $port, $target, $from);
}

# $conc children from 127.0.0.2, each a CONNECT to a new name and its
# ClientHello, then the first bytes back (a ServerHello: probed and
# opened; an alert: refused), one after the other until told to stop
sub flood {
    my ($port, $tag) = @_;
    my @pids;

    for my $c (1 .. $conc) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my ($i, $ok, $no, $stop) = (0, 0, 0, 0);
            local $SIG{TERM} = sub { $stop = 1 };
            local $SIG{PIPE} = 'IGNORE';
            while (!$stop) {
                $i++;
                my $s = tunnel($port, "f$c-$i-$tag.flood.test:$under",
                               '127.0.0.2');
                unless ($s) { $no++; next; }
                syswrite($s, $hello);
                my $got = '';
                sysread($s, $got, 1);
                ($got eq "\x16" ? $ok : $no)++;
                close $s;
            }
            open my $f, '>', "limit-$tag-$c" or exit 1;
            print $f "$ok $no\n";
            exit 0;
        }
        push @pids, $pid;
    }

    return @pids;
}

# the legitimate destination's verdict is warm in both servers
for my $port ($free, $lim, $lim0) {
    once($port, '127.0.0.1', "127.0.0.1:$legit") for 1 .. 10;
}

my ($wbase, $cbase);

for my $case (['none', $lim, 0], ['flood', $free, 1], ['limited', $lim, 1],
              ['nowait', $lim0, 1])
{
    my ($name, $port, $flooding) = @$case;
    my @pids = $flooding ? flood($port, $name) : ();
    my (@w, @c, $t0);

    sleep 0.5 if @pids;             # the flood is going
    $t0 = time();
    for my $i (1 .. $n) {
        push @w, once($port, '127.0.0.1', "127.0.0.1:$legit");
        push @c, once($port, '127.0.1.' . (1 + $i % 200),
                      "c$i-$name.flood.test:$legit");
    }
    my $dur = time() - $t0 + (@pids ? 0.5 : 0);

    kill 'TERM', @pids;
    waitpid($_, 0) for @pids;

    my ($ok, $no) = (0, 0);
    for my $c (1 .. $conc) {
        next unless $flooding && open my $f, '<', "limit-$name-$c";
        my ($a, $b) = split ' ', <$f>;
        ($ok, $no) = ($ok + $a, $no + $b);
    }

    my ($w50, $c50) = (pct(50, @w), pct(50, @c));
    $wbase //= $w50;
    $cbase //= $c50;
    printf "%-8s warm p50 %.3f  p99 %.3f  x%.2f   cold p50 %.3f  p99 %.3f"
           . "  x%.2f%s\n", $name, $w50, pct(99, @w), $w50 / $wbase,
           $c50, pct(99, @c), $c50 / $cbase,
           $flooding ? sprintf("  (flood: %.0f probed/s, %.0f refused/s)",
                               $ok / $dur, $no / $dur) : '';
}
PERL
