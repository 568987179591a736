#!/usr/bin/perl

# Tests for the destination signals geo_country and geo_asn: the test
# builds GeoLite2-Country- and GeoLite2-ASN-shaped MaxMind databases for
# documentation and loopback ranges, and the CLI looks the --dst address up
# with --geoip-country / --geoip-asn.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;

###############################################################################

need_cli();

plan(skip_all => 'no MaxMind::DB::Writer (libmaxmind-db-writer-perl)')
    unless eval { require MaxMind::DB::Writer::Tree; 1 };

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();

my %types = (
    country                        => 'map',
    registered_country             => 'map',
    iso_code                       => 'utf8_string',
    geoname_id                     => 'uint32',
    names                          => 'map',
    en                             => 'utf8_string',
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
);

sub mmdb {
    my ($path, $type, %nets) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => 6,
        record_size              => 24,
        database_type            => $type,
        languages                => ['en'],
        description              => { en => "certguard test $type" },
        map_key_type_callback    => sub { $types{ $_[0] } },
        # the test ranges are reserved networks: keep them
        remove_reserved_networks => 0,
    );
    $tree->insert_network($_, $nets{$_}) for sort keys %nets;
    open my $fh, '>:raw', $path or die "$path: $!";
    $tree->write_tree($fh);
    close $fh;

    return $path;
}

sub country {
    my ($cc, $name) = @_;
    return { country => { iso_code => $cc, names => { en => $name } },
             registered_country => { iso_code => $cc } };
}

my $cdb = mmdb("$dir/GeoLite2-Country.mmdb", 'GeoLite2-Country',
    '127.0.0.0/8'   => country('RU', 'Russia'),
    '192.0.2.0/24'  => country('KP', 'North Korea'),
    '2001:db8::/32' => country('IR', 'Iran'),
);
my $adb = mmdb("$dir/GeoLite2-ASN.mmdb", 'GeoLite2-ASN',
    '127.0.0.0/8'   => { autonomous_system_number => 64496,
                         autonomous_system_organization => 'Loopback Transit' },
    '192.0.2.0/24'  => { autonomous_system_number => 64511,
                         autonomous_system_organization => 'Example Hosting' },
    '2001:db8::/32' => { autonomous_system_number => 64500,
                         autonomous_system_organization => 'Doc Six' },
);

# the databases say what the test thinks they say (libmaxminddb's own tool)
SKIP: {
    skip 'no mmdblookup (mmdb-bin)', 2
        unless grep { -x "$_/mmdblookup" } split /:/, $ENV{PATH};
    my $r = run('mmdblookup', '--file', $cdb, '--ip', '192.0.2.9', 'country',
                'iso_code');
    like($r->{out}, qr/"KP"/, 'country database maps 192.0.2.0/24 to KP');
    $r = run('mmdblookup', '--file', $adb, '--ip', '2001:db8::9',
             'autonomous_system_number');
    like($r->{out}, qr/64500/, 'ASN database maps 2001:db8::/32 to AS64500');
}

my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $leaf = $pki->leaf('geo', issuer => $root, subject => '/CN=geo.test',
                      san => 'DNS:geo.test', not_before => -30 * $DAY,
                      not_after => 60 * $DAY, ext => [$SCT]);

my $policy = write_file("$dir/geo.policy", <<'EOF');
threshold tag 30;
threshold block 70;
geo_country 40 KP RU;
geo_asn 35 64496 AS64511;
EOF
my $policy6 = write_file("$dir/geo6.policy", <<'EOF');
geo_country 25 IR;
geo_asn 15 AS64500;
EOF

