#!/usr/bin/perl

# Tests with real CA-issued chains from badssl.com (../shared/corpus/badssl,
# Apache-2.0), evaluated with --at inside their validity against the system
# CA bundle: good chains are trusted and allowed, each broken one fires the
# signal its name promises, and odd ones (no CN, no subject, 10000 SANs) do
# not crash; of 10000 SANs the first 1000 are read.  The interception
# roots' chains block (leaked_root); the incomplete chain verifies with its
# intermediate in the pool (--intermediates).

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use MIME::Base64 qw(decode_base64);
use Digest::SHA qw(sha256_hex);
use Time::Local qw(timegm);

###############################################################################

need_cli();

my $corpus = shared_dir() . '/corpus/badssl';
plan(skip_all => "no badssl corpus in $corpus (set CERTGUARD_SHARED)")
    unless -f "$corpus/wildcard-rsa2048.pem";

my $bundle = '/etc/ssl/certs/ca-certificates.crt';
plan(skip_all => "no system CA bundle $bundle (ca-certificates)")
    unless -f $bundle;

my $policy = policy_dir() . '/default.policy';
my %mon = (Jan => 0, Feb => 1, Mar => 2, Apr => 3, May => 4, Jun => 5,
           Jul => 6, Aug => 7, Sep => 8, Oct => 9, Nov => 10, Dec => 11);

# The leaf's DER, validity (from openssl) and its midpoint.
sub leaf_info {
    my ($file) = @_;
    my ($pem, $der, $r, %t);

    $pem = read_file($file);
    ($der) = $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END/s;
    $r = run('openssl', 'x509', '-in', $file, '-noout', '-startdate',
             '-enddate');
    for my $k (qw/notBefore notAfter/) {
        my ($m, $d, $h, $mi, $s, $y) = $r->{out}
            =~ /$k=(\w+)\s+(\d+) (\d+):(\d+):(\d+) (\d+) GMT/;
        $t{$k} = timegm($s, $mi, $h, $d, $mon{$m}, $y);
    }

    return { sha256 => sha256_hex(decode_base64($der)),
             nb => $t{notBefore}, na => $t{notAfter},
             mid => int(($t{notBefore} + $t{notAfter}) / 2) };
}

sub eval_badssl {
    my ($name, %o) = @_;
    my ($file, $info, $r);

    $file = "$corpus/$name.pem";
    $info = leaf_info($file);
    $r = check($file, policy => $policy, at => $o{at} // $info->{mid},
               defined $o{sni} ? (sni => $o{sni}) : (),
               $o{args} ? (args => $o{args}) : ());
    is($r->{signal}, 0, "$name: no crash");
    is($r->{exit}, 0, "$name: exit 0") or diag($r->{err});
    is($r->{json} && $r->{json}{sha256}, $info->{sha256},
       "$name: sha256 of the leaf");

    return wantarray ? ($r->{json}, $info) : $r->{json};
}

sub fires {
    my ($j, $id, $name) = @_;
    ok($j && fired($j, $id), "$name fires $id")
        or diag(explain($j ? $j->{signals} : 'no result'));
}

sub quiet {
    my ($j, $id, $name) = @_;
    ok($j && !fired($j, $id), "$name does not fire $id")
        or diag(explain($j ? fired($j, $id) : 'no result'));
}

###############################################################################

# good chains: trusted, the right name, allowed

for my $t (['wildcard-rsa2048', 'foo.badssl.com'],
           ['wildcard-rsa4096', 'rsa4096.badssl.com'],
           ['wildcard-ecc256', 'ecc256.badssl.com'],
           ['wildcard-ecc384', 'ecc384.badssl.com'],
           ['wildcard-sha384', 'sha384.badssl.com'],
           ['wildcard-sha512', 'sha512.badssl.com'],
           ['subdomain-extended-validation', 'extended-validation.badssl.com'])
{
    my ($name, $sni) = @$t;
    my $j = eval_badssl($name, sni => $sni);
    quiet($j, 'untrusted_chain', $name);
    ok($j && $j->{trusted}, "$name is trusted by the system bundle");
    quiet($j, $_, $name) for qw/hostname_mismatch expired self_signed
                                weak_signature weak_key mimicked_ca no_sct/;
    is($j && $j->{verdict}, 'allow', "$name is allowed");
}

