#!/usr/bin/perl

# HTTP forward proxy (certguard_forward): absolute-form requests from real
# clients (curl -x, -U, HTTP_PROXY), proxy authentication, keep-alive, and
# the destination guards.  The whole test runs in a network namespace of
# its own with only lo up, so a broken guard cannot send a packet to the
# metadata address or anywhere off the machine: it would fail with a
# connection error instead of the refusal the test expects.  Loopback
# destinations have a canary listener that must see nothing.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Nginx;
use Certguard::Certs;

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

Certguard::Nginx::need_module();

plan(skip_all => 'no curl') unless -x '/usr/bin/curl';

my $dir = tempdir();
my ($port, $dns, $up, $tport, $tup) = free_ports(5);
my $logs = "$dir/nginx/logs";
my $conf = repo_root() . '/conf/forward-proxy.conf';

my $hash = `openssl passwd -apr1 -salt certgrd s3cret`;
chomp $hash;
write_file("$dir/users", "# proxy users\nalice:$hash\nbob:{PLAIN}b0b\n");

my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard forward test root');
my $tls = $pki->good_leaf('tls', issuer => $root);
my $evil = $pki->leaf('evil', subject => '/CN=Major Cobalt Strike',
                      san => 'DNS:evil.test');

my $ng = Certguard::Nginx->new("$dir/nginx");

$ng->dns_server($dns,
    'plain.test'  => ['127.0.0.2'],
    'loop.test'   => ['127.0.0.1'],
    'meta.test'   => ['169.254.169.254'],
    'inner.test'  => ['10.1.2.3'],
    'mixed.test'  => ['169.254.169.254', '127.0.0.2'],
    'x.deny.test' => ['127.0.0.2'],
    'tls.test'    => ['127.0.0.2'],
    'evil.test'   => ['127.0.0.3']);

$ng->start(<<"HTTP", ports => [$port, $up, $tport]);
    resolver 127.0.0.1:$dns ipv6=off valid=60s;
    resolver_timeout 5s;

    log_format fwd '\$certguard_user "\$request" \$status';

    server {
        listen 127.0.0.1:$port;
        access_log $logs/proxy.log fwd;

        certguard_log $logs/cef.log;
        certguard_proxy_auth "certguard test";
        certguard_proxy_auth_user_file $dir/users;
        certguard_allow 127.0.0.2;
        certguard_deny_name .deny.test;
        certguard_http_ports 80 $up;

        location / {
            include $conf;
        }
    }

    # TLS origination through the same checks: certguard scores the
    # destination's certificate in nginx's own handshake
    server {
        listen 127.0.0.1:$tport;
        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/cef.log;
        certguard_proxy_auth "certguard test";
        certguard_proxy_auth_user_file $dir/users;
        certguard_allow 127.0.0.2 127.0.0.3;
        certguard_http_ports $tup;

        location / {
            certguard_forward on;
            proxy_pass https://\$certguard_upstream;
            proxy_ssl_server_name on;
            proxy_ssl_name \$certguard_host;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_set_header Host \$certguard_authority;
            add_header X-Verdict \$certguard_verdict always;
        }
    }

    server {
        listen 127.0.0.2:$tup ssl;
        ssl_certificate $tls->{chain};
        ssl_certificate_key $tls->{key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "tls \$ssl_server_name\\n"; }
    }

    server {
        listen 127.0.0.3:$tup ssl;
        ssl_certificate $evil->{chain};
        ssl_certificate_key $evil->{key};
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log $logs/up-evil.log;
        location / { return 200 "evil\\n"; }
    }

    # the destination: shows what arrived
    server {
        listen 127.0.0.2:$up;
        access_log $logs/up-dest.log;
        location / {
            return 200 "host=\$http_host uri=\$request_uri auth=\$http_proxy_authorization pc=\$http_proxy_connection\\n";
        }
    }

    # the canary: loopback at the proxy's own address must never be reached
    server {
        listen 127.0.0.1:$up;
        access_log $logs/up-canary.log;
        location / { return 200 "canary\\n"; }
    }
HTTP

