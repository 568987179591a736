#!/usr/bin/perl

# The worker's cache of the decoded certificates sent above leaves (with
# certguard_verify_memo): the first chain under an intermediate puts the
# intermediate and the anchor in it (two misses on the status page), every
# new leaf under it finds both (two hits); a copy of the intermediate with
# one signature byte changed is a certificate of its own (a miss) and is
# blocked as untrusted, and the genuine one is still allowed after it;
# "off" keeps no cache.

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

my $N = 4;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard decoded root');
my $inter = $pki->ca('inter', subject => '/CN=certguard decoded intermediate',
                     issuer => $root);
my @leaf = map { $pki->good_leaf("n$_", issuer => $inter) } 1 .. $N;

# a leaf of its own sent with the intermediate whose last signature byte
# is changed: the same subject, key and to-be-signed bytes
my $odd = $pki->good_leaf('odd', issuer => $inter);
my $bad = { %$odd, chain => $pki->bundle('bad.chain', $odd,
                                        $pki->flipped('inter.flipped', $inter)) };

my $policy = "$dir/decoded.policy";
write_file($policy, 'include ' . policy_dir() . "/default.policy;\n"
                    . "weight untrusted_chain 100;\n");

my ($port, $sport, $up) = free_ports(3);
my $ng = Certguard::Nginx->new("$dir/nginx");

sub config {
    my ($memo) = @_;
    my $servers = join '', map {
        $ng->tls_server(name => "n$_.test", port => $up, cert => $leaf[$_ - 1])
    } 1 .. $N;
    $servers .= $ng->tls_server(name => 'bad.test', port => $up, cert => $bad);

    return <<"HTTP";
    @{[ defined $memo ? "certguard_verify_memo $memo;" : '' ]}

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $root->{cert};
        proxy_ssl_session_reuse off;
        proxy_ssl_server_name on;
        proxy_ssl_name \$host;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_pass https://127.0.0.1:$up;
        }
    }

    server {
        listen 127.0.0.1:$sport;
        location = /metrics {
            certguard_status;
        }
    }

$servers
HTTP
}

sub decoded_counts {
    return $ng->counters($sport, 'http', 'certguard_decoded_certs_hits_total',
                         'certguard_decoded_certs_misses_total');
}

sub delta {
    my ($host) = @_;
    my $before = decoded_counts();
    my $r = $ng->get($port, '/', Host => $host);
    my $after = decoded_counts();
    return ($r, [$after->[0] - $before->[0], $after->[1] - $before->[1]]);
}

$ng->start(config(), ports => [$port, $sport, $up], workers => 1);

is_deeply(decoded_counts(), [0, 0], 'the decoded-certificate families are on the status '
          . 'page, at zero');

my ($r, $d) = delta('n1.test');
is($r->{status}, 200, 'the first leaf is allowed');
is($r->{headers}{'x-signals'} // '', '', '... with no signal');
is_deeply($d, [0, 2], 'the first chain: the intermediate and the anchor '
          . 'are new (two misses)');

for my $k (2 .. $N) {
    ($r, $d) = delta("n$k.test");
    is($r->{status}, 200, "new leaf n$k is allowed");
    is($r->{headers}{'x-signals'} // '', '', '... with no signal');
    is_deeply($d, [2, 0], "new leaf n$k: the intermediate and the anchor "
              . 'found (two hits)');
}

($r, $d) = delta('bad.test');
is($r->{status}, 403, 'the intermediate with a changed signature byte is '
   . 'blocked');
like($r->{headers}{'x-signals'} // '', qr/untrusted_chain/, '... as untrusted');
is($d->[1], 1, '... its copy is a certificate of its own (one miss)');

($r, $d) = delta('n1.test');
is($r->{status}, 200, 'the genuine intermediate is allowed after it');
is($r->{headers}{'x-signals'} // '', '', '... with no signal');
is_deeply($d, [2, 0], '... found again (two hits)');

$ng->stop();

$ng->start(config('off'), ports => [$port, $sport, $up], workers => 1);
($r, $d) = delta('n1.test');
is($r->{status}, 200, 'certguard_verify_memo off: allowed');
($r, $d) = delta('n2.test');
is_deeply(decoded_counts(), [0, 0], 'off: no decoded-certificate cache');
$ng->stop();

done_testing();