sub geo {
    my ($dst, %o) = @_;
    my $r = check($leaf->{chain}, policy => $o{policy} // $policy,
                  ca_file => $root->{cert}, sni => 'geo.test',
                  defined $dst ? (dst => $dst) : (),
                  args => [ $o{country} // 1 ? ('--geoip-country', $cdb) : (),
                            $o{asn} // 1 ? ('--geoip-asn', $adb) : () ]);
    diag("$r->{cmd}: $r->{err}") if $r->{exit};

    return $r->{json};
}

sub hit_ok {
    my ($j, $id, $weight, $detail, $name) = @_;
    my $h = fired($j, $id);

    ok($h, "$id fires: $name") or diag(explain($j && $j->{signals}));
    is($h && $h->{weight}, $weight, "$id weight $weight: $name");
    like($h && $h->{detail} // '', $detail, "$id detail: $name");
}

sub no_hit {
    my ($j, $id, $name) = @_;
    ok($j && !fired($j, $id), "$id does not fire: $name");
}

###############################################################################

my $j = geo('192.0.2.10');
hit_ok($j, 'geo_country', 40, qr/KP/, '192.0.2.10 in KP');
hit_ok($j, 'geo_asn', 35, qr/64511/, '192.0.2.10 in AS64511');
like(fired($j, 'geo_asn') && fired($j, 'geo_asn')->{detail} // '',
     qr/Example Hosting/, 'geo_asn detail carries the AS organisation');
is($j && $j->{score}, 75, 'country and ASN weights add up');
is($j && $j->{verdict}, 'block', 'and block');

$j = geo('127.0.0.1:443');
hit_ok($j, 'geo_country', 40, qr/RU/, '127.0.0.1:443 in RU');
hit_ok($j, 'geo_asn', 35, qr/64496/, '127.0.0.1:443 in AS64496');

$j = geo('2001:db8::5');
no_hit($j, 'geo_country', 'IR not listed');
no_hit($j, 'geo_asn', 'AS64500 not listed');
is($j && $j->{score}, 0, 'unlisted country and AS score 0');

for my $d ('2001:db8::5', '[2001:db8::5]:8443') {
    $j = geo($d, policy => $policy6);
    hit_ok($j, 'geo_country', 25, qr/IR/, "$d in IR (IPv6)");
    hit_ok($j, 'geo_asn', 15, qr/64500/, "$d in AS64500 (IPv6)");
}

$j = geo('198.51.100.7');
no_hit($j, 'geo_country', 'address not in the database');
no_hit($j, 'geo_asn', 'address not in the database');

$j = geo(undef);
no_hit($j, 'geo_country', 'no --dst');
no_hit($j, 'geo_asn', 'no --dst');

$j = geo('192.0.2.10', country => 0, asn => 0);
no_hit($j, 'geo_country', 'no databases given');
no_hit($j, 'geo_asn', 'no databases given');

$j = geo('192.0.2.10', country => 0);
no_hit($j, 'geo_country', 'only the ASN database given');
hit_ok($j, 'geo_asn', 35, qr/64511/, 'only the ASN database given');

$j = geo('192.0.2.10', asn => 0);
hit_ok($j, 'geo_country', 40, qr/KP/, 'only the country database given');
no_hit($j, 'geo_asn', 'only the country database given');

my $nogeo = write_file("$dir/nogeo.policy", "threshold tag 30;\n");
$j = geo('192.0.2.10', policy => $nogeo);
no_hit($j, 'geo_country', 'policy lists no countries');
no_hit($j, 'geo_asn', 'policy lists no ASNs');

# the ASN database used as the country one, and a file that is no database

my $r = check($leaf->{chain}, policy => $policy, ca_file => $root->{cert},
              dst => '192.0.2.10',
              args => ['--geoip-country', "$dir/missing.mmdb"]);
is($r->{exit}, 2, 'a missing database: exit 2');
like($r->{err}, qr/\Q$dir\/missing.mmdb\E/, 'a missing database is named');

write_file("$dir/junk.mmdb", "not a maxmind database\n" x 10);
$r = check($leaf->{chain}, policy => $policy, ca_file => $root->{cert},
           dst => '192.0.2.10', args => ['--geoip-asn', "$dir/junk.mmdb"]);
is($r->{signal}, 0, 'a junk database: no crash');
is($r->{exit}, 2, 'a junk database: exit 2');
like($r->{err}, qr/\Q$dir\/junk.mmdb\E/, 'a junk database is named');

$r = check($leaf->{chain}, policy => $policy, ca_file => $root->{cert},
           dst => '192.0.2.10', args => ['--geoip-country', $adb]);
is($r->{signal}, 0, 'an ASN database given as country: no crash');
ok($r->{exit} == 2 || ($r->{json} && !fired($r->{json}, 'geo_country')),
   'an ASN database given as country: refused or no country');

done_testing();

###############################################################################
