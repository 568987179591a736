#!/usr/bin/perl

# One egress port for every client: a stream server with certguard_connect
# answers CONNECT itself (proxy authentication, guards, the probe) and
# hands a connection that starts with a plain-HTTP proxy request
# ("GET http://...") to an internal HTTP server with certguard_forward
# (certguard_http_pass, the PROXY protocol in front), over a unix socket or
# TCP.  Real curl as a client configured with one proxy for both schemes
# (-x, http_proxy and HTTPS_PROXY), keep-alive, the client address seen
# inside, credentials never logged, the guards' refusals and their CEF
# records.  The test runs in a network namespace of its own with only lo
# up, so that a broken guard cannot send a packet off the machine (the
# metadata address among them): it would fail with a connection error, not
# with the refusal and the reason the test expects.  Loopback destinations
# have canary listeners that must see nothing.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

###############################################################################

BEGIN {
    if (!$ENV{CERTGUARD_NETNS}) {
        if ($> == 0 && system('unshare -n true 2>/dev/null') == 0) {
            $ENV{CERTGUARD_NETNS} = 1;
            exec 'unshare', '-n', '--', 'sh', '-c',
                'ip link set lo up && exec "$0" "$@"', $^X,
                "$FindBin::Bin/$FindBin::Script", @ARGV;
        }
        plan(skip_all => 'needs root and unshare -n for its own network');
    }
}

my ($MODULE, $STREAM) = need_stream(curl => 1);
my $HTTP_MODULE = Certguard::Nginx::need_module();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard one-port test root');
my $tls_cert = $pki->good_leaf('tls', issuer => $root);
my $c2_cert = $pki->leaf('c2', subject => [
        [C => 'Earth'], [ST => 'Cyberspace'], [L => 'Somewhere'],
        [O => 'cobaltstrike'], [OU => 'AdvancedPenTesting'],
        [CN => 'Major Cobalt Strike']],
    san => 'DNS:c2.test');

my ($proxy, $proxy2, $inner, $dns, $plain, $tls, $c2) = free_ports(7);

my $hash = `openssl passwd -apr1 -salt certgrd s3cret`;
chomp $hash;
write_file("$dir/users", "alice:$hash\n");

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";
my $sock = "$dir/http.sock";
my $fwd = repo_root() . '/conf/forward-proxy.conf';
my $policy = policy_dir() . '/default.policy';

$ng->dns_server($dns,
    'plain.test' => ['127.0.0.2'],
    'tls.test'   => ['127.0.0.2'],
    'c2.test'    => ['127.0.0.2'],
    'loop.test'  => ['127.0.0.1'],
    'meta.test'  => ['169.254.169.254']);

my $auth = <<"AUTH";
        certguard_proxy_auth "certguard one port";
        certguard_proxy_auth_user_file $dir/users;
AUTH

# (the harness waits on 127.0.0.1: the canaries answer for $plain and $tls)
my @ports = ($proxy, $proxy2, $inner, $plain, $tls);

$ng->start(<<"HTTP", ports => \@ports, main => <<"MAIN");
    resolver 127.0.0.1:$dns ipv6=off valid=60s;
    resolver_timeout 5s;

    log_format inner '\$remote_addr pp=\$proxy_protocol_addr '
                     'user=\$certguard_user "\$request" \$status';

    # the HTTP side of the one port: plain HTTP, handed over with the
    # PROXY protocol
    server {
        listen unix:$sock proxy_protocol;
        set_real_ip_from unix:;
        real_ip_header proxy_protocol;
        access_log $logs/inner.log inner;

        certguard_log $logs/cef-http.log;
$auth
        certguard_allow 127.0.0.2;
        certguard_http_ports 80 $plain;

        location / {
            include $fwd;
        }
    }

    # the same over TCP, without authentication
    server {
        listen 127.0.0.1:$inner proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        access_log $logs/inner-tcp.log inner;

        certguard_allow 127.0.0.2;
        certguard_http_ports $plain;

        location / {
            include $fwd;
        }
    }

    # the destinations
    server {
        listen 127.0.0.2:$plain;
        access_log $logs/up-plain.log;
        location / {
            return 200
                "plain ok uri=\$request_uri auth=\$http_proxy_authorization\\n";
        }
    }

    server {
        listen 127.0.0.2:$tls ssl;
        ssl_certificate $tls_cert->{chain};
        ssl_certificate_key $tls_cert->{key};
        access_log $logs/up-tls.log;
        location / { return 200 "tls ok\\n"; }
    }

    server {
        listen 127.0.0.2:$c2 ssl;
        ssl_certificate $c2_cert->{chain};
        ssl_certificate_key $c2_cert->{key};
        access_log $logs/up-c2.log;
        location / { return 200 "beacon\\n"; }
    }
