#!/usr/bin/perl

# The x509-limbo conformance figure (../shared/corpus/x509-limbo, Apache-2.0):
# every SERVER case through certguard check with the shipped default policy,
# the leaf then the intermediates as the chain, the case's trusted
# certificates as the only anchors, its peer name as --sni and its
# validation time as --at (none: the CLI's now).  A FAILURE case must be
# tagged or blocked, a SUCCESS case allowed.  A chain the CLI refuses to
# read (exit 2 naming the chain file) counts as refused: agreement for a
# FAILURE case, as OpenSSL fails that handshake before certguard is asked,
# a miss for a SUCCESS case; the figure says how many agree that way.
# Limbo's max_chain_depth goes to --max-depth (intermediates on the path,
# self-issued ones not counted, as limbo counts them); CRLs are passed once
# the CLI's help names --crl.  The test fails when fewer cases
# agree than $FLOOR; the misses are listed by namespace (prove -v shows
# them one by one).
#
# Environment: LIMBO_REPORT=FILE writes every case's outcome as JSON (the
# lead's miss analysis is made from it).

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Time::Local qw(timegm);

###############################################################################

# Cases that agree today.  Raise it with every engine fix that gains some;
# never lower it: a lower figure is a regression.
my $FLOOR = 190;

# The corpus the floor was measured on: x509-limbo at 8a2e6f4, SERVER cases.
my $CASES = 198;

need_cli();

my $file = shared_dir() . '/corpus/x509-limbo/limbo.json';
plan(skip_all => "no x509-limbo corpus $file (set CERTGUARD_SHARED)")
    unless -f $file;

my $policy = policy_dir() . '/default.policy';
my $dir = tempdir();

# Options the CLI may grow: taken when its help names them.  Today
# --ca-file replaces the system bundle in the store (cg_trust_load), so
# the case's anchors are the only ones even without --no-system-roots.
my $help = cli('check', '--help')->{out};
my $has_crl = $help =~ /--crl\b/;
my $has_depth = $help =~ /--max-depth\b/;
my $no_system = $help =~ /--no-system-roots\b/;

my $corpus = decode_json(read_file($file));
my @cases = grep { $_->{validation_kind} eq 'SERVER' }
    @{ $corpus->{testcases} };

# RFC 3339 as limbo writes it; fractions of a second are dropped, as
# certificate times have none: 00:00:00.999 is before a notBefore of
# 00:00:01 and 00:00:00.005 is still within a notAfter of 00:00:00.
sub unix_time {
    my ($s) = @_;
    my ($y, $mo, $d, $h, $mi, $sec, undef, $tz) = $s
        =~ /^(\d{4})-(\d\d)-(\d\d) T (\d\d):(\d\d):(\d\d) (\.\d+)?
              (Z|[+-]\d\d:\d\d)$/x
        or die "limbo: unreadable validation_time \"$s\"\n";
    my $t = timegm($sec, $mi, $h, $d, $mo - 1, $y);

    if ($tz ne 'Z') {
        my ($sign, $th, $tm) = $tz =~ /^([+-])(\d\d):(\d\d)$/;
        $t -= ($sign eq '-' ? -1 : 1) * ($th * 3600 + $tm * 60);
    }

    return $t;
}

sub pem_join {
    return join '', map { /\n\z/ ? $_ : "$_\n" } @_;
}

# One case: its files, the CLI run and the outcome.
sub run_case {
    my ($n, $c) = @_;
    my ($d, @args, $r, $j, %o, $name);

    $d = "$dir/$n";
    mkdir $d or die "$d: $!";

    write_file("$d/chain.pem", pem_join($c->{peer_certificate},
                                        @{ $c->{untrusted_intermediates} }));
    write_file("$d/ca.pem", pem_join(@{ $c->{trusted_certs} }));

    @args = ('check', '--policy', $policy, '--format', 'json',
             '--ca-file', "$d/ca.pem");
    push @args, '--no-system-roots' if $no_system;

    # an IP goes to --sni too: the engine matches an address there against
    # the IP SANs (--dst is only the destination for GeoIP and CEF)
    $name = $c->{expected_peer_name};
    push @args, '--sni', $name->{value} if $name;

    push @args, '--at', unix_time($c->{validation_time})
        if defined $c->{validation_time};

    push @args, '--max-depth', $c->{max_chain_depth}
        if $has_depth && defined $c->{max_chain_depth};

    if ($has_crl) {
        my $k = 0;
        for my $crl (@{ $c->{crls} }) {
            write_file("$d/crl$k.pem", pem_join($crl));
            push @args, '--crl', "$d/crl" . $k++ . '.pem';
        }
    }

    push @args, "$d/chain.pem";

    $r = cli(@args);
    $j = eval { decode_json($r->{out}) };

    %o = (id => $c->{id}, expected => $c->{expected_result},
          exit => $r->{exit}, signal => $r->{signal},
          crl => scalar @{ $c->{crls} } ? 1 : 0);

    if ($r->{exit} == 0 && ref $j eq 'HASH' && defined $j->{verdict}) {
        %o = (%o, got => $j->{verdict}, score => $j->{score},
              trusted => $j->{trusted} ? 1 : 0,
              signals => [map { "$_->{id}:$_->{weight}" }
                          @{ $j->{signals} || [] }],
              details => [map { "$_->{id}: $_->{detail}" }
                          @{ $j->{signals} || [] }]);

    } elsif ($r->{exit} == 2 && $r->{err} =~ /\Q$d\E\/chain\.pem: /) {
        # the chain itself is refused (not X.509 DER): nginx never gets
        # that far either, OpenSSL fails the handshake on such a chain
        %o = (%o, got => 'refused', err => $r->{err});

    } else {
        %o = (%o, got => 'error', err => $r->{err});
    }

    $o{agree} = $o{expected} eq 'SUCCESS'
        ? ($o{got} eq 'allow' ? 1 : 0)
        : ($o{got} =~ /^(tag|block|refused)$/ ? 1 : 0);

    return \%o;
}

