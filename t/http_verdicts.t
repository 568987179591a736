#!/usr/bin/perl

# HTTP module: allow, tag and block through a real nginx proxy to real TLS
# upstreams, per signal family (chain and trust, names, lifetime, issuer and
# provenance, intelligence, destination, custom rules); the variables; the
# block status and body; a blocked upstream receives no request.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');

# the test root stands for the system bundle (public roots: the 398-day
# rule of long_validity); nginx's master loads trust with this environment
$ENV{SSL_CERT_FILE} = $root->{cert};
my $other = $pki->ca('other', subject => '/CN=Example Corp Internal CA');
my $fake = $pki->ca('fake',
    subject => '/C=US/O=DigiCert Inc/CN=DigiCert TLS RSA SHA256 2020 CA1');

sub trusted { $pki->good_leaf(shift, issuer => $root, @_) }

# a server that sends the self-signed "DigiCert" root it signed with: a
# public CA's name on a root no bundle knows (a leaf whose issuer is merely
# missing is not mimicry)
sub mimic {
    my $leaf = $pki->leaf('mimic', issuer => $fake, subject => '/CN=mimic.test',
                          san => 'DNS:mimic.test', ext => [$SCT]);

    return { %$leaf, chain => $pki->bundle('mimic-chain', $leaf, $fake) };
}

my %cert = (
    good     => trusted('good'),
    internal => $pki->good_leaf('internal', issuer => $other),
    expired  => trusted('expired', not_before => -100 * $DAY,
                        not_after => -2 * $DAY),
    mismatch => trusted('mismatch', san => 'DNS:elsewhere.test'),
    nosan    => trusted('nosan', san => ''),
    longlife => trusted('longlife', not_after => 600 * $DAY),
    selfsigned => $pki->leaf('selfsigned', subject => '/CN=selfsigned.test',
                             san => 'DNS:selfsigned.test'),
    cobalt   => $pki->leaf('cobalt', subject => [
                    [C => 'Earth'], [ST => 'Cyberspace'], [L => 'Somewhere'],
                    [O => 'cobaltstrike'], [OU => 'AdvancedPenTesting'],
                    [CN => 'Major Cobalt Strike']],
                    san => 'DNS:cobalt.test'),
    mimic    => mimic(),
    listed   => trusted('listed'),
    evil     => trusted('evil'),
    geo      => trusted('geo'),
);

# a policy of the test's own: the default one plus a blocklist, a custom
# rule and a destination country (the GeoIP database maps 127.0.0.0/8 to KP)

write_file("$dir/blocklist.csv", "# abuse.ch SSLBL format\n"
    . "# Listingdate,SHA1,Listingreason\n"
    . "2026-01-01 00:00:00,$cert{listed}{sha1},test C&C\n");
write_file("$dir/test.policy", 'include ' . policy_dir() . "/default.policy;\n"
    . "list blocklist $dir/blocklist.csv;\n"
    . "rule evil_name sni ~^evil\\. 75 \"evil host name\";\n");
write_file("$dir/geo.policy", 'include ' . policy_dir() . "/default.policy;\n"
    . "geo_country 40 KP;\n");

my $geodb = make_country_db("$dir/country.mmdb");

my @names = sort keys %cert;
my ($port, $port_geo, @up) = free_ports(2 + @names);
my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

my ($upstreams, $servers) = $ng->tls_upstreams(\%cert, \%up);

$ng->start(<<"HTTP", ports => [$port, $port_geo, @up]);
$upstreams

    log_format cg '\$host \$status \$certguard_verdict \$certguard_score '
                  '\$certguard_signals \$certguard_cert_sha256';

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $dir/test.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/cef.log;

        access_log $logs/proxy.log cg;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Score \$certguard_score always;
        add_header X-Signals \$certguard_signals always;
        add_header X-Subject \$certguard_cert_subject always;
        add_header X-Issuer \$certguard_cert_issuer always;
        add_header X-Sha256 \$certguard_cert_sha256 always;

        location / {
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_pass https://\$host;
        }

        location /status/ {
            certguard_block_status 451;
            proxy_pass https://\$host/;
        }

        location /plain {
            return 200 "verdict=[\$certguard_verdict]\\n";
        }
    }

    server {
        listen 127.0.0.1:$port_geo;

        certguard on;
        certguard_policy $dir/geo.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_geoip_country $geodb;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_pass https://\$host;
        }
    }

$servers
HTTP

