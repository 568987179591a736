#!/usr/bin/env bash
# Where a running proxy worker's CPU goes, by call stack (perf, DWARF
# unwinding): the share of its samples inside certguard (any frame of the
# module or the engine: ngx_http_certguard_*, ngx_stream_certguard_*,
# ngx_certguard_*, cg_*), and of those the signature checks (X509_verify)
# and the module's glue (certguard frames, none of the engine's); the
# samples inside OpenSSL's X509_verify_cert outside certguard (a plain
# proxy's own verification, which the module's callback replaces); and the
# functions certguard's samples spend most in.  cold_profile measures the
# engine in a tight loop; this measures it where nginx's own handshake work
# runs between evaluations and caches are colder.
#
#   bench/proxy_perf.sh PID SECONDS [REQUESTS]
#
# PID: a worker process under load (e.g. bench/http.sh's proxy, or one
# started from its BENCH_DIR configurations with wrk running); REQUESTS:
# how many it served while recorded (wrk's count over the same seconds),
# to print microseconds per request.  env: FREQ (4000 Hz), TOP (30).
# Needs perf (linux-perf) and root.  Sampling slows the worker by about a
# quarter; compare shares, or runs recorded the same way.  A request count
# taken from wrk's rate moved by ±10 % between two such runs here, so the
# shares are also given in units of the client key share the worker
# generates once a handshake (EVP_PKEY_generate, X25519 by nginx's
# default): pure compute, the same per request in every configuration.

set -euo pipefail

pid=${1:?usage: proxy_perf.sh PID SECONDS [REQUESTS]}
secs=${2:?usage: proxy_perf.sh PID SECONDS [REQUESTS]}
reqs=${3:-0}
freq=${FREQ:-4000}

command -v perf >/dev/null || { echo "no perf: apt-get install linux-perf" >&2;
                                exit 1; }

data=$(mktemp /tmp/certguard-proxy-perf-XXXXXX)
trap 'rm -f "$data"' EXIT

perf record -q -F "$freq" --call-graph dwarf,8192 -p "$pid" -o "$data" \
    -- sleep "$secs" 2>/dev/null

perf script -i "$data" -F comm,ip,sym 2>/dev/null \
| perl -e '
    use strict;
    use warnings;

    my ($freq, $reqs, $top) = @ARGV;
    my ($n, $cg, $sig, $glue, $plain, $kgen) = (0, 0, 0, 0, 0, 0);
    my (%inc, %ginc, @stack);

    sub ours { $_[0] =~ /^(?:cg_|ngx_http_certguard|ngx_stream_certguard|ngx_certguard)/ }

    sub flush {
        return unless @stack;
        $n++;
        my @mine = grep { ours($stack[$_]) } 0 .. $#stack;
        if (!@mine) {
            $plain++ if grep { $_ eq "X509_verify_cert" } @stack;
            $kgen++ if grep { $_ eq "EVP_PKEY_generate" } @stack;
            return;
        }
        $cg++;
        my @in = @stack[0 .. $mine[-1]];
        $sig++ if grep { $_ eq "X509_verify" } @in;
        # by the innermost frames: a deep stack may be cut short of
        # cg_evaluate, never of the engine function it is in
        my %seen;
        $inc{$_}++ for grep { !$seen{$_}++ } @in;
        return if grep { /^cg_/ } @in;
        $glue++;
        %seen = ();
        $ginc{$_}++ for grep { !$seen{$_}++ } @in;
    }

    while (my $line = <STDIN>) {
        if ($line !~ /^\s/ || $line !~ /\S/) {
            flush();
            @stack = ();
            next;
        }
        my (undef, $sym) = split " ", $line, 2;
        $sym = "?" unless defined $sym;
        $sym =~ s/\s+$//;
        $sym =~ s/\+0x[0-9a-f]+$//;
        push @stack, $sym;
    }
    flush();

    die "proxy_perf: no samples\n" unless $n;

    my $us = sub {
        my ($k) = @_;
        return "" unless $reqs > 0;
        return sprintf "  %7.1f us a request", $k * 1e6 / $freq / $reqs;
    };

    printf "# %d samples at %d Hz%s\n", $n, $freq,
        $reqs > 0 ? ", $reqs requests" : "";
    printf "%-44s %6.2f %%%s\n", "all of the worker", 100, $us->($n);
    printf "%-44s %6.2f %%%s\n", "certguard", 100 * $cg / $n, $us->($cg);
    printf "%-44s %6.2f %%%s\n", "  of it signature checks (X509_verify)",
        100 * $sig / $n, $us->($sig);
    printf "%-44s %6.2f %%%s\n", "  of it the glue (no engine frame)",
        100 * $glue / $n, $us->($glue);
    printf "%-44s %6.2f %%%s\n", "X509_verify_cert outside certguard",
        100 * $plain / $n, $us->($plain);
    printf "%-44s %6.2f %%%s\n", "the key share (EVP_PKEY_generate)",
        100 * $kgen / $n, $us->($kgen);
    if ($kgen > 0) {
        printf "# in key shares (the same compute in any run): certguard %.3f,"
             . " its signatures %.3f, the rest %.3f, plain\x27s verification"
             . " %.3f\n", $cg / $kgen, $sig / $kgen, ($cg - $sig) / $kgen,
             $plain / $kgen;
    }

    for my $t (["certguard", \%inc, $cg], ["the glue", \%ginc, $glue]) {
        my ($what, $h, $all) = @$t;
        next unless $top > 0 && $all > 0;
        print "# inclusive, share of the samples of $what\n";
        my $i = 0;
        for my $s (sort { $h->{$b} <=> $h->{$a} || $a cmp $b } keys %$h) {
            last if $i++ >= $top;
            printf "%6.1f %%  %s\n", 100 * $h->{$s} / $all, $s;
        }
    }
' "$freq" "$reqs" "${TOP:-30}"
