#!/usr/bin/perl

# certguard_probe_limit: the probes one client address may have running at
# once, and start in a second, in a worker.  Destinations that take no
# handshake (a listener that never accepts: each probe runs until its
# timeout) hold a client's slots; a new probe past the limit waits for a
# slot up to wait= (default 1s), then is refused, with a TLS alert after
# the 200 (or 503 before the answer without certguard_connect_sni), an
# error-log line and a request-refused CEF record (reason probe_limit);
# cached verdicts and probes that run already are not counted; slots come
# back when the probes end.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

use IO::Socket::INET;
use Time::HiRes qw(sleep time);

###############################################################################

my ($MODULE, $STREAM) = need_stream();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard limit test root');
my $good_cert = $pki->good_leaf('good', issuer => $root,
                                san => 'DNS:good.test,IP:127.0.0.1');

write_file("$dir/test.policy",
           'include ' . policy_dir() . "/default.policy;\n");

my ($proxy, $legacy, $rate, $backend, $good, $hold, $short, $paced)
    = free_ports(8);

# destinations that never answer: the kernel completes the TCP handshake,
# nobody reads the probe's ClientHello
my @holes = map {
    IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                          Listen => 64, ReuseAddr => 1) or die "hole: $!"
} 1 .. 3;
my @hole = map { $_->sockport } @holes;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

my $common = <<"CONF";
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_probe_timeout 2s;
        proxy_pass \$certguard_upstream;
CONF

# nginx -t of a server with this certguard_probe_limit line
sub limit_config {
    my ($line) = @_;
    return $ng->test_config('', module => 0, main => <<"MAIN",
load_module $STREAM;
load_module $MODULE;
stream {
    certguard_policy $dir/test.policy;
    certguard_trusted_certificate $root->{cert};
    server {
        listen 127.0.0.1:$proxy;
        certguard_probe_limit $line;
$common
    }
}
MAIN
        expect_log => qr/\[emerg\] .*certguard_probe_limit/);
}

my ($ok, $out) = limit_config('0');
ok(!$ok, 'certguard_probe_limit 0: refused');
like($out, qr/certguard_probe_limit: "0" is not 1-65535 or "off"/,
     'certguard_probe_limit 0: the error says why');

($ok, $out) = limit_config('4 wait=61s');
ok(!$ok, 'certguard_probe_limit wait=61s: refused');
like($out, qr/certguard_probe_limit: wait must be a time up to 60s/,
     'certguard_probe_limit wait=61s: the error says why');

($ok, $out) = limit_config('4 speed=1');
ok(!$ok, 'certguard_probe_limit speed=1: refused');
like($out, qr/certguard_probe_limit: unknown parameter "speed=1"/,
     'certguard_probe_limit speed=1: the error names the parameter');

($ok, $out) = $ng->test_config('', module => 0, main => <<"MAIN");
load_module $STREAM;
load_module $MODULE;
stream {
    certguard_policy $dir/test.policy;
    certguard_trusted_certificate $root->{cert};
    certguard_probe_limit 8 wait=500ms rate=20;
    server {
        listen 127.0.0.1:$proxy;
        certguard_probe_limit off;
$common
    }
}
MAIN
ok($ok, 'certguard_probe_limit N rate=R, and off in a server') or diag($out);

$ng->start(<<"HTTP", module => 0, ports => [$backend],
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP
           main => <<"MAIN");
load_module $STREAM;
load_module $MODULE;

