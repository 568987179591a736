#!/usr/bin/perl

# Stream module: a verdict from the cache is the fresh verdict.  The SNI
# check inside a tunnel works on the cached verdict alone (no chain is
# kept): domain fronting of a destination scored a minute ago blocks as it
# does on the first tunnel, with the same CEF record and variables, and a
# matching SNI passes with the same record as well; the exemption of
# sni_mismatch that the policy grants one name holds on cached verdicts too.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

use IO::Socket::SSL;

###############################################################################

my ($MODULE, $STREAM) = need_stream();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream cache root');
my $good = $pki->good_leaf('good', issuer => $root,
                           san => 'DNS:front.test,DNS:plain.test,'
                                  . 'DNS:cdn.test');

write_file("$dir/test.policy", 'include ' . policy_dir()
    . "/default.policy;\nweight sni_mismatch 100;\n"
    . "exempt {\n    sni cdn.test;\n    signals sni_mismatch;\n"
    . "    reason \"a CDN that serves many names\";\n}\n");

my ($dns, $proxy, $backend, $dst) = free_ports(4);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

$ng->dns_server($dns, '*.test' => ['127.0.0.1']);

$ng->start(<<"HTTP", module => 0, ports => [$backend], main => <<"MAIN");
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP
load_module $STREAM;
load_module $MODULE;

stream {
    resolver 127.0.0.1:$dns ipv6=off;
    resolver_timeout 3s;

    log_format cg '\$status v=\$certguard_verdict s=\$certguard_score '
                  'sig="\$certguard_signals"';
    log_format dst 'rx=\$bytes_received';

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni on;
        certguard_policy $dir/test.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_cache zone=cache_cg:1m valid=5m;
        certguard_log $d/logs/cef.log;
        access_log $d/logs/proxy.log cg;
        preread_timeout 3s;
        proxy_pass \$certguard_upstream;
    }

@{[ dst_server(name => 'good', port => $dst, cert => $good,
               backend => $backend, logs => "$d/logs") ]}
}
MAIN

# A tunnel to host whose ClientHello names sni; whether TLS came up.
sub tunnel {
    my ($host, $sni) = @_;
    my $s = connect_tunnel($proxy, "$host:$dst") or return 'refused';
    my $tls = IO::Socket::SSL->start_SSL($s, SSL_hostname => $sni,
                                         SSL_verify_mode => SSL_VERIFY_NONE,
                                         Timeout => 5);
    return 'cut' unless $tls;

    print $tls "GET / HTTP/1.0\r\nHost: $sni\r\n\r\n";
    local $/;
    my $body = <$tls> // '';

    return $body =~ /backend ok/ ? 'through' : 'no answer';
}

my $records = 0;

# The CEF record and the access log line of the last tunnel, without what
# belongs to the connection.
sub last_record {
    my @cef = $ng->wait_lines('cef', ++$records);
    my @log = $ng->wait_lines('proxy', $records);
    my $cef = $cef[-1] // '';

    # daysToExpiry counts from each record's own time: a second apart, a
    # certificate made seconds ago can be a day less
    $cef =~ s/ (rt|spt|connectionId|cn3)=\S+//g;

    return ($cef, $log[-1] // '');
}

sub probes {
    my ($n) = @_;

    return scalar grep { /^rx=0$/ } $ng->wait_lines('dst-good', $n);
}

for my $case (['front.test', 'evil.test', 'cut', 'blocked'],
              ['plain.test', 'plain.test', 'through', 'allowed'],
              ['cdn.test', 'other.test', 'through', 'allowed'])
{
    my ($host, $sni, $want, $act) = @$case;
    my $before = probes(0);

    is(tunnel($host, $sni), $want, "$host, SNI $sni, fresh: $want");
    my ($cef1, $log1) = last_record();
    is(probes($before + 1), $before + 1, "$host: probed once");

    is(tunnel($host, $sni), $want, "$host, SNI $sni, cached: $want");
    my ($cef2, $log2) = last_record();
    is(probes(0), $before + 1, "$host: the second verdict is the cache's");

    like($cef1, qr/act=$act/, "$host: $act");
    is($cef2, $cef1, "$host: the cached verdict's CEF record is the fresh "
       . 'one\'s');
    is($log2, $log1, "$host: and so are its variables");

    if ($sni ne $host) {
        like($cef1, qr/sni_mismatch/, "$host: sni_mismatch is reported");
    }
}

like((last_record_of('cdn.test'))[1], qr/^200 v=allow s=0 /,
     'cdn.test: exempt, it weighs nothing');

$ng->stop;

done_testing();

###############################################################################

sub last_record_of {
    my ($host) = @_;
    my ($cef) = grep { /dhost=\Q$host\E/ } reverse $ng->log_lines('cef');
    my @log = $ng->log_lines('proxy');

    return ($cef // '', $log[-1] // '');
}
