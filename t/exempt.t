#!/usr/bin/perl

# Tests for policy exemptions through the certguard CLI: each condition
# (sni forms, issuer, subject, fingerprint, issuer_spki, issuer_fingerprint,
# dst CIDR), conditions combined, signal subsets with built-in and custom
# ids; an exempt signal is reported but counts 0.  A rogue CA with the DN
# of a pinned one does not get its exemption; lint warns about issuer
# exemptions without a pin; certguard pin prints the pins.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Digest::SHA qw(sha256_hex);

###############################################################################

need_cli();

my $DAY = 86400;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $corp = $pki->ca('corp-ca', subject => '/O=Example Corp/CN=Example Corp Internal CA');

# Untrusted leaves: signed by an internal CA the bundle does not know, or
# self-signed.  Both fire untrusted_chain; self-signed ones self_signed too.
sub internal {
    my ($name, %o) = @_;

    return $pki->leaf($name, issuer => $corp, subject => "/CN=$name",
                      san => "DNS:$name", not_before => -30 * $DAY,
                      not_after => 60 * $DAY, %o);
}

sub selfsigned {
    my ($name, %o) = @_;

    return $pki->leaf($name, subject => "/CN=$name", san => "DNS:$name",
                      not_before => -30 * $DAY, not_after => 60 * $DAY, %o);
}

my $base = <<'EOF';
threshold tag 30;
threshold block 70;
weight untrusted_chain 30;
weight self_signed 50;
weight no_sct 0;
weight long_validity 0;
weight issued_recently 0;
rule marked subject "~marked" 20;
EOF

my $n = 0;

# Evaluates $cert under $base plus $exempt; returns the decoded result.
sub run_exempt {
    my ($exempt, $cert, %o) = @_;
    my ($p, $r);

    $p = write_file("$dir/p" . $n++ . '.policy', $base . $exempt);
    $r = check($cert->{chain}, policy => $p,
               ca_file => $o{ca_file} // $root->{cert},
               sni => $o{sni} // $cert->{name}, at => $pki->now,
               $o{dst} ? (dst => $o{dst}) : ());
    diag("$r->{cmd}: exit $r->{exit}: $r->{err}") if $r->{exit} != 0;

    return $r->{json};
}

sub is_exempt {
    my ($j, $id, $name) = @_;
    my $h = fired($j, $id);

    ok($h && $h->{exempt} && $h->{weight} == 0,
       "$id reported exempt with weight 0: $name")
        or diag(explain($j ? $j->{signals} : 'no result'));
}

sub counts {
    my ($j, $id, $name) = @_;
    my $h = fired($j, $id);

    ok($h && !$h->{exempt} && $h->{weight} > 0, "$id counts: $name")
        or diag(explain($j ? $j->{signals} : 'no result'));
}

###############################################################################

my $host = internal('app.corp.test');
my $ss = selfsigned('dev.corp.test');

my $j = run_exempt('', $host);
counts($j, 'untrusted_chain', 'no exemption');
is($j && $j->{score}, 30, 'no exemption: score 30');
is($j && $j->{verdict}, 'tag', 'no exemption: tag');

# sni: exact, *.suffix (below only), .suffix (itself and below), regex

