#!/usr/bin/perl

# Tests for CEF records from "certguard check --format cef", read back with
# two independent parsers, field by field (liblognorm's lognormalizer,
# %cef:cef%, and the strict parser t/lib/Certguard/CEF.pm wrote from the
# specification), and through a real rsyslog receiver: header and fields as
# documented, one line, under 2 KB, and hostile certificate text never adds
# a field, a pipe or a line.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Syslog qw(lognormalize);
use Certguard::CEF;

###############################################################################

need_cli();

plan(skip_all => 'no lognormalizer (liblognorm-utils)')
    unless grep { -x "$_/lognormalizer" } split /:/, $ENV{PATH};

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my ($version) = read_file(repo_root() . '/src/engine/certguard.h')
    =~ /#define\s+CG_VERSION\s+"([^"]+)"/;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $int = $pki->ca('int', issuer => $root, subject => '/CN=certguard test int');
my $policy = policy_dir() . '/default.policy';

# Keys a record may carry; anything else is a field someone injected.
my %known = map { $_ => 1 } qw/deviceDirection rt act src spt dst dpt dhost
    request outcome reason msg cs1 cs1Label cs2 cs2Label cs3 cs3Label cs4
    cs4Label cs5 cs5Label cs6 cs6Label cn1 cn1Label cn2 cn2Label cn3 cn3Label
    deviceCustomDate1 deviceCustomDate1Label deviceCustomDate2
    deviceCustomDate2Label flexString1 flexString1Label flexString2
    flexString2Label destinationServiceName/;

