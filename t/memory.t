#!/usr/bin/perl

# Tests for the certificate memory through the CLI: "certguard check
# --memory DIR" reads and updates a memory across separate runs, so a
# corpus replayed in order shows first_seen, cert_changed (another CA and
# another key while the old certificate is valid: Sea Turtle's pattern),
# issuer_changed and, with GeoIP, cert_moved; renewals by the same CA do
# not fire.  "certguard memory DIR show|export|import|forget" inspect and
# seed it: an export imported elsewhere carries the memory over.

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
my $pki = Certguard::Certs->new("$dir/pki");
my $now = $pki->now;

my $ca1 = $pki->ca('ca1', subject => '/CN=certguard memory CA 1');
my $ca2 = $pki->ca('ca2', subject => '/CN=certguard memory CA 2');
my $ca3 = $pki->ca('ca3', subject => '/CN=certguard memory CA 3');
my $cas = $pki->bundle('cas', $ca1, $ca2, $ca3);

# Leaves for n.test: key 1 is the key leaves of a Certs.pm share, a
# fresh_key leaf has a key of its own.
sub leaf {
    my ($name, $issuer, %o) = @_;

    return $pki->leaf($name, issuer => $issuer, subject => '/CN=n.test',
                      san => 'DNS:n.test', ext => [$SCT],
                      not_before => -10 * $DAY, not_after => 80 * $DAY, %o);
}

my $a       = leaf('a', $ca1);                          # CA 1, key 1
my $b       = leaf('b', $ca2, fresh_key => 1);          # CA 2, key 2
my $renewal = leaf('a-renewed', $ca1, not_before => -5 * $DAY,
                   not_after => 89 * $DAY);             # CA 1, key 1
my $rekey   = leaf('a-rekeyed', $ca1, fresh_key => 1,
                   not_before => -5 * $DAY);            # CA 1, new key
my $cross   = leaf('c', $ca2);                          # CA 2, key 1
my $short   = leaf('short', $ca1, not_before => -80 * $DAY,
                   not_after => 2 * $DAY);              # CA 1, expires soon

my $policy = policy_dir() . '/default.policy';

