#!/usr/bin/perl

# Stream module, event ordering: a session whose probe ends in the same
# event loop iteration as a read event of its client.  The worker is
# stopped (SIGSTOP) while both events become ready, so that epoll returns
# them together, the probe's first; the session must go on exactly once
# (one tunnel to the destination, not two).

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Nginx;
use Certguard::Stream;

use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

###############################################################################

my ($MODULE, $STREAM) = need_stream();

my $dir = tempdir();

write_file("$dir/test.policy", 'include ' . policy_dir()
    . "/default.policy;\n");

my ($proxy) = free_ports(1);

# the destination: plain TCP, so that the probe's handshake fails when it
# is told to (certguard_probe_failure allow then opens the tunnel)
my $dst = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 16, ReuseAddr => 1)
    or die "listen: $!";
my $dport = $dst->sockport;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

$ng->start('', module => 0, ports => [$proxy], main => <<"MAIN");
load_module $STREAM;
load_module $MODULE;

stream {
    log_format cg '\$status v=\$certguard_verdict up=\$certguard_upstream';

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_probe_failure allow;
        certguard_probe_timeout 10s;
        certguard_policy $dir/test.policy;
        preread_timeout 10s;
        proxy_connect_timeout 3s;
        proxy_pass \$certguard_upstream;
        access_log $d/logs/proxy.log cg;
    }
}
MAIN

my ($worker) = $ng->worker_pids;
ok($worker, 'one worker');

# Accepts the connections to the destination that arrive within $t s.
sub accept_all {
    my ($t) = @_;
    my (@c, $sel);

    $sel = IO::Select->new($dst);
    my $deadline = time() + $t;
    while ((my $left = $deadline - time()) > 0) {
        last unless $sel->can_read($left);
        my $c = $dst->accept or last;
        push @c, $c;
    }

    return @c;
}

my $client = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$proxy",
                                   Timeout => 5) or die "connect: $!";
print $client "CONNECT 127.0.0.1:$dport HTTP/1.1\r\n\r\n";

# the probe connects and sends its ClientHello
my ($probe) = accept_all(5);
ok($probe, 'the probe connected to the destination');

my $hello = '';
if ($probe) {
    my $sel = IO::Select->new($probe);
    while ($sel->can_read(5)) {
        sysread($probe, my $buf, 4096) or last;
        $hello .= $buf;
        last if length $hello >= 5
                && length $hello >= 5 + unpack('n', substr($hello, 3, 2));
    }
}
like($hello, qr/^\x16\x03/, 'the probe sent a ClientHello');

# both events ready while the worker is stopped: the probe's end (the
# destination closes) first, then a byte from the client
kill 'STOP', $worker;
close $probe if $probe;
sleep 0.1;
{
    local $SIG{PIPE} = 'IGNORE';
    syswrite($client, "x");
}
sleep 0.1;
kill 'CONT', $worker;

# the tunnel: one connection to the destination, not two
my @tunnels = accept_all(1.5);
is(scalar @tunnels, 1, 'the session opened one tunnel');

my $resp = '';
{
    my $sel = IO::Select->new($client);
    while ($resp !~ /\r\n\r\n/ && $sel->can_read(2)) {
        sysread($client, my $buf, 4096) or last;
        $resp .= $buf;
    }
}
like($resp, qr/^HTTP\/1\.1 200 /, 'the CONNECT was answered 200');

if (@tunnels) {
    my $got = '';
    my $sel = IO::Select->new($tunnels[0]);
    while (length $got < 1 && $sel->can_read(2)) {
        sysread($tunnels[0], my $buf, 16) or last;
        $got .= $buf;
    }
    is($got, 'x', 'the client byte went through the tunnel');
}

close $client;
close $_ for @tunnels;

# (the harness's check that the port accepts made a line of its own)
my @lines = grep { /up=127/ } $ng->wait_lines('proxy', 2);
is(scalar @lines, 1, 'one access log line for the session');
like($lines[0] // '', qr/^200 v=allow up=127\.0\.0\.1:$dport$/,
     'the session was allowed after the failed probe');

sleep 0.5;
is(scalar $ng->worker_pids, 1, 'the worker is still there');
unlike($ng->error_log, qr/\[alert\]|exited on signal/,
       'no alert in the error log');

$ng->stop;

done_testing();
