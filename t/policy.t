#!/usr/bin/perl

# Tests for policy files: every shipped policy lints and behaves as its
# comments say; broken policies give one "file:line: message" error; names,
# includes relative to the including file, lists.

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
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();
my $pdir = policy_dir();

my $pki = Certguard::Certs->new("$dir/pki");
my $ss = $pki->leaf('ss', subject => '/CN=ss.test', san => undef,
                    not_before => -100 * $DAY, not_after => -$DAY);

# every shipped policy lints

my @shipped = glob("$pdir/*.policy");
ok(scalar(grep { m{/default\.policy$} } @shipped), 'default.policy ships');
ok(scalar(grep { m{/strict\.policy$} } @shipped), 'strict.policy ships');
ok(scalar(grep { m{/monitor\.policy$} } @shipped), 'monitor.policy ships');
for my $p (@shipped) {
    my $r = cli('lint', $p);
    is($r->{exit}, 0, "lint $p: exit 0") or diag($r->{err});
    is($r->{err}, '', "lint $p: nothing on stderr");
}
my $r = cli('lint', @shipped);
is($r->{exit}, 0, 'lint all shipped policies at once');

# broken policies: exit 2, one line, "file:line: what was expected"

my @bad = (
    # name, text, line, what the message mentions
    ['missing argument', "name x;\nthreshold tag;\n", 2, qr/threshold/],
    ['unknown signal', "weight no_such_signal 10;\n", 1, qr/no_such_signal/],
    ['weight not a number', "weight self_signed ten;\n", 1, qr/ten/],
    ['weight too large', "weight self_signed 5000;\n", 1, qr/5000/],
    ['unknown statement', "# comment\nfrobnicate on;\n", 2, qr/frobnicate/],
    ['block below tag', "threshold tag 50;\nthreshold block 20;\n",
     qr/[12]/, qr/block|tag/],
    ['missing semicolon', "weight self_signed 10\n", qr/\d+/, qr/;|end/],
    ['unclosed block', "exempt {\n    sni a.test;\n", qr/\d+/, qr/\}|end/],
    ['stray brace', "weight self_signed 10;\n}\n", 2, qr/\}/],
    ['unknown signal in exempt',
     "exempt {\n    sni a.test;\n    signals bogus_id;\n}\n", 3, qr/bogus_id/],
    ['bad CIDR', "exempt {\n    dst 10.0.0.0/33;\n}\n", 2, qr{10\.0\.0\.0/33}],
    ['bad fingerprint', "exempt {\n    fingerprint sha256:XYZ;\n}\n", 2,
     qr/XYZ/],
    ['unknown exempt condition', "exempt {\n    colour red;\n}\n", 2,
     qr/colour/],
    ['unknown list kind', "list nonsense x.list;\n", 1, qr/nonsense/],
    ['missing list file', "list free_dv_issuer missing.list;\n", 1,
     qr/missing\.list/],
    ['rule with a built-in id', "rule self_signed subject x 10;\n", 1,
     qr/self_signed/],
    ['rule id with bad characters', "rule Bad-Id subject x 10;\n", 1,
     qr/Bad-Id/],
    ['rule id too long', 'rule ' . ('a' x 40) . " subject x 10;\n", 1,
     qr/a{20}/],
    ['rule on an unknown field', "rule r1 colour x 10;\n", 1, qr/colour/],
    ['rule with a bad regex', "rule r1 subject \"~(unclosed\" 10;\n", 1,
     qr/unclosed|regex|pattern|paren/i],
    ['bad duration', "window issued_recently 3x;\n", 1, qr/3x/],
    ['window on a signal without one', "window self_signed 3d;\n", 1,
     qr/self_signed/],
    ['bad country', "geo_country 10 XYZ;\n", 1, qr/XYZ/],
    ['bad ASN', "geo_asn 10 ASfoo;\n", 1, qr/ASfoo/],
    ['missing include', "\ninclude missing.policy;\n", 2,
     qr/missing\.policy/],
    ['too many arguments', "\n\n\nweight self_signed 1 2;\n", 4,
     qr/weight|;/],
    ['unterminated quote', "rule r1 subject \"unterminated 10;\n", 1,
     qr/quote|"|end/],
);

my $i = 0;
for my $t (@bad) {
    my ($name, $text, $line, $what) = @$t;
    my $p = write_file("$dir/bad" . $i++ . '.policy', $text);
    my $lre = ref $line ? $line : qr/\Q$line\E/;

    $r = cli('lint', $p);
    is($r->{signal}, 0, "no crash: $name");
    is($r->{exit}, 2, "lint exit 2: $name");
    my @lines = split /\n/, $r->{err};
    is(scalar @lines, 1, "one error line: $name") or diag($r->{err});
    like($r->{err}, qr/^\Q$p\E:$lre: \S/, "error names $p:line: $name");
    like($r->{err}, $what, "error says what is wrong: $name");

    $r = cli('check', '--policy', $p, $ss->{chain});
    is($r->{exit}, 2, "check with the policy exits 2: $name");
    like($r->{err}, qr/^\Q$p\E:$lre: /, "check reports $p:line: $name");
}

