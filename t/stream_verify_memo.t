#!/usr/bin/perl

# The stream module's probes score through the stream module's memo of
# verified signatures: a probe of a known chain checks no signature again,
# a new leaf under a known intermediate one (certguard_status, module
# "stream"), and finds the intermediate and the anchor in the worker's
# decoded-certificate cache; certguard_verify_memo off in stream{} asks no
# memo and keeps no cache.

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

Certguard::Nginx::need_module();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream memo root');
my $inter = $pki->ca('inter', subject => '/CN=certguard stream memo '
                     . 'intermediate', issuer => $root);
my %cert = (a => $pki->good_leaf('a', issuer => $inter),
            b => $pki->good_leaf('b', issuer => $inter));

my ($sport, $up_a, $up_b, $proxy) = free_ports(4);
my ($stream_module, $stream) = need_stream(curl => 1);
my $ng = Certguard::Nginx->new("$dir/nginx");

my $http = <<"HTTP";
    server {
        listen 127.0.0.1:$sport;
        location = /metrics {
            certguard_status;
        }
    }

@{[ $ng->tls_server(name => 'a', port => $up_a, cert => $cert{a}) ]}
@{[ $ng->tls_server(name => 'b', port => $up_b, cert => $cert{b}) ]}
HTTP

sub main_conf {
    my ($memo) = @_;
    return <<"MAIN";
load_module @{[ module_path() ]};
load_module $stream;
load_module $stream_module;

stream {
    @{[ $memo ? "certguard_verify_memo $memo;" : '' ]}
    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_mode monitor;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_connect_ports $up_a $up_b;
        certguard_allow 127.0.0.1;
        proxy_pass \$certguard_upstream;
    }
}
MAIN
}

sub memo_counts {
    return $ng->counters($sport, 'stream', 'certguard_verify_memo_hits_total',
                         'certguard_verify_memo_misses_total');
}

sub decoded_counts {
    return $ng->counters($sport, 'stream',
                         'certguard_decoded_certs_hits_total',
                         'certguard_decoded_certs_misses_total');
}

sub tunnel {
    my ($port) = @_;
    my $r = run({ timeout => 20 }, 'curl', '-sk', '--max-time', '10', '-x',
                "http://127.0.0.1:$proxy", "https://127.0.0.1:$port/");
    return $r->{out};
}

$ng->start($http, ports => [$sport, $up_a, $up_b, $proxy], workers => 1,
           module => 0, main => main_conf());

is_deeply(memo_counts(), [0, 0], 'the stream memo is on the status page');

like(tunnel($up_a), qr/upstream a/, 'a tunnel to a');
is_deeply(memo_counts(), [0, 2], 'its probe: both signatures checked');

like(tunnel($up_a), qr/upstream a/, 'a again (no verdict cache: a probe)');
is_deeply(memo_counts(), [2, 2], 'the same chain: both signatures hits');

like(tunnel($up_b), qr/upstream b/, 'a tunnel to b, another leaf under '
     . 'the intermediate');
is_deeply(memo_counts(), [3, 3], 'one check, the new leaf\'s');
is_deeply(decoded_counts(), [4, 2], 'decoded certificates: the intermediate '
          . 'and the anchor new on the first probe, found on the next two');

$ng->stop();

$ng->start($http, ports => [$sport, $up_a, $up_b, $proxy], workers => 1,
           module => 0, main => main_conf('off'));
like(tunnel($up_a), qr/upstream a/, 'certguard_verify_memo off: tunnel');
like(tunnel($up_a), qr/upstream a/, '... twice');
is_deeply(memo_counts(), [0, 0], 'off: no memo asked');
is_deeply(decoded_counts(), [0, 0], 'off: no decoded-certificate cache');
$ng->stop();

done_testing();
