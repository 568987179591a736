#!/usr/bin/perl

# HTTP module: handshakes that carry no certificate.  A resumed TLS session
# (TLS 1.2 session id / TLS 1.3 ticket) takes the verdict kept with the
# session; a session without one (saved by a location without certguard, or
# serialized into an upstream zone) is not resumed: the handshake is a full
# one and is scored.  A keepalive upstream connection takes the verdict kept
# with the connection.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $other = $pki->ca('other', subject => '/CN=Example Corp Internal CA');

# an internal CA's certificate tags (untrusted_chain), so a verdict that is
# carried over is visible as "tag"
my %cert = map {
    $_ => $pki->good_leaf($_, issuer => $other)
} qw/s12 s13 zone mixed ka/;

# self-signed: blocks under the default policy
$cert{mon} = $pki->leaf('mon', subject => '/CN=mon.test', san => 'DNS:mon.test');

my @names = sort keys %cert;
my ($port, @up) = free_ports(1 + @names);
my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

my $ng = Certguard::Nginx->new("$dir/nginx");

my $servers = join '', map {
    $ng->tls_server(name => $_, port => $up{$_}, cert => $cert{$_})
} @names;

$ng->start(<<"HTTP", ports => [$port, @up]);
    upstream s12.test { server 127.0.0.1:$up{s12}; }
    upstream s13.test { server 127.0.0.1:$up{s13}; }
    upstream mixed.test { server 127.0.0.1:$up{mixed}; }
    upstream mon.test { server 127.0.0.1:$up{mon}; }

    upstream zone.test {
        zone zone_test 64k;
        server 127.0.0.1:$up{zone};
    }

    upstream ka.test {
        server 127.0.0.1:$up{ka};
        keepalive 4;
    }

    server {
        listen 127.0.0.1:$port;

        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $dir/nginx/logs/cef.log;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;
        add_header X-Cache \$certguard_cache always;

        location /v12/ {
            certguard on;
            proxy_ssl_protocols TLSv1.2;
            proxy_pass https://\$host;
        }

        location /v13/ {
            certguard on;
            proxy_ssl_protocols TLSv1.3;
            proxy_pass https://\$host;
        }

        location /monitor/ {
            certguard on;
            certguard_mode monitor;
            proxy_ssl_protocols TLSv1.2;
            proxy_pass https://\$host;
        }

        location /off/ {
            certguard off;
            proxy_ssl_protocols TLSv1.2;
            proxy_pass https://\$host;
        }

        location /ka/ {
            certguard on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass https://\$host;
        }
    }

$servers
HTTP

sub fetch {
    my ($name, $path) = @_;

    return $ng->get($port, $path, Host => "$name.test");
}

# upstream access log fields: protocol, reused ("r" or "."), request line,
# connection serial, requests on that connection
sub up_log {
    my ($name) = @_;

    return [ map { [ /^(\S+) (\S+) (.*) (\d+) (\d+)$/ ] }
             $ng->access_log($name) ];
}

# resumption, TLS 1.2 and TLS 1.3

for my $v (['s12', '/v12/', 'TLSv1.2'], ['s13', '/v13/', 'TLSv1.3']) {
    my ($name, $path, $proto) = @$v;

    my $r1 = fetch($name, $path);
    my $r2 = fetch($name, $path);
    my $r3 = fetch($name, $path);
    my $log = up_log($name);

    is($r1->{status}, 200, "$proto: first request passes");
    is($r1->{headers}{'x-verdict'}, 'tag', "$proto: first request tagged");
    is($r1->{headers}{'x-cache'}, 'BYPASS', "$proto: first request scored");
    is($log->[0][0], $proto, "$proto: upstream saw $proto");
    is($log->[0][1], '.', "$proto: first handshake is a full one");

    is($log->[1][1], 'r', "$proto: second handshake resumed the session");
    is($r2->{headers}{'x-verdict'}, 'tag',
       "$proto: resumed session keeps the verdict");
    like($r2->{headers}{'x-signals'} // '', qr/untrusted_chain/,
         "$proto: resumed session keeps the signals");
    is($r2->{headers}{'x-cache'}, 'SESSION', "$proto: verdict from session");

    is($log->[2][1], 'r', "$proto: third handshake resumed too");
    is($r3->{headers}{'x-verdict'}, 'tag',
       "$proto: session of a resumed session keeps the verdict");
}

# sessions serialized into an upstream zone lose the verdict: no resumption

my @zr = map { fetch('zone', '/v12/') } 1 .. 2;
my $zlog = up_log('zone');

is($zlog->[1][1], '.', 'zone upstream: second handshake is a full one');
is($zr[1]{headers}{'x-cache'}, 'BYPASS', 'zone upstream: scored again');
is($zr[1]{headers}{'x-verdict'}, 'tag', 'zone upstream: verdict');

# a session saved where certguard is off is not resumed where it is on;
# the control shows that session reuse works there at all

my $m1 = fetch('mixed', '/off/');
my $m2 = fetch('mixed', '/off/');
my $m3 = fetch('mixed', '/v12/');
my $mlog = up_log('mixed');

is($mlog->[1][1], 'r', 'certguard off: sessions are resumed as usual');
is($m2->{headers}{'x-verdict'} // '', '', 'certguard off: no verdict');
is($mlog->[2][1], '.', 'session without verdict: full handshake');
is($m3->{headers}{'x-verdict'}, 'tag', 'session without verdict: scored');
is($m3->{headers}{'x-cache'}, 'BYPASS', 'session without verdict: fresh');

# a session saved in monitor mode with a "would-block" verdict is not
# resumed where the same policy enforces

my @mon = map { fetch('mon', '/monitor/') } 1 .. 2;
is($mon[0]{status}, 200, 'monitor: would-block passes');
is($mon[1]{headers}{'x-cache'}, 'SESSION', 'monitor: its session resumed');
my $enf = fetch('mon', '/v12/');
is($enf->{status}, 403, 'enforce after monitor: blocked, not resumed');
is($enf->{headers}{'x-cache'}, 'BYPASS', 'enforce after monitor: scored');

# keepalive: the second request rides the first one's connection

my $k1 = fetch('ka', '/ka/');
my $k2 = fetch('ka', '/ka/');
my $klog = up_log('ka');

is(scalar @$klog, 2, 'keepalive: two requests');
is($klog->[1][3], $klog->[0][3], 'keepalive: same upstream connection');
is($klog->[1][4], 2, 'keepalive: second request on it');
is($k1->{headers}{'x-cache'}, 'BYPASS', 'keepalive: first scored');
is($k2->{headers}{'x-verdict'}, 'tag', 'keepalive: verdict kept');
like($k2->{headers}{'x-signals'} // '', qr/untrusted_chain/,
     'keepalive: signals kept');
is($k2->{headers}{'x-cache'}, 'KEEPALIVE', 'keepalive: from the connection');

# one CEF record per handshake, abbreviated ones too; none for a request
# on a kept-alive connection

my %cef;
$cef{$_}++ for map { /dhost=(\S+)/ } $ng->log_lines('cef');
is($cef{'s12.test'}, 3, 'CEF: three TLS 1.2 handshakes, three records');
is($cef{'s13.test'}, 3, 'CEF: three TLS 1.3 handshakes, three records');
is($cef{'ka.test'}, 1, 'CEF: one handshake for two keepalive requests');
like($ng->error_log, qr/certguard: tagged certificate of "s12\.test", score \d+, resumed session/,
     'error log: resumed session named');

$ng->stop;

done_testing();