###############################################################################

is(scalar @cases, $CASES, "limbo.json has the $CASES SERVER cases the floor "
   . 'was measured on') or BAIL_OUT('another corpus: measure the floor again');

my $n = 0;
my @out = map { run_case($n++, $_) } @cases;

is(scalar(grep { $_->{exit} < 0 } @out), 0, 'every case ran to its end');
is(scalar(grep { $_->{signal} } @out), 0, 'no CLI run died of a signal');

# exit 2 is a verdict only when the chain is refused; anything else (the
# anchors refused, a usage error) means the harness is broken
my @errors = grep { $_->{got} eq 'error' } @out;
is(scalar @errors, 0, 'every case got a verdict or a refused chain')
    or diag(join '', map { "$_->{id}: exit $_->{exit}: $_->{err}" } @errors);

my @agree = grep { $_->{agree} } @out;
my @refused = grep { $_->{got} eq 'refused' } @out;

# limbo's certificates live for a thousand years, so long_validity adds its
# weight to nearly every case: a FAILURE case that tags only with that help
# (a lone finding of a low-weight signal: nonconformant, eku, cn_mismatch)
# agrees here, not on a real chain
my ($tag_at) = read_file($policy) =~ /^\s*threshold\s+tag\s+(\d+)\s*;/m;
my @lifted = grep {
    my $o = $_;
    my ($lv) = map { /^long_validity:(-?\d+)$/ ? $1 : () }
        @{ $o->{signals} || [] };
    $o->{agree} && $o->{expected} eq 'FAILURE' && defined $lv
        && defined $tag_at && $o->{score} - $lv < $tag_at;
} @out;
# and the figure as a real chain would see it: every verdict taken again
# without long_validity's weight
my $plain = grep {
    my $o = $_;
    my ($lv) = map { /^long_validity:(-?\d+)$/ ? $1 : () }
        @{ $o->{signals} || [] };
    !defined $o->{score} || !defined $lv || !defined $tag_at ? $o->{agree}
        : $o->{expected} eq 'SUCCESS' ? $o->{score} - $lv < $tag_at
        : $o->{score} - $lv >= $tag_at;
} @out;
my @miss = grep { !$_->{agree} } @out;
my (%by, @ns);

for my $o (@miss) {
    my ($space) = $o->{id} =~ /^([^:]+)::/;
    push @ns, $space // $o->{id} unless $by{$space // $o->{id}};
    push @{ $by{$space // $o->{id}} }, $o;
}

diag(sprintf 'limbo: %d/%d agree (%d of them by a refused chain, %d only '
             . 'with long_validity, %d without it; %s; floor %d)',
             scalar @agree, scalar @cases, scalar @refused, scalar @lifted,
             $plain,
             $has_crl ? 'CRLs passed' : 'CLI has no --crl: CRL cases run '
                                        . 'without their CRLs',
             $FLOOR);

for my $space (sort { @{ $by{$b} } <=> @{ $by{$a} } || $a cmp $b } @ns) {
    diag(sprintf 'limbo: %s: %d missed', $space, scalar @{ $by{$space} });
    for my $o (@{ $by{$space} }) {
        note(sprintf '  %s: expected %s, got %s%s%s%s', $o->{id},
             $o->{expected}, $o->{got},
             defined $o->{score} ? " $o->{score}" : '',
             $o->{signals} && @{ $o->{signals} }
                 ? ' [' . join(' ', @{ $o->{signals} }) . ']' : '',
             $o->{crl} && !$has_crl ? ' (CRL case, CRL not passed)' : '');
    }
}

if ($ENV{LIMBO_REPORT}) {
    write_file($ENV{LIMBO_REPORT}, encode_json(\@out) . "\n");
    note("limbo: outcomes written to $ENV{LIMBO_REPORT}");
}

cmp_ok(scalar @agree, '>=', $FLOOR, "limbo: at least $FLOOR cases agree");

diag("limbo: $FLOOR is below today's figure: raise \$FLOOR in t/limbo.t")
    if @agree > $FLOOR;

done_testing();
