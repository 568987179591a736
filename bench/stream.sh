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
#
#   bench/stream.sh [N] [SIZE_MB]      (defaults 300 and 512)
#
# Needs nginx, libnginx-mod-stream, curl, perl with IO::Socket::SSL and the
# module in ${CERTGUARD_BUILD:-build}/ngx_stream_certguard_module.so.

set -euo pipefail

n=${1:-300}
size=${2:-512}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
module=$build/ngx_stream_certguard_module.so
stream=/usr/lib/nginx/modules/ngx_stream_module.so
work=$(mktemp -d /tmp/certguard-bench-stream-XXXXXX)

trap 'test -f $work/nginx.pid && kill -QUIT $(cat $work/nginx.pid) 2>/dev/null;
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
head -c $((size * 1024 * 1024)) /dev/zero > big

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

echo "# tunnel setup: TCP connect to finished TLS handshake, $n each (ms)"

perl - "$n" "$plain" "$cold" "$warm" "$dst" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use IO::Socket::SSL;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

my ($n, $plain, $cold, $warm, $dst) = @ARGV;

# one client context for all handshakes: no CA store load per connection
my $ctx = IO::Socket::SSL::SSL_Context->new(SSL_verify_mode => SSL_VERIFY_NONE,
                                            SSL_session_cache_size => 0)
    or die "context: $SSL_ERROR";

sub once {
    my ($port, $connect) = @_;
    my $t0 = time();
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!";

    $s->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);

    if ($connect) {
        print $s "CONNECT 127.0.0.1:$dst HTTP/1.1\r\n\r\n";
        my $resp = '';
        while ($resp !~ /\r\n\r\n/) {
            sysread($s, my $b, 1) or die "closed";
            $resp .= $b;
        }
        die "refused: $resp" unless $resp =~ /^HTTP\/1\.1 200 /;
    }

    IO::Socket::SSL->start_SSL($s, SSL_reuse_ctx => $ctx)
        or die "handshake: $SSL_ERROR";
    my $dt = (time() - $t0) * 1000;
    close $s;

    return $dt;
}

sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[int($p / 100 * $#v + 0.5)];
}

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

echo "# established tunnel: download of $size MB (MB/s), 3 runs each"

for i in 1 2 3; do
    p=$(curl -sS -k -o /dev/null -w '%{size_download} %{time_total}' \
            "https://127.0.0.1:$plain/big")
    t=$(curl -sS -k -x "http://127.0.0.1:$warm" -o /dev/null \
            -w '%{size_download} %{time_total}' "https://127.0.0.1:$dst/big")
    echo "$p $t" | awk -v want=$((size * 1048576)) '{
        if ($1 != want || $3 != want) { print "download failed: " $0; exit 1 }
        p = $1 / $2 / 1048576; t = $3 / $4 / 1048576;
        printf "plain %.0f  certguard %.0f  ratio %.3f\n", p, t, t / p }'
done
