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
    default_subject no_sct blocklisted/;

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

# mimicked_ca: an untrusted chain naming a public CA

my $fake = $pki->ca('fake-digicert', subject =>
    '/C=US/O=DigiCert Inc/CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1');
my $fleaf = good_leaf('fake-dc', issuer => $fake);
$j = eval_chain($fleaf, ca_file => $other->{cert}, no_system => 1);
fires($j, 'mimicked_ca', 'untrusted chain issued by "DigiCert"');
$j = eval_chain($fleaf, ca_file => $fake->{cert});
quiet($j, 'mimicked_ca', 'the same chain when its anchor is trusted');
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

# every built-in signal is tested: here, in geoip.t (geo_*), or in
# t/unit/eval.c and t/stream_cloak.t (cert_cloaking: the probed leaf is
# no input the CLI takes)

my $list = cli('signals');
my @all = map { (split /\t/)[0] } split /\n/, $list->{out};
ok(@all >= @builtin, 'certguard signals lists the built-in signals');
my %covered = map { $_ => 1 } @builtin, qw/sni_mismatch cert_cloaking
                                         geo_country geo_asn/;
is_deeply([ grep { !$covered{$_} } @all ], [],
          'every built-in signal is covered by a test');

done_testing();

###############################################################################