# quoting and comments

my $q = write_file("$dir/quoting.policy", <<'EOF');
# a comment; with a semicolon
rule hash_in_quotes subject "a#b" 5;   # a comment after a statement
rule quoted_semicolon subject 'x;y' 5;
rule escaped_quote subject "say \"hi\"" 5;
rule spread
    subject
    needle
    5;
EOF
$r = cli('lint', $q);
is($r->{exit}, 0, 'quotes, comments and multi-line statements lint')
    or diag($r->{err});

# a list with a bad line names the list file

write_file("$dir/bad-digests.txt", "# digests\nnot-a-digest\n");
my $bl = write_file("$dir/badlist.policy", "list blocklist bad-digests.txt;\n");
$r = cli('lint', $bl);
is($r->{exit}, 2, 'a blocklist with a bad line fails lint');
like($r->{err}, qr/bad-digests\.txt:2:/, 'the error names the list file:line');

# includes: relative to the including file, nested, errors in the included
# file name that file

mkdir "$dir/inc";
mkdir "$dir/inc/sub";
write_file("$dir/inc/main.policy", "include sub/inc.policy;\nweight no_san 33;\n");
write_file("$dir/inc/sub/inc.policy",
           "include more.policy;\nweight self_signed 77;\n");
write_file("$dir/inc/sub/more.policy", "name from-more;\nweight expired 55;\n");


$r = check($ss->{chain}, policy => "$dir/inc/main.policy");
is($r->{exit}, 0, 'a policy with nested includes loads') or diag($r->{err});
my $j = $r->{json};
is(fired($j, 'self_signed') && fired($j, 'self_signed')->{weight}, 77,
   'weight from the included file (sub/inc.policy)');
is(fired($j, 'expired') && fired($j, 'expired')->{weight}, 55,
   'weight from the file it includes, relative to sub/');
is(fired($j, 'no_san') && fired($j, 'no_san')->{weight}, 33,
   'weight from the including file');
is($j && $j->{policy}, 'from-more', 'name set in an included file');

write_file("$dir/inc/override.policy", "include sub/inc.policy;\nweight self_signed 5;\n");
$r = check($ss->{chain}, policy => "$dir/inc/override.policy");
is(fired($r->{json}, 'self_signed') && fired($r->{json}, 'self_signed')->{weight},
   5, 'a later weight overrides an included one');

write_file("$dir/inc/sub/broken.policy", "# ok\n\nweight nope 1;\n");
write_file("$dir/inc/usesbroken.policy", "name x;\ninclude sub/broken.policy;\n");
$r = cli('lint', "$dir/inc/usesbroken.policy");
is($r->{exit}, 2, 'an error in an included file fails lint');
like($r->{err}, qr/^\Q$dir\/inc\/sub\/broken.policy\E:3: /,
     'the error names the included file and its line');

write_file("$dir/inc/loop-a.policy", "include loop-b.policy;\n");
write_file("$dir/inc/loop-b.policy", "include loop-a.policy;\n");
$r = cli('lint', "$dir/inc/loop-a.policy");
is($r->{signal}, 0, 'an include loop does not crash');
is($r->{exit}, 2, 'an include loop fails lint');
is(scalar(split /\n/, $r->{err}), 1, 'an include loop: one error line');
like($r->{err}, qr/loop-[ab]\.policy:1: /, 'an include loop names file:line');

# name defaults to the file stem

write_file("$dir/my-rules.policy", "weight no_san 10;\n");
$r = check($ss->{chain}, policy => "$dir/my-rules.policy");
is($r->{json} && $r->{json}{policy}, 'my-rules', 'name defaults to the file stem');

# the shipped policies do what their comments say