sub fetch {
    my ($name, $path, $p) = @_;

    return $ng->get($p // $port, $path // '/', Host => "$name.test");
}

sub signals { split /,/, ($_[0]->{headers}{'x-signals'} // '') }

sub has_signal {
    my ($r, $id) = @_;

    return scalar grep { $_ eq $id } signals($r);
}

# allow

my $r = fetch('good');
is($r->{status}, 200, 'good: 200');
like($r->{body}, qr/upstream good/, 'good: upstream answered');
is($r->{headers}{'x-verdict'}, 'allow', 'good: verdict allow');
is($r->{headers}{'x-score'}, '0', 'good: score 0');
is($r->{headers}{'x-signals'} // '', '', 'good: no signals');
is($r->{headers}{'x-sha256'}, $cert{good}{sha256}, 'good: cert sha256');
is($r->{headers}{'x-subject'}, 'CN=good.test', 'good: cert subject');
is($r->{headers}{'x-issuer'}, 'CN=certguard test root', 'good: cert issuer');
is(scalar $ng->access_log('good'), 1, 'good: upstream got the request');

# names: a mismatch alone on a trusted chain tags (and passes); no SAN
# alone allows with its signal

$r = fetch('mismatch');
is($r->{status}, 200, 'hostname mismatch: passes');
ok(has_signal($r, 'hostname_mismatch'), 'hostname mismatch: signal');
is($r->{headers}{'x-verdict'}, 'tag', 'hostname mismatch: verdict tag');

$r = fetch('nosan');
ok(has_signal($r, 'no_san'), 'no SAN: signal');
is($r->{status}, 200, 'no SAN: passes');

# lifetime

$r = fetch('longlife');
ok(has_signal($r, 'long_validity'), 'long validity: signal');
is($r->{status}, 200, 'long validity: allowed');

# tag: passes through, with the verdict in variables and logs

$r = fetch('internal');
is($r->{status}, 200, 'internal CA: passes');
is($r->{headers}{'x-verdict'}, 'tag', 'internal CA: tagged');
ok(has_signal($r, 'untrusted_chain'), 'internal CA: untrusted_chain');
is(scalar $ng->access_log('internal'), 1, 'internal CA: upstream reached');

$r = fetch('expired');
is($r->{status}, 200, 'expired: passes');
is($r->{headers}{'x-verdict'}, 'tag', 'expired: tagged');
ok(has_signal($r, 'expired'), 'expired: signal');

# block: chain and trust, provenance, intelligence, custom rule

for my $case (['selfsigned', 'self_signed'], ['cobalt', 'default_subject'],
              ['mimic', 'mimicked_ca'], ['listed', 'blocklisted'],
              ['evil', 'evil_name'])
{
    my ($name, $signal) = @$case;

    $r = fetch($name);
    is($r->{status}, 403, "$name: 403");
    is($r->{headers}{'x-verdict'}, 'block', "$name: verdict block");
    ok(has_signal($r, $signal), "$name: signal $signal");
    like($r->{body}, qr/^certguard: upstream certificate blocked .*\b$signal\b/,
         "$name: body names the signal");
    is($r->{headers}{'content-type'}, 'text/plain', "$name: text body");
    is(scalar $ng->access_log($name), 0, "$name: upstream received nothing");
}

# the block status directive

$r = fetch('selfsigned', '/status/');
is($r->{status}, 451, 'certguard_block_status 451');
like($r->{body}, qr/self_signed/, 'status 451: body names signals');
is(scalar $ng->access_log('selfsigned'), 0, 'status 451: upstream untouched');

# a HEAD request gets the status without a body

$r = $ng->get($port, '/', Host => 'selfsigned.test', request => 'HEAD /');
is($r->{status}, 403, 'HEAD: 403');
is($r->{body}, '', 'HEAD: no body');

# destination: a country from the GeoIP database

$r = fetch('geo', '/', $port_geo);
ok(has_signal($r, 'geo_country'), 'geo: geo_country fired');
is($r->{headers}{'x-verdict'}, 'tag', 'geo: country weight tags');

$r = fetch('geo');
ok(!has_signal($r, 'geo_country'), 'geo: no database, no signal');

# nothing scored: empty variables

$r = $ng->get($port, '/plain', Host => 'good.test');
is($r->{body}, "verdict=[]\n", 'no upstream: empty verdict');

# the access log sees the variables of the request

my %line;
$line{(split / /)[0]} //= $_ for $ng->log_lines('proxy');
like($line{'cobalt.test'}, qr/^cobalt\.test 403 block \d+ \S*default_subject/,
     'access log: block line');
like($line{'good.test'}, qr/^good\.test 200 allow 0  $cert{good}{sha256}$/,
     'access log: allow line');

# one CEF record per scored handshake

my @cef = $ng->log_lines('cef');
my ($cobalt) = grep { /dhost=cobalt\.test/ } @cef;
like($cobalt // '', qr/^CEF:0\|certguard\|certguard\|[^|]+\|[^|]+\|[^|]+\|\d+\| /,
     'CEF: header');
like($cobalt // '', qr/ act=blocked /, 'CEF: act=blocked');
like($cobalt // '', qr/ dpt=$up{cobalt} /, 'CEF: upstream port');
like($cobalt // '', qr/ src=127\.0\.0\.1 /, 'CEF: client address');
my ($internal) = grep { /dhost=internal\.test/ } @cef;
like($internal // '', qr/ act=tagged /, 'CEF: act=tagged');

like($ng->error_log, qr/certguard: blocked certificate of "cobalt\.test"/,
     'error log: block named');
unlike($ng->error_log, qr/upstream server temporarily disabled/,
       'no upstream disabled');
unlike($ng->error_log, qr/\[crit\]/, 'blocks log no crit line');
like($ng->error_log, qr/\[error\].*callback failed.*certificate verify failed/,
     'nginx logs the aborted handshake at error');

$ng->stop;

done_testing();

###############################################################################

sub make_country_db {
    my ($path) = @_;

    require MaxMind::DB::Writer::Tree;

    my %types = (country => 'map', iso_code => 'utf8_string',
                 registered_country => 'map');
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version => 6,
        record_size => 24,
        database_type => 'GeoLite2-Country',
        languages => ['en'],
        description => { en => 'certguard test countries' },
        remove_reserved_networks => 0,
        map_key_type_callback => sub { $types{$_[0]} },
    );
    $tree->insert_network('::127.0.0.0/104',
                          { country => { iso_code => 'KP' } });
    open my $fh, '>:raw', $path or die "$path: $!";
    $tree->write_tree($fh);
    close $fh;

    return $path;
}
