#!/usr/bin/perl

# Stream module: bounded work per probe.  A destination that sends more
# certificates than max_chain is scored on the first ten (chain_too_long
# fires, the tunnel is tagged, not refused); one whose certificates take more
# than the probe reads (32 KB) fails the probe before OpenSSL parses them,
# and the failure is recorded like any other.

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

my ($MODULE, $STREAM) = need_stream();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard chain test root');

# the leaf and ten intermediates: eleven certificates, a few KB
my $iss = $root;
for my $i (1 .. 10) {
    $iss = $pki->ca("int$i", issuer => $iss, subject => "/CN=chain int $i");
}
my $deep = $pki->good_leaf('deep', issuer => $iss, san => 'IP:127.0.0.1');
my $short = $pki->good_leaf('short', issuer => $pki->ca('one',
                            issuer => $root, subject => '/CN=chain int'),
                            san => 'IP:127.0.0.1');

# a good chain and then 80 copies of an RSA root: about 40 KB
my $rsa = $pki->ca('filler', subject => '/CN=filler root', key => 'rsa:2048');
write_file("$dir/big.pem", read_file($short->{chain})
                           . read_file($rsa->{cert}) x 80);
cmp_ok(-s "$dir/big.pem", '>', 4 / 3 * 32768, 'the big chain is over 32 KB');

my ($proxy, $backend, $d_deep, $d_short, $d_big) = free_ports(5);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

$ng->start(<<"HTTP", module => 0, ports => [$backend], main => <<"MAIN");
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP
load_module $STREAM;
load_module $MODULE;

stream {
    log_format cg '\$status v=\$certguard_verdict sig="\$certguard_signals"';
    log_format dst 'rx=\$bytes_received';

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $d/logs/cef.log;
        access_log $d/logs/proxy.log cg;
        proxy_pass \$certguard_upstream;
    }

@{[ dst_server(name => 'deep', port => $d_deep, cert => $deep,
               backend => $backend, logs => "$d/logs") ]}
@{[ dst_server(name => 'short', port => $d_short, cert => $short,
               backend => $backend, logs => "$d/logs") ]}
    server {
        listen 127.0.0.1:$d_big ssl;
        ssl_certificate $dir/big.pem;
        ssl_certificate_key $short->{key};
        proxy_pass 127.0.0.1:$backend;
    }
}
MAIN

my $r = proxy_curl($root->{cert}, $proxy, "https://127.0.0.1:$d_short/");
like($r->{body}, qr/backend ok/, 'three certificates: through');
my @log = $ng->wait_lines('proxy', 1);
like($log[-1], qr/^200 v=allow sig=""$/, 'three certificates: allowed');

# eleven: the first ten are scored, the eleventh not used for the path

$r = proxy_curl($root->{cert}, $proxy, "https://127.0.0.1:$d_deep/");
like($r->{body}, qr/backend ok/, 'eleven certificates: tagged, not refused');
@log = $ng->wait_lines('proxy', 2);
like($log[-1], qr/^200 v=tag sig="[^"]*\bchain_too_long\b/,
     'eleven certificates: chain_too_long');
like($log[-1], qr/\buntrusted_chain\b/,
     'eleven certificates: the path needs the eleventh');
my @cef = $ng->wait_lines('cef', 2);
like($cef[-1], qr/ reason=[^=]*\bchain_too_long\b/, 'CEF: chain_too_long');

# over 32 KB: the probe reads none of it

$r = proxy_curl($root->{cert}, $proxy, "https://127.0.0.1:$d_big/");
is($r->{connect}, 403, 'over 32 KB of certificates: refused');
@cef = $ng->wait_lines('cef', 3);
like($cef[-1], qr/probe_failed/, 'CEF: a failed probe');
like($ng->error_log, qr/excessive message size/,
     'the error log names the cause');

$ng->stop;

done_testing();