my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $int = $pki->ca('int', issuer => $root, subject => '/CN=certguard test int');
my $le = $pki->ca('le', issuer => $root, subject => q{/C=US/O=Let's Encrypt/CN=R10});
my $corp = $pki->ca('corp', subject => '/CN=Example Corp Internal CA');

my %c = (
    clean => $pki->leaf('clean', issuer => $int, subject => '/CN=clean.test',
                        san => 'DNS:clean.test', not_before => -30 * $DAY,
                        not_after => 60 * $DAY, ext => [$SCT]),
    'self-signed' => $pki->leaf('selfsigned', subject => '/CN=selfsigned.test',
                        san => 'DNS:selfsigned.test', not_before => -30 * $DAY,
                        not_after => 60 * $DAY),
    'cobalt strike' => $pki->leaf('cobaltstrike', subject => [
                        [C => 'Earth'], [ST => 'Cyberspace'],
                        [L => 'Somewhere'], [O => 'cobaltstrike'],
                        [OU => 'AdvancedPenTesting'],
                        [CN => 'Major Cobalt Strike']],
                        san => 'DNS:cobaltstrike.test',
                        not_before => -30 * $DAY, not_after => 3650 * $DAY),
    'fresh free DV' => $pki->leaf('freshdv', issuer => $le,
                        subject => '/CN=freshdv.test', san => 'DNS:freshdv.test',
                        not_before => -3600, not_after => 90 * $DAY,
                        ext => [$SCT]),
    'internal CA' => $pki->leaf('internal', issuer => $corp,
                        subject => '/CN=internal.test', san => 'DNS:internal.test',
                        not_before => -30 * $DAY, not_after => 60 * $DAY),
    'expired' => $pki->leaf('expired', issuer => $int, subject => '/CN=expired.test',
                        san => 'DNS:expired.test', not_before => -90 * $DAY,
                        not_after => -$DAY, ext => [$SCT]),
    'blocklisted' => $pki->leaf('listed', issuer => $int, subject => '/CN=listed.test',
                        san => 'DNS:listed.test', not_before => -30 * $DAY,
                        not_after => 60 * $DAY, ext => [$SCT]),
);

write_file("$dir/sslbl.csv", "# Listingdate,SHA1,Listingreason\n"
    . "2026-11-01 00:00:00,$c{blocklisted}{sha1},Test C&C\n");

my %want = (
    clean           => 'allow',
    'self-signed'   => 'block',
    'cobalt strike' => 'block',
    'fresh free DV' => 'allow',
    'internal CA'   => 'tag',
    'expired'       => 'tag',
    'blocklisted'   => 'block',
);
my %rank = (allow => 0, tag => 1, block => 2);

my %verdict;
for my $name (qw/default strict monitor/) {
    my $p = write_file("$dir/shipped-$name.policy",
                       "include $pdir/$name.policy;\n"
                       . "list blocklist $dir/sslbl.csv;\n");
    for my $k (sort keys %c) {
        $r = check($c{$k}{chain}, policy => $p, ca_file => $root->{cert},
                   sni => "$c{$k}{name}.test");
        $verdict{$name}{$k} = $r->{json} ? $r->{json}{verdict} : 'none';
    }
}

for my $k (sort keys %want) {
    is($verdict{default}{$k}, $want{$k}, "default.policy: $k => $want{$k}");
}
$r = check($c{clean}{chain}, policy => "$pdir/default.policy",
           ca_file => $root->{cert}, sni => 'clean.test');
is($r->{json} && $r->{json}{score}, 0, 'default.policy: clean chain scores 0');

for my $k (sort keys %c) {
    ok(($rank{ $verdict{strict}{$k} } // -1)
           >= ($rank{ $verdict{default}{$k} } // 9),
       "strict.policy at least as strict as default: $k"
       . " ($verdict{strict}{$k} vs $verdict{default}{$k})");
    isnt($verdict{monitor}{$k}, 'block', "monitor.policy never blocks: $k");
}
is($verdict{strict}{'fresh free DV'}, 'tag',
   'strict.policy tags a fresh free DV certificate');
is($verdict{monitor}{'cobalt strike'}, 'tag',
   'monitor.policy tags what default blocks');

# a UTF-8 byte-order mark (Windows editors write one) neither breaks a
# policy nor silently disables the first entry of a list

my $cs = $pki->leaf('csbom', subject => '/CN=Major Cobalt Strike/O=x',
                    san => 'DNS:csbom.test');
write_file("$dir/bom.list", "\xef\xbb\xbfCN=Major Cobalt Strike\n");
write_file("$dir/bom.policy", "\xef\xbb\xbfname bom;\n"
           . "weight default_subject 80;\n"
           . "list default_subject $dir/bom.list;\n");
$r = cli('lint', "$dir/bom.policy");
is($r->{exit}, 0, 'a policy starting with a BOM lints') or diag($r->{err});
$r = check($cs->{chain}, policy => "$dir/bom.policy", sni => 'csbom.test');
ok($r->{json} && grep({ $_ eq 'default_subject' } signal_ids($r->{json})),
   'the first pattern of a list starting with a BOM still matches');
is($r->{json} && $r->{json}{policy}, 'bom', 'the first statement after a BOM counts');

done_testing();

###############################################################################
