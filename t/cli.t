#!/usr/bin/perl

# Tests for the certguard command line contract: check and lint, the output
# formats, exit codes (0 with a verdict, 2 for usage and input errors, with
# one stderr line naming the file), many chains one line each, --at, --dst.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Time::Local qw();

###############################################################################

need_cli();

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $int = $pki->ca('int', issuer => $root, subject => '/CN=certguard test int');
my %leaf = map {
    $_ => $pki->leaf($_, issuer => $int, subject => "/CN=$_.test",
                     san => "DNS:$_.test", not_before => -30 * $DAY,
                     not_after => 60 * $DAY, ext => [$SCT])
} qw/one two three/;
my $ss = $pki->leaf('selfsigned', subject => '/O=certguard/CN=selfsigned.test',
                    san => 'DNS:selfsigned.test');

my $policy = policy_dir() . '/default.policy';
my @base = ('check', '--policy', $policy, '--ca-file', $root->{cert});

# Each run: no crash, and for errors exactly one stderr line naming $what.
sub no_crash {
    my ($r, $name) = @_;

    is($r->{signal}, 0, "no crash: $name");
}

sub usage_error {
    my ($r, $name, $what) = @_;

    no_crash($r, $name);
    is($r->{exit}, 2, "exit 2: $name");
    my @lines = split /\n/, $r->{err};
    is(scalar @lines, 1, "one stderr line: $name") or diag($r->{err});
    if (defined $what) {
        like($r->{err}, qr/\Q$what\E/, "stderr names $what: $name");
    }
}

###############################################################################

# json, the default format

