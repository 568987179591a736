#!/usr/bin/perl

# Stream module: certguard_intermediates.  A destination that sends its
# leaf without the intermediate is probed; with the intermediate in the
# pool the tunnel is allowed, without it tagged (untrusted_chain), not
# refused as a mimicked CA though the intermediate is named like one.

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
my $root = $pki->ca('root', subject => '/CN=certguard stream pool root');
my $int = $pki->ca('int', issuer => $root,
                   subject => '/C=US/O=DigiCert Inc/CN=DigiCert Stream Test CA');
my $full = $pki->good_leaf('omits', issuer => $int, san => 'IP:127.0.0.1');
my $leaf = { %$full, chain => $full->{cert} };

my ($pool, $nopool, $backend, $dst) = free_ports(4);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

sub proxy {
    my ($port, $log, $extra) = @_;

    return <<"SERVER";
    server {
        listen 127.0.0.1:$port;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        $extra
        access_log $d/logs/$log.log cg;
        proxy_pass \$certguard_upstream;
    }
SERVER
}

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

@{[ proxy($pool, 'pool', "certguard_intermediates $int->{cert};") ]}
@{[ proxy($nopool, 'nopool', '') ]}
@{[ dst_server(name => 'omits', port => $dst, cert => $leaf,
               backend => $backend, logs => "$d/logs") ]}
}
MAIN

my $r = proxy_curl($root->{cert}, $pool, "https://127.0.0.1:$dst/");
is($r->{connect}, 200, 'pool: the tunnel opens');
my @log = $ng->wait_lines('pool', 1);
like($log[-1], qr/^200 v=allow sig=""$/, 'pool: the completed chain is allowed');

$r = proxy_curl($root->{cert}, $nopool, "https://127.0.0.1:$dst/");
is($r->{connect}, 200, 'no pool: the tunnel opens, not refused');
@log = $ng->wait_lines('nopool', 1);
like($log[-1], qr/^200 v=tag sig="untrusted_chain"$/,
     'no pool: tagged untrusted_chain, not mimicked_ca');

$ng->stop;

done_testing();
