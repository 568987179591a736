#!/usr/bin/perl

# Tests for the built-in signals through the certguard CLI: each fires on a
# certificate made for it and stays quiet on a clean chain and on near
# misses; custom rules on every field; thresholds give allow, tag, block.

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
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';   # an (empty) embedded SCT list

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $now = $pki->now;

my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $int = $pki->ca('int', issuer => $root,
                   subject => '/O=certguard/CN=certguard test int');
my $other = $pki->ca('other', subject => '/CN=unrelated test root');

# The test root stands for the system bundle: its chains end in a public
# root, which is what no_sct and the 398-day rule of long_validity ask.
$ENV{SSL_CERT_FILE} = $root->{cert};

# A leaf under the trusted test PKI, clean unless %o says otherwise.
sub good_leaf {
    my ($name, %o) = @_;

    return $pki->leaf($name, issuer => $int, subject => "/CN=$name.test",
                      san => "DNS:$name.test", not_before => -30 * $DAY,
                      not_after => 60 * $DAY, ext => [$SCT], %o);
}

my $clean = good_leaf('clean', san => 'DNS:clean.test,IP:127.0.0.1');

# Lists: an SSLBL CSV as abuse.ch publishes it, and a plain digest list.
my $bl1 = good_leaf('bl-sha1');
my $bl2 = good_leaf('bl-sha256');
my $blint = $pki->ca('bl-int', issuer => $root, subject => '/CN=listed int');
my $bl3 = good_leaf('bl-by-int', issuer => $blint);
my $bl4 = good_leaf('bl-colons');

write_file("$dir/sslbl.csv", <<"EOF");
################################################################
# abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #
# Last updated: 2026-11-25 10:00:08 UTC                        #
#                                                              #
# Terms Of Use: https://sslbl.abuse.ch/blacklist/              #
# For questions please contact sslbl [at] abuse.ch             #
################################################################
#
# Listingdate,SHA1,Listingreason
2026-11-24 11:49:45,$bl1->{sha1},Cobalt Strike C&C
2026-11-23 08:12:03,$blint->{sha1},QakBot C&C
2026-11-22 17:40:11,0123456789abcdef0123456789abcdef01234567,AsyncRAT C&C
EOF

my $colons = join ':', map { uc } unpack '(A2)*', $bl4->{sha256};
write_file("$dir/digests.txt", <<"EOF");
# one digest a line
$bl2->{sha256}
sha256:$colons
EOF

my @builtin = qw/untrusted_chain self_signed expired not_yet_valid
    weak_signature weak_key hostname_mismatch no_san issued_recently
    short_validity long_validity staging_issuer free_dv_issuer mimicked_ca
    default_subject no_sct blocklisted nonconformant ca_leaf
    name_constraints eku cn_mismatch
    chain_too_long/;

# The shipped default policy for its lists, every weight set so that each
# signal shows, known windows, and the test's own rules and lists.
my $repo = repo_root();
my $policy = write_file("$dir/signals.policy", <<"EOF");
include $repo/policies/default.policy;
name signals-test;
threshold tag 30;
threshold block 70;
@{[ map { "weight $_ 10;\n" } @builtin ]}
window issued_recently 3d;
window short_validity 7d;
window long_validity 398d 825d;
list blocklist $dir/sslbl.csv;
list blocklist $dir/digests.txt;
rule custom_subject subject "O=Evil Subject Corp" 11;
rule custom_issuer issuer "~^CN=Evil Issuer" 12;
rule custom_san san "~*[.]evil[.]test\$" 13;
rule custom_serial serial DEADBEEF 14;
rule custom_sni sni ~^c2- 15 "C2-looking name";
EOF

my $lint = cli('lint', $policy);
is($lint->{exit}, 0, 'the test policy lints') or diag($lint->{err});

# One evaluation: chain (a path, or a cert hashref whose chain is sent),
# trusted by the test root and the CA file (the test root unless ca_file
# says otherwise); no_system leaves the system bundle (SSL_CERT_FILE) out.
sub eval_chain {
    my ($c, %o) = @_;
    my $r;

    $r = check(ref $c ? $c->{chain} : $c, policy => $o{policy} // $policy,
               ca_file => $o{ca_file} // $root->{cert},
               at => $o{at} // $now,
               exists $o{sni} ? (defined $o{sni} ? (sni => $o{sni}) : ())
                              : (sni => ref $c ? "$c->{name}.test" : undef),
               $o{dst} ? (dst => $o{dst}) : (),
               args => [$o{client_sni} ? ('--client-sni', $o{client_sni}) : (),
                        $o{no_system} ? ('--no-system-roots') : ()]);

    if ($r->{exit} != 0 || !$r->{json}) {
        diag("$r->{cmd}: exit $r->{exit}: $r->{err}$r->{out}");
        return undef;
    }

    return $r->{json};
}

sub fires {
    my ($j, $id, $name) = @_;

    ok($j && fired($j, $id), "$id fires: $name")
        or diag(explain($j ? [signal_ids($j)] : 'no result'));
}

sub quiet {
    my ($j, $id, $name) = @_;

    ok($j && !fired($j, $id), "$id does not fire: $name")
        or diag(explain($j ? fired($j, $id) : 'no result'));
}

###############################################################################

# the clean chain: trusted, named, fresh, SCTs, strong

my $jc = eval_chain($clean);
ok($jc, 'clean chain evaluates');
is_deeply([ signal_ids($jc) ], [], 'clean chain fires no signal');
is($jc && $jc->{verdict}, 'allow', 'clean chain is allowed');
is($jc && $jc->{score}, 0, 'clean chain scores 0');
quiet($jc, $_, 'clean chain') for @builtin,
    qw/custom_subject custom_issuer custom_san custom_serial custom_sni/;

# score is the sum of the weights of what fired, everywhere below

my @seen;

sub score_ok {
    my ($j, $name) = @_;
    my $sum = 0;

    return unless $j;
    $sum += $_->{exempt} ? 0 : $_->{weight} for @{ $j->{signals} };
    is($j->{score}, $sum, "score is the sum of weights: $name");
}

# untrusted_chain

my $j = eval_chain($clean, ca_file => $other->{cert}, no_system => 1);
fires($j, 'untrusted_chain', 'anchor not in the CA file');
score_ok($j, 'untrusted chain');
$j = eval_chain($clean->{cert}, sni => 'clean.test');
fires($j, 'untrusted_chain', 'intermediate not sent');
ok($j && !$j->{trusted}, 'trusted is false for an untrusted chain');
ok($jc && $jc->{trusted}, 'trusted is true for the clean chain');
my $both = $pki->bundle('two-anchors', $other, $root);
$j = eval_chain($clean, ca_file => $both);
quiet($j, 'untrusted_chain', 'anchor second in a bundle of two');