# every other public certificate served for its own name, in the middle of
# its life, is allowed: the profile checks (nonconformant, cn_mismatch,
# eku, ...) must not tag what public CAs issued and browsers accepted

for my $t (['subdomain-1000-sans', '1000-sans.badssl.com'],
           ['subdomain-10000-sans', '10000-sans.badssl.com'],
           ['subdomain-no-common-name', 'no-common-name.badssl.com'],
           ['subdomain-no-subject', 'no-subject.badssl.com'],
           ['subdomain-preloaded-expect-ct', 'preloaded-expect-ct.badssl.com'],
           ['wildcard-preloaded-expect-ct', 'preloaded-expect-ct.badssl.com'],
           ['subdomain-xn--n1aae7f7o', 'xn--n1aae7f7o.badssl.com'],
           ['subdomain-captive-portal', 'login.captive-portal.badssl.com'],
           ['wildcard-rsa8192', 'rsa8192.badssl.com'])
{
    my ($name, $sni) = @$t;
    my $j = eval_badssl($name, sni => $sni);
    ok($j && $j->{trusted}, "$name is trusted by the system bundle");
    is($j && $j->{verdict}, 'allow', "$name for $sni is allowed")
        or diag(explain($j ? $j->{signals} : 'no result'));
}

my $j = eval_badssl('wildcard-rsa2048', sni => 'a.b.badssl.com');
fires($j, 'hostname_mismatch', 'wildcard-rsa2048 for a.b.badssl.com');
$j = eval_badssl('wildcard-rsa2048', sni => 'badssl.com');
quiet($j, 'hostname_mismatch', 'wildcard-rsa2048 for badssl.com (a SAN)');
$j = eval_badssl('wildcard-rsa2048', sni => 'example.com');
fires($j, 'hostname_mismatch', 'wildcard-rsa2048 for example.com');
is(join(',', signal_ids($j)), 'hostname_mismatch',
   'a public certificate for another name: hostname_mismatch alone');
is($j && $j->{verdict}, 'tag', 'hostname_mismatch alone tags');

# broken on purpose

$j = eval_badssl('wildcard-self-signed', sni => 'self-signed.badssl.com');
fires($j, 'self_signed', 'wildcard-self-signed');
fires($j, 'untrusted_chain', 'wildcard-self-signed');
isnt($j && $j->{verdict}, 'allow', 'wildcard-self-signed is not allowed');

my $info;
($j, $info) = eval_badssl('wildcard-expired');
quiet($j, 'expired', 'wildcard-expired inside its validity');
$j = eval_badssl('wildcard-expired', at => $info->{na} + 86400,
                 sni => 'expired.badssl.com');
fires($j, 'expired', 'wildcard-expired a day after notAfter');
quiet($j, 'untrusted_chain', 'wildcard-expired: the chain itself is known');

$j = eval_badssl('wildcard-incomplete-chain',
                 sni => 'incomplete-chain.badssl.com');
fires($j, 'untrusted_chain', 'wildcard-incomplete-chain');
quiet($j, 'self_signed', 'wildcard-incomplete-chain');
quiet($j, 'mimicked_ca', 'wildcard-incomplete-chain: its issuer is only '
      . 'missing');
isnt($j && $j->{verdict}, 'block', 'wildcard-incomplete-chain is not blocked');