HTTP
load_module $STREAM;
load_module $MODULE;

stream {
    resolver 127.0.0.1:$dns ipv6=off valid=60s;
    resolver_timeout 5s;

    log_format sp '\$status user=\$certguard_user up=\$certguard_upstream '
                  'v=\$certguard_verdict';
    log_format canary '\$remote_addr \$server_port';

    # the one port, in the shape of the demo
    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_http_pass unix:$sock;
        certguard_policy $policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/cef.log;
$auth
        certguard_allow 127.0.0.2;
        certguard_connect_ports 443 80 $tls $c2;
        access_log $logs/stream.log sp;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$proxy2;
        certguard_connect on;
        certguard_http_pass 127.0.0.1:$inner;
        certguard_policy $policy;
        certguard_allow 127.0.0.2;
        proxy_pass \$certguard_upstream;
    }

    # canaries: loopback at the proxy's own address must never be reached
    server {
        listen 127.0.0.1:$tls;
        access_log $logs/canary.log canary;
        return "canary\\n";
    }

    server {
        listen 127.0.0.1:$plain;
        access_log $logs/canary.log canary;
        return "canary\\n";
    }
}
MAIN

my $alice = "http://alice:s3cret\@127.0.0.1:$proxy";

# the harness's own connections when it waited for the ports
my $canary_seen = scalar $ng->wait_lines('canary', 2);