sub curl {
    my (@args) = @_;
    my $r = run({ timeout => 20 }, 'curl', '-s', '-i', '--max-time', '10',
                '-x', "http://127.0.0.1:$port", @args);
    my $out = $r->{out} // '';
    my ($status) = $out =~ m{^HTTP/1\.\d (\d+)}m;

    return { status => $status // 0, out => $out };
}

sub cef_with {
    my ($re) = @_;
    return grep { /$re/ } $ng->log_lines('cef');
}

my @alice = ('-U', 'alice:s3cret');

# the 407 round trip

my $r = curl("http://plain.test:$up/");
is($r->{status}, 407, 'no credentials: 407');
like($r->{out}, qr/^Proxy-Authenticate: Basic realm="certguard test"\r?$/m,
     'no credentials: Proxy-Authenticate names the realm');
is(scalar cef_with(qr/auth-failed/), 0,
   'no credentials: the challenge is not a failure record');

$r = curl('-U', 'alice:wrong', "http://plain.test:$up/");
is($r->{status}, 407, 'wrong password: 407');
my ($rec) = cef_with(qr/auth-failed/);
like($rec // '', qr/reason=auth_bad_password/, 'wrong password: CEF reason');
like($rec // '', qr/suser=alice/, 'wrong password: CEF names the known user');
unlike($ng->error_log . join('', $ng->log_lines('cef')), qr/wrong/,
       'wrong password: the password is logged nowhere');

$r = curl('-U', 'mallory:s3cret', "http://plain.test:$up/");
is($r->{status}, 407, 'unknown user: 407');
ok(!grep({ /mallory/ } $ng->log_lines('cef')),
   'unknown user: a name not in the file is not echoed to the SIEM');

# authenticated: the request reaches the destination, the credentials do not

$r = curl(@alice, "http://plain.test:$up/p/a?q=1");
is($r->{status}, 200, 'alice: 200');
like($r->{out}, qr/host=plain\.test:$up uri=\/p\/a\?q=1 /,
     'alice: Host and URI of the absolute URI, port kept');
like($r->{out}, qr/auth= pc=\n/, 'alice: no Proxy-Authorization or '
     . 'Proxy-Connection forwarded');
ok((grep { /^alice "GET http:\/\/plain\.test:\d+\/p\/a/ } $ng->log_lines('proxy')),
   '$certguard_user in the access log');
ok(!(grep { /^alice .* 407$/ } $ng->log_lines('proxy')),
   '$certguard_user is empty for a failed attempt');

$r = curl('-U', 'bob:b0b', "http://plain.test:$up/");
is($r->{status}, 200, '{PLAIN} user file entry: 200');

# HTTP_PROXY and keep-alive: two requests on one client connection

$r = run({ timeout => 20, env => { http_proxy => "http://alice:s3cret\@127.0.0.1:$port" } },
         'curl', '-s', '--max-time', '10', '-w', '%{num_connects}\n',
         "http://plain.test:$up/1", "http://plain.test:$up/2");
like($r->{out} // '', qr/uri=\/1 .*\n1\n.*uri=\/2 .*\n0\n/s,
     'http_proxy: two requests, the second on the same connection');

# guards

$r = curl(@alice, "http://plain.test:25/");
is($r->{status}, 403, 'port 25: refused');
ok(scalar cef_with(qr/dest-refused.*reason=port/), 'port 25: CEF record');

$r = curl(@alice, "http://loop.test:$up/");
is($r->{status}, 403, 'name resolving to loopback: refused');

$r = curl(@alice, "http://127.0.0.1:$up/");
is($r->{status}, 403, 'loopback literal: refused');

$r = curl(@alice, "http://[::1]:$up/");
is($r->{status}, 403, 'IPv6 loopback literal: refused');

$r = curl(@alice, "http://[::ffff:127.0.0.1]:$up/");
is($r->{status}, 403, 'IPv4-mapped loopback: refused');

is(scalar $ng->access_log('canary'), 0, 'the canary saw nothing');

$r = curl(@alice, "http://meta.test/latest/meta-data/");
is($r->{status}, 403, 'name resolving to the metadata address: refused');
($rec) = cef_with(qr/dhost=meta\.test/);
like($rec // '', qr/\|dest-refused\|[^|]*\|7\| /,
     'metadata: dest-refused, severity 7');
like($rec // '', qr/reason=special_address/, 'metadata: reason');

$r = curl(@alice, "http://169.254.169.254/latest/meta-data/");
is($r->{status}, 403, 'metadata literal: refused');

$r = curl(@alice, "http://inner.test/");
is($r->{status}, 403, 'private range: refused');

$r = curl(@alice, "http://mixed.test:$up/");
is($r->{status}, 200, 'a name that also resolves to a refused address: '
   . 'the allowed one is dialled');

$r = curl(@alice, "http://x.deny.test:$up/");
is($r->{status}, 403, 'name pattern: refused');
ok(scalar cef_with(qr/dhost=x\.deny\.test.*reason=name/),
   'name pattern: refused before resolution');

# TLS origination: the same guards, then the handshake is scored

$r = run({ timeout => 20 }, 'curl', '-s', '-i', '--max-time', '10',
         '-x', "http://127.0.0.1:$tport", @alice, "http://tls.test:$tup/");
like($r->{out}, qr{^HTTP/1\.1 200 .*^X-Verdict: allow\r?\n.*tls tls\.test}ms,
     'TLS origination: allowed, SNI is the requested name');
ok((grep { /act=allowed/ && /dhost=tls\.test/ && /suser=alice/ }
    $ng->log_lines('cef')), 'TLS origination: CEF verdict carries the user');

$r = run({ timeout => 20 }, 'curl', '-s', '-i', '--max-time', '10',
         '-x', "http://127.0.0.1:$tport", @alice, "http://evil.test:$tup/");
like($r->{out}, qr{^HTTP/1\.1 403 }m, 'TLS origination: Cobalt Strike blocked');
is(scalar $ng->access_log('evil'), 0, 'TLS origination: the C2 received nothing');

$r = run({ timeout => 20 }, 'curl', '-s', '-i', '--max-time', '10',
         '-x', "http://127.0.0.1:$tport", @alice, "http://loop.test:$tup/");
like($r->{out}, qr{^HTTP/1\.1 403 }m, 'TLS origination: loopback refused');

# malformed and hostile requests

$r = $ng->get($port, '/', Host => 'plain.test',
              'Proxy-Authorization' => 'Basic ' . encode_b64('alice:s3cret'));
is($r->{status}, 400, 'origin-form request on a proxy: 400');

$r = curl(@alice, '-H', 'X-Big: ' . ('a' x 40000), "http://plain.test:$up/");
ok($r->{status} == 400 || $r->{status} == 494, 'oversized header: refused');

$r = curl(@alice, "http://plain.test:$up/");
is($r->{status}, 200, 'still serving after the hostile requests');

$ng->stop;

done_testing();

sub encode_b64 {
    require MIME::Base64;
    return MIME::Base64::encode_base64($_[0], '');
}