# DigiCert SHA2 Secure Server CA as the corpus's other chains send it: in
# the intermediates pool it completes the chain
my ($dcint) = read_file("$corpus/wildcard-rsa2048.pem")
    =~ /-----END CERTIFICATE-----\s*(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s;
my $pool = write_file(tempdir() . '/digicert-sha2.pem', "$dcint\n");
like(run('openssl', 'x509', '-in', $pool, '-noout', '-subject')->{out},
     qr/CN\s*=\s*DigiCert SHA2 Secure Server CA/,
     'the pool holds DigiCert SHA2 Secure Server CA');
$j = eval_badssl('wildcard-incomplete-chain',
                 sni => 'incomplete-chain.badssl.com',
                 args => ['--intermediates', $pool]);
ok($j && $j->{trusted}, 'wildcard-incomplete-chain with the pool: trusted');
is($j && $j->{verdict}, 'allow',
   'wildcard-incomplete-chain with the pool: allowed');

$j = eval_badssl('wildcard-sha1-intermediate', sni => 'sha1-intermediate.badssl.com');
fires($j, 'weak_signature', 'wildcard-sha1-intermediate');
like(fired($j, 'weak_signature') && fired($j, 'weak_signature')->{detail},
     qr/depth 1|intermediate/i,
     'wildcard-sha1-intermediate: the detail names the intermediate');
for my $n (qw/wildcard-sha1-2016 wildcard-sha1-2017/) {
    $j = eval_badssl($n, sni => 'sha1-2016.badssl.com');
    fires($j, 'weak_signature', $n);
}
$j = eval_badssl('wildcard-sha384', sni => 'sha384.badssl.com');
quiet($j, 'weak_signature', 'wildcard-sha384');

for my $n (qw/subdomain-superfish subdomain-edellroot
              subdomain-dsdtestprovider/)
{
    (my $host = $n) =~ s/^subdomain-//;
    $j = eval_badssl($n, sni => "$host.badssl.com");
    fires($j, 'untrusted_chain', $n);
    ok($j && !$j->{trusted}, "$n is not trusted");
    fires($j, 'leaked_root', $n);
    is($j && $j->{verdict}, 'block', "$n blocks: its root's key is public");
}

$j = eval_badssl('subdomain-no-sct', sni => 'no-sct.badssl.com');
fires($j, 'no_sct', 'subdomain-no-sct');
quiet($j, 'untrusted_chain', 'subdomain-no-sct');
$j = eval_badssl('subdomain-revoked', sni => 'revoked.badssl.com');
quiet($j, 'no_sct', 'subdomain-revoked (has SCTs)');

$j = eval_badssl('fallback');
fires($j, 'untrusted_chain', 'fallback');

# odd ones: no crash, a verdict

for my $n (qw/subdomain-no-common-name subdomain-no-subject/) {
    $j = eval_badssl($n, sni => 'no-common-name.badssl.com');
    like($j && $j->{verdict} // '', qr/^(allow|tag|block)$/, "$n: a verdict");
}
$j = eval_badssl('subdomain-no-subject');
ok($j && defined $j->{subject}, 'subdomain-no-subject: subject present (empty)');

$j = eval_badssl('subdomain-1000-sans', sni => '1000-sans.badssl.com');
quiet($j, 'hostname_mismatch', 'subdomain-1000-sans');
$j = eval_badssl('subdomain-10000-sans', sni => '10000-sans.badssl.com');
quiet($j, 'hostname_mismatch', 'subdomain-10000-sans');
quiet($j, 'untrusted_chain', 'subdomain-10000-sans');

# the first 1,000 SANs are read (CG_SAN_MAX): a name among them matches, a
# name past them is not looked for
$j = eval_badssl('subdomain-10000-sans', sni => 'san1000.badssl.com');
quiet($j, 'hostname_mismatch', 'subdomain-10000-sans: the 1,000th SAN');
$j = eval_badssl('subdomain-10000-sans', sni => 'san1001.badssl.com');
fires($j, 'hostname_mismatch', 'subdomain-10000-sans: the 1,001st SAN');
$j = eval_badssl('subdomain-1000-sans', sni => 'wowmoarsans1000.badssl.com');
quiet($j, 'hostname_mismatch', 'subdomain-1000-sans: its last SAN');

$j = eval_badssl('subdomain-xn--n1aae7f7o', sni => 'xn--n1aae7f7o.badssl.com');
quiet($j, 'hostname_mismatch', 'IDN subdomain by its A-label');

# the whole corpus in one run: one line each, every line JSON

my @all = sort glob("$corpus/*.pem");
my $r = cli('check', '--policy', $policy, '--at', 1600000000, @all);
is($r->{exit}, 0, 'whole corpus: exit 0');
my @lines = split /\n/, $r->{out};
is(scalar @lines, scalar @all, 'whole corpus: one line per chain');
is(scalar(grep { eval { decode_json($_) } } @lines), scalar @all,
   'whole corpus: every line is JSON');

$r = cli('check', '--policy', $policy, '--format', 'cef', @all);
@lines = split /\n/, $r->{out};
is(scalar(grep { /^CEF:0\|/ && length($_) < 2048 } @lines), scalar @all,
   'whole corpus: one CEF record under 2 KB per chain');

done_testing();

###############################################################################
