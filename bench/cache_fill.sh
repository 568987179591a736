#!/usr/bin/env bash
# The verdict cache's room: fills a zone of each module with more
# destinations than it holds and reports how many it keeps, per MB, and
# how many entries one insertion evicts once it is full.
#
#   http    GET /?n=NAME through certguard on, proxy_ssl_name NAME: one
#           upstream handshake and one entry per name
#   stream  CONNECT NAME:PORT, names resolved to 127.0.0.1 by a resolver of
#           this script's: one probe and one entry per name
#
# Destinations are the same TLS server under N names (*.fill.test); its
# chain is leaf + intermediate under a root the proxy trusts, with names as
# long as public CAs write them, so a result is what most egress stores (an
# allow, no hits).  CHAIN=self instead serves a self-signed leaf (a result
# with hits: self_signed, untrusted_chain).  A zone's room is N - evictions after the fill; then MORE further
# names give the evictions per insertion.  Counters come from the status
# page (certguard_cache_evictions_total).
#
#   bench/cache_fill.sh [ZONE] [N] [MORE]     (defaults 1m, 2600, 200)
#   env: CHAIN (ca | self), MODULES ("http stream"), CERTGUARD_BUILD
#
# Not a timing benchmark, but it makes N + MORE handshakes per module
# (about 3 ms of CPU each): run it on a quiet machine.

set -euo pipefail

zone=${1:-1m}
n=${2:-2600}
more=${3:-200}
chain=${CHAIN:-ca}
modules=${MODULES:-http stream}

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
work=$(mktemp -d /tmp/certguard-bench-fill-XXXXXX)

. "$top/bench/lib.sh"

for f in ngx_http_certguard_module.so ngx_stream_certguard_module.so; do
    [ -f "$build/$f" ] || { echo "no $build/$f: run make" >&2; exit 2; }
done

dns_pid=
cleanup() {
    nginx_stop "$work"
    [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

chmod 755 "$work"
cd "$work"
mkdir -p logs tmp

# the chain, by the tests' certificate factory: names as long as public
# CAs write them, a leaf issued ten days ago with an (empty) SCT list
read -r root chainpem key <<<"$(perl -I"$top/t/lib" -MCertguard::Certs -e '
    my ($chain) = @ARGV;
    my $p = Certguard::Certs->new("pki");
    my %subj = (subject => "/C=US/ST=California/L=San Francisco"
                           . "/O=Example Inc./CN=*.fill.test",
                san => "DNS:*.fill.test,DNS:fill.test",
                key => "ec:prime256v1");
    my $root = $p->ca("root", subject =>
                      "/C=US/O=Example Trust Services LLC/CN=Example Root R1");
    my $int = $p->ca("int", issuer => $root, subject =>
              "/C=US/O=Example Trust Services LLC/CN=Example TLS ECC CA 1C3");
    my $leaf = $chain eq "self" ? $p->leaf("self", %subj)
                                : $p->good_leaf("fill", issuer => $int, %subj);
    print "$root->{cert} $leaf->{chain} $leaf->{key}\n";
' "$chain")"

port=$(free_port) sport=$(free_port) proxy=$(free_port) dst=$(free_port)
dns=$(free_port) backend=$(free_port)

# *.fill.test is 127.0.0.1, for the stream module's resolver
perl - "$dns" <<'PERL' &
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
PERL
dns_pid=$!

cat > nginx.conf <<EOF
load_module $build/ngx_http_certguard_module.so;
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $build/ngx_stream_certguard_module.so;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 1024; }

http {
    access_log off;
    client_body_temp_path $work/tmp;

    server {
        listen 127.0.0.1:$port;
        certguard on;
        certguard_mode monitor;         # a blocked chain is stored too
        certguard_policy $top/policies/default.policy;
        certguard_trusted_certificate $root;
        certguard_cache zone=fill_http:$zone valid=1h;
        proxy_ssl_session_reuse off;
        proxy_ssl_server_name on;
        proxy_ssl_name \$arg_n;
        location / { proxy_pass https://127.0.0.1:$dst; }
    }

    server {
        listen 127.0.0.1:$sport;
        location = /metrics { certguard_status; }
    }

    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "ok\n"; }
    }
}

stream {
    resolver 127.0.0.1:$dns ipv6=off;

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports $dst;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_mode monitor;
        certguard_policy $top/policies/default.policy;
        certguard_trusted_certificate $root;
        certguard_cache zone=fill_stream:$zone valid=1h;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$dst ssl;
        ssl_certificate $chainpem;
        ssl_certificate_key $key;
        ssl_session_cache off;
        ssl_session_tickets off;
        proxy_pass 127.0.0.1:$backend;
    }
}
EOF

nginx_start 0-1 "$work" "$work/nginx.conf"
wait_port "$port"

echo "# zone $zone, $n names, then $more more; chain: $chain"

perl - "$n" "$more" "$zone" "$port" "$sport" "$proxy" "$dst" "$modules" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;

my ($n, $more, $zone, $port, $sport, $proxy, $dst, $modules) = @ARGV;

my %k = (k => 1024, m => 1024 * 1024);
my ($num, $unit) = $zone =~ /^(\d+)([km]?)$/i or die "zone size $zone";
my $mb = $num * ($k{lc $unit} // 1) / (1024 * 1024);

sub evictions {
    my ($module) = @_;
    my $s = IO::Socket::INET->new("127.0.0.1:$sport") or die "status: $!";
    print $s "GET /metrics HTTP/1.0\r\n\r\n";
    local $/;
    my $page = <$s>;
    my ($e) = $page =~ /^certguard_cache_evictions_total\{module="$module"\} (\d+)$/m;
    return $e // die "no eviction counter for $module";
}

sub one {
    my ($module, $name) = @_;
    my $s;

    if ($module eq 'http') {
        $s = IO::Socket::INET->new("127.0.0.1:$port") or die "http: $!";
        print $s "GET /?n=$name HTTP/1.0\r\nHost: x\r\n\r\n";
    } else {
        $s = IO::Socket::INET->new("127.0.0.1:$proxy") or die "proxy: $!";
        print $s "CONNECT $name:$dst HTTP/1.1\r\nHost: $name:$dst\r\n\r\n";
    }

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($s, my $b, 512) or last;
        $head .= $b;
    }
    close $s;

    return $head =~ /^HTTP\/1\.[01] 200 / ? 1 : 0;
}

for my $module (split ' ', $modules) {
    my $e0 = evictions($module);
    my $ok = 0;

    $ok += one($module, "f$_-$module.fill.test") for 1 .. $n;
    my $e1 = evictions($module);
    $ok += one($module, "m$_-$module.fill.test") for 1 .. $more;
    my $e2 = evictions($module);

    die "$module: only $ok of " . ($n + $more) . " answered 200\n"
        if $ok != $n + $more;

    my $room = $n - ($e1 - $e0);
    printf "%-6s room %d destinations in %s: %.0f per MB; "
           . "%.2f evictions per insertion when full%s\n",
           $module, $room, $zone, $room / $mb, ($e2 - $e1) / $more,
           $e1 == $e0 ? " (NOT FULL: give more names)" : "";
}
PERL
