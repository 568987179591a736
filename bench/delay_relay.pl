#!/usr/bin/perl
# A TCP relay that adds network latency, for bench/netem.sh on a kernel
# without the netem qdisc: listens on ADDR:PORT for each PORT and relays to
# 127.0.0.1:PORT+OFFSET, holding every chunk RTT/2 ms in each direction.  A
# connection's first bytes also wait for the TCP handshake a real network
# would have cost (one RTT after the accept), so a client's connect, its
# first flight and each answer cost what they cost over such a link.
#
#   delay_relay.pl ADDR OFFSET RTT_MS PORT...
#
# Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

my ($addr, $offset, $rtt, @ports) = @ARGV;
my $half = $rtt / 2000;

$SIG{PIPE} = "IGNORE";         # a peer gone: its write fails, the relay stays
my (%rec, @queue);              # fileno => { s, peer, ready, eof, closed }
my $sel = IO::Select->new();
my %listen;

for my $p (@ports) {
    my $l = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $p,
                                  Listen => 1024, ReuseAddr => 1)
        or die "listen $addr:$p: $!";
    $listen{fileno $l} = [$l, $p];
    $sel->add($l);
}

while (1) {
    my $now = time();
    my $wait = @queue ? $queue[0][0] - $now : 1;
    $wait = 0 if $wait < 0;

    for my $s ($sel->can_read($wait)) {
        if (my $l = $listen{fileno $s}) {
            my $c = $l->[0]->accept or next;
            my $b = IO::Socket::INET->new(
                PeerAddr => "127.0.0.1:" . ($l->[1] + $offset)) or do {
                close $c;
                next;
            };
            for my $x ($c, $b) {
                $x->autoflush(1);
                $x->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
            }
            # the client's first bytes: after the SYN, SYN-ACK round trip
            my $rc = { s => $c, ready => time() + 2 * $half };
            my $rb = { s => $b, ready => 0 };
            $rc->{peer} = $rb;
            $rb->{peer} = $rc;
            $rec{fileno $c} = $rc;
            $rec{fileno $b} = $rb;
            $sel->add($c, $b);
            next;
        }

        my $r = $rec{fileno $s} or next;
        my $n = sysread($s, my $buf, 65536);
        my $at = time() + $half;
        $at = $r->{ready} + $half if $r->{ready} + $half > $at;
        # in order: never before what this direction queued already
        @queue = sort { $a->[0] <=> $b->[0] }
                 @queue, [$at, $r->{peer}, $n ? $buf : undef, $r];
        if (!$n) {
            $sel->remove($s);
            $r->{eof} = 1;
        }
    }

    $now = time();
    while (@queue && $queue[0][0] <= $now) {
        my ($at, $to, $data, $from) = @{ shift @queue };
        next if $to->{closed};
        if (defined $data) {
            syswrite($to->{s}, $data);
            next;
        }
        # the other side saw an end: pass it on; both ended, close both
        shutdown($to->{s}, 1);
        if ($to->{eof}) {
            for my $x ($to, $from) {
                delete $rec{fileno $x->{s}} if defined fileno $x->{s};
                close $x->{s};
                $x->{closed} = 1;
            }
        }
    }
}
