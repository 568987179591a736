#!/usr/bin/perl

# Chains through the CLI with generated certificates: the intermediates
# pool (--intermediates: completes a chain, never anchors it), the
# leaked_root signal and its list, --max-depth counted as RFC 5280 counts
# pathLen (self-issued intermediates not counted), wildcards over a public
# suffix (the Public Suffix List through libpsl), and what the default
# policy makes of a lone hostname_mismatch, weak_key or no_san on a
# CA-issued leaf.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;

###############################################################################

need_cli();

my $DAY = 86400;
my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard chain test root');
my $other = $pki->ca('other', subject => '/CN=unrelated test root');
my $policy = policy_dir() . '/default.policy';

# the test root stands for the system bundle
$ENV{SSL_CERT_FILE} = $root->{cert};

sub eval_chain {
    my ($chain, %o) = @_;
    my $r = check($chain, policy => $o{policy} // $policy,
                  ca_file => $o{ca_file} // $root->{cert},
                  exists $o{sni} ? (defined $o{sni} ? (sni => $o{sni}) : ())
                                 : (),
                  args => $o{args} // []);

    if ($r->{exit} != 0 || !$r->{json}) {
        diag("$r->{cmd}: exit $r->{exit}: $r->{err}$r->{out}");
        return undef;
    }

    return $r->{json};
}

sub ids { join ',', signal_ids($_[0]) }

###############################################################################

# --intermediates

my $int = $pki->ca('int', issuer => $root,
                   subject => '/C=US/O=DigiCert Inc/CN=DigiCert Chain Test CA');
my $leaf = $pki->good_leaf('omits', issuer => $int);
my $alone = write_file("$dir/omits-alone.pem", read_file($leaf->{cert}));

my $j = eval_chain($alone, sni => 'omits.test');
ok($j && !$j->{trusted}, 'leaf without its intermediate: untrusted');
is(ids($j), 'untrusted_chain', 'only untrusted_chain: the missing issuer, '
   . 'named like a public CA, is not mimicked_ca');
is($j && $j->{verdict}, 'tag', 'it tags, it does not block');

$j = eval_chain($alone, sni => 'omits.test',
                args => ['--intermediates', $int->{cert}]);
ok($j && $j->{trusted}, '--intermediates: the pool completes the chain');
is($j && $j->{verdict}, 'allow', '--intermediates: allowed');

$j = eval_chain($alone, sni => 'omits.test',
                args => ['--intermediates', $other->{cert},
                         '--intermediates', $int->{cert}]);
ok($j && $j->{trusted}, '--intermediates is repeatable');

# never an anchor: the pool's root and intermediate without the trusted root
my $both = $pki->bundle('pool-both', $int, $root);
$j = eval_chain($alone, sni => 'omits.test', ca_file => $other->{cert},
                args => ['--no-system-roots', '--intermediates', $both]);
ok($j && !$j->{trusted}, 'pool certificates are never anchors, a root '
   . 'among them neither');
ok($j && fired($j, 'untrusted_chain'), 'untrusted_chain then');

# a sent intermediate still comes first
$j = eval_chain($leaf->{chain}, sni => 'omits.test',
                args => ['--intermediates', $int->{cert}]);
is($j && $j->{verdict}, 'allow', 'a complete chain with a pool: allowed');

# a leaf in the file is skipped with a warning; no CA at all is an error
my $mixed = $pki->bundle('pool-mixed', $leaf, $int);
my $r = cli('check', '--policy', $policy, '--ca-file', $root->{cert},
            '--sni', 'omits.test', '--intermediates', $mixed, $alone);
is($r->{exit}, 0, 'a pool file with a leaf in it loads');
like($r->{err}, qr/\Q$mixed\E: warning: certificate 1 \(CN=omits\.test\) is not a CA certificate: skipped/,
     'the leaf is named in a warning');
like($r->{out}, qr/"verdict":"allow"/, 'and its CA completes the chain');

$r = cli('check', '--policy', $policy, '--intermediates', $alone, $alone);
is($r->{exit}, 2, 'a pool file without a CA certificate: exit 2');
like($r->{err}, qr/\Q$alone\E: no CA certificate in the file/,
     'the file is named');

$r = cli('check', '--policy', $policy, '--intermediates', "$dir/none.pem",
         $alone);
is($r->{exit}, 2, 'a missing pool file: exit 2');
like($r->{err}, qr/none\.pem: cannot open/, 'the missing file is named');

# leaked_root: by SPKI anywhere on the chain, or the key that signed it

my $lk = $pki->ca('leaked', subject => '/O=Leaky Interception Inc/CN=Leaky Root');
my $lkleaf = $pki->good_leaf('intercepted', issuer => $lk);
my $lkalone = write_file("$dir/intercepted-alone.pem",
                         read_file($lkleaf->{cert}));
my $lksent = $pki->bundle('intercepted-sent', $lkleaf, $lk);

write_file("$dir/leaked-pem.list", "# the root in full\n"
           . read_file($lk->{cert}));
write_file("$dir/leaked-hex.list", "# by its key only\n"
           . "$lk->{spki_sha256}  # Leaky Root\n");
write_file("$dir/leaked-pem.policy", "include $policy;\n"
           . "list leaked_root $dir/leaked-pem.list;\n");
write_file("$dir/leaked-hex.policy", "include $policy;\n"
           . "list leaked_root $dir/leaked-hex.list;\n");

$j = eval_chain($lkalone, sni => 'intercepted.test',
                policy => "$dir/leaked-pem.policy");
ok($j && fired($j, 'leaked_root'), 'leaked_root: a leaf signed by a listed '
   . 'root that the server does not send');
like($j && fired($j, 'leaked_root') ? fired($j, 'leaked_root')->{detail} : '',
     qr/leaf signed by the leaked key of Leaky Root/, 'leaked_root: detail');
is($j && $j->{verdict}, 'block', 'leaked_root blocks');

$j = eval_chain($lkalone, sni => 'intercepted.test',
                policy => "$dir/leaked-hex.policy");
ok($j && !fired($j, 'leaked_root'), 'leaked_root: a hash alone cannot '
   . 'check a signature');
$j = eval_chain($lksent, sni => 'intercepted.test',
                policy => "$dir/leaked-hex.policy");
ok($j && fired($j, 'leaked_root'), 'leaked_root: the listed root sent');
like($j && fired($j, 'leaked_root') ? fired($j, 'leaked_root')->{detail} : '',
     qr/^depth 1 has a leaked private key \(Leaky Root\)/,
     'leaked_root: which certificate');

# an anchor of the proxy's own store: trusted, and still blocked
$j = eval_chain($lkalone, sni => 'intercepted.test', ca_file => $lk->{cert},
                policy => "$dir/leaked-hex.policy");
ok($j && $j->{trusted}, 'a leaked root in the CA file verifies');
like($j && fired($j, 'leaked_root') ? fired($j, 'leaked_root')->{detail} : '',
     qr/^anchor has a leaked private key/, 'leaked_root: the anchor');
is($j && $j->{verdict}, 'block', 'a trusted chain to a leaked root blocks');

$j = eval_chain($leaf->{chain}, sni => 'omits.test',
                policy => "$dir/leaked-pem.policy");
ok($j && !fired($j, 'leaked_root'), 'leaked_root: not on other chains');

write_file("$dir/leaked-bad.list", "# a typo\n0123abc  # short\n");
write_file("$dir/leaked-bad.policy", "include $policy;\n"
           . "list leaked_root $dir/leaked-bad.list;\n");
$r = cli('lint', "$dir/leaked-bad.policy");
isnt($r->{exit}, 0, 'leaked_root list: a malformed line fails');
like($r->{out} . $r->{err}, qr/leaked-bad\.list:2: expected an SPKI SHA-256/,
     'leaked_root list: file:line');

$r = cli('lint', $policy);
is($r->{exit}, 0, 'the shipped default policy, with its leaked-roots list, '
   . 'lints') or diag($r->{out} . $r->{err});

# --max-depth: intermediates on the path, self-issued ones not counted

my $i1 = $pki->ca('depth-i1', issuer => $root, subject => '/CN=Depth CA 1');
my $i2 = $pki->ca('depth-i2', issuer => $i1, subject => '/CN=Depth CA 2');
my $deep = $pki->good_leaf('deep', issuer => $i2);
# a key rollover: the same name, issued by the old key
my $i1r = $pki->ca('depth-i1r', issuer => $i1, subject => '/CN=Depth CA 1');
my $rolled = $pki->good_leaf('rolled', issuer => $i1r);

$j = eval_chain($deep->{chain}, sni => 'deep.test',
                args => ['--max-depth', 1]);
ok($j && !$j->{trusted}, '--max-depth 1: two intermediates are one too many');
like($j && fired($j, 'untrusted_chain')
     ? fired($j, 'untrusted_chain')->{detail} : '',
     qr/certificate chain too long/, '--max-depth: the detail');
$j = eval_chain($deep->{chain}, sni => 'deep.test',
                args => ['--max-depth', 2]);
ok($j && $j->{trusted}, '--max-depth 2: two intermediates verify');
$j = eval_chain($rolled->{chain}, sni => 'rolled.test',
                args => ['--max-depth', 1]);
ok($j && $j->{trusted}, '--max-depth 1: a self-issued intermediate is not '
   . 'counted');
$j = eval_chain($rolled->{chain}, sni => 'rolled.test',
                args => ['--max-depth', 0]);
ok($j && !$j->{trusted}, '--max-depth 0: but the other one is');
$j = eval_chain($deep->{chain}, sni => 'deep.test');
ok($j && $j->{trusted}, 'no --max-depth: no limit');

$r = cli('check', '--policy', $policy, '--max-depth', '-1', $alone);
is($r->{exit}, 2, '--max-depth -1: a usage error');

# a wildcard over a public suffix (the Public Suffix List)

my %psl = (
    'psl-icann'   => ['DNS:*.co.uk', 'example.co.uk', 1],
    'psl-private' => ['DNS:*.s3.amazonaws.com', 'bucket.s3.amazonaws.com', 1],
    'psl-below'   => ['DNS:*.example.co.uk', 'www.example.co.uk', 0],
    'psl-exact'   => ['DNS:*.co.uk,DNS:example.co.uk', 'example.co.uk', 0],
);
for my $n (sort keys %psl) {
    my ($san, $sni, $bad) = @{ $psl{$n} };
    $j = eval_chain($pki->good_leaf($n, issuer => $root, san => $san)->{chain},
                    sni => $sni);
    if ($bad) {
        like($j && fired($j, 'hostname_mismatch')
             ? fired($j, 'hostname_mismatch')->{detail} : '',
             qr/\Q$sni\E matches only .*a wildcard over a public suffix/,
             "$san for $sni: hostname_mismatch");
        is($j && $j->{verdict}, 'tag', "$san for $sni: tagged");
    } else {
        ok($j && !fired($j, 'hostname_mismatch'),
           "$san for $sni: no hostname_mismatch");
    }
}

# the default policy on a CA-issued leaf: one of these alone tags

$j = eval_chain($pki->good_leaf('elsewhere', issuer => $root)->{chain},
                sni => 'another.test');
is(ids($j), 'hostname_mismatch', 'a trusted leaf for another name: '
   . 'hostname_mismatch alone');
is($j && $j->{verdict}, 'tag', 'hostname_mismatch alone tags');

$j = eval_chain($pki->good_leaf('rsa1024', issuer => $root,
                                key => 'rsa:1024')->{chain},
                sni => 'rsa1024.test');
is(ids($j), 'weak_key', 'an RSA-1024 leaf under a trusted CA: weak_key '
   . 'alone');
is($j && $j->{verdict}, 'tag', 'weak_key alone tags');

$j = eval_chain($pki->good_leaf('nosan', issuer => $root, san => '')->{chain},
                sni => 'nosan.test');
is(ids($j), 'no_san', 'a trusted leaf without SANs: no_san alone');
is($j && $j->{verdict}, 'tag', 'no_san alone tags');

done_testing();