# any certificate of the CA file is an anchor, not only a self-signed one
# (RFC 5280 6.1): an intermediate, or the leaf itself
$j = eval_chain($clean, ca_file => $int->{cert});
quiet($j, 'untrusted_chain', 'the intermediate alone in the CA file');
ok($j && $j->{trusted}, 'a chain to a trusted intermediate is trusted');
$j = eval_chain($clean->{cert}, sni => 'clean.test',
                ca_file => $clean->{cert});
quiet($j, 'untrusted_chain', 'the leaf pinned in the CA file');

# a sent issuer that leads nowhere: the other one sent is tried too
# (OpenSSL takes the first that fits and does not go back)
my $altint = $pki->ca('alt-int', issuer => $root, subject => '/CN=alt int');
my $decoy = $pki->ca('alt-int-decoy', issuer => $other, key_of => $altint,
                     subject => '/CN=alt int');
my $altleaf = good_leaf('alt-path', issuer => $altint);
my $detour = $pki->bundle('alt-path-chain', $altleaf->{cert},
                          $decoy->{cert}, $altint->{cert});
$j = eval_chain($detour, sni => 'alt-path.test');
quiet($j, 'untrusted_chain', 'a decoy issuer sent first, the right one '
      . 'after it');
ok($j && $j->{trusted}, 'the path through the second issuer is trusted');
$j = eval_chain($pki->bundle('alt-path-decoy', $altleaf->{cert},
                             $decoy->{cert}), sni => 'alt-path.test');
fires($j, 'untrusted_chain', 'only the decoy issuer sent');

# self_signed

my $ss = $pki->leaf('selfsigned', subject => '/CN=selfsigned.test',
                    san => 'DNS:selfsigned.test', not_before => -30 * $DAY,
                    not_after => 60 * $DAY, ext => [$SCT]);
$j = eval_chain($ss);
fires($j, 'self_signed', 'leaf signed by its own key');
fires($j, 'untrusted_chain', 'self-signed leaf');
quiet($j, 'no_sct', 'untrusted leaf');
score_ok($j, 'self-signed');

my $mirror = $pki->ca('mirror', issuer => $root,
                      subject => '/CN=mirror.test');
my $mleaf = good_leaf('mirror-leaf', issuer => $mirror,
                      subject => '/CN=mirror.test', san => 'DNS:mirror.test');
$j = eval_chain($mleaf, sni => 'mirror.test');
quiet($j, 'self_signed', 'issuer name equals subject, signed by a CA');
quiet($j, 'untrusted_chain', 'issuer name equals subject, CA trusted');

# expired, not_yet_valid

my $exp = good_leaf('expired', not_before => -100 * $DAY,
                    not_after => -$DAY);
$j = eval_chain($exp);
fires($j, 'expired', 'notAfter yesterday');
quiet($j, 'not_yet_valid', 'notAfter yesterday');

my $early = good_leaf('early', not_before => $DAY, not_after => 90 * $DAY);
$j = eval_chain($early);
fires($j, 'not_yet_valid', 'notBefore tomorrow');
quiet($j, 'expired', 'notBefore tomorrow');

$j = eval_chain($clean, at => $clean->{not_after} + 60);
fires($j, 'expired', '--at a minute after notAfter');
$j = eval_chain($clean, at => $clean->{not_after} - 60);
quiet($j, 'expired', '--at a minute before notAfter');
$j = eval_chain($clean, at => $clean->{not_before} - 60);
fires($j, 'not_yet_valid', '--at a minute before notBefore');

my $oldint = $pki->ca('old-int', issuer => $root, subject => '/CN=old int',
                      not_before => -400 * $DAY, not_after => -2 * $DAY);
$j = eval_chain(good_leaf('under-old-int', issuer => $oldint));
fires($j, 'expired', 'intermediate expired, leaf valid');

# validity is judged on the path that verified: its anchor counts, and a
# sent certificate no path uses does not (the "chain of pain": a server
# still sends an expired cross-signed copy of its root)
my $oldroot = $pki->ca('expired-root', subject => '/CN=expired test root',
                       not_before => -3650 * $DAY, not_after => -$DAY);
my $eint = $pki->ca('int-of-expired', issuer => $oldroot,
                    subject => '/CN=int of an expired root');
$j = eval_chain(good_leaf('under-expired-root', issuer => $eint),
                ca_file => $oldroot->{cert});
fires($j, 'expired', 'the anchor expired yesterday, nothing sent did');
like(fired($j, 'expired') && fired($j, 'expired')->{detail},
     qr/^anchor expired /, 'expired: the detail names the anchor');
quiet($j, 'untrusted_chain', 'an expired anchor is still an anchor');

my $legacy = $pki->ca('legacy-root', subject => '/CN=legacy test root');
my $cross = $pki->ca('cross-root', issuer => $legacy, key_of => $root,
                     subject => '/CN=certguard test root',
                     not_before => -3000 * $DAY, not_after => -10 * $DAY);
my $pain = $pki->bundle('chain-of-pain', $clean->{cert}, $int->{cert},
                        $cross->{cert});
$j = eval_chain($pain, sni => 'clean.test');
quiet($j, 'expired', 'an expired cross-signed root sent along, unused');
is($j && $j->{verdict}, 'allow', 'the chain of pain is allowed');
$j = eval_chain($pain, sni => 'clean.test', ca_file => $legacy->{cert},
                no_system => 1);
fires($j, 'expired', 'the same chain to the legacy root: the cross-sign '
      . 'is on the path');

# weak_signature

$j = eval_chain(good_leaf('sha1-leaf', md => 'sha1'));
fires($j, 'weak_signature', 'leaf signed with SHA-1');
my $sha1int = $pki->ca('sha1-int', issuer => $root, md => 'sha1',
                       subject => '/CN=sha1 int');
$j = eval_chain(good_leaf('under-sha1-int', issuer => $sha1int));
fires($j, 'weak_signature', 'intermediate signed with SHA-1');
my $rsaroot = $pki->ca('rsa-root', key => 'rsa:2048', md => 'sha1',
                       subject => '/CN=sha1 self-signed root');
my $md5 = good_leaf('md5-leaf', issuer => $rsaroot, md => 'md5');
$j = eval_chain($md5, ca_file => $rsaroot->{cert});
fires($j, 'weak_signature', 'leaf signed with MD5');
$j = eval_chain(good_leaf('under-sha1-root', issuer => $rsaroot),
                ca_file => $rsaroot->{cert});