# curl through a proxy: { code, connect, out, err }
sub curl {
    my ($via, @args) = @_;
    my $r = run({ timeout => 20 }, '/usr/bin/curl', '-sS', '-i',
                '--max-time', '10', '-x', $via, '--cacert', $root->{cert},
                '-w', '\n%{http_code} %{http_connect}', @args);
    my ($out, $code, $connect) = ($r->{out} // '') =~ /^(.*)\n(\d+) (\d+)$/s;

    return { code => $code // 0, connect => $connect // 0,
             out => $out // '', err => $r->{err} };
}

sub cef { grep { /$_[1]/ } $ng->log_lines($_[0]) }

###############################################################################

# plain HTTP and HTTPS through the one port

my $r = curl($alice, "http://plain.test:$plain/a?b=1");
is($r->{code}, 200, 'plain HTTP through the one port: 200');
like($r->{out}, qr/plain ok uri=\/a\?b=1 auth=\n/,
     'plain HTTP: the body, no Proxy-Authorization forwarded');

$r = curl($alice, "https://tls.test:$tls/");
is($r->{connect}, 200, 'HTTPS through the one port: CONNECT 200');
is($r->{code}, 200, 'HTTPS: 200 from the destination');
like($r->{out}, qr/tls ok/, 'HTTPS: the body');

$r = curl($alice, "https://c2.test:$c2/", '-k');
is($r->{connect}, 200, 'a C2-like self-signed destination: CONNECT 200');
like($r->{err}, qr/alert handshake failure/,
     'C2: the tunnel refused with a TLS alert');
is(scalar $ng->log_lines('up-c2'), 0, 'the C2 destination saw no request');
ok(cef('cef', qr/act=blocked.*dhost=c2\.test/),
   'C2: CEF verdict record');

my $lo = qr/127\.0\.0\.1/;
my @inner = $ng->wait_lines('inner', 1);
like($inner[0] // '',
     qr{^$lo pp=$lo user=alice "GET http://plain\.test:$plain/a\?b=1 },
     'the internal server sees the client address (PROXY protocol, realip)');

my @stream = $ng->wait_lines('stream', 3);
ok((grep { /^200 user=- up=unix:\Q$sock\E v=$/ } @stream),
   'stream log: the plain request went to the HTTP side, not probed');
ok((grep { /^200 user=alice up=127\.0\.0\.2:$tls v=allow$/ } @stream),
   '$certguard_user in the stream access log');

# proxy authentication on both paths

$r = curl("http://127.0.0.1:$proxy", "http://plain.test:$plain/");
is($r->{code}, 407, 'plain HTTP without credentials: 407');
like($r->{out}, qr/^Proxy-Authenticate: Basic realm="certguard one port"\r$/m,
     'plain HTTP: the challenge');

$r = curl("http://127.0.0.1:$proxy", "https://tls.test:$tls/");
is($r->{connect}, 407, 'CONNECT without credentials: 407');
like($r->{out}, qr/^Proxy-Authenticate: Basic realm="certguard one port"\r$/m,
     'CONNECT: the challenge');
is(scalar cef('cef', qr/auth-failed/), 0,
   'CONNECT: a challenge is no failure record');

$r = curl("http://alice:wr0ngpass\@127.0.0.1:$proxy", "https://tls.test:$tls/");
is($r->{connect}, 407, 'CONNECT with a wrong password: 407');
my ($rec) = cef('cef', qr/auth-failed/);
like($rec // '', qr/\|auth-failed\|.*suser=alice .*reason=auth_bad_password/,
     'CONNECT with a wrong password: CEF auth-failed');

$r = curl("http://alice:wr0ngpass\@127.0.0.1:$proxy",
          "http://plain.test:$plain/");
is($r->{code}, 407, 'plain HTTP with a wrong password: 407');
ok(cef('cef-http', qr/\|auth-failed\|.*reason=auth_bad_password/),
   'plain HTTP with a wrong password: CEF auth-failed');

like($ng->error_log, qr/\[warn\] .*proxy authentication failed/,
     'failed attempts: a warning');

# a client configured by its environment, keep-alive

$r = run({ timeout => 20, env => { http_proxy => $alice,
                                   HTTPS_PROXY => $alice,
                                   no_proxy => '', NO_PROXY => '' } },
         '/usr/bin/curl', '-sS', '--max-time', '10',
         '--cacert', $root->{cert}, '-w', '%{num_connects}\n',
         "http://plain.test:$plain/1", "http://plain.test:$plain/2",
         "https://tls.test:$tls/");
like($r->{out} // '', qr/uri=\/1 .*\n1\n.*uri=\/2 .*\n0\ntls ok\n1\n/s,
     'http_proxy and HTTPS_PROXY: both schemes through the one port; the '
     . 'second plain request on the same connection');

# the same hand-off over TCP

$r = curl("http://127.0.0.1:$proxy2", "http://plain.test:$plain/tcp");
is($r->{code}, 200, 'certguard_http_pass to a TCP address: 200');
like(($ng->wait_lines('inner-tcp', 1))[0] // '',
     qr{^$lo pp=$lo user=- "GET http://plain\.test:$plain/tcp },
     'TCP hand-off: the PROXY protocol header arrived');

# refusals

$r = raw($proxy, "CONNECT alice:topsecret\@tls.test:$tls HTTP/1.1\r\n\r\n");
like($r, qr{^HTTP/1\.1 400 }, 'a user:secret@ CONNECT target: 400');
ok(cef('cef', qr/\|request-refused\|.*reason=userinfo/),
   'userinfo: CEF request-refused');

my $basic = 'Basic ' . encode_b64('alice:s3cret');
sub connect_as {
    my ($target) = @_;
    return raw($proxy, "CONNECT $target HTTP/1.1\r\n"
               . "Proxy-Authorization: $basic\r\n\r\n");
}

like(connect_as("tls.test:25"), qr{^HTTP/1\.1 403 .*port not allowed}s,
     'CONNECT to port 25: 403');
like((cef('cef', qr/dpt=25 /))[-1] // '',
     qr/\|dest-refused\|[^|]*\|3\| .*reason=port/,
     'port 25: CEF dest-refused, reason port');

like(connect_as("meta.test:443"), qr{^HTTP/1\.1 403 .*not allowed}s,
     'CONNECT to a name resolving to the metadata address: 403');
like((cef('cef', qr/dhost=meta\.test /))[-1] // '',
     qr/\|dest-refused\|[^|]*\|7\| .*reason=special_address/,
     'metadata name: CEF dest-refused, severity 7');

like(connect_as("169.254.169.254:443"), qr{^HTTP/1\.1 403 .*not allowed}s,
     'CONNECT to the metadata address: 403');
like((cef('cef', qr/dhost=169\.254\.169\.254 /))[-1] // '',
     qr/\|dest-refused\|[^|]*\|7\| .*reason=special_address/,
     'metadata literal: CEF dest-refused, severity 7');

like(connect_as("loop.test:$tls"), qr{^HTTP/1\.1 403 .*not allowed}s,
     'CONNECT to a name resolving to loopback: 403');
like(connect_as("127.0.0.1:$tls"), qr{^HTTP/1\.1 403 .*not allowed}s,
     'CONNECT to the loopback literal: 403');
like(connect_as("[::ffff:127.0.0.1]:$tls"), qr{^HTTP/1\.1 403 .*not allowed}s,
     'CONNECT to IPv4-mapped loopback: 403');

$r = curl($alice, "http://loop.test:$plain/");
is($r->{code}, 403, 'plain HTTP to loopback: 403 from the HTTP side');

is(scalar $ng->log_lines('canary') - $canary_seen, 0,
   'the canaries saw nothing');

# what must be in no log

my $all = join '', map { read_file($_) } glob "$logs/*";
unlike($all, qr/topsecret/, 'the userinfo password is in no log');
unlike($all, qr/wr0ngpass|czNjcmV0|YWxpY2U6/,
       'no password and no Proxy-Authorization value is in any log');

$ng->stop;

done_testing();

###############################################################################

sub encode_b64 {
    require MIME::Base64;
    return MIME::Base64::encode_base64($_[0], '');
}

###############################################################################