# One check of $cert for n.test against the memory in $mem at $at.
sub seen {
    my ($cert, $mem, $at, %o) = @_;
    my $r;

    $r = check($cert->{chain}, policy => $policy, ca_file => $cas,
               sni => $o{sni} // 'n.test', at => $at,
               $o{format} ? (format => $o{format}) : (),
               args => [ '--memory', $mem, @{ $o{args} // [] } ]);
    diag("$r->{cmd}: exit $r->{exit}: $r->{err}") if $r->{exit};

    return $o{format} ? $r : $r->{json};
}

sub ids {
    my ($j) = @_;

    return join(',', signal_ids($j)) || 'none';
}

###############################################################################

# the contract: A (CA 1, key 1) seen at several times, then B (CA 2, key 2)

my $mem = "$dir/memory";
my $j = seen($a, $mem, $now);
ok($j && fired($j, 'first_seen'), 'first run: first_seen fires')
    or diag(ids($j));
is($j && fired($j, 'first_seen')->{weight}, 0, 'first_seen weighs 0');
is($j && $j->{score}, 0, 'first_seen does not score');
is($j && $j->{verdict}, 'allow', 'a first sighting is allowed');
ok(-e "$mem/data.mdb", 'the memory directory was created');

for my $i (1 .. 3) {
    $j = seen($a, $mem, $now + $i * 3600);
    is(ids($j), 'none', "A seen again ($i): nothing fires");
}

$j = seen($b, $mem, $now + $DAY);
ok($j && fired($j, 'cert_changed'),
   'B (CA 2, key 2) while A is valid: cert_changed fires') or diag(ids($j));
is($j && fired($j, 'cert_changed') && fired($j, 'cert_changed')->{weight},
   40, 'cert_changed weighs 40');
like($j && fired($j, 'cert_changed') ? fired($j, 'cert_changed')->{detail}
                                     : '',
     qr/CN=certguard memory CA 1/, 'the detail names the previous issuer');
ok($j && !fired($j, 'issuer_changed'), 'issuer_changed not beside it');
is($j && $j->{verdict}, 'tag', 'the default policy tags a change');

is($j && $j->{prev_sha256}, $a->{sha256}, 'JSON: the previous certificate');
is($j && $j->{prev_issuer}, 'CN=certguard memory CA 1', 'JSON: its issuer');

# the CEF record of a change: first seen, previous certificate and issuer

my $cef = seen($b, $mem, $now + $DAY + 300, format => 'cef');
like($cef->{out}, qr/ reason=cert_changed /, 'CEF: reason cert_changed');
like($cef->{out}, qr/ firstSeen=@{[ ($now + $DAY) * 1000 ]}(?: |$)/,
     'CEF: firstSeen, unix ms, of B at n.test:443');
like($cef->{out}, qr/ prevSha256=$a->{sha256}(?: |$)/, 'CEF: prevSha256');
like($cef->{out}, qr/ prevIssuer=CN\\=certguard memory CA 1$/,
     'CEF: prevIssuer, escaped, last');
$cef = seen($a, "$dir/memory-cef", $now, format => 'cef');
like($cef->{out}, qr/ firstSeen=@{[ $now * 1000 ]}$/,
     'CEF: a first sighting is first seen now');
unlike($cef->{out}, qr/prevSha256|prevIssuer/, 'CEF: no change, no prev');
my $text = seen($b, $mem, $now + $DAY + 400, format => 'text');
like($text->{out}, qr/^previous: $a->{sha256} from CN=certguard memory CA 1$/m,
     'text: the previous certificate');

$j = seen($b, $mem, $now + $DAY + 600);
ok($j && fired($j, 'cert_changed'), 'B again, within 3d: still a change');
$j = seen($b, $mem, $now + 5 * $DAY);
ok($j && !fired($j, 'cert_changed'), 'B after 3d: established');
$j = seen($a, $mem, $now + 5 * $DAY);
is(ids($j), 'none', 'A, which came first, is no change');

# a policy window

my $window = write_file("$dir/window.policy", <<"EOF");
include $policy;
window cert_changed 1h 30d;
EOF
my $lint = cli('lint', $window);
is($lint->{exit}, 0, 'window cert_changed 1h 30d lints') or diag($lint->{err});

my $mem2 = "$dir/memory-window";
seen($a, $mem2, $now);
$j = check($b->{chain}, policy => $window, ca_file => $cas, sni => 'n.test',
           at => $now + 600, args => ['--memory', $mem2])->{json};
ok($j && fired($j, 'cert_changed'), 'window 1h: a change at 10 min');
$j = check($b->{chain}, policy => $window, ca_file => $cas, sni => 'n.test',
           at => $now + 7200, args => ['--memory', $mem2])->{json};
ok($j && !fired($j, 'cert_changed'), 'window 1h: not at 2h');

# renewals by CA 1, with or without a new key: no change

my $mem3 = "$dir/memory-renewal";
seen($a, $mem3, $now + $_ * 3600) for 0 .. 2;
$j = seen($renewal, $mem3, $now + $DAY);
is(ids($j), 'none', 'renewal by CA 1 with key 1: no change');
$j = seen($rekey, $mem3, $now + $DAY);
ok($j && !fired($j, 'cert_changed') && !fired($j, 'issuer_changed'),
   'renewal by CA 1 with a new key: no change') or diag(ids($j));

# CA 2 with key 1: another issuer, a known key

$j = seen($cross, $mem3, $now + 2 * $DAY);
ok($j && fired($j, 'issuer_changed'), 'CA 2 with key 1: issuer_changed')
    or diag(ids($j));
ok($j && !fired($j, 'cert_changed'), 'CA 2 with key 1: not cert_changed');
is($j && fired($j, 'issuer_changed') && fired($j, 'issuer_changed')->{weight},
   15, 'issuer_changed weighs 15');

# two private CAs of the same organization are two CAs (only public roots'
# names are vetted)

my $orga = $pki->ca('orga1', subject => '/O=certguard/CN=memory CA one');
my $orgb = $pki->ca('orga2', subject => '/O=certguard/CN=memory CA two');
my $ocas = $pki->bundle('ocas', $orga, $orgb);
my $oa = leaf('oa', $orga);
my $ob = leaf('ob', $orgb, fresh_key => 1);
my $mem5 = "$dir/memory-orgs";
for my $t (0, 3600) {
    check($oa->{chain}, policy => $policy, ca_file => $ocas, sni => 'n.test',
          at => $now + $t, args => ['--memory', $mem5]);
}
$j = check($ob->{chain}, policy => $policy, ca_file => $ocas, sni => 'n.test',
           at => $now + $DAY, args => ['--memory', $mem5])->{json};
ok($j && fired($j, 'cert_changed'),
   'private CAs of one O=, another CN: cert_changed') or diag(ids($j));

# the old certificate expired: a new CA is no change

my $mem4 = "$dir/memory-expired";
seen($short, $mem4, $now);
$j = seen($b, $mem4, $now + 3 * $DAY);
ok($j && !fired($j, 'cert_changed'),
   'B after the old certificate expired: no change') or diag(ids($j));

# names and ports apart

$j = seen($b, $mem, $now + $DAY, sni => 'other.test');
ok($j && fired($j, 'first_seen') && !fired($j, 'cert_changed'),
   'another name has a memory of its own');
$j = check($b->{chain}, policy => $policy, ca_file => $cas, sni => 'n.test',
           dst => '127.0.0.1:8443', at => $now + $DAY,
           args => ['--memory', $mem])->{json};
ok($j && fired($j, 'first_seen'), 'another port has a memory of its own');

# no name: not remembered

$j = check($a->{chain}, policy => $policy, ca_file => $cas,
           at => $now, args => ['--memory', "$dir/memory-noname"])->{json};
ok($j && !fired($j, 'first_seen'), 'without a name, no memory signal');

# several files in one run: each sees the ones before it

my $r = cli('check', '--policy', $policy, '--ca-file', $cas, '--sni', 'n.test',
            '--at', $now, '--memory', "$dir/memory-one-run", $a->{chain},
            $b->{chain});
my @lines = map { decode_json($_) } split /\n/, $r->{out};
is(scalar @lines, 2, 'one run, two chains');
ok(@lines == 2 && fired($lines[1], 'cert_changed'),
   'the second chain of a run sees the first');

###############################################################################

# memory show

$r = cli('memory', $mem, 'show', 'n.test');
is($r->{exit}, 0, 'show: exit 0');
like($r->{out}, qr/^n\.test:443 /m, 'show: the name and port');
like($r->{out}, qr/\Q$a->{sha256}\E/, 'show: certificate A');
like($r->{out}, qr/\Q$b->{sha256}\E/, 'show: certificate B');
like($r->{out}, qr/issuer: CN=certguard memory CA 2/, 'show: an issuer');
like($r->{out}, qr/n\.test:8443/, 'show: every port of the name');
$r = cli('memory', $mem, 'show', 'n.test:8443');
unlike($r->{out}, qr/n\.test:443 /, 'show NAME:PORT: that port only');
$r = cli('memory', $mem, 'show', 'never.test');
is($r->{exit}, 1, 'show: exit 1 for a name never seen');
like($r->{err}, qr/never seen/, 'show: says so');

# memory export, import elsewhere

$r = cli('memory', $mem, 'export');
is($r->{exit}, 0, 'export: exit 0');
my @export = map { decode_json($_) } split /\n/, $r->{out};
my @n443 = grep { $_->{name} eq 'n.test' && $_->{port} == 443 } @export;
is(scalar @n443, 2, 'export: two certificates for n.test:443');
my ($ea) = grep { $_->{sha256} eq $a->{sha256} } @n443;
ok($ea && $ea->{count} == 5, 'export: A counted five times')
    or diag(explain($ea));
is($ea && $ea->{first_seen}, $now, 'export: A first seen');
is($ea && $ea->{issuer}, 'CN=certguard memory CA 1', 'export: A issuer');
like($ea && $ea->{spki}, qr/^[0-9a-f]{64}$/, 'export: A key (SPKI SHA-256)');
is($ea && $ea->{not_after}, $a->{not_after}, 'export: A notAfter');

my $file = write_file("$dir/export.jsonl",
                      join('', map { "$_\n" } grep { /"n\.test"/ }
                                                   split /\n/, $r->{out}));
my $fleet = "$dir/memory-fleet";
$r = cli('memory', $fleet, 'import', $file);
is($r->{exit}, 0, 'import: exit 0') or diag($r->{err});
like($r->{out}, qr/imported 3 certificates/, 'import: counts');

# the imported memory knows A and B: CA 2 is known, CA 3 is a change
my $b2 = leaf('b2', $ca2, fresh_key => 1);
$j = seen($b2, $fleet, $now + 6 * $DAY);
ok($j && !fired($j, 'cert_changed') && !fired($j, 'first_seen'),
   'imported memory: CA 2 is known there') or diag(ids($j));
my $b3 = leaf('b3', $ca3, fresh_key => 1);
$j = seen($b3, $fleet, $now + 6 * $DAY);
ok($j && fired($j, 'cert_changed'), 'imported memory: CA 3 is a change')
    or diag(ids($j));

# a hand-written known-good inventory, and lines that are refused

my $inv = write_file("$dir/inventory.jsonl", <<"EOF");
# known good: a.example's certificate
{"name":"N.test","sha256":"$a->{sha256}","issuer":"CN=certguard memory CA 1","not_after":$a->{not_after}}
{"name":"bad.test","sha256":"1234"}
not json

{"name":"x.test","sha256":"$b->{sha256}","first_seen":$now,"last_seen":1}
EOF
my $seeded = "$dir/memory-seeded";
$r = cli('memory', $seeded, 'import', $inv);
is($r->{exit}, 2, 'import: exit 2 when lines are refused');
like($r->{err}, qr/inventory\.jsonl:3: .*64 hex/, 'import: bad digest, line 3');
like($r->{err}, qr/inventory\.jsonl:4: /, 'import: not JSON, line 4');
like($r->{err}, qr/inventory\.jsonl:6: last_seen is before first_seen/,
     'import: inconsistent times, line 6');
like($r->{out}, qr/imported 1 certificate\b/, 'import: the good line went in');
$j = seen($b, $seeded, $now + $DAY);
ok($j && fired($j, 'cert_changed'),
   'a seeded inventory without keys: another CA is a change')
    or diag(ids($j));

# memory forget

$r = cli('memory', $mem, 'forget', 'n.test');
is($r->{exit}, 0, 'forget: exit 0');
like($r->{out}, qr/forgot 2 entries/, 'forget: both ports');
$j = seen($b, $mem, $now + 6 * $DAY);
ok($j && fired($j, 'first_seen') && !fired($j, 'cert_changed'),
   'after forget: a first sighting again');

# errors

$r = cli('memory', "$dir/nothing-here", 'show', 'n.test');
is($r->{exit}, 2, 'show on a missing memory: exit 2');
like($r->{err}, qr/nothing-here/, 'show on a missing memory: names it');
$r = cli('memory', $mem, 'frobnicate');
is($r->{exit}, 2, 'unknown memory command: exit 2');
$r = cli('memory', $mem, 'show');
is($r->{exit}, 2, 'show without a NAME: exit 2');
$r = cli('memory', $mem, 'show', 'n.test:99999');
is($r->{exit}, 2, 'show with a bad port: exit 2');
$r = cli('check', '--policy', $policy, '--sni', 'n.test', '--memory',
         "$dir/no/such/parent", $a->{chain});
is($r->{exit}, 2, 'check --memory in a directory that cannot be made');
like($r->{err}, qr/no\/such\/parent/, '... names it');
is($r->{out}, '', '... and scores nothing');

###############################################################################

# cert_moved: the same certificate from another AS and country (GeoIP)

SKIP: {
    skip 'no MaxMind::DB::Writer (libmaxmind-db-writer-perl)', 5
        unless eval { require MaxMind::DB::Writer::Tree; 1 };

    my %types = (
        country => 'map', iso_code => 'utf8_string',
        autonomous_system_number => 'uint32',
        autonomous_system_organization => 'utf8_string',
    );

    my $mmdb = sub {
        my ($path, $type, %nets) = @_;
        my $tree = MaxMind::DB::Writer::Tree->new(
            ip_version => 6, record_size => 24, database_type => $type,
            languages => ['en'], description => { en => "test $type" },
            map_key_type_callback => sub { $types{ $_[0] } },
            remove_reserved_networks => 0);
        $tree->insert_network($_, $nets{$_}) for sort keys %nets;
        open my $fh, '>:raw', $path or die "$path: $!";
        $tree->write_tree($fh);
        close $fh;
        return $path;
    };

    my $cdb = $mmdb->("$dir/country.mmdb", 'GeoLite2-Country',
        '192.0.2.0/24'    => { country => { iso_code => 'DE' } },
        '198.51.100.0/24' => { country => { iso_code => 'KP' } });
    my $adb = $mmdb->("$dir/asn.mmdb", 'GeoLite2-ASN',
        '192.0.2.0/24'    => { autonomous_system_number => 64496 },
        '198.51.100.0/24' => { autonomous_system_number => 64511 });
    my @geo = ('--geoip-country', $cdb, '--geoip-asn', $adb);

    my $gm = "$dir/memory-geo";
    my $at = $now;
    my $moved = sub {
        my ($dst, @more) = @_;
        my $r = check($a->{chain}, policy => $policy, ca_file => $cas,
                      sni => 'n.test', dst => $dst, at => $at += 3600,
                      args => ['--memory', $gm, @more]);
        diag("$r->{cmd}: $r->{err}") if $r->{exit};
        return $r->{json};
    };

    $moved->('192.0.2.1', @geo);
    $j = $moved->('192.0.2.7', @geo);
    ok($j && !fired($j, 'cert_moved'), 'cert_moved: same AS, another address');
    $j = $moved->('198.51.100.1');
    ok($j && !fired($j, 'cert_moved'), 'cert_moved: not without GeoIP');
    $j = $moved->('198.51.100.1', @geo);
    ok($j && fired($j, 'cert_moved'), 'cert_moved: another AS and country')
        or diag(ids($j));
    like($j && fired($j, 'cert_moved') ? fired($j, 'cert_moved')->{detail}
                                       : '',
         qr/AS64511 KP, before from AS64496 DE/, 'cert_moved: the detail');
    $r = cli('memory', $gm, 'show', 'n.test');
    like($r->{out}, qr/from: AS64511 KP/, 'show: the locations');
}

done_testing();
