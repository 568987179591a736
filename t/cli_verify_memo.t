#!/usr/bin/perl

# The memo of verified signatures changes no verdict: certguard check with
# the memo (the default) and with --no-verify-memo gives byte-identical
# output over a set of generated chains in one run (where the memo hits:
# many leaves under one intermediate, mixed with expired, tampered,
# wrongly signed and self-signed ones, and each chain twice), and over
# every SERVER case of the x509-limbo corpus.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Time::Local qw(timegm);

###############################################################################

need_cli();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard memo root');
my $inter = $pki->ca('inter', subject => '/CN=certguard memo intermediate',
                     issuer => $root);
my $inter_rsa = $pki->ca('inter-rsa', key => 'rsa:2048',
                         subject => '/CN=certguard memo rsa intermediate',
                         issuer => $root);
# the intermediate's name with another key: what it signs does not verify
# under the real intermediate
my $impostor = $pki->ca('impostor', subject => '/CN=certguard memo '
                        . 'intermediate', issuer => $root);

my (@files, $k);

sub chain_file {
    my ($name, @pems) = @_;
    my $path = "$dir/$name.pem";
    write_file($path, join '', map { read_file($_) } @pems);
    push @files, $path;
    return $path;
}

sub tamper {
    my ($cert, $name) = @_;
    return $pki->flipped($name, $cert);
}

for $k (1 .. 12) {
    my $l = $pki->good_leaf("g$k", issuer => $k % 3 ? $inter : $inter_rsa);
    chain_file("g$k", $l->{chain});
}

my $exp = $pki->good_leaf('expired', issuer => $inter,
                          not_before => -100 * 86400, not_after => -1 * 86400);
chain_file('expired', $exp->{chain});

my $young = $pki->good_leaf('young', issuer => $inter,
                            not_before => 2 * 86400, not_after => 90 * 86400);
chain_file('young', $young->{chain});

my $wrong = $pki->good_leaf('wrong', issuer => $impostor);
chain_file('wrong', $wrong->{cert}, $inter->{cert});

my $genuine = $pki->good_leaf('genuine', issuer => $inter);
chain_file('genuine', $genuine->{chain});
chain_file('tampered', tamper($genuine->{cert}, 'tampered'), $inter->{cert});
chain_file('tampered-inter', $genuine->{cert},
           tamper($inter->{cert}, 'tampered-inter'));

my $self = $pki->leaf('self', subject => '/CN=self.test',
                      san => 'DNS:self.test');
chain_file('self', $self->{cert});

chain_file('with-root', $genuine->{cert}, $inter->{cert}, $root->{cert});
chain_file('lone-leaf', $genuine->{cert});
chain_file('genuine-again', $genuine->{chain});

# every chain a second time, when the memo has all it verified
push @files, @files;

my @common = ('check', '--policy', policy_dir() . '/default.policy',
              '--ca-file', $root->{cert}, '--no-system-roots',
              '--at', $pki->now);

my $with = cli(@common, '--verify-memo-stats', @files);
my $without = cli(@common, '--no-verify-memo', '--verify-memo-stats',
                  @files);

is($with->{exit}, 0, 'check with the memo ran');
is($without->{exit}, 0, 'check without it ran');
my @lines = split /\n/, $with->{out};
is(scalar @lines, scalar @files, 'one result a chain');
is($with->{out}, $without->{out}, 'the same results, byte for byte, with '
   . 'and without the memo over ' . scalar(@files) . ' chains');

my ($hits, $misses) = $with->{err} =~ /verify memo: on, (\d+) hits, (\d+) misses/;
ok(defined $hits && $hits >= scalar(@files), "the memo was used: "
   . ($hits // '?') . ' hits, ' . ($misses // '?') . ' misses')
    or diag($with->{err});
like($without->{err}, qr/verify memo: off, 0 hits, 0 misses/,
     '--no-verify-memo: not asked');

my %got = map { my $j = decode_json($_); ($j->{file} => $j) } @lines;
ok($got{"$dir/g1.pem"}{trusted}, 'a good leaf verifies');
ok(!$got{"$dir/tampered.pem"}{trusted}, 'the tampered leaf does not, with '
   . 'its genuine copy memorized');
ok(!$got{"$dir/tampered-inter.pem"}{trusted}, 'nor a tampered '
   . 'intermediate');
ok(!$got{"$dir/wrong.pem"}{trusted}, 'nor a leaf of the impostor key');
ok($got{"$dir/genuine-again.pem"}{trusted}, 'the genuine leaf after them '
   . 'still does');

# the limbo corpus: each SERVER case with and without the memo

my $file = shared_dir() . '/corpus/x509-limbo/limbo.json';

SKIP: {
    skip "no x509-limbo corpus $file", 2 unless -f $file;

    my $corpus = decode_json(read_file($file));
    my @cases = grep { $_->{validation_kind} eq 'SERVER' }
        @{ $corpus->{testcases} };
    my ($n, $same, @diff) = (0, 0);

    for my $c (@cases) {
        my $d = "$dir/limbo-" . $n++;
        mkdir $d or die "$d: $!";
        my $join = sub { join '', map { /\n\z/ ? $_ : "$_\n" } @_ };
        write_file("$d/chain.pem", $join->($c->{peer_certificate},
                   @{ $c->{untrusted_intermediates} }));
        write_file("$d/ca.pem", $join->(@{ $c->{trusted_certs} }));

        my @args = ('check', '--policy', policy_dir() . '/default.policy',
                    '--ca-file', "$d/ca.pem", '--no-system-roots');
        push @args, '--sni', $c->{expected_peer_name}{value}
            if $c->{expected_peer_name};
        if (defined $c->{validation_time}
            && $c->{validation_time} =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/)
        {
            push @args, '--at', timegm($6, $5, $4, $3, $2 - 1, $1);
        }
        # the chain twice in one run: the second with a warm memo
        push @args, "$d/chain.pem", "$d/chain.pem";

        my $a = cli(@args);
        my $b = cli(@args[0 .. $#args - 2], '--no-verify-memo',
                    @args[-2, -1]);

        if ($a->{exit} == $b->{exit} && $a->{out} eq $b->{out}
            && ($a->{err} =~ s/\Q$d\E//gr) eq ($b->{err} =~ s/\Q$d\E//gr))
        {
            $same++;

        } else {
            push @diff, $c->{id};
        }
    }

    is($same, scalar @cases, "limbo: every one of the " . scalar(@cases)
       . ' SERVER cases the same with and without the memo');
    is_deeply(\@diff, [], 'no case differs');
}

done_testing();