my @sni = (
    ['app.corp.test',   'app.corp.test',     1],
    ['app.corp.test',   'other.corp.test',   0],
    ['*.corp.test',     'app.corp.test',     1],
    ['*.corp.test',     'corp.test',         0],
    ['*.corp.test',     'a.b.corp.test',     1],
    ['*.corp.test',     'app.corp.test.evil.test', 0],
    ['.corp.test',      'corp.test',         1],
    ['.corp.test',      'app.corp.test',     1],
    ['.corp.test',      'notcorp.test',      0],
    ['~^app[0-9]*\.corp\.test$', 'app7.corp.test', 1],
    ['~^app[0-9]*\.corp\.test$', 'app7.corp.test.evil', 0],
);
for my $t (@sni) {
    my ($pat, $name, $hit) = @$t;
    my $cert = internal($name . '-' . $n, san => "DNS:$name");
    $j = run_exempt(qq{exempt { sni "$pat"; }\n}, $cert, sni => $name);
    if ($hit) {
        is_exempt($j, 'untrusted_chain', "sni $pat matches $name");
        is($j && $j->{score}, 0, "sni $pat matches $name: score 0");
        is($j && $j->{verdict}, 'allow', "sni $pat matches $name: allow");
    } else {
        counts($j, 'untrusted_chain', "sni $pat does not match $name");
    }
}
$j = run_exempt(qq{exempt { sni app.corp.test other.test; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'sni values are alternatives');

# issuer and subject patterns

$j = run_exempt(qq{exempt { issuer "CN=Example Corp Internal CA"; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'issuer substring');
$j = run_exempt(qq{exempt { issuer "CN=Other Internal CA"; }\n}, $host);
counts($j, 'untrusted_chain', 'another issuer');
$j = run_exempt(qq{exempt { issuer "~^CN=Example Corp"; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'issuer regex');

my $build = selfsigned('build-42.ci.test');
$j = run_exempt(qq{exempt { subject "~*^cn=BUILD-"; }\n}, $build);
is_exempt($j, 'self_signed', 'subject case-insensitive regex');
is_exempt($j, 'untrusted_chain', 'subject regex, all signals');
$j = run_exempt(qq{exempt { subject "~^cn=BUILD-"; }\n}, $build);
counts($j, 'self_signed', 'case-sensitive regex does not match');

# fingerprint: leaf or any chain certificate, sha256 or sha1, any case

my $fp = uc $host->{sha256};
$j = run_exempt(qq{exempt { fingerprint sha256:$fp; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'leaf sha256 fingerprint, upper case');
my $colons = join ':', unpack '(A2)*', $host->{sha256};
$j = run_exempt(qq{exempt { fingerprint sha256:$colons; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'leaf sha256 fingerprint with colons');
$j = run_exempt(qq{exempt { fingerprint sha1:$host->{sha1}; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'leaf sha1 fingerprint');
$j = run_exempt(qq{exempt { fingerprint sha256:$ss->{sha256}; }\n}, $host);
counts($j, 'untrusted_chain', 'another certificate\'s fingerprint');

my $ica = $pki->ca('corp-int', issuer => $corp, subject => '/CN=Corp Issuing CA');
my $under = $pki->leaf('svc.corp.test', issuer => $ica,
                       subject => '/CN=svc.corp.test', san => 'DNS:svc.corp.test',
                       not_before => -30 * $DAY, not_after => 60 * $DAY);
$j = run_exempt(qq{exempt { fingerprint sha256:$ica->{sha256}; }\n}, $under);
is_exempt($j, 'untrusted_chain', 'intermediate fingerprint (shared LB cert)');

# dst CIDR, IPv4 and IPv6, with and without a port; no --dst never matches

my $dst = qq{exempt { dst 10.0.0.0/8 fd00::/8; }\n};
for my $d ('10.1.2.3', '10.1.2.3:443', 'fd00::1', '[fd00::1]:443') {
    $j = run_exempt($dst, $host, dst => $d);
    is_exempt($j, 'untrusted_chain', "dst $d inside the CIDRs");
}
for my $d ('11.1.2.3', '192.0.2.1:443', 'fe80::1', '2001:db8::1') {
    $j = run_exempt($dst, $host, dst => $d);
    counts($j, 'untrusted_chain', "dst $d outside the CIDRs");
}
$j = run_exempt($dst, $host);
counts($j, 'untrusted_chain', 'no destination given');
$j = run_exempt(qq{exempt { dst 192.0.2.7/32; }\n}, $host, dst => '192.0.2.7');
is_exempt($j, 'untrusted_chain', 'a /32');

# every condition must match

my $and = qq{exempt { sni .corp.test; dst 10.0.0.0/8; }\n};
$j = run_exempt($and, $host, dst => '10.0.0.1');
is_exempt($j, 'untrusted_chain', 'sni and dst both match');
$j = run_exempt($and, $host, dst => '192.0.2.1');
counts($j, 'untrusted_chain', 'sni matches, dst does not');
my $elsewhere = internal('app.example.test');
$j = run_exempt($and, $elsewhere, dst => '10.0.0.1');
counts($j, 'untrusted_chain', 'dst matches, sni does not');

# signals: a subset, built-in and custom ids

$j = run_exempt(qq{exempt { sni dev.corp.test; signals self_signed; }\n}, $ss);
is_exempt($j, 'self_signed', 'named in signals');
counts($j, 'untrusted_chain', 'not named in signals');
is($j && $j->{score}, 30, 'only the named signal stops counting');

$j = run_exempt(qq{exempt { sni dev.corp.test; signals self_signed untrusted_chain; reason "dev boxes"; }\n}, $ss);
is_exempt($j, 'self_signed', 'first of two named signals');
is_exempt($j, 'untrusted_chain', 'second of two named signals');
is($j && $j->{verdict}, 'allow', 'both exempt: allow');

my $marked = internal('marked.corp.test');
$j = run_exempt(qq{exempt { sni marked.corp.test; signals marked; }\n}, $marked);
is_exempt($j, 'marked', 'custom rule id in signals');
counts($j, 'untrusted_chain', 'built-in signal beside an exempt rule');
$j = run_exempt(qq{exempt { sni marked.corp.test; }\n}, $marked);
is_exempt($j, 'marked', 'custom rule, all signals');

# two exemptions: each applies on its own

$j = run_exempt(qq{exempt { sni nothing.test; }\nexempt { issuer "Example Corp"; signals untrusted_chain; }\n}, $host);
is_exempt($j, 'untrusted_chain', 'second of two exempt blocks');

# issuer_spki and issuer_fingerprint: the CA certificate whose key signed
# the leaf, sent or an anchor; a CA that only copies its name gets nothing

# SHA-256 of the DER SubjectPublicKeyInfo, computed by openssl alone
sub spki {
    my ($cert) = @_;
    my $pub = run('openssl', 'x509', '-in', $cert->{cert}, '-pubkey',
                  '-noout');
    my $der = run({ stdin => $pub->{out} }, 'openssl', 'pkey', '-pubin',
                  '-outform', 'DER');
    die "openssl pkey: $der->{err}" if $der->{exit} || $der->{out} eq '';
    return sha256_hex($der->{out});
}

my $rogue_root = $pki->ca('rogue-root', subject => '/CN=Rogue Root');
my $rogue = $pki->ca('rogue-int', issuer => $rogue_root,
                     subject => '/CN=Corp Issuing CA');
my $rogue_leaf = $pki->leaf('svc-rogue', issuer => $rogue,
                            subject => '/CN=svc.corp.test',
                            san => 'DNS:svc.corp.test',
                            not_before => -30 * $DAY, not_after => 60 * $DAY);
# the real CA's certificate sent beside a leaf the rogue key signed
my $forged = { name => 'svc.corp.test',
               chain => $pki->bundle('forged', $rogue_leaf, $ica) };
my $ica_spki = spki($ica);
isnt($ica_spki, spki($rogue), 'the rogue CA has a key of its own');

$j = run_exempt(qq{exempt { issuer "CN=Corp Issuing CA"; }\n}, $rogue_leaf,
                sni => 'svc.corp.test');
is_exempt($j, 'untrusted_chain', 'issuer by DN: the rogue CA passes '
          . '(why the pins exist)');

for my $pin ("issuer_spki $ica_spki", "issuer_spki sha256:" . uc($ica_spki),
             "issuer_fingerprint $ica->{sha256}",
             "issuer_fingerprint sha256:"
             . join(':', unpack '(A2)*', $ica->{sha256})) {
    my $ex = qq{exempt { $pin; }\n};
    $j = run_exempt($ex, $under, sni => 'svc.corp.test');
    is_exempt($j, 'untrusted_chain', "$pin: the pinned CA's leaf");
    is($j && $j->{verdict}, 'allow', "$pin: the pinned CA's leaf is allowed");
    $j = run_exempt($ex, $rogue_leaf, sni => 'svc.corp.test');
    counts($j, 'untrusted_chain', "$pin: a rogue CA with the same DN");
    $j = run_exempt($ex, $forged, sni => 'svc.corp.test');
    counts($j, 'untrusted_chain', "$pin: the pinned CA's certificate sent "
           . 'with a leaf it did not sign');
}
$j = run_exempt(qq{exempt { issuer "CN=Corp Issuing CA"; issuer_spki $ica_spki; }\n},
                $rogue_leaf, sni => 'svc.corp.test');
counts($j, 'untrusted_chain', 'issuer DN and pin: the pin decides');
my $corp_spki = spki($corp);
$j = run_exempt(qq{exempt { issuer_spki $corp_spki; }\n}, $under,
                sni => 'svc.corp.test');
counts($j, 'untrusted_chain', 'issuer_spki of the root above the issuing CA '
       . 'does not match');
$j = run_exempt(qq{exempt { issuer_spki $ica_spki; signals untrusted_chain; }\n},
                $under, sni => 'svc.corp.test');
is_exempt($j, 'untrusted_chain', 'issuer_spki with a signal subset');

# the issuing CA as a trust anchor, not sent: found in the store
my $marked_corp = internal('marked-anchor.corp.test');
my $anchors = $pki->bundle('root-and-corp', $root, $corp);
my $corp_pin = qq{exempt { issuer_spki $corp_spki; }\n};
$j = run_exempt($corp_pin, $marked_corp, ca_file => $anchors);
ok($j && $j->{trusted}, 'leaf of an anchor: trusted');
is_exempt($j, 'marked', 'issuer_spki of an anchor that was not sent');
$j = run_exempt(qq{exempt { issuer_fingerprint $corp->{sha256}; }\n},
                $marked_corp, ca_file => $anchors);
is_exempt($j, 'marked', 'issuer_fingerprint of an anchor that was not sent');
$j = run_exempt($corp_pin, $marked_corp);
counts($j, 'marked', 'issuing CA neither sent nor an anchor: no match');

# pins are SHA-256 and nothing else
for my $bad ('sha1:' . $ica->{sha1}, substr($ica_spki, 2), $ica_spki . '00',
             'zz' . substr($ica_spki, 2)) {
    my $p = write_file("$dir/badpin" . $n++ . '.policy',
                       "exempt {\n    issuer_spki $bad;\n}\n");
    my $r = cli('lint', $p);
    is($r->{exit}, 2, "lint refuses issuer_spki $bad");
    like($r->{err}, qr/\Q$p\E:2: invalid issuer_spki .*SHA-256/,
         "lint: file:line and what was expected ($bad)");
}

# lint: an issuer by DN alone is a warning, exit status 0

my %lint = (
    'issuer alone'       => [qq{exempt {\n    sni .corp.test;\n    issuer "CN=Corp Issuing CA";\n}\n}, 3],
    'issuer and spki'    => [qq{exempt {\n    issuer "CN=Corp Issuing CA";\n    issuer_spki $ica_spki;\n}\n}, 0],
    'issuer and cert fp' => [qq{exempt {\n    issuer "CN=Corp Issuing CA";\n    fingerprint $ica->{sha256};\n}\n}, 0],
    'no issuer'          => [qq{exempt {\n    sni .corp.test;\n    dst 10.0.0.0/8;\n}\n}, 0],
);
for my $case (sort keys %lint) {
    my ($text, $line) = @{ $lint{$case} };
    (my $f = $case) =~ s/\W+/-/g;
    my $p = write_file("$dir/lint-$f.policy", $base . $text);
    my $at = $line ? $line + ($base =~ tr/\n//) : 0;
    my $r = cli('lint', $p);
    is($r->{exit}, 0, "lint $case: exit 0");
    is($r->{out}, "$p: ok\n", "lint $case: FILE: ok");
    if ($line) {
        like($r->{err}, qr/\A\Q$p\E:$at: warning: .*issuer_spki/,
             "lint $case: a warning naming the issuer line and the pins");
        is(scalar(split /\n/, $r->{err}), 1, "lint $case: one warning");
    } else {
        is($r->{err}, '', "lint $case: no warning");
    }
}
my $r = cli('lint', policy_dir() . '/default.policy',
            policy_dir() . '/strict.policy', policy_dir() . '/monitor.policy');
is($r->{err}, '', 'the shipped policies lint without warnings');

# certguard pin: the conditions above, ready to paste

$r = cli('pin', $ica->{cert});
is($r->{exit}, 0, 'pin: exit 0');
is($r->{out}, "issuer_spki $ica_spki;  # CN=Corp Issuing CA\n",
   'pin: issuer_spki line with the subject as a comment');
$r = cli('pin', '--fingerprint', $ica->{cert}, $corp->{cert});
is($r->{out}, "issuer_fingerprint $ica->{sha256};  # CN=Corp Issuing CA\n"
   . "issuer_fingerprint $corp->{sha256};  "
   . "# CN=Example Corp Internal CA,O=Example Corp\n",
   'pin --fingerprint: one line per file, in order');
$r = cli('pin', $pki->bundle('two-cas', $ica, $rogue));
is(scalar(split /\n/, $r->{out}), 2, 'pin: one line per certificate of a '
   . 'bundle');
my $pinned = write_file("$dir/pinned.policy", $base . "exempt {\n    "
                        . (cli('pin', $ica->{cert})->{out} =~ s/\n\z//r)
                        . "\n}\n");
$j = run_exempt(read_file($pinned) =~ s/\A\Q$base\E//r, $under,
                sni => 'svc.corp.test');
is_exempt($j, 'untrusted_chain', 'pin output pasted into an exempt works');
$r = cli('pin', "$dir/missing.pem");
is($r->{exit}, 2, 'pin: a missing file exits 2');
like($r->{err}, qr/missing\.pem/, 'pin: stderr names the file');
$r = cli('pin');
is($r->{exit}, 2, 'pin without a file exits 2');

# exempt signals are still shown in the CEF record's signal list

my $p = write_file("$dir/cef.policy", $base . qq{exempt { sni dev.corp.test; signals self_signed; }\n});
$r = check($ss->{chain}, policy => $p, ca_file => $root->{cert},
           sni => 'dev.corp.test', format => 'cef');
like($r->{out}, qr/untrusted_chain/, 'CEF names the counting signal');

done_testing();

###############################################################################
