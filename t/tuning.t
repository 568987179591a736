#!/usr/bin/perl

# The tuning loop on the command line: check replays a capture directory
# (name, destination, client SNI and time from each sidecar, options
# override them); diff prints one line per changed verdict and "N of M
# verdicts change"; report writes one self-contained HTML page, which
# headless Chromium renders (a screenshot) and whose DOM holds the numbers
# of the input.

use warnings;
use strict;

use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use MIME::Base64 qw(decode_base64);

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;

###############################################################################

need_cli();

my $DAY = 86400;
my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $int = $pki->ca('int', issuer => $root, subject => '/CN=certguard test int');
my %leaf = (
    one => $pki->good_leaf('one', issuer => $int),
    two => $pki->good_leaf('two', issuer => $int),
    ss  => $pki->leaf('selfsigned', subject => '/CN=selfsigned.test',
                      san => 'DNS:selfsigned.test'),
    evil => $pki->leaf('evil', subject => Certguard::Certs::subj(CN => '<i>evil</i>'),
                       san => 'DNS:evil.test'),
);

my $now = time;
my $expired_at = $pki->now + 200 * $DAY;    # after every leaf's notAfter

my $default = policy_dir() . '/default.policy';

write_file("$dir/lenient.policy", <<"POLICY");
include $default;
name lenient;
weight hostname_mismatch 0;
POLICY

write_file("$dir/candidate.policy", <<"POLICY");
include $default;
name candidate;
weight hostname_mismatch 80;
POLICY

my ($lenient, $candidate) = ("$dir/lenient.policy", "$dir/candidate.policy");

sub chain_sha {
    my ($pem) = @_;

    return sha256_hex(join '', map { decode_base64($_) }
                      $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END/sg);
}

# A capture directory as certguard_capture writes it.
my $cap = "$dir/capture";
mkdir $cap;

my %sha;

sub capture {
    my ($key, %side) = @_;
    my $pem = read_file($leaf{$key}{chain});
    my $sha = chain_sha($pem);

    $sha{$key} = $sha;
    write_file("$cap/$sha.pem", $pem);
    write_file("$cap/$sha.json", encode_json({
        sha256 => $sha, client_sni => undef, dst_addr => '192.0.2.10',
        dst_port => 443, first_seen => $now - 3600, last_seen => $now,
        count => 1, verdict => 'allow', policy => 'default', %side,
    }) . "\n");

    return "$cap/$sha.pem";
}

my %file = (
    one  => capture('one', name => 'one.test', count => 7),
    # the proxy saw two's chain for another name
    two  => capture('two', name => 'other.test', dst_addr => '2001:db8::7',
                    dst_port => 8443, count => 2),
    ss   => capture('ss', name => 'selfsigned.test', verdict => 'block',
                    count => 3),
    evil => capture('evil', name => '<img src=x onerror=alert(1)>.test',
                    verdict => 'block', count => 1),
);
my @order = sort { $file{$a} cmp $file{$b} } keys %file;