quiet($j, 'weak_signature', 'only the root self-signature is SHA-1');
quiet($jc, 'weak_signature', 'SHA-256 and ECDSA-SHA256');

# weak_key

$j = eval_chain(good_leaf('rsa1024', key => 'rsa:1024'));
fires($j, 'weak_key', 'RSA 1024-bit leaf');
is($j && $j->{key_bits}, 1024, 'key_bits reports 1024');
$j = eval_chain(good_leaf('ec224', key => 'ec:secp224r1'));
fires($j, 'weak_key', 'EC P-224 leaf');
$j = eval_chain(good_leaf('ec256', key => 'ec:prime256v1'));
quiet($j, 'weak_key', 'EC P-256 leaf');
$j = eval_chain(good_leaf('rsa3072', key => 'rsa:3072'));
quiet($j, 'weak_key', 'RSA 3072-bit leaf');
quiet($jc, 'weak_key', 'RSA 2048-bit leaf');

# every key of the verified path counts, the anchor's too; DSA at any size
my $rsaroot1024 = $pki->ca('rsa1024-root', key => 'rsa:1024',
                           subject => '/CN=RSA 1024 test root');
my $under1024 = good_leaf('under-rsa1024-root',
    issuer => $pki->ca('int-of-rsa1024', issuer => $rsaroot1024,
                       subject => '/CN=int of an RSA 1024 root'));
$j = eval_chain($under1024, ca_file => $rsaroot1024->{cert});
fires($j, 'weak_key', 'the anchor has an RSA 1024 key, nothing sent does');
like(fired($j, 'weak_key') && fired($j, 'weak_key')->{detail},
     qr/^anchor RSA key of 1024 bits/, 'weak_key: the detail names the anchor');
$j = eval_chain(good_leaf('dsa2048', key => 'dsa:2048'));
fires($j, 'weak_key', 'DSA 2048-bit leaf');

# the CA/Browser Forum key rules that are no weakness: nonconformant
$j = eval_chain(good_leaf('rsa2052', key => 'rsa:2052'));
fires($j, 'nonconformant', 'RSA 2052-bit leaf (not a multiple of 8)');
quiet($j, 'weak_key', 'RSA 2052-bit leaf');
$j = eval_chain(good_leaf('k256', key => 'ec:secp256k1'));
fires($j, 'nonconformant', 'EC secp256k1 leaf (not a CABF curve)');
quiet($j, 'weak_key', 'EC secp256k1 leaf');
$j = eval_chain(good_leaf('ec384', key => 'ec:secp384r1'));
quiet($j, 'nonconformant', 'EC P-384 leaf');
quiet($j, 'weak_key', 'EC P-384 leaf');
$j = eval_chain(good_leaf('ec224-only-weak', key => 'ec:secp224r1'));
quiet($j, 'nonconformant', 'EC P-224 leaf: weak_key says it, once');

# nonconformant: RFC 5280 profile findings that leave the path intact

$j = eval_chain(good_leaf('ku-certsign', omit => ['keyUsage'],
    ext => [$SCT, 'keyUsage = critical,digitalSignature,keyCertSign']));
fires($j, 'nonconformant', 'leaf with keyUsage keyCertSign but cA FALSE');
like(fired($j, 'nonconformant') && fired($j, 'nonconformant')->{detail},
     qr/^leaf: /, 'nonconformant: the detail names the leaf');
quiet($j, 'untrusted_chain', 'a profile finding leaves the path valid');
ok($j && $j->{trusted}, 'a profile finding leaves the chain trusted');

my $noski = $pki->ca('int-no-ski', issuer => $root,
                     subject => '/CN=int without key identifier',
                     omit => ['subjectKeyIdentifier']);
$j = eval_chain(good_leaf('under-no-ski', issuer => $noski,
                          omit => ['authorityKeyIdentifier']));
