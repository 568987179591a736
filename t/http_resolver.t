#!/usr/bin/perl

# HTTP module as a forward proxy: absolute-URI requests, `proxy_pass
# https://$host...` with a resolver (a DNS server of the test's own on
# 127.0.0.1).  The name checked is the requested host, sent as SNI with
# proxy_ssl_server_name on; a block is not retried on the next resolved
# address, while a real failure still is.

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

my $good = $pki->good_leaf('good', issuer => $root, subject => '/CN=fwd.test',
                           san => 'DNS:fwd.test,DNS:retry.test');
my $bad1 = $pki->leaf('bad1', subject => '/CN=multi.test',
                      san => 'DNS:multi.test');
my $bad2 = $pki->leaf('bad2', subject => '/CN=multi.test',
                      san => 'DNS:multi.test');

# one port for every destination, on several loopback addresses
my ($port, $dns, $up) = free_ports(3);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

$ng->dns_server($dns,
    'fwd.test'   => ['127.0.0.1'],
    'multi.test' => ['127.0.0.2', '127.0.0.3'],
    'retry.test' => ['127.0.0.4', '127.0.0.1']);

sub server {
    my ($addr, $name, $cert) = @_;

    return <<"SERVER";
    server {
        listen $addr:$up ssl;
        ssl_certificate $cert->{chain};
        ssl_certificate_key $cert->{key};
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log $logs/up-$name.log certguard_upstream;
        location / {
            return 200 "upstream $name \$ssl_server_name\\n";
        }
    }
SERVER
}

$ng->start(<<"HTTP", ports => [$port, $up]);
    resolver 127.0.0.1:$dns ipv6=off valid=60s;
    resolver_timeout 5s;

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/cef.log;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_ssl_server_name on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 3s;
            proxy_pass https://\$host:$up\$request_uri;
        }
    }

@{[ server('127.0.0.1', 'good', $good) ]}
@{[ server('127.0.0.2', 'bad1', $bad1) ]}
@{[ server('127.0.0.3', 'bad2', $bad2) ]}
HTTP

sub fetch {
    my ($url) = @_;
    my ($host) = $url =~ m{^http://([^/:]+)};

    return $ng->get($port, undef, request => "GET $url", Host => $host);
}

# allowed, with the requested name checked and sent as SNI

my $r = fetch('http://fwd.test/path?q=1');
is($r->{status}, 200, 'forward proxy: allowed');
is($r->{body}, "upstream good fwd.test\n", 'forward proxy: SNI was the host');
is($r->{headers}{'x-verdict'}, 'allow', 'forward proxy: verdict allow');
is($r->{headers}{'x-signals'} // '', '', 'forward proxy: name matched');
my ($cef) = grep { /dhost=fwd\.test/ } $ng->log_lines('cef');
like($cef // '', qr{ request=https://fwd\.test/path\? }, 'CEF: request URL, '
     . 'without its query');

# two addresses, both blocked: one handshake per request, no retry

for my $i (1 .. 3) {
    my $before = () = $ng->error_log =~ /certguard: blocked certificate/g;

    $r = fetch('http://multi.test/');
    is($r->{status}, 403, "two addresses, request $i: 403");

    my $after = () = $ng->error_log =~ /certguard: blocked certificate/g;
    is($after - $before, 1, "two addresses, request $i: one handshake");
}

is(scalar $ng->access_log('bad1') + $ng->access_log('bad2'), 0,
   'two addresses: neither received a request');

# a real failure (nothing on 127.0.0.4) still moves to the next address

$r = fetch('http://retry.test/');
is($r->{status}, 200, 'connection refused: next address tried');
is($r->{headers}{'x-verdict'}, 'allow', 'next address: scored');

# an unknown name: nginx's own 502, nothing scored

$r = fetch('http://nxdomain.test/');
is($r->{status}, 502, 'unknown name: 502');
is($r->{headers}{'x-verdict'} // '', '', 'unknown name: no verdict');

$ng->stop;

done_testing();