# The record for $cert, its JSON twin, and the record parsed.
sub record {
    my ($cert, %o) = @_;
    my (@a, $cef, $json, $p);

    @a = (policy => $policy, ca_file => $root->{cert}, at => $pki->now,
          sni => $o{sni} // "$cert->{name}.test",
          $o{dst} ? (dst => $o{dst}) : (),
          $o{client_sni} ? (args => ['--client-sni', $o{client_sni}]) : ());
    $cef = check($cert->{chain}, @a, format => 'cef');
    $json = check($cert->{chain}, @a);
    diag("$cef->{cmd}: $cef->{err}") if $cef->{exit};
    $p = eval { lognormalize($cef->{out} =~ s/\n\z//r) };

    return ($cef, $json->{json}, $p);
}

# What every record must satisfy; returns the parsed extensions.
sub well_formed {
    my ($cef, $p, $name) = @_;
    my $out = $cef->{out};

    is($cef->{exit}, 0, "exit 0: $name");
    like($out, qr/\A[^\r\n]*\n?\z/, "one line: $name");
    ok(length($out) < 2048, "under 2 KB (" . length($out) . "): $name");
    like($out, qr/\ACEF:0\|certguard\|certguard\|\Q$version\E\|[^|]+\|[^|]+\|\d+\| /,
         "header as documented, a space after the seventh pipe: $name");
    ok($p && $p->{cef}, "lognormalizer parses it: $name")
        or diag(explain($p), $out);
    my $strict = eval { Certguard::CEF::both($out) };
    ok($strict, "the strict parser reads the same fields: $name")
        or diag($@, $out);

    my $h = $p && $p->{cef} || {};
    is($h->{DeviceVendor}, 'certguard', "vendor: $name");
    is($h->{DeviceProduct}, 'certguard', "product: $name");
    is($h->{DeviceVersion}, $version, "version: $name");
    like($h->{Severity} // '', qr/^([0-9]|10)$/, "severity 0-10: $name");

    my $x = $h->{Extensions} || {};
    my @unknown = grep { !$known{$_} } sort keys %$x;
    is_deeply(\@unknown, [], "no unexpected keys: $name");
    ok(!grep({ !/^[A-Za-z0-9]+$/ } keys %$x), "keys alphanumeric: $name");

    return $x;
}

###############################################################################

# the strict parser rejects what the specification forbids (so that its
# agreement below means something)

for my $bad (['CEF:0|a|b|1|c|d|5| k=v=w', 'unescaped = in a value'],
             ['CEF:0|a|b|1|c|d|5| k=v\\|', 'escaped pipe in the extension'],
             ['CEF:0|a|b|1|c\\x|d|5| k=v', 'unknown header escape'],
             ['CEF:0|a|b|1|c|d|11| k=v', 'severity 11'],
             ['CEF:0|a|b|1|c|d| k=v', 'six pipes'],
             ['CEF:0|a|b|1|c|d|5| k=v k=w', 'a key twice'],
             ['CEF:0|a|b|1|c|d|5| dpt=70000', 'port out of range'],
             ['CEF:0|a|b|1|c|d|5| k=v\\', 'lone backslash at the end'],
             ['CEF:0|a|b|1|c|d|5| k-x=v', 'a key that is not alphanumeric'],
             ["CEF:0|a|b|1|c|d|5| k=a\rb", 'a raw carriage return'],
             ["CEF:0|a|b|1|c|d|5| k=\xff", 'not UTF-8'],
             ['CEF:0|a|b|1|c|d|5| app=' . ('x' x 32), 'app over 31'])
{
    ok(!eval { Certguard::CEF::parse($bad->[0]) },
       "strict parser rejects: $bad->[1]");
}

my $sp = eval { Certguard::CEF::parse('CEF:0|a\\|b|c|1|d|e|5| k=a\\=b  x=\\\\ y\\n q=|') };
is_deeply($sp && [ map { [$_, $sp->{ext}{$_}] } @{ $sp->{keys} } ],
          [[k => 'a=b '], [x => "\\ y\n"], [q => '|']],
          'strict parser: escapes, a trailing space, a pipe in a value');
is($sp && $sp->{vendor}, 'a|b', 'strict parser: an escaped pipe in the header');

my $good = $pki->leaf('good', issuer => $int, subject => '/O=certguard/CN=good.test',
                      san => 'DNS:good.test', not_before => -30 * $DAY,
                      not_after => 60 * $DAY, ext => [$SCT]);
my $bad = $pki->leaf('bad', subject => '/CN=bad.test', san => 'DNS:bad.test',
                     not_before => -30 * $DAY, not_after => 60 * $DAY);
my $corp = $pki->ca('corp', subject => '/CN=Example Corp Internal CA');
my $tagged = $pki->leaf('tagged', issuer => $corp, subject => '/CN=tagged.test',
                        san => 'DNS:tagged.test', not_before => -30 * $DAY,
                        not_after => 60 * $DAY);

my %case = (
    allow => [$good, '192.0.2.10:443', '192.0.2.10', 443],
    tag   => [$tagged, '[2001:db8::7]:8443', '2001:db8::7', 8443],
    block => [$bad, '198.51.100.20', '198.51.100.20', undef],
);

my %records;
for my $v (sort keys %case) {
    my ($cert, $dst, $addr, $port) = @{ $case{$v} };
    my ($cef, $j, $p) = record($cert, dst => $dst);
    my $x = well_formed($cef, $p, "$v record");
    $records{$v} = $cef->{out};

    is($j && $j->{verdict}, $v, "the $v case is a $v");
    is($x->{outcome}, $v, "outcome=$v");
    is($p->{cef}{SignatureID}, "cert-$v", "event class cert-$v");
    is($x->{cs1Label}, 'subject', "$v: cs1 is the subject");
    is($x->{cs1}, $j->{subject}, "$v: cs1 equals the JSON subject");
    is($x->{cs2Label}, 'issuer', "$v: cs2 is the issuer");
    is($x->{cs2}, $j->{issuer}, "$v: cs2 equals the JSON issuer");
    is($x->{cs3Label}, 'sha256', "$v: cs3 is the sha256");
    is($x->{cs3}, $cert->{sha256}, "$v: cs3 is the leaf sha256");
    is($x->{cs4Label}, 'serial', "$v: cs4 is the serial");
    is($x->{cs4}, $cert->{serial}, "$v: cs4 is the leaf serial");
    is($x->{flexString1Label}, 'sha1', "$v: flexString1 is the sha1");
    is($x->{flexString1}, $cert->{sha1}, "$v: flexString1 is the leaf sha1");
    is($x->{flexString2Label}, 'spkiSha256',
       "$v: flexString2 is the SPKI sha256");
    is($x->{flexString2}, $cert->{spki_sha256},
       "$v: flexString2 is the leaf's SPKI sha256");
    is($j->{spki_sha256}, $cert->{spki_sha256},
       "$v: JSON spki_sha256 is the leaf's SPKI sha256");
    my $ids = join ',', map { $_->{id} } grep { !$_->{exempt} }
                                          @{ $j->{signals} };
    if ($ids ne '') {
        is($x->{cs5Label}, 'signals', "$v: cs5 is the signals");
    } else {
        ok(!defined $x->{cs5Label}, "$v: no cs5 pair without signals");
    }
    is($x->{cs5} // '', $ids, "$v: cs5 lists the fired signal ids");
    is($x->{cn1Label}, 'score', "$v: cn1 is the score");
    is($x->{cn1}, $j->{score}, "$v: cn1 equals the score");
    is($x->{cn2}, 2048, "$v: cn2 key bits");
    is($x->{deviceCustomDate2}, $cert->{not_after} * 1000,
       "$v: deviceCustomDate2 is notAfter in ms");
    is($x->{deviceCustomDate1}, $cert->{not_before} * 1000,
       "$v: deviceCustomDate1 is notBefore in ms");
    is($x->{dhost}, "$cert->{name}.test", "$v: dhost is the SNI");
    is($x->{dst}, $addr, "$v: dst");
    is($x->{dpt}, $port, "$v: dpt");
}

is(($records{block} =~ tr/|//), 7, 'a header has seven pipes');
my $sev = sub { ($_[0] =~ /^(?:[^|]*\|){6}(\d+)\|/)[0] // -1 };
ok($sev->($records{block}) > $sev->($records{tag})
   && $sev->($records{tag}) > $sev->($records{allow}),
   'severity: block > tag > allow');

# refusal records (cg_format_cef_refusal, no certificate): printed by the
# format unit test, read back by the same independent parser

SKIP: {
    my $bin = build_dir() . '/unit/format';
    skip 'build/unit/format not built (make unit)', 1 unless -x $bin;

    my $r = run($bin, '--refusals');
    is($r->{exit}, 0, 'refusal records printed');
    my @lines = split /\n/, $r->{out};
    is(scalar @lines, 4, 'four refusal records');

    my %rknown = map { $_ => 1 } qw/deviceDirection rt act src spt dst dpt
        dhost suser request outcome reason cnt/;
    my @want = ([qw/dest-refused 3 port/, undef],
                [qw/dest-refused 7 special_address 2/],
                [qw/auth-failed 5 auth_bad_password 3/],
                [qw/request-refused 3 scheme 4/]);

    for my $i (0 .. $#want) {
        my ($cls, $sevw, $reason, $cnt) = @{ $want[$i] };
        my $line = $lines[$i] // '';
        my $p = eval { lognormalize($line) };
        my $h = $p && $p->{cef} || {};
        my $x = $h->{Extensions} || {};

        like($line, qr/\ACEF:0\|certguard\|certguard\|\Q$version\E\|[^|]+\|[^|]+\|\d+\| deviceDirection=1 /,
             "refusal $reason: header, space after the seventh pipe");
        ok(length($line) < 2048, "refusal $reason: under 2 KB");
        is($h->{SignatureID}, $cls, "refusal $reason: event class $cls");
        is($h->{Severity}, $sevw, "refusal $reason: severity $sevw");
        is($x->{deviceDirection}, 1,
           "refusal $reason: first key intact (liblognorm)");
        is_deeply([ grep { !$rknown{$_} } sort keys %$x ], [],
                  "refusal $reason: no unexpected keys");
        is($x->{act}, 'refused', "refusal $reason: act");
        is($x->{outcome}, 'refused', "refusal $reason: outcome");
        is($x->{reason}, $reason, "refusal $reason: reason");
        is($x->{suser}, 'alice', "refusal $reason: suser");
        is($x->{dhost}, 'refused.test', "refusal $reason: dhost");
        is($x->{dpt}, 8080, "refusal $reason: dpt");
        is($x->{request}, $i % 2 ? 'http://refused.test:8080/x?a=b|c'
                                 : 'http://refused.test:8080/x?',
           "refusal $reason: request unescaped by liblognorm, the query "
           . ($i % 2 ? 'kept' : 'cut'));
        my $strict = eval { Certguard::CEF::both($line) };
        ok($strict, "refusal $reason: the strict parser reads the same")
            or diag($@, $line);
        is($x->{cnt}, $cnt, "refusal $reason: cnt");
    }
}

# hostile subjects: attacker-controlled text stays inside its value

my %hostile = (
    'pipes'        => 'evil|host|5| cs9=x',
    'equals'       => 'a=b c=d cs1=forged act=allowed',
    'backslashes'  => 'back\\slash\\ \\= \\| end\\',
    'newline'      => "line1\nCEF:0|x|x|1|x|x|1| injected=1",
    'carriage'     => "cr\rreturn\r\nlf",
    'spaces keys'  => ' suser=root cs2Label=issuer ',
    'unicode'      => "\x{0455}\x{0440}\x{043E}\x{043E}\x{0493} \x{202E}txt.exe",
);
my ($cef, $j, $p);
my $n = 0;
for my $h (sort keys %hostile) {
    my $text = $hostile{$h};
    my $bytes = $text;
    utf8::encode($bytes);
    my $cert = $pki->leaf('hostile' . $n++, subject => [[O => $bytes],
                                                       [CN => $bytes]],
                          san => 'DNS:hostile.test', not_before => -30 * $DAY,
                          not_after => 60 * $DAY);
    my ($cef, $j, $p) = record($cert, sni => 'hostile.test');
    my $x = well_formed($cef, $p, "hostile subject: $h");
    is($p->{cef}{DeviceVendor}, 'certguard', "header intact: $h");
    like($x->{cs1} // '', qr/^CN=/, "cs1 still starts with the CN: $h");
    is($x->{cs1}, $j->{subject}, "cs1 round-trips to the JSON subject: $h");
    is($x->{cs3}, $cert->{sha256}, "fields after the subject intact: $h");
    is($x->{cn1}, $j->{score}, "score after the subject intact: $h");
}

# the SNI a client sent inside a tunnel: destinationServiceName, beside
# the name checked

($cef, $j, $p) = record($good, client_sni => 'other|x=y.test');
my $cx = well_formed($cef, $p, 'client SNI');
is($cx->{destinationServiceName}, 'other|x=y.test',
   'client SNI: destinationServiceName');
is($cx->{dhost}, 'good.test', 'client SNI: dhost is still the name checked');
like($cx->{reason} // '', qr/\bsni_mismatch\b/, 'client SNI: sni_mismatch');

# hostile SNI (dhost) and a long subject: capped, still one record

($cef, $j, $p) = record($good, sni => 'x|y=z\\w cs1=forged');
my $x = well_formed($cef, $p, 'hostile SNI');
is($x->{dhost}, 'x|y=z\\w cs1=forged', 'dhost round-trips');
is($x->{cs1}, $j->{subject}, 'cs1 not replaced by an SNI');

my $long = $pki->leaf('long', subject => [ map { [OU => ('x=|\\' x 300) . $_] }
                                           1 .. 8 ],
                      san => 'DNS:' . join(',DNS:', map { ('a' x 60) . ".$_.test" }
                                                    1 .. 40),
                      not_before => -30 * $DAY, not_after => 60 * $DAY);
($cef, $j, $p) = record($long, sni => ('b' x 250) . '.test');
$x = well_formed($cef, $p, 'long subject, long SNI');
is($x->{cs3}, $long->{sha256}, 'long subject: later fields still present');

# the same records through a real syslog receiver (rsyslog + mmnormalize)

SKIP: {
    skip 'no rsyslogd', 4 unless -x '/usr/sbin/rsyslogd';

    my $s = Certguard::Syslog->start($dir);
    $s->send($records{$_} =~ s/\n\z//r) for qw/allow tag block/;
    my @got = $s->wait_records(3, 10);
    $s->stop;

    is(scalar @got, 3, 'rsyslog received three records');
    is_deeply([ map { $_->{cef} ? $_->{cef}{SignatureID} : 'unparsed' } @got ],
              [qw/cert-allow cert-tag cert-block/],
              'rsyslog parsed each into its event class');
    is_deeply([ map { $_->{cef} ? $_->{cef}{Extensions}{cs3} : '' } @got ],
              [ map { $case{$_}[0]{sha256} } qw/allow tag block/ ],
              'rsyslog parsed the sha256 column of each');
    ok(!grep({ !$_->{cef} || grep { !$known{$_} } keys %{ $_->{cef}{Extensions} } }
             @got), 'rsyslog: no unexpected keys');
}

done_testing();

###############################################################################
