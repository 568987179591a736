#!/usr/bin/perl

# certguard_verify_memo: the memo of verified signatures is shared by the
# workers (a worker that never verified the intermediate finds it verified
# by the other: one hit and one miss for a new leaf under it, read from
# certguard_status), nginx's own verification (proxy_ssl_verify on) goes
# through it (a new leaf costs one signature check for both
# verifications), a tampered copy of a memorized leaf still blocks, it
# survives a reload, and "off" checks every signature.

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

my $N = 24;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard memo root');
my $inter = $pki->ca('inter', subject => '/CN=certguard memo intermediate',
                     issuer => $root);
my @leaf = map { $pki->good_leaf("n$_", issuer => $inter) } 1 .. $N;
my $genuine = $pki->good_leaf('t', issuer => $inter);

# the genuine leaf with the last byte of its signature changed: the same
# to-be-signed bytes, a signature that does not verify
my $tampered = { %$genuine, chain => $pki->bundle('tampered.chain',
    $pki->flipped('t.flipped', $genuine), $inter) };

my $policy = "$dir/memo.policy";
write_file($policy, 'include ' . policy_dir() . "/default.policy;\n"
                    . "weight untrusted_chain 100;\n");

my ($port, $vport, $sport, $up, $up_t) = free_ports(5);
my $ng = Certguard::Nginx->new("$dir/nginx");

sub config {
    my ($memo) = @_;
    my $servers = join '', map {
        $ng->tls_server(name => "n$_.test", port => $up, cert => $leaf[$_ - 1])
    } 1 .. $N;

    return <<"HTTP";
    @{[ defined $memo ? "certguard_verify_memo $memo;" : '' ]}

    server {
        listen 127.0.0.1:$port reuseport;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $root->{cert};
        proxy_ssl_session_reuse off;
        proxy_ssl_server_name on;
        proxy_ssl_name \$host;
        add_header X-Pid \$pid always;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_pass https://127.0.0.1:$up;
        }

        location /t/ {
            proxy_pass https://127.0.0.1:$up_t;
        }
    }

    server {
        listen 127.0.0.1:$vport reuseport;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $root->{cert};
        proxy_ssl_session_reuse off;
        proxy_ssl_server_name on;
        proxy_ssl_name \$host;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $root->{cert};
        add_header X-Pid \$pid always;

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
@{[ $ng->tls_server(name => 'genuine', port => $up_t, cert => $genuine) ]}
HTTP
}

sub memo_counts {
    return @{ $ng->counters($sport, 'http', 'certguard_verify_memo_hits_total',
                            'certguard_verify_memo_misses_total') };
}

$ng->start(config(), ports => [$port, $vport, $sport, $up, $up_t],
           workers => 2);

my ($h, $m) = memo_counts();
is_deeply([$h, $m], [0, 0], 'the memo families are on the status page, '
          . 'at zero');

# the first leaf: both signatures checked by whichever worker takes it

my $r = $ng->get($port, '/', Host => 'n1.test');
is($r->{status}, 200, 'the first leaf is allowed');
is($r->{headers}{'x-signals'} // '', '', '... with no signal');
my $first = $r->{headers}{'x-pid'};
($h, $m) = memo_counts();
is_deeply([$h, $m], [0, 2], 'a cold chain: two misses (leaf and '
          . 'intermediate)');

# new leaves until one lands on the other worker: it never checked the
# intermediate, the first worker did
my ($other, $k, $dh, $dm) = (undef, 2);
for (; $k <= $N - 4; $k++) {
    my ($h0, $m0) = memo_counts();
    $r = $ng->get($port, '/', Host => "n$k.test");
    is($r->{status}, 200, "leaf n$k is allowed") or last;
    ($h, $m) = memo_counts();
    if ($r->{headers}{'x-pid'} ne $first) {
        ($other, $dh, $dm) = ($r->{headers}{'x-pid'}, $h - $h0, $m - $m0);
        last;
    }
    is_deeply([$h - $h0, $m - $m0], [1, 1], "leaf n$k on the first worker: "
              . 'intermediate a hit, the new leaf a miss');
}

ok(defined $other, "a new leaf reached the second worker (after "
   . ($k - 1) . ' leaves)')
    or diag('reuseport kept every connection on one worker');
SKIP: {
    skip 'one worker took every request', 1 unless defined $other;
    is_deeply([$dh, $dm], [1, 1], 'the second worker, cold: the '
              . "intermediate the first verified was a hit; the leaf's one "
              . 'check the only miss');
}

# the same leaf again: both hits
($h, $m) = memo_counts();
$r = $ng->get($port, '/', Host => 'n1.test');
my ($h2, $m2) = memo_counts();
is_deeply([$h2 - $h, $m2 - $m], [2, 0], 'the same leaf again: both '
          . 'signatures hits');

# proxy_ssl_verify on: nginx's verification and the engine's share the
# memo; a new leaf is one check in all
($h, $m) = memo_counts();
$r = $ng->get($vport, '/', Host => "n$N.test");
is($r->{status}, 200, 'a new leaf with proxy_ssl_verify on is allowed');
($h2, $m2) = memo_counts();
is_deeply([$h2 - $h, $m2 - $m], [3, 1], 'proxy_ssl_verify on, new leaf: '
          . "one miss (nginx's check of the leaf), three hits (the "
          . "intermediate for nginx, both for the engine)");

# a tampered copy of a memorized leaf, served after a reload (the zone
# and its memory go on)

$r = $ng->get($port, '/t/', Host => 't.test');
is($r->{status}, 200, 'the genuine leaf is allowed (and memorized)');
$r = $ng->get($port, '/t/', Host => 't.test');
($h, $m) = memo_counts();

my $saved = read_file($genuine->{chain});
write_file($genuine->{chain}, read_file($tampered->{chain}));
$ng->reload(config());

$r = $ng->get($port, '/t/', Host => 't.test');
is($r->{status}, 403, 'after a reload, the tampered copy of the memorized '
   . 'leaf is blocked');
like($r->{headers}{'x-signals'} // '', qr/untrusted_chain/,
     '... as untrusted');
($h2, $m2) = memo_counts();
is($h2 - $h, 1, 'the intermediate, memorized before the reload, was a hit');
is($m2 - $m, 1, "the tampered leaf's signature was checked (a miss)");
write_file($genuine->{chain}, $saved);

$ng->stop();

# off: every signature checked, nothing counted

$ng->start(config('off'), ports => [$port, $vport, $sport, $up, $up_t],
           workers => 2);
$r = $ng->get($port, '/', Host => 'n1.test');
is($r->{status}, 200, 'certguard_verify_memo off: allowed');
($h, $m) = memo_counts();
is_deeply([$h, $m], [0, 0], 'off: the memo is not asked');
$ng->stop();

$ng->start(config('size=64k'), ports => [$port, $vport, $sport, $up, $up_t],
           workers => 2);
$r = $ng->get($port, '/', Host => 'n1.test');
$r = $ng->get($port, '/', Host => 'n1.test');
($h, $m) = memo_counts();
is_deeply([$h, $m], [2, 2], 'size=64k: a memo of its own size');
$ng->stop();

$ng->expect_log(qr/\[emerg\] .*invalid memo size "size=1k"/,
                qr/\[emerg\] .*invalid parameter "on"/);
my ($good, $out) = $ng->test_config(config('size=1k'));
ok(!$good, 'a memo smaller than 8 pages is refused');
like($out, qr/invalid memo size "size=1k"/, '... saying so');
($good, $out) = $ng->test_config(config('on'));
like($out, qr/invalid parameter "on"/, '"on" is not a parameter');

done_testing();