sub by_name {
    my ($out) = @_;
    my %by;

    for (split /\n/, $out) {
        my $j = eval { decode_json($_) } or next;
        for my $k (keys %file) {
            $by{$k} = $j if ($j->{file} // '') eq $file{$k};
        }
    }

    return %by;
}

my @ca = ('--ca-file', $root->{cert});

###############################################################################

# check replays the directory: one line per chain, in name order

my $r = cli('check', '--policy', $default, @ca, $cap);
is($r->{exit}, 0, 'check DIR: exit 0') or diag($r->{err});
is($r->{err}, '', 'check DIR: nothing on stderr');
my @lines = map { decode_json($_) } split /\n/, $r->{out};
is(scalar @lines, 4, 'check DIR: one line per chain');
is_deeply([ map { $_->{file} } @lines ], [ map { $file{$_} } @order ],
          'check DIR: files in name order');

my %by = by_name($r->{out});
is($by{one}{name}, 'one.test', 'name from the sidecar');
is($by{one}{verdict}, 'allow', 'one: allowed');
is($by{two}{name}, 'other.test', 'two: the name the proxy checked');
ok(fired($by{two}, 'hostname_mismatch'), 'two: hostname_mismatch fires');
ok(!fired($by{one}, 'expired'), 'time of the sidecar: not expired');
is($by{ss}{verdict}, 'block', 'self-signed: block, as the sidecar says');

# the shell's DIR/* names each chain twice (json, pem): scored once

$r = cli('check', '--policy', $default, @ca, sort glob("$cap/*"));
is($r->{exit}, 0, 'check DIR/*: exit 0') or diag($r->{err});
is(scalar(() = $r->{out} =~ /\n/g), 4, 'check DIR/*: each chain once');

# a sidecar names its chain

$r = cli('check', '--policy', $default, @ca,
         $file{two} =~ s/\.pem$/.json/r);
is($r->{exit}, 0, 'check x.json: exit 0');
is(eval { decode_json($r->{out}) }->{name}, 'other.test',
   'check x.json: scores x.pem with its sidecar');

# options override the sidecar

$r = cli('check', '--policy', $default, @ca, '--sni', 'two.test', $cap);
%by = by_name($r->{out});
is($by{two}{name}, 'two.test', '--sni overrides the sidecar');
ok(!fired($by{two}, 'hostname_mismatch'), '--sni: no mismatch for two');
is($by{one}{name}, 'two.test', '--sni applies to every chain');

# the time: the sidecar's last_seen, unless --at

write_file($file{one} =~ s/\.pem$/.json/r, encode_json({
    name => 'one.test', last_seen => $expired_at, count => 1,
    verdict => 'allow', policy => 'default' }));
$r = cli('check', '--policy', $default, @ca, $file{one});
ok(fired(eval { decode_json($r->{out}) }, 'expired'),
   'last_seen is the time scored at: expired then');
$r = cli('check', '--policy', $default, @ca, '--at', $now, $file{one});
ok(!fired(eval { decode_json($r->{out}) }, 'expired'), '--at overrides it');

# the destination and the client SNI, as the CEF record shows them

write_file($file{one} =~ s/\.pem$/.json/r, encode_json({
    name => 'one.test', client_sni => 'evil.test', dst_addr => '192.0.2.10',
    dst_port => 8443, last_seen => $now, count => 7, verdict => 'tag',
    policy => 'default' }));
$r = cli('check', '--policy', $default, @ca, '--format', 'cef', $file{one});
like($r->{out}, qr/ dst=192\.0\.2\.10 dpt=8443 /, 'destination from the sidecar');
like($r->{out}, qr/sni_mismatch/, 'client SNI from the sidecar');
$r = cli('check', '--policy', $default, @ca, '--format', 'cef',
         '--dst', '198.51.100.1:443', '--client-sni', 'one.test', $file{one});
like($r->{out}, qr/ dst=198\.51\.100\.1 dpt=443 /, '--dst overrides it');
unlike($r->{out}, qr/sni_mismatch/, '--client-sni overrides it');

# a broken sidecar: one line naming it, exit 2, the others still scored

my $broken = "$dir/broken";
mkdir $broken;
copy($file{ss}, "$broken/a.pem");
write_file("$broken/a.json", '{"name": ');
copy($file{two}, "$broken/b.pem");
$r = cli('check', '--policy', $default, @ca, $broken);
is($r->{exit}, 2, 'broken sidecar: exit 2');
like($r->{err}, qr{\A[^\n]*broken/a\.json: sidecar at byte \d+: [^\n]+\n\z},
     'broken sidecar: one stderr line naming it');
is(scalar(() = $r->{out} =~ /\n/g), 1, 'broken sidecar: the other chain scored');

mkdir "$dir/empty";
$r = cli('check', '--policy', $default, "$dir/empty");
is($r->{exit}, 2, 'empty directory: exit 2');
like($r->{err}, qr/empty: no \.pem files$/m, 'empty directory: said so');

###############################################################################

# diff: the exact line shapes

$r = cli('diff', '--policy', $lenient, '--policy', $candidate, @ca, $cap);
is($r->{exit}, 0, 'diff: exit 0 with changes') or diag($r->{err});
is($r->{err}, '', 'diff: nothing on stderr');
is($r->{out},
   "$file{two}: allow -> block (+hostname_mismatch; score 0 -> 80; "
   . "name other.test)\n"
   . "1 of 4 verdicts change (allow -> block: 1)\n",
   'diff: one line per change, then the summary');

# the default policy's own weight and verdict for two, as check has them
my ($hm) = read_file($default) =~ /^weight hostname_mismatch (\d+);/m;
$r = cli('check', '--policy', $default, @ca, $file{two});
my $was = eval { decode_json($r->{out}) } // {};
ok($hm && $hm < 80 && ($was->{verdict} // '') ne 'block',
   "default: hostname_mismatch $hm, two is not blocked");

$r = cli('diff', '--policy', $default, '--policy', $candidate, @ca, $cap);
is($r->{out},
   "$file{two}: $was->{verdict} -> block (hostname_mismatch $hm->80; "
   . "score $was->{score} -> 80; name other.test)\n"
   . "1 of 4 verdicts change ($was->{verdict} -> block: 1)\n",
   'diff: a weight change is shown as old->new');

$r = cli('diff', '--policy', $candidate, '--policy', $lenient, @ca, $cap);
like($r->{out}, qr/^\Q$file{two}\E: block -> allow \(-hostname_mismatch; score 80 -> 0; name other\.test\)$/m,
     'diff: a signal that no longer fires is -id');

$r = cli('diff', '--policy', $default, '--policy', $default, @ca, $cap);
is($r->{exit}, 0, 'diff: same policy, exit 0');
is($r->{out}, "0 of 4 verdicts change\n", 'diff: same policy, no change');

# --sni for every chain: one.test's chain now mismatches instead of two's

$r = cli('diff', '--policy', $lenient, '--policy', $candidate, @ca,
         '--sni', 'two.test', $file{one}, $file{two});
is($r->{out}, "$file{one}: tag -> block (+hostname_mismatch; score 60 -> 140; "
              . "name two.test)\n"
              . "1 of 2 verdicts change (tag -> block: 1)\n",
   'diff --sni: the name given, not the sidecar\'s');

# --at: expired for both, the same change

$r = cli('diff', '--policy', $lenient, '--policy', $candidate, @ca,
         '--at', $expired_at, $file{two});
like($r->{out}, qr/^\Q$file{two}\E: tag -> block \(\+hostname_mismatch; score 30 -> 110; name other\.test\)\n1 of 1 verdicts change \(tag -> block: 1\)\n\z/,
     'diff --at: scored at that time');

# json

$r = cli('diff', '--policy', $lenient, '--policy', $candidate, @ca,
         '--format', 'json', $cap);
my @j = map { decode_json($_) } split /\n/, $r->{out};
is(scalar @j, 2, 'diff json: a change and the summary');
is_deeply($j[0], { file => $file{two}, name => 'other.test', from => 'allow',
                   to => 'block', score_from => 0, score_to => 80,
                   added => ['hostname_mismatch'], removed => [] },
          'diff json: the change');
is_deeply($j[1], { changed => 1, total => 4,
                   transitions => { 'allow -> block' => 1 } },
          'diff json: the summary');

# bad input: exit 2, a line each, the rest still compared

$r = cli('diff', '--policy', $lenient, '--policy', $candidate, @ca,
         "$dir/missing.pem", $file{two});
is($r->{exit}, 2, 'diff: a missing file, exit 2');
like($r->{err}, qr{\Acertguard: [^\n]*missing\.pem: [^\n]+\n\z},
     'diff: one stderr line naming it');
like($r->{out}, qr/^1 of 1 verdicts change/m, 'diff: the other file compared');

for my $bad ([['--policy', $lenient], 'one policy'],
             [['--policy', $lenient, '--policy', $lenient, '--policy',
               $lenient], 'three policies'],
             [['--policy', $lenient, '--policy', $candidate, '--format',
               'xml'], 'a bad format'],
             [['--policy', $lenient, '--policy', $candidate, '--at', 'noon'],
              'a bad time'],
             [['--policy', $lenient, '--policy', "$dir/none.policy"],
              'a missing policy'],
             [['--policy', $lenient, '--policy', $candidate, '--bogus'],
              'an unknown option']) {
    my ($args, $what) = @$bad;
    $r = cli('diff', @$args, $cap);
    is($r->{exit}, 2, "diff: $what, exit 2");
    is(scalar(() = $r->{err} =~ /\n/g), 1, "diff: $what, one stderr line");
    is($r->{out}, '', "diff: $what, nothing on stdout");
}

$r = cli('diff', '--policy', $lenient, '--policy', $candidate);
is($r->{exit}, 2, 'diff: no chains, exit 2');

$r = cli('diff', '--help');
is($r->{exit}, 0, 'diff --help: exit 0');
like($r->{out}, qr/verdicts change/, 'diff --help: usage');

###############################################################################

# report: one page, nothing from elsewhere, the input's numbers

my $html = "$dir/report.html";
$r = cli('report', '--policy', $lenient, '--policy', $candidate, @ca, $cap,
         '-o', $html);
is($r->{exit}, 0, 'report: exit 0') or diag($r->{err});
ok(-s $html, 'report: written');
my $page = read_file($html);

# what the page should say: check's verdicts under the first policy
my %mix = (allow => 0, tag => 0, block => 0);
$r = cli('check', '--policy', $lenient, @ca, $cap);
my %want = by_name($r->{out});
$mix{ $want{$_}{verdict} }++ for keys %want;
my $blocked_or_tagged = $mix{tag} + $mix{block};

like($page, qr/\A<!DOCTYPE html>/, 'report: an HTML document');
unlike($page, qr/<script|<link|<img|<iframe|\@import|url\(/i,
       'report: no script, stylesheet, image or frame');
unlike($page, qr/<[^>]*\b(?:src|href)\s*=/i, 'report: nothing loaded from elsewhere');
my @ext = grep { $_ ne 'http://www.w3.org/2000/svg' } $page =~ m{(https?://[^"' <]+)}g;
is_deeply(\@ext, [], 'report: no address but the SVG namespace');
like($page, qr/&lt;img src=x onerror=alert\(1\)&gt;\.test/,
     'report: a name is escaped');
like($page, qr/CN=\\&lt;i\\&gt;evil\\&lt;\/i\\&gt;/,
     'report: an issuer is escaped');

$r = cli('report', '--policy', $lenient, $cap);
is($r->{exit}, 2, 'report without -o: exit 2');
$r = cli('report', '--policy', $lenient, $cap, '-o', "$dir/no/such/dir.html");
is($r->{exit}, 2, 'report to an unwritable file: exit 2');
like($r->{err}, qr/dir\.html: No such file or directory/, '... said so');
$r = cli('report', '--policy', $lenient, $cap, '-o', '-');
like($r->{out}, qr/<\/html>\n\z/, 'report -o -: the page on stdout');

# Chromium renders it: the DOM, then a screenshot

my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
ok($chromium, 'chromium is installed (scripts/deps.sh)');

SKIP: {
    skip 'no chromium', 1 unless $chromium;

    my @chrome = ($chromium, '--headless', '--no-sandbox', '--disable-gpu',
                  '--no-first-run', '--user-data-dir=' . "$dir/chrome",
                  '--window-size=1200,1600');
    local $ENV{HOME} = $dir;

    $r = run({ timeout => 60 }, @chrome, '--dump-dom', "file://$html");
    is($r->{exit}, 0, 'chromium --dump-dom: exit 0') or diag($r->{err});
    my $dom = $r->{out};

    like($dom, qr/<main id="report" data-chains="4" data-sightings="13"/,
         'DOM: four chains, thirteen sightings');

    for my $v (qw/allow tag block/) {
        like($dom, qr/<tr class="verdict" data-policy="0" data-verdict="$v" data-count="$mix{$v}">/,
             "DOM: verdict mix, $v $mix{$v}");
        like($dom, qr/id="card-$v" data-count="$mix{$v}"/, "DOM: card, $v");
    }

    for my $id (qw/verdict-chart score-histogram-0 score-histogram-1
                   signal-chart/) {
        like($dom, qr/<svg id="$id" class="chart"/, "DOM: chart $id");
    }

    for my $p (0, 1) {
        my ($svg) = $dom =~ m{<svg id="score-histogram-$p".*?</svg>}s
            ? ($&) : ('');
        my $sum = 0;
        $sum += $_ for $svg =~ /<g class="bin" [^>]*data-count="(\d+)"/g;
        is($sum, 4, "DOM: histogram $p holds every chain");
    }

    my @dest = $dom =~ /<tr class="destination" data-verdict="(\w+)"/g;
    is(scalar @dest, $blocked_or_tagged,
       'DOM: a destination row per block and tag');
    is($dest[0], 'block', 'DOM: blocks first');
    like($dom, qr/<section id="issuers">.*<tr class="issuer" data-block="\d+"/s,
         'DOM: issuers of blocks and tags');
    like($dom, qr/<tr class="signal" data-signal="self_signed" data-count="2"/,
         'DOM: self_signed fires for two chains');
    like($dom, qr/<section id="changes" data-changed="1" data-total="4">/,
         'DOM: one verdict of four changes');
    like($dom, qr/<tr class="transition" data-from="allow" data-to="block" data-count="1">/,
         'DOM: the transition');
    like($dom, qr/<tr class="change" data-from="allow" data-to="block"><td>other\.test<\/td>/,
         'DOM: the change, by name');
    unlike($dom, qr/<img/i, 'DOM: the escaped name made no element');

    my $png = "$dir/report.png";
    $r = run({ timeout => 60 }, @chrome, "--screenshot=$png",
             "file://$html");
    ok(-s $png, 'screenshot taken') or diag($r->{err});
    my $head = -s $png ? substr(read_file($png), 0, 24) : '';
    is(substr($head, 0, 8), "\x89PNG\r\n\x1a\n", 'screenshot: a PNG');
    my ($w, $h) = length $head == 24 ? unpack('NN', substr($head, 16, 8))
                                     : (0, 0);
    is("${w}x$h", '1200x1600', 'screenshot: the window size');
}

done_testing();