stream {
    log_format lim '\$status \$certguard_verdict';
    log_format dst '\$ssl_protocol';

    certguard_policy $dir/test.policy;
    certguard_trusted_certificate $root->{cert};
    certguard_cache zone=limit_cg:1m valid=5m;
    preread_timeout 5s;

    server {
        listen 127.0.0.1:$proxy;
        certguard_probe_limit 2 wait=0;
        certguard_log $d/logs/cef.log;
        access_log $d/logs/lim.log lim;
$common
    }

    server {
        listen 127.0.0.1:$legacy;
        certguard_connect_sni off;
        certguard_probe_limit 1 wait=0;
        certguard_log $d/logs/cef-legacy.log;
$common
    }

    server {
        listen 127.0.0.1:$rate;
        certguard_probe_limit 100 rate=1 wait=0;
        certguard_cache off;
        certguard_log $d/logs/cef-rate.log;
$common
    }

    server {
        listen 127.0.0.1:$hold;
        certguard_probe_limit 1;
        certguard_cache off;
        certguard_log $d/logs/cef-hold.log;
$common
    }

    server {
        listen 127.0.0.1:$short;
        certguard_probe_limit 1 wait=300ms;
        certguard_cache off;
        certguard_log $d/logs/cef-short.log;
$common
    }

    server {
        listen 127.0.0.1:$paced;
        certguard_probe_limit 100 rate=1 wait=3s;
        certguard_cache off;
$common
    }

@{[ dst_server(name => 'good', port => $good, cert => $good_cert,
               backend => $backend, logs => "$d/logs") ]}
}
MAIN

my $hello = client_hello(undef);

# a verdict in the cache before the client's slots are taken
my $r = connect_hello($proxy, "127.0.0.1:$good", $hello);
is($r->{reply}, 'hello', 'a cold CONNECT under the limit: the tunnel opens');

# two probes that run until their timeout: the client's two slots
my @held = map { held_tunnel($proxy, "127.0.0.1:$hole[$_]", $hello) } 0, 1;
is(scalar(grep { defined } @held), 2, 'two probes of unanswering '
   . 'destinations running');
sleep 0.2;

my $t0 = time();
$r = connect_hello($proxy, "127.0.0.1:$hole[2]", $hello);
is($r->{connect}, 200, 'a third probe: CONNECT answered first');
is($r->{reply}, 'alert', 'a third probe: refused with a TLS alert');
# under the running probes' 2s timeout: it did not wait for a slot
cmp_ok(time() - $t0, '<', 1.9, 'a third probe: refused at once');

$r = connect_hello($proxy, "127.0.0.1:$good", $hello);
is($r->{reply}, 'hello', 'a cached verdict is not counted');

# joining a running probe costs nothing: this one waits for it (to its
# timeout) instead of being refused
$t0 = time();
$r = connect_hello($proxy, "127.0.0.1:$hole[0]", $hello);
cmp_ok(time() - $t0, '>', 1, 'a probe that runs already is joined, not '
       . 'refused');

my @cef = grep { /reason=probe_limit/ } $ng->wait_lines('cef', 1);
is(scalar @cef, 1, 'CEF: one record of the refusal');
like($cef[0] // '', qr/\|request-refused\|Proxy request refused\|5\| /,
     'CEF: request-refused, severity 5');
like($cef[0] // '', qr/ act=refused .*src=127\.0\.0\.1 .*dpt=$hole[2] /,
     'CEF: the client and the destination');
my $over = qr/\[warn\] .*certguard: client 127\.0\.0\.1 over /
           . qr/certguard_probe_limit, probe of "127\.0\.0\.1:$hole[2]" /
           . qr/refused \(1 refusals\)/;
like($ng->error_log, qr/$over/, 'error log: the client over its limit');

close $_ for grep { defined } @held;

# the probes end (timed out): the slots are back
sleep 1.5;
$r = connect_hello($proxy, "127.0.0.1:$good",
                   client_hello(undef, alpn => ['h2']));
is($r->{reply}, 'hello', 'slots back once the probes end: a cold CONNECT '
   . 'opens');

my @lim = $ng->wait_lines('lim', 6);
is(scalar(grep { /^503 / } @lim), 1, 'access log: one 503');

# without certguard_connect_sni the probe comes before the answer: 503
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$legacy") or die;
print $s "CONNECT 127.0.0.1:$hole[0] HTTP/1.1\r\n\r\n";
sleep 0.2;
my $resp = raw($legacy, "CONNECT 127.0.0.1:$hole[1] HTTP/1.1\r\n\r\n");
my $busy = qr{^HTTP/1\.1 503 Service Unavailable\r\n.*\r\n\r\n}s
           . qr{certguard: too many probes for this client\n$};
