#!/usr/bin/perl

# HTTP module over IPv6: upstreams on [::1], named by IP literal or by an
# upstream{} name.  An IP literal is checked against the certificate's IP
# SANs (never its DNS names), and the CEF record carries the IPv6
# destination.

use warnings;
use strict;

use Test::More;
use IO::Socket::IP;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

plan(skip_all => 'no IPv6 loopback')
    unless IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                               Listen => 1);

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');

my %cert = (
    ipsan  => $pki->good_leaf('ipsan', issuer => $root,
                              san => 'DNS:ipsan.test,IP:::1'),
    dnsonly => $pki->good_leaf('dnsonly', issuer => $root,
                               san => 'DNS:dnsonly.test'),
);

my ($port, $up_ip, $up_dns) = free_ports(3);
my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

sub v6_server {
    my ($name, $p) = @_;

    (my $s = $ng->tls_server(name => $name, port => $p, cert => $cert{$name}))
        =~ s/listen 127\.0\.0\.1:/listen [::1]:/;

    return $s;
}

$ng->start(<<"HTTP", ports => [$port]);
    upstream dnsonly.test { server [::1]:$up_dns; }

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/cef.log;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location /ip/ {
            proxy_pass https://[::1]:$up_ip;
        }

        location /ip-nosan/ {
            proxy_pass https://[::1]:$up_dns;
        }

        location /name/ {
            proxy_ssl_server_name on;
            proxy_pass https://dnsonly.test;
        }
    }

@{[ v6_server('ipsan', $up_ip) ]}
@{[ v6_server('dnsonly', $up_dns) ]}
HTTP

my $r = $ng->get($port, '/ip/');
is($r->{status}, 200, 'IP literal [::1] with an IP SAN ::1: allowed');
is($r->{headers}{'x-verdict'}, 'allow', 'IP SAN: verdict allow');
unlike($r->{headers}{'x-signals'} // '', qr/hostname_mismatch/,
       'IP SAN: no hostname_mismatch');

$r = $ng->get($port, '/ip-nosan/');
like($r->{headers}{'x-signals'} // '', qr/hostname_mismatch/,
     'IP literal against a certificate with DNS names only: mismatch');

$r = $ng->get($port, '/name/');
is($r->{status}, 200, 'upstream{} name on [::1]: allowed');
unlike($r->{headers}{'x-signals'} // '', qr/hostname_mismatch/,
       'upstream{} name: its DNS SAN matches');

my @cef = $ng->wait_lines('cef', 3);
is(scalar @cef, 3, 'three CEF records');
ok((grep { / dst=::1 dpt=$up_ip / } @cef), 'CEF: IPv6 destination and port');
ok((grep { / dhost=::1 / } @cef), 'CEF: the IP literal is the name checked');
ok((grep { / dhost=dnsonly\.test / } @cef), 'CEF: the upstream name');

$ng->stop;

done_testing();

###############################################################################
