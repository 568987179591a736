# The benchmarks' client side, shared by their Perl parts (bench/stream.sh,
# bench/netem.sh, bench/connect.sh): a TCP connection to the proxy with an
# optional CONNECT, a TLS handshake through it, percentiles.  One client
# context serves every handshake, so no CA store is loaded per connection
# and no session is resumed.
#
# Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).

package CgBench;

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use IO::Socket::SSL;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

our @EXPORT = qw(client_ctx tunnel handshake_ms pct);


sub client_ctx {
    my $ctx = IO::Socket::SSL::SSL_Context->new(
        SSL_verify_mode => SSL_VERIFY_NONE, SSL_session_cache_size => 0);

    return $ctx // die "context: $SSL_ERROR";
}


# tunnel(PORT, TARGET, FROM): a connection to 127.0.0.1:PORT (from address
# FROM if given) and, with a TARGET, "CONNECT TARGET" answered 200; undef
# when it could not connect, was closed or was not answered 200 (in $@ the
# answer).  The answer is read as it comes, not a byte at a time (which
# cost the client CPU, shared with the destination, 39 reads a tunnel): a
# proxy sends nothing after its 200 before the client's first bytes, so
# anything after the answer is an error.
sub tunnel {
    my ($port, $target, $from) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  $from ? (LocalAddr => $from) : ())
        or do { $@ = "connect: $!"; return undef };
    $s->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);

    return $s unless defined $target;

    print $s "CONNECT $target HTTP/1.1\r\n\r\n";

    my $resp = '';
    while ($resp !~ /\r\n\r\n/) {
        sysread($s, $resp, 4096, length $resp)
            or do { $@ = "closed"; return undef };
    }

    if ($resp !~ /\r\n\r\n\z/) {
        $@ = "bytes after the answer: $resp";
        return undef;
    }

    return $s if $resp =~ /^HTTP\/1\.1 200 /;

    $@ = "refused: $resp";
    return undef;
}


# handshake_ms(CTX, PORT, TARGET, FROM): the ms from the TCP connect to the
# end of a TLS handshake through the tunnel (TARGET undef: a plain stream
# proxy, no CONNECT); dies on any failure
sub handshake_ms {
    my ($ctx, $port, $target, $from) = @_;
    my $t0 = time();

    my $s = tunnel($port, $target, $from)
        or die "CONNECT " . ($target // "(none)") . " on $port: $@";
    IO::Socket::SSL->start_SSL($s, SSL_reuse_ctx => $ctx)
        or die "handshake through $port with " . ($target // "(none)")
               . ($from ? " from $from" : "") . ": $SSL_ERROR";

    my $dt = (time() - $t0) * 1000;
    close $s;

    return $dt;
}


sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[int($p / 100 * $#v + 0.5)];
}

1;