like($resp, qr/$busy/,
     'before the answer: 503 with the reason');
close $s;
like(join("\n", $ng->wait_lines('cef-legacy', 1)), qr/reason=probe_limit/,
     'before the answer: CEF record');

# rate=1: at most one new probe a second (no cache: each CONNECT probes);
# the client's count is the worker's, across servers: a new second first
sleep 1.1;
my @got = map { connect_hello($rate, "127.0.0.1:$good", $hello)->{reply} }
          1 .. 4;
is($got[0], 'hello', 'rate=1: the first probe of the second opens');
cmp_ok(scalar(grep { $_ eq 'hello' } @got), '<=', 2,
       'rate=1: at most two of four quick probes open (one a second)');
cmp_ok(scalar(grep { $_ eq 'alert' } @got), '>=', 2,
       'rate=1: the others are refused');
like(join("\n", $ng->wait_lines('cef-rate', 1)), qr/reason=probe_limit/,
     'rate=1: CEF record');

# held, not refused: the default wait=1s, looked at again until a slot is
# free (the held probe's timeout, 2s, is longer: a third look would refuse)
sleep 2.1;                          # the earlier probes have ended
my $h = held_tunnel($hold, "127.0.0.1:$hole[0]", $hello);
ok($h, 'wait: one probe of an unanswering destination holds the slot');
# half a second either side: refused at 1.5s, the slot back at 2s (the
# held probe's timeout) inside the next one's wait, up to 2.5s
sleep 0.5;
$t0 = time();
$r = connect_hello($hold, "127.0.0.1:$good", $hello);
my $dt = time() - $t0;
is($r->{reply}, 'alert', 'wait=1s: refused when no slot came back in time');
cmp_ok($dt, '>=', 0.9, 'wait=1s: held about a second before the refusal');
# held past its wait, it would have had the slot back at 1.5s and opened
cmp_ok($dt, '<', 1.9, 'wait=1s: not held past its wait');
my @rec = grep { /reason=probe_limit/ } $ng->wait_lines('cef-hold', 1);
is(scalar @rec, 1, 'wait: one CEF record for the refusal, not one per look');
unlike($rec[0] // '', qr/ cnt=/, 'wait: the record counts one refusal');

# the held probe ends within the wait of the next one: it opens
$t0 = time();
$r = connect_hello($hold, "127.0.0.1:$good", $hello);
$dt = time() - $t0;
is($r->{reply}, 'hello', 'wait: a slot back within the wait, the tunnel opens');
cmp_ok($dt, '>', 0.2, 'wait: it waited for the slot');
close $h;

$h = held_tunnel($short, "127.0.0.1:$hole[1]", $hello);
sleep 0.2;
$t0 = time();
$r = connect_hello($short, "127.0.0.1:$good", $hello);
$dt = time() - $t0;
is($r->{reply}, 'alert', 'wait=300ms: refused after its wait');
cmp_ok($dt, '>=', 0.25, 'wait=300ms: held first');
cmp_ok($dt, '<', 1.5, 'wait=300ms: not longer');
close $h;

# rate=1 wait=3s: quick probes are paced, one a second, not refused
sleep 2.1;
$t0 = time();
@got = map { connect_hello($paced, "127.0.0.1:$good", $hello)->{reply} }
       1 .. 3;
$dt = time() - $t0;
is(join(' ', @got), 'hello hello hello', 'rate=1 wait=3s: all three open');
cmp_ok($dt, '>', 0.9, 'rate=1 wait=3s: paced over at least one second');

$ng->stop();

done_testing();

###############################################################################

# A CONNECT answered 200 and its ClientHello sent, the socket kept open;
# undef when it was not answered.
sub held_tunnel {
    my ($port, $target, $bytes) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return undef;

    print $s "CONNECT $target HTTP/1.1\r\n\r\n";
    return undef unless Certguard::Stream::read_head($s) =~ /^HTTP\/1\.1 200 /;

    syswrite($s, $bytes);

    return $s;
}