my $r = cli(@base, '--sni', 'one.test', $leaf{one}{chain});
no_crash($r, 'json');
is($r->{exit}, 0, 'exit 0 with a verdict');
is($r->{err}, '', 'nothing on stderr with a verdict');
my @lines = split /\n/, $r->{out};
is(scalar @lines, 1, 'json is one line');
my $j = eval { decode_json($r->{out}) };
ok($j && ref $j eq 'HASH', 'json is an object');
like($j->{verdict} // '', qr/^(allow|tag|block)$/, 'verdict is a verdict');
is($j->{verdict}, 'allow', 'clean trusted chain is allowed');
like($j->{score} // '', qr/^-?\d+$/, 'score is an integer');
like($r->{out}, qr/"score":-?\d+[,}]/, 'score is a JSON number');
is(ref $j->{signals}, 'ARRAY', 'signals is an array');
is($j->{sha256}, $leaf{one}{sha256}, 'sha256 is the leaf DER digest');
is($j->{subject}, 'CN=one.test', 'subject in RFC 2253 form');
is($j->{issuer}, 'CN=certguard test int', 'issuer in RFC 2253 form');
ok(defined $j->{not_after} && $j->{not_after} ne '', 'not_after present');

# signals carry id, weight, detail

$r = cli(@base, '--sni', 'selfsigned.test', $ss->{chain});
$j = eval { decode_json($r->{out}) };
is($r->{exit}, 0, 'exit 0 for a bad certificate too');
ok($j && @{ $j->{signals} } > 0, 'self-signed chain has signals');
for my $s (@{ $j ? $j->{signals} : [] }) {
    like($s->{id} // '', qr/^[a-z0-9_]+$/, "signal id $s->{id}");
    like($s->{weight} // '', qr/^\d+$/, "signal $s->{id} has a weight");
    ok(defined $s->{detail} && length $s->{detail} > 0
       && length $s->{detail} < 200, "signal $s->{id} has a short detail");
}
ok(fired($j, 'self_signed'), 'self_signed listed for a self-signed chain');

# --format json explicit, text, cef; a bad format

$r = cli(@base, '--format', 'json', $leaf{one}{chain});
ok(eval { decode_json($r->{out}) }, '--format json prints json');

$r = cli(@base, '--format', 'text', $ss->{chain});
is($r->{exit}, 0, '--format text exit 0');
like($r->{out}, qr/\b(allow|tag|block)\b/, '--format text names the verdict');
like($r->{out}, qr/self_signed/, '--format text names the signals');

$r = cli(@base, '--format', 'cef', $ss->{chain});
is($r->{exit}, 0, '--format cef exit 0');
like($r->{out}, qr/\ACEF:0\|certguard\|certguard\|[^\n]*\n?\z/,
     '--format cef prints exactly one CEF record');

$r = cli(@base, '--format', 'xml', $leaf{one}{chain});
usage_error($r, 'unknown format', 'xml');
is($r->{out}, '', 'nothing on stdout for a usage error');

# usage errors

$r = cli();
no_crash($r, 'no arguments');
is($r->{exit}, 2, 'no arguments: exit 2');
like($r->{err}, qr/usage|check|lint/i, 'no arguments: usage on stderr');

$r = cli('frobnicate');
no_crash($r, 'unknown command');
is($r->{exit}, 2, 'unknown command: exit 2');

$r = cli(@base, '--bogus-option', $leaf{one}{chain});
no_crash($r, 'unknown option');
is($r->{exit}, 2, 'unknown option: exit 2');

$r = cli('check', '--ca-file', $root->{cert}, $leaf{one}{chain});
no_crash($r, 'no --policy');
is($r->{exit}, 2, 'check without --policy: exit 2');

$r = cli(@base);
no_crash($r, 'no chain');
is($r->{exit}, 2, 'check without a chain: exit 2');

$r = cli(@base, '--sni');
no_crash($r, 'option without its value');
is($r->{exit}, 2, 'option without its value: exit 2');

# unreadable and malformed input: exit 2, one line naming the file

$r = cli(@base, "$dir/missing.pem");
usage_error($r, 'missing chain file', "$dir/missing.pem");

$r = cli(@base, $dir);
usage_error($r, 'a directory as the chain', $dir);

my %bad = (
    'garbage.pem'   => "this is not a certificate\n",
    'empty.pem'     => '',
    'badb64.pem'    => "-----BEGIN CERTIFICATE-----\n!!!notbase64\$\$\$\n"
                     . "-----END CERTIFICATE-----\n",
    'truncated.pem' => substr(read_file($leaf{one}{cert}), 0, 400),
    'truncated.der' => substr(read_file($leaf{one}{der}), 0, 200),
    'binary.der'    => join('', map { chr(($_ * 37) % 256) } 1 .. 512),
    'key.pem'       => read_file($leaf{one}{key}),
);
for my $f (sort keys %bad) {
    write_file("$dir/$f", $bad{$f});
    $r = cli(@base, "$dir/$f");
    usage_error($r, "malformed chain $f", "$dir/$f");
    is($r->{out}, '', "nothing on stdout for $f");
}

$r = cli('check', '--policy', "$dir/missing.policy", $leaf{one}{chain});
usage_error($r, 'missing policy', "$dir/missing.policy");

$r = cli('check', '--policy', $policy, '--ca-file', "$dir/missing-ca.pem",
         $leaf{one}{chain});
usage_error($r, 'missing CA file', "$dir/missing-ca.pem");

write_file("$dir/bad.policy", "threshold tag;\n");
$r = cli('check', '--policy', "$dir/bad.policy", $leaf{one}{chain});
usage_error($r, 'bad policy in check', "$dir/bad.policy:1");

# DER input works as well as PEM

$r = cli(@base, $leaf{one}{der});
is($r->{exit}, 0, 'a DER leaf is read');
$j = eval { decode_json($r->{out}) };
is($j && $j->{sha256}, $leaf{one}{sha256}, 'DER leaf has the same sha256');

# "-" reads the chain from stdin

$r = cli({ stdin => read_file($leaf{two}{chain}) }, @base, '-');
is($r->{exit}, 0, 'a chain on stdin: exit 0');
$j = eval { decode_json($r->{out}) };
is($j && $j->{sha256}, $leaf{two}{sha256}, 'a chain on stdin is scored');
$r = cli({ stdin => "garbage\n" }, @base, '-');
usage_error($r, 'garbage on stdin', undef);

# many chains: one result per line, in order

$r = cli(@base, map { $leaf{$_}{chain} } qw/one two three/);
is($r->{exit}, 0, 'many chains: exit 0');
@lines = split /\n/, $r->{out};
is(scalar @lines, 3, 'many chains: three lines');
is_deeply([ map { my $x = eval { decode_json($_) }; $x ? $x->{sha256} : '' }
            @lines ],
          [ map { $leaf{$_}{sha256} } qw/one two three/ ],
          'many chains: each line is its chain, in order');

is_deeply([ map { my $x = eval { decode_json($_) }; $x ? $x->{file} : '' }
            @lines ],
          [ map { $leaf{$_}{chain} } qw/one two three/ ],
          'many chains: each JSON line names its file');

$r = cli(@base, '--format', 'cef', map { $leaf{$_}{chain} } qw/one two three/);
@lines = split /\n/, $r->{out};
is(scalar(grep { /^CEF:0\|/ } @lines), 3, 'many chains: three CEF records');

$r = cli(@base, '--format', 'text', map { $leaf{$_}{chain} } qw/one two/);
is($r->{exit}, 0, 'many chains as text: exit 0');
like($r->{out}, qr/one\.test.*two\.test/s, 'many chains as text: both');

$r = cli(@base, $leaf{one}{chain}, "$dir/garbage.pem", $leaf{two}{chain});
no_crash($r, 'many chains with a bad one');
is($r->{exit}, 2, 'many chains with a bad one: exit 2');
@lines = split /\n/, $r->{err};
is(scalar @lines, 1, 'many chains with a bad one: one stderr line');
like($r->{err}, qr/\Q$dir\/garbage.pem\E/, 'stderr names the bad file');
@lines = split /\n/, $r->{out};
is_deeply([ map { my $x = eval { decode_json($_) }; $x ? $x->{sha256} : '' }
            @lines ],
          [ $leaf{one}{sha256}, $leaf{two}{sha256} ],
          'many chains with a bad one: the good ones are still scored');

# --at: evaluation time

my $exp = $pki->leaf('past', issuer => $int, subject => '/CN=past.test',
                     san => 'DNS:past.test', not_before => -100 * $DAY,
                     not_after => -10 * $DAY, ext => [$SCT]);
$r = cli(@base, $exp->{chain});
$j = eval { decode_json($r->{out}) };
ok(fired($j, 'expired'), 'without --at: now, so expired');
$r = cli(@base, '--at', $exp->{not_after} - 5 * $DAY, $exp->{chain});
$j = eval { decode_json($r->{out}) };
ok($j && !fired($j, 'expired'), '--at inside the validity: not expired');
$r = cli(@base, '--at', 'yesterday', $exp->{chain});
usage_error($r, '--at not a number', 'yesterday');

# --sni goes into the result

$r = cli(@base, '--sni', 'one.test', $leaf{one}{chain});
$j = eval { decode_json($r->{out}) };
is($j && $j->{name}, 'one.test', '--sni is the name checked');
$r = cli(@base, '--sni', 'two.test', $leaf{one}{chain});
$j = eval { decode_json($r->{out}) };
ok(fired($j, 'hostname_mismatch'), '--sni of another name mismatches');

# --dst: IPv4, IPv4:port, IPv6, [IPv6]:port; the CEF record shows it

my %dst = (
    '192.0.2.1'          => ['192.0.2.1', undef],
    '192.0.2.1:8443'     => ['192.0.2.1', 8443],
    '2001:db8::1'        => ['2001:db8::1', undef],
    '[2001:db8::1]:443'  => ['2001:db8::1', 443],
);
for my $d (sort keys %dst) {
    $r = cli(@base, '--format', 'cef', '--dst', $d, $leaf{one}{chain});
    is($r->{exit}, 0, "--dst $d: exit 0");
    my ($addr, $port) = @{ $dst{$d} };
    like($r->{out}, qr/ dst=\Q$addr\E( |$)/m, "--dst $d: dst=$addr in CEF");
    if (defined $port) {
        like($r->{out}, qr/ dpt=$port( |$)/m, "--dst $d: dpt=$port in CEF");
    } else {
        unlike($r->{out}, qr/ dpt=/, "--dst $d: no dpt in CEF");
    }
}
for my $d ('not-an-ip', '192.0.2.1:99999', '300.1.1.1', '[2001:db8::1') {
    $r = cli(@base, '--dst', $d, $leaf{one}{chain});
    usage_error($r, "--dst $d", undef);
}

# mutated certificates: never a crash, and every file gets exactly one line,
# a result on stdout or a complaint naming it on stderr

srand(20261125);
my $der = read_file($leaf{one}{der});
my $pem = read_file($leaf{one}{chain});
my @mut;
for my $k (1 .. 200) {
    my $m = $k % 2 ? $der : $pem;
    for (1 .. 1 + int(rand(4))) {
        my $at = int(rand(length $m));
        substr($m, $at, 1) = chr(int(rand(256)));
    }
    $m = substr($m, 0, int(rand(length $m))) if $k % 7 == 0;
    push @mut, write_file("$dir/mut$k." . ($k % 2 ? 'der' : 'pem'), $m);
}
$r = cli(@base, @mut);
is($r->{signal}, 0, 'mutated certificates: no crash');
ok($r->{exit} == 0 || $r->{exit} == 2, 'mutated certificates: exit 0 or 2');
my @out = split /\n/, $r->{out};
my @err = split /\n/, $r->{err};
is(@out + @err, scalar @mut, 'mutated certificates: one line per file');
is(scalar(grep { my $f = $_; grep { index($_, $f) >= 0 } @err } @mut),
   scalar @err, 'mutated certificates: each stderr line names its file');
is(scalar(grep { !eval { decode_json($_) } } @out), 0,
   'mutated certificates: every stdout line is JSON');

# trust: --ca-file adds to the system bundle, --no-system-roots drops it

$r = cli(@base, '--sni', 'one.test', $leaf{one}{chain});
is($r->{exit}, 0, '--ca-file: exit 0');
$j = eval { decode_json($r->{out}) };
ok($j && $j->{trusted}, '--ca-file: a chain under the test CA verifies');
ok($j && !$j->{public_root}, '--ca-file: its root is private');
$r = cli(@base, '--no-system-roots', '--sni', 'one.test', $leaf{one}{chain});
$j = eval { decode_json($r->{out}) };
ok($j && $j->{trusted} && !$j->{public_root},
   '--ca-file --no-system-roots: the test CA alone verifies it');
$r = cli('check', '--policy', $policy, '--sni', 'one.test',
         $leaf{one}{chain});
$j = eval { decode_json($r->{out}) };
ok($j && !$j->{trusted}, 'without --ca-file the test chain does not verify');
$r = cli('check', '--policy', $policy, '--no-system-roots',
         $leaf{one}{chain});
usage_error($r, '--no-system-roots without --ca-file', '--ca-file');

SKIP: {
    my $real = shared_dir() . '/corpus/badssl/wildcard-rsa2048.pem';
    skip "no badssl corpus ($real)", 8 unless -f $real;
    skip 'no system CA bundle', 8
        unless -f '/etc/ssl/certs/ca-certificates.crt';

    # inside the leaf's validity: the midpoint of what openssl reports
    my %mon = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
               Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);
    my $d = run('openssl', 'x509', '-in', $real, '-noout', '-startdate',
                '-enddate');
    my @t = map {
        my ($m, $dd, $h, $mi, $sec, $y) = $d->{out}
            =~ /$_=(\w+)\s+(\d+) (\d+):(\d+):(\d+) (\d+) GMT/;
        Time::Local::timegm($sec, $mi, $h, $dd, $mon{$m}, $y);
    } qw/notBefore notAfter/;
    my @real = ('--at', int(($t[0] + $t[1]) / 2), '--sni', 'foo.badssl.com',
                $real);

    $r = cli(@base, @real);
    is($r->{exit}, 0, 'a real chain with an unrelated --ca-file: exit 0')
        or diag($r->{err});
    $j = eval { decode_json($r->{out}) };
    ok($j && $j->{trusted}, 'a real chain still verifies with an unrelated '
       . '--ca-file added');
    ok($j && $j->{public_root}, '... to a public root');
    ok($j && !grep({ $_->{id} eq 'untrusted_chain' } @{ $j->{signals} }),
       '... without untrusted_chain');
    is($j && $j->{verdict}, 'allow', '... and is allowed');

    $r = cli(@base, '--no-system-roots', @real);
    is($r->{exit}, 0, 'a real chain with --no-system-roots: exit 0');
    $j = eval { decode_json($r->{out}) };
    ok($j && !$j->{trusted}, 'a real chain does not verify with '
       . '--no-system-roots and an unrelated --ca-file');
    ok($j && grep({ $_->{id} eq 'untrusted_chain' } @{ $j->{signals} }),
       '... untrusted_chain fires');
}

# lint

$r = cli('lint', $policy);
is($r->{exit}, 0, 'lint the default policy: exit 0');
is($r->{out}, "$policy: ok\n", 'lint says FILE: ok');
$r = cli('lint', "$dir/bad.policy");
usage_error($r, 'lint a bad policy', "$dir/bad.policy:1");
$r = cli('lint', "$dir/missing.policy");
usage_error($r, 'lint a missing policy', "$dir/missing.policy");
$r = cli('lint');
no_crash($r, 'lint without a file');
is($r->{exit}, 2, 'lint without a file: exit 2');

done_testing();

###############################################################################