fires($j, 'nonconformant', 'intermediate without subjectKeyIdentifier');
like(fired($j, 'nonconformant') && fired($j, 'nonconformant')->{detail},
     qr/^depth 1: [^(]*$/, 'nonconformant: the intermediate, and not its '
     . 'leaf that has no key identifier to name');

my $noku = $pki->ca('int-no-ku', issuer => $root, omit => ['keyUsage'],
                    subject => '/CN=int without keyUsage');
$j = eval_chain(good_leaf('under-no-ku', issuer => $noku));
quiet($j, 'nonconformant', 'a CA without keyUsage (every validator '
      . 'takes it)');
quiet($j, 'untrusted_chain', 'a CA without keyUsage');

# a root's own defects count where it is a private anchor; a public root
# was vetted by a root program, and no server can change it
my $bcroot = $pki->ca('bc-noncrit-root', omit => ['basicConstraints'],
                      ext => ['basicConstraints = CA:TRUE'],
                      subject => '/CN=root with a non-critical bc');
my $bcleaf = good_leaf('under-bc-noncrit',
    issuer => $pki->ca('bc-noncrit-int', issuer => $bcroot,
                       subject => '/CN=int under a non-critical bc root'));
$j = eval_chain($bcleaf, ca_file => $bcroot->{cert});
fires($j, 'nonconformant', 'private anchor, basicConstraints not critical');
like(fired($j, 'nonconformant') && fired($j, 'nonconformant')->{detail},
     qr/^anchor: /, 'nonconformant: the detail names the anchor');
{
    local $ENV{SSL_CERT_FILE} = $bcroot->{cert};
    $j = eval_chain($bcleaf, ca_file => $bcroot->{cert});
    quiet($j, 'nonconformant', 'the same root as a public root');
}

# the engine's own profile rules, one certificate each
sub nonconformant_ok {
    my ($j, $re, $name) = @_;
    my $h = $j && fired($j, 'nonconformant');

    ok($h && $h->{detail} =~ $re, "nonconformant fires: $name")
        or diag(explain($h ? $h->{detail} : [signal_ids($j)]));
}

nonconformant_ok(eval_chain(good_leaf('serial0', serial => '00')),
                 qr/^leaf: serial number not positive$/, 'serial 0');
nonconformant_ok(eval_chain(good_leaf('serial21', serial => '7F' x 21)),
                 qr/^leaf: serial number longer than 20 octets$/,
                 'a 21-octet serial');
$j = eval_chain(good_leaf('serial20', serial => 'FF' x 20));
quiet($j, 'nonconformant', 'a 20-octet serial with its top bit set');
nonconformant_ok(eval_chain(good_leaf('under_score',
                                      san => 'DNS:under_score.test'),
                            sni => 'under_score.test'),
                 qr/^leaf: DNS subjectAltName not a host name$/,
                 'an underscore in a DNS SAN');
nonconformant_ok(eval_chain(good_leaf('dotted', san => 'DNS:.dotted.test')),
                 qr/not a host name/, 'a DNS SAN with a leading dot');
$j = eval_chain(good_leaf('wild-ok',
                          san => 'DNS:*.wild-ok.test,DNS:x-1.a9.test'),
                sni => 'a.wild-ok.test');
quiet($j, 'nonconformant', 'a wildcard SAN and a hyphen, digits');
nonconformant_ok(eval_chain(good_leaf('san-crit', omit => ['subjectAltName'],
    ext => [$SCT, 'subjectAltName = critical,DNS:san-crit.test'])),
    qr/^leaf: subjectAltName critical beside a subject$/,
    'a critical SAN beside a subject');
$j = eval_chain(good_leaf('san-crit-empty', subject => '/',
    omit => ['subjectAltName'],
    ext => [$SCT, 'subjectAltName = critical,DNS:san-crit-empty.test']));
quiet($j, 'nonconformant', 'a critical SAN beside an empty subject');
nonconformant_ok(eval_chain(good_leaf('aia-empty',
    ext => [$SCT, '1.3.6.1.5.5.7.1.1=DER:3000'])),
    qr/^leaf: authorityInfoAccess empty or malformed$/, 'an empty AIA');
$j = eval_chain(good_leaf('aia-ok', ext => [$SCT,
    'authorityInfoAccess = caIssuers;URI:http://ca.test/int.crt']));
quiet($j, 'nonconformant', 'an AIA with an access description');

my $pcint = $pki->ca('pc-int', issuer => $root, subject => '/CN=pc int',
                     ext => ['policyConstraints = requireExplicitPolicy:0']);
nonconformant_ok(eval_chain(good_leaf('under-pc', issuer => $pcint)),
                 qr/^depth 1: policyConstraints not critical$/,
                 'policyConstraints not critical');
$pcint = $pki->ca('pc-crit-int', issuer => $root, subject => '/CN=pc int 2',
    ext => ['policyConstraints = critical,requireExplicitPolicy:0',
            'certificatePolicies = 2.5.29.32.0']);
$j = eval_chain(good_leaf('under-pc-crit', issuer => $pcint,
    ext => [$SCT, 'certificatePolicies = 2.23.140.1.2.1']));
quiet($j, 'nonconformant', 'policyConstraints critical');

# an anchor names itself by key identifier alone (CA/Browser Forum
# 7.1.2.1.3)
my $akiroot = $pki->ca('aki-issuer-root', subject => '/CN=aki issuer root',
                       ext => ['authorityKeyIdentifier = issuer:always']);
my $akileaf = good_leaf('under-aki-issuer-root', issuer => $pki->ca(
    'aki-issuer-int', issuer => $akiroot, subject => '/CN=aki issuer int'));
$j = eval_chain($akileaf, ca_file => $akiroot->{cert});
my $nokid = 'authorityKeyIdentifier without keyIdentifier';
nonconformant_ok($j, qr/^anchor: \Q$nokid\E \(\+1 more\)$/,
                 'anchor AKI by issuer and serial, no key identifier');
my $kidroot = $pki->ca('aki-keyid-root', subject => '/CN=aki keyid root',
                       ext => ['authorityKeyIdentifier = keyid:always']);
$j = eval_chain(good_leaf('under-aki-keyid-root', issuer => $pki->ca(
    'aki-keyid-int', issuer => $kidroot, subject => '/CN=aki keyid int')),
    ca_file => $kidroot->{cert});
quiet($j, 'nonconformant', 'anchor AKI keyIdentifier equal to its SKI');

# ca_leaf: a CA-issued leaf that is a CA

$j = eval_chain(good_leaf('ca-leaf', omit => ['basicConstraints'],
    ext => [$SCT, 'basicConstraints = critical,CA:TRUE']));
fires($j, 'ca_leaf', 'leaf with cA TRUE issued by the intermediate');
quiet($j, 'untrusted_chain', 'a cA TRUE leaf with digitalSignature passes '
      . 'the TLS server purpose');
my $ssca = $pki->leaf('selfsigned-ca', subject => '/CN=selfsigned-ca.test',
                      san => 'DNS:selfsigned-ca.test',
                      omit => ['basicConstraints'],
                      ext => ['basicConstraints = critical,CA:TRUE']);
$j = eval_chain($ssca, ca_file => $ssca->{cert});
quiet($j, 'ca_leaf', 'a self-signed cA TRUE leaf (openssl req -x509) '
      . 'trusted as itself');
quiet($jc, 'ca_leaf', 'clean chain');

# name_constraints: a wildcard over an excluded subtree, which OpenSSL
# compares as text (CVE-2025-61727)

my $ncint = $pki->ca('nc-int', issuer => $root, subject => '/CN=nc int',
    ext => ['nameConstraints = critical,permitted;DNS:nc.test,'
            . 'excluded;DNS:bar.nc.test']);
$j = eval_chain(good_leaf('nc-wild', issuer => $ncint,
                          san => 'DNS:*.nc.test'), sni => 'foo.nc.test');
fires($j, 'name_constraints', '*.nc.test under excluded bar.nc.test');
is(fired($j, 'name_constraints') && fired($j, 'name_constraints')->{detail},
   'leaf *.nc.test, bar.nc.test excluded by depth 1',
   'name_constraints: the detail names both and the CA');
quiet($j, 'untrusted_chain', 'OpenSSL lets *.nc.test through');
$j = eval_chain(good_leaf('nc-wild-deeper', issuer => $ncint,
                          san => 'DNS:*.x.nc.test'), sni => 'a.x.nc.test');
quiet($j, 'name_constraints', '*.x.nc.test: nothing of it is excluded');
$j = eval_chain(good_leaf('nc-plain', issuer => $ncint,
                          san => 'DNS:foo.nc.test'), sni => 'foo.nc.test');
quiet($j, 'name_constraints', 'foo.nc.test within the permitted subtree');
quiet($j, 'untrusted_chain', 'foo.nc.test within the permitted subtree');
quiet($j, 'nonconformant', 'well-formed name constraints');
$j = eval_chain(good_leaf('nc-excluded', issuer => $ncint,
                          san => 'DNS:bar.nc.test'), sni => 'bar.nc.test');
fires($j, 'untrusted_chain', 'bar.nc.test itself: OpenSSL refuses it');
quiet($j, 'name_constraints', 'bar.nc.test: a path error, not ours');

# malformed or misplaced name constraints: nonconformant
$j = eval_chain(good_leaf('nc-in-leaf', ext => [$SCT,
    'nameConstraints = critical,permitted;DNS:nc-in-leaf.test']));
nonconformant_ok($j, qr/^leaf: nameConstraints on a certificate that is not/,
                 'nameConstraints in a leaf');
my $dotint = $pki->ca('nc-dot-int', issuer => $root, subject => '/CN=nc dot',
    ext => ['nameConstraints = critical,permitted;DNS:.dot.test']);
nonconformant_ok(eval_chain(good_leaf('nc-dot', issuer => $dotint,
                                      san => 'DNS:a.dot.test'),
                            sni => 'a.dot.test'),
                 qr/^depth 1: nameConstraints dNSName not a domain name$/,
                 'a dNSName constraint with a leading period');
quiet($jc, 'name_constraints', 'clean chain');

# eku: the TLS server profile's extendedKeyUsage (CA/Browser Forum)

sub eku_ok {
    my ($j, $re, $name) = @_;
    my $h = $j && fired($j, 'eku');

    ok($h && $h->{detail} =~ $re, "eku fires: $name")
        or diag(explain($h ? $h->{detail} : [signal_ids($j)]));
}

eku_ok(eval_chain(good_leaf('eku-crit', omit => ['extendedKeyUsage'],
    ext => [$SCT, 'extendedKeyUsage = critical,serverAuth'])),
    qr/^leaf: extendedKeyUsage critical$/, 'a critical EKU on the leaf');
eku_ok(eval_chain(good_leaf('eku-any', omit => ['extendedKeyUsage'],
    ext => [$SCT, 'extendedKeyUsage = serverAuth,anyExtendedKeyUsage'])),
    qr/^leaf: extendedKeyUsage holds anyExtendedKeyUsage$/,
    'anyExtendedKeyUsage beside serverAuth');
my $ekuroot = $pki->ca('eku-root', subject => '/CN=root with an eku',
                       ext => ['extendedKeyUsage = serverAuth']);
$j = eval_chain(good_leaf('under-eku-root', issuer => $pki->ca('eku-root-int',
    issuer => $ekuroot, subject => '/CN=int of a root with an eku')),
    ca_file => $ekuroot->{cert});
eku_ok($j, qr/^anchor: extendedKeyUsage on a root$/, 'a root with an EKU');
my $ekuint = $pki->ca('eku-int', issuer => $root, subject => '/CN=eku int',
                      ext => ['extendedKeyUsage = serverAuth,clientAuth']);
$j = eval_chain(good_leaf('under-eku-int', issuer => $ekuint));
quiet($j, 'eku', 'an intermediate restricted by an EKU');
quiet($jc, 'eku', 'clean chain: serverAuth, not critical');

# cn_mismatch: the CN is a SAN written another way (CA/Browser Forum
# 7.1.4.3); a CN that is simply another name is left alone

my %cn = (
    'Case.Test'        => ['DNS:case.test', 'case.test',
                           qr/^leaf: CN is a DNS SAN in other letter case$/],
    '127.000.000.001'  => ['IP:127.0.0.1', '127.0.0.1',
                           qr/^leaf: CN is an IP address not written/],
    '0x7F000001'       => ['IP:127.0.0.1', '127.0.0.1', qr/IP address/],
    '2001:DB8::1'      => ['IP:2001:db8::1', '2001:db8::1', qr/IP address/],
    'xn--nxasmq6b.test' => ['DNS:xn--n3h.test', 'xn--n3h.test',
                            qr/^leaf: CN is an A-label no DNS SAN spells$/],
);
my $n = 0;
for my $c (sort keys %cn) {
    my ($san, $sni, $re) = @{ $cn{$c} };
    $j = eval_chain(good_leaf('cn' . $n++, subject => "/CN=$c", san => $san),
                    sni => $sni);
    my $h = $j && fired($j, 'cn_mismatch');
    ok($h && $h->{detail} =~ $re, "cn_mismatch fires: CN $c, SAN $san")
        or diag(explain($h ? $h->{detail} : [signal_ids($j)]));
}
for my $t (['127.0.0.1', 'IP:127.0.0.1', '127.0.0.1', 'the IP SAN as text'],
           ['2001:db8::1', 'IP:2001:db8::1', '2001:db8::1',
            'RFC 5952 text'],
           ['host.test', 'DNS:svc.test', 'svc.test', 'some other name'],
           ['xn--n3h.test', 'DNS:xn--n3h.test', 'xn--n3h.test',
            'the same A-label'],
           ["\xe2\x98\x83.test", 'DNS:xn--n3h.test', 'xn--n3h.test',
            'the U-label of the SAN (display form)'])
{
    my ($c, $san, $sni, $why) = @$t;
    $j = eval_chain(good_leaf('cn' . $n++, subject => "/CN=$c", san => $san),
                    sni => $sni);
    quiet($j, 'cn_mismatch', "CN $c, SAN $san: $why");
}
$j = eval_chain(good_leaf('cn-only', subject => '/CN=Legacy.Test', san => ''),
                sni => 'legacy.test');
quiet($j, 'cn_mismatch', 'no SAN: the CN is the name');

# what points at an attack stays a path error: an EC key with explicit
# curve parameters (CVE-2020-0601)
$j = eval_chain(good_leaf('ec-explicit', key => 'ec-explicit:prime256v1'));
fires($j, 'untrusted_chain', 'leaf key with explicit EC parameters');
quiet($j, 'nonconformant', 'explicit EC parameters are not a profile '
      . 'finding');
quiet($jc, 'nonconformant', 'clean chain');

# hostname_mismatch: RFC 6125 through the SANs

my $names = good_leaf('names', subject => '/CN=cn-only.test',
    san => 'DNS:www.example.test,DNS:*.wild.test,DNS:w*.part.test,'
         . 'DNS:10.9.8.7,IP:127.0.0.1,IP:::1');
my %host = (
    'www.example.test'  => 0,
    'WWW.Example.TEST'  => 0,
    'www.example.test.' => 0,
    'other.test'        => 1,
    'a.wild.test'       => 0,
    'b.a.wild.test'     => 1,
    'wild.test'         => 1,
    'www.part.test'     => 1,
    'cn-only.test'      => 1,
    '127.0.0.1'         => 0,
    '127.0.0.2'         => 1,
    '::1'               => 0,
    '[::1]'             => 0,
    '::2'               => 1,
    '10.9.8.7'          => 1,
);
for my $h (sort keys %host) {
    $j = eval_chain($names, sni => $h);
    my $why = {
        'www.part.test' => ' (no partial wildcard)',
        'b.a.wild.test' => ' (wildcard is one label)',
        'wild.test'     => ' (wildcard needs a label)',
        'cn-only.test'  => ' (no CN fallback with DNS SANs)',
        '10.9.8.7'      => ' (an IP literal needs an IP SAN)',
    }->{$h} // '';
    if ($host{$h}) {
        fires($j, 'hostname_mismatch', "SNI $h$why");
    } else {
        quiet($j, 'hostname_mismatch', "SNI $h");
    }
}
$j = eval_chain($names, sni => undef);
quiet($j, 'hostname_mismatch', 'no SNI given');

my $cnonly = good_leaf('cn-legacy', subject => '/CN=legacy.test', san => undef);
$j = eval_chain($cnonly, sni => 'legacy.test');
quiet($j, 'hostname_mismatch', 'CN used when there is no DNS SAN');
$j = eval_chain($cnonly, sni => 'other.test');
fires($j, 'hostname_mismatch', 'no SAN and CN differs');

# no_san

fires($j, 'no_san', 'leaf without subjectAltName');
$j = eval_chain(good_leaf('email-san', san => 'email:a@email-san.test'),
                sni => undef);
fires($j, 'no_san', 'leaf with only an email SAN');
$j = eval_chain(good_leaf('ip-san', san => 'IP:192.0.2.1'), sni => undef);
quiet($j, 'no_san', 'leaf with only an IP SAN');
quiet($jc, 'no_san', 'clean leaf');

# issued_recently (window 3d)

$j = eval_chain(good_leaf('fresh', not_before => -3600));
fires($j, 'issued_recently', 'issued an hour ago');
$j = eval_chain(good_leaf('fresh4d', not_before => -4 * $DAY));
quiet($j, 'issued_recently', 'issued four days ago');

my $w12h = write_file("$dir/window12h.policy", <<"EOF");
include $policy;
window issued_recently 12h;
EOF
$j = eval_chain(good_leaf('fresh1d', not_before => -$DAY), policy => $w12h);
quiet($j, 'issued_recently', 'issued a day ago, window 12h');
$j = eval_chain(good_leaf('fresh6h', not_before => -6 * 3600),
                policy => $w12h);
fires($j, 'issued_recently', 'issued six hours ago, window 12h');

# short_validity (under 7d), long_validity (over 398d trusted, 825d not)

$j = eval_chain(good_leaf('short', not_before => -4 * $DAY,
                          not_after => 2 * $DAY));
fires($j, 'short_validity', 'lifetime six days');
$j = eval_chain(good_leaf('short8', not_before => -4 * $DAY,
                          not_after => 4 * $DAY));
quiet($j, 'short_validity', 'lifetime eight days');
quiet($jc, 'short_validity', 'lifetime ninety days');

$j = eval_chain(good_leaf('long', not_before => -30 * $DAY,
                          not_after => 470 * $DAY));
fires($j, 'long_validity', 'trusted lifetime 500 days');
$j = eval_chain(good_leaf('long398', not_before => -30 * $DAY,
                          not_after => 368 * $DAY));
quiet($j, 'long_validity', 'trusted lifetime exactly 398 days');
{
    local $ENV{SSL_CERT_FILE} = $other->{cert};
    $j = eval_chain(good_leaf('long-private', not_before => -30 * $DAY,
                              not_after => 470 * $DAY));
    quiet($j, 'long_validity', 'private root, lifetime 500 days (< 825d)');
}
my $ss500 = $pki->leaf('ss500', subject => '/CN=ss500.test',
                       san => 'DNS:ss500.test', not_before => -30 * $DAY,
                       not_after => 470 * $DAY);
$j = eval_chain($ss500);
quiet($j, 'long_validity', 'untrusted lifetime 500 days');
my $c2 = $pki->leaf('c2', subject => '/CN=c2.test', san => 'DNS:c2.test',
                    not_before => -30 * $DAY, not_after => 3650 * $DAY);
$j = eval_chain($c2);
fires($j, 'long_validity', 'self-signed for ten years');

# staging_issuer, free_dv_issuer: the shipped lists

my $staging = $pki->ca('staging-int', issuer => $root,
    subject => q{/C=US/O=(STAGING) Let's Encrypt/CN=(STAGING) Artificial Apricot R3});
$j = eval_chain(good_leaf('staging', issuer => $staging));
fires($j, 'staging_issuer', "Let's Encrypt staging intermediate");
quiet($jc, 'staging_issuer', 'clean chain');

my %freedv = (
    'le'       => q{/C=US/O=Let's Encrypt/CN=R10},
    'zerossl'  => '/C=AT/O=ZeroSSL/CN=ZeroSSL RSA Domain Secure Site CA',
    'buypass'  => '/C=NO/O=Buypass AS-983163327/CN=Buypass Class 2 CA 5',
    'gts'      => '/C=US/O=Google Trust Services/CN=WR1',
);
for my $ca (sort keys %freedv) {
    my $i = $pki->ca("dv-$ca", issuer => $root, subject => $freedv{$ca});
    $j = eval_chain(good_leaf("dv-leaf-$ca", issuer => $i));
    fires($j, 'free_dv_issuer', "issuer $freedv{$ca}");
    quiet($j, 'mimicked_ca', "trusted $ca chain");
}
quiet($jc, 'free_dv_issuer', 'clean chain');

# mimicked_ca: a public CA's name on a key that is not that CA's

my $fake = $pki->ca('fake-digicert', subject =>
    '/C=US/O=DigiCert Inc/CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1');
my $fleaf = good_leaf('fake-dc', issuer => $fake);
$j = eval_chain($fleaf, ca_file => $other->{cert}, no_system => 1);
quiet($j, 'mimicked_ca', 'untrusted chain issued by a "DigiCert" no store '
      . 'knows: an issuer merely missing');
fires($j, 'untrusted_chain', 'that chain is still untrusted');
$j = eval_chain($fake->{cert}, ca_file => $other->{cert}, no_system => 1,
                sni => undef);
fires($j, 'mimicked_ca', 'a self-signed "DigiCert" root no store knows');
$j = eval_chain($fleaf, ca_file => $fake->{cert});
quiet($j, 'mimicked_ca', 'the same chain when its anchor is trusted');
# the name of a root of the system bundle, on another key
my $fakeg2 = $pki->ca('fake-digicert-g2', subject =>
    '/C=US/O=DigiCert Inc/OU=www.digicert.com/CN=DigiCert Global Root G2');
my $fakeint = $pki->ca('fake-digicert-int', issuer => $fakeg2, subject =>
    '/C=US/O=DigiCert Inc/CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1');
SKIP: {
    my $bundle = '/etc/ssl/certs/ca-certificates.crt';
    skip "no system CA bundle $bundle", 2 unless -f $bundle;
    local $ENV{SSL_CERT_FILE} = $bundle;

    $j = eval_chain(good_leaf('fake-dc2', issuer => $fakeint),
                    ca_file => $other->{cert});
    fires($j, 'mimicked_ca', 'intermediate issued by "DigiCert Global Root '
          . 'G2" on another key than the bundle\'s');
    like(fired($j, 'mimicked_ca') && fired($j, 'mimicked_ca')->{detail},
         qr/depth 1 issuer .*another key/,
         'mimicked_ca: the detail says which');
}
quiet($jc, 'mimicked_ca', 'clean chain');
my $lookalike = $pki->leaf('lookalike', subject => '/O=BadSSL/CN=www.badssl.com',
                           san => 'DNS:www.badssl.com',
                           not_before => -30 * $DAY, not_after => 60 * $DAY);
$j = eval_chain($lookalike, sni => 'www.badssl.com');
quiet($j, 'mimicked_ca',
      'self-signed www.badssl.com: a host name is not a CA name');

# default_subject: offensive-tool and placeholder defaults

my %defaults = (
    'cobalt strike' => [ [C => 'Earth'], [ST => 'Cyberspace'],
                         [L => 'Somewhere'], [O => 'cobaltstrike'],
                         [OU => 'AdvancedPenTesting'],
                         [CN => 'Major Cobalt Strike'] ],
    'OpenSSL Widgits' => '/C=AU/ST=Some-State/O=Internet Widgits Pty Ltd',
    'Go Acme Co'    => '/O=Acme Co',
    'empty values'  => [ [C => ''], [ST => ''], [L => ''], [O => ''],
                         [OU => ''], [CN => ''] ],
);
for my $d (sort keys %defaults) {
    (my $n = $d) =~ s/\W+/-/g;
    my $ssd = $pki->leaf("default-$n", subject => $defaults{$d},
                         san => "DNS:default-$n.test",
                         not_before => -30 * $DAY, not_after => 60 * $DAY);
    $j = eval_chain($ssd);
    fires($j, 'default_subject', "self-signed, subject $d");
}
$j = eval_chain(good_leaf('widgits-leaf',
    subject => '/C=AU/ST=Some-State/O=Internet Widgits Pty Ltd/CN=w.test'));
fires($j, 'default_subject', 'trusted leaf with the OpenSSL default O');

# A wholly empty subject is legitimate (RFC 5280: the SAN names the host;
# badssl's no-subject is CA-issued), so it is not a tool default.
$j = eval_chain(good_leaf('empty-dn', subject => '/'));
quiet($j, 'default_subject', 'trusted leaf with an empty subject');
quiet($jc, 'default_subject', 'clean chain');

# no_sct

$j = eval_chain(good_leaf('nosct', ext => []));
fires($j, 'no_sct', 'trusted leaf issued now without SCTs');
ok($j && $j->{public_root}, 'the test root counts as public: JSON says so');
$j = eval_chain(good_leaf('nosct-2017', ext => [],
                          not_before => -(9 * 365 * $DAY),
                          not_after => 60 * $DAY));
quiet($j, 'no_sct', 'trusted leaf issued before May 2018');
$j = eval_chain(good_leaf('nosct-untrusted', ext => []),
                ca_file => $other->{cert}, no_system => 1);
quiet($j, 'no_sct', 'untrusted leaf without SCTs');
quiet($jc, 'no_sct', 'leaf with embedded SCTs');
{
    # the same anchor as a private root (an internal CA): no CT there
    local $ENV{SSL_CERT_FILE} = $other->{cert};
    $j = eval_chain(good_leaf('nosct-private', ext => []));
    ok($j && $j->{trusted}, 'private root: the chain is trusted');
    ok($j && !$j->{public_root}, 'private root: JSON says it is not public');
    quiet($j, 'no_sct', 'trusted leaf of a private root without SCTs');
}

# blocklisted

$j = eval_chain($bl1);
fires($j, 'blocklisted', 'leaf SHA-1 in the SSLBL CSV');
like(fired($j, 'blocklisted') && fired($j, 'blocklisted')->{detail},
     qr/Cobalt Strike C&C/, 'blocklisted detail carries the listing reason');
$j = eval_chain($bl3);
fires($j, 'blocklisted', 'intermediate SHA-1 in the SSLBL CSV');
$j = eval_chain($bl2);
fires($j, 'blocklisted', 'leaf SHA-256 in a digest list');
$j = eval_chain($bl4);
fires($j, 'blocklisted', 'leaf sha256: with colons, upper case');
quiet($jc, 'blocklisted', 'clean chain');

# custom rules, one per field

$j = eval_chain(good_leaf('csub', subject => '/O=Evil Subject Corp/CN=csub.test'));
fires($j, 'custom_subject', 'subject substring');
is(fired($j, 'custom_subject') && fired($j, 'custom_subject')->{weight}, 11,
   'custom rule weight as written');
my $eviss = $pki->ca('evil-issuer', issuer => $root,
                     subject => '/CN=Evil Issuer CA');
$j = eval_chain(good_leaf('ciss', issuer => $eviss));
fires($j, 'custom_issuer', 'issuer regex');
$j = eval_chain(good_leaf('cnoiss', issuer => $pki->ca('not-evil',
    issuer => $root, subject => '/CN=Not Evil Issuer CA')));
quiet($j, 'custom_issuer', 'anchored issuer regex, text later in the DN');
$j = eval_chain(good_leaf('csan', san => 'DNS:csan.test,DNS:Host.EVIL.test'));
fires($j, 'custom_san', 'case-insensitive SAN regex on the second SAN');
$j = eval_chain(good_leaf('cser', serial => '00DEADBEEF01'));
fires($j, 'custom_serial', 'serial substring, upper-case hex');
$j = eval_chain(good_leaf('csni', san => 'DNS:c2-panel.test'),
                sni => 'c2-panel.test');
fires($j, 'custom_sni', 'SNI regex');
is(fired($j, 'custom_sni') && fired($j, 'custom_sni')->{detail},
   'C2-looking name', 'custom rule detail as written');
$j = eval_chain(good_leaf('csni2', san => 'DNS:www.c2-panel.test'),
                sni => 'www.c2-panel.test');
quiet($j, 'custom_sni', 'anchored SNI regex, later in the name');

# weight 0 disables a signal

my $w0 = write_file("$dir/weight0.policy", <<"EOF");
include $policy;
weight self_signed 0;
EOF
$j = eval_chain($ss, policy => $w0);
quiet($j, 'self_signed', 'weight 0');
fires($j, 'untrusted_chain', 'other signals still fire with one weight 0');

# thresholds: score >= tag tags, >= block blocks

my $th = write_file("$dir/thresholds.policy", <<"EOF");
@{[ map { "weight $_ 0;\n" } @builtin ]}
threshold tag 25;
threshold block 50;
rule ten subject score-ten 10;
rule twentyfive subject score-twentyfive 25;
rule forty subject score-forty 40;
EOF
my %verdicts = (
    'score-ten'                     => [10, 'allow'],
    'score-twentyfive'              => [25, 'tag'],
    'score-forty'                   => [40, 'tag'],
    'score-ten score-forty'         => [50, 'block'],
    'score-twentyfive score-forty'  => [65, 'block'],
    'nothing'                       => [0,  'allow'],
);
for my $cn (sort keys %verdicts) {
    (my $n = $cn) =~ s/\W+/-/g;
    $j = eval_chain(good_leaf("th-$n", subject => "/CN=$cn"), policy => $th);
    is($j && $j->{score}, $verdicts{$cn}[0], "score $verdicts{$cn}[0]: $cn");
    is($j && $j->{verdict}, $verdicts{$cn}[1],
       "verdict $verdicts{$cn}[1] at score $verdicts{$cn}[0]");
}

# sni_mismatch: the SNI a client sends inside a CONNECT tunnel is not the
# CONNECT host (domain fronting); the stream module's tests cover the tunnel

my $sm = good_leaf('front');
$j = eval_chain($sm, client_sni => 'hidden.example');
fires($j, 'sni_mismatch', 'client SNI hidden.example, CONNECT host front.test');
$j = eval_chain($sm, client_sni => 'FRONT.test');
quiet($j, 'sni_mismatch', 'client SNI equal but for case');
$j = eval_chain($sm);
quiet($j, 'sni_mismatch', 'no client SNI known');

# one rule for the same name, the stream module's and the signal's: case
# and one trailing dot on either side do not count
$j = eval_chain($sm, client_sni => 'front.test.');
quiet($j, 'sni_mismatch', 'client SNI with a trailing dot');
$j = eval_chain($sm, sni => 'front.test.', client_sni => 'FRONT.TEST');
quiet($j, 'sni_mismatch', 'CONNECT host with a trailing dot');
$j = eval_chain($sm, sni => 'front.test.', client_sni => 'front.test.');
quiet($j, 'sni_mismatch', 'both with a trailing dot');
$j = eval_chain($sm, client_sni => 'front.test..');
fires($j, 'sni_mismatch', 'client SNI with two trailing dots');
$j = eval_chain($sm, client_sni => 'hidden.example.');
fires($j, 'sni_mismatch', 'another name with a trailing dot');

# chain_too_long: more certificates sent than max_chain (default 10); those
# past it are neither looked at nor given to the verification

my $iss = $int;
for my $i (2 .. 9) {
    $iss = $pki->ca("deep$i", issuer => $iss, subject => "/CN=deep int $i");
}
# the leaf and 9 intermediates ($int and deep2 to deep9), then one more
my $deep10 = good_leaf('deep10', issuer => $iss);
my $deep11 = good_leaf('deep11', issuer => $pki->ca('deep10-int',
                           issuer => $iss, subject => '/CN=deep int 10'));

$j = eval_chain($deep10);
quiet($j, 'chain_too_long', 'ten certificates');
quiet($j, 'untrusted_chain', 'ten certificates: verified to the root');
is($j && $j->{chain_len}, 10, 'ten certificates: chain_len 10');

$j = eval_chain($deep11);
fires($j, 'chain_too_long', '11 certificates sent, the first 10 examined');
fires($j, 'untrusted_chain', 'eleven certificates: the 11th is not used');
is($j && $j->{chain_len}, 11, 'eleven certificates: chain_len says 11');

my $mc11 = write_file("$dir/max11.policy",
                      "include $policy;\nmax_chain 11;\n");
$j = eval_chain($deep11, policy => $mc11);
quiet($j, 'chain_too_long', 'eleven certificates, max_chain 11');
quiet($j, 'untrusted_chain', 'eleven certificates, max_chain 11: verified');

my $mc1 = write_file("$dir/max1.policy", "include $policy;\nmax_chain 1;\n");
$j = eval_chain($clean, policy => $mc1);
fires($j, 'chain_too_long', '2 certificates sent, the first 1 examined');
fires($j, 'untrusted_chain', 'max_chain 1: the intermediate is not used');

# a hundred certificates: the chain and 98 more the server adds
my $hundred = "$dir/hundred.pem";
write_file($hundred, read_file($clean->{chain})
                     . read_file($other->{cert}) x 98);
$j = eval_chain($hundred, sni => 'clean.test');
fires($j, 'chain_too_long', '100 certificates sent, the first 10 examined');
quiet($j, 'untrusted_chain', 'a hundred certificates: the path is early');
is($j && $j->{chain_len}, 100, 'a hundred certificates: chain_len 100');
like(fired($j, 'chain_too_long') && fired($j, 'chain_too_long')->{detail}
     // '', qr/^100 certificates sent, the first 10 examined$/,
     'chain_too_long: the detail counts them');

# under the shipped policy it tags on its own
$j = eval_chain($hundred, sni => 'clean.test',
                policy => "$repo/policies/default.policy");
is($j && $j->{verdict}, 'tag', 'default policy: a hundred certificates tag');

# every built-in signal is tested: here, in geoip.t (geo_*), in
# memory.t (the certificate memory's), sct.t (the SCTs') or revocation.t
# (revoked, crl_invalid, ocsp_invalid)
# cert_cloaking in t/unit/eval.c and t/stream_cloak.t (the probed leaf is
# no input the CLI takes); leaked_root in chain.t
# offensive.t (the shapes no CA produces, on offensive tools' defaults)

my $list = cli('signals');
my @all = map { (split /\t/)[0] } split /\n/, $list->{out};
ok(@all >= @builtin, 'certguard signals lists the built-in signals');
my %covered = map { $_ => 1 } @builtin, qw/sni_mismatch geo_country geo_asn/,
    qw/cert_cloaking/,
    qw/first_seen cert_changed issuer_changed cert_moved/,
    qw/invalid_sct unverified_sct/,
    qw/revoked crl_invalid ocsp_invalid/,
    qw/leaked_root/,
    qw/malformed_name impossible_validity bad_version forged_issuer
       issuer_key_reuse/;
is_deeply([ grep { !$covered{$_} } @all ], [],
          'every built-in signal is covered by a test');

done_testing();

###############################################################################
