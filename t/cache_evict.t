#!/usr/bin/perl

# The verdict cache's room and eviction (HTTP module, one worker): a 64 KB
# zone holds a hundred destinations; once it is full, each new one-block
# entry evicts exactly one entry, and a large entry (a result with sixteen
# long hits) evicts about the blocks it needs, not most of the zone: the
# warm entries stay hits.  A verdict served from the cache writes the same
# CEF record as the fresh one.

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

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard evict test root');
my $cert = $pki->good_leaf('fill', issuer => $root,
                           subject => '/CN=fill.test/O=Example Inc'
                                      . '/L=San Francisco/ST=California/C=US',
                           san => 'DNS:*.fill.test');

# sixteen hits with long details: a packed result of about 2 KB
my $detail = 'a detail as long as details get, so that the packed result '
           . 'of this policy is as large as';
write_file("$dir/big.policy",
           'include ' . policy_dir() . "/default.policy;\n"
           . join('', map { sprintf "rule big_%02d subject CN 1 \"%s %02d\";\n",
                                    $_, $detail, $_ } 1 .. 16));

my ($port, $sport, $up) = free_ports(3);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

$ng->start(<<"HTTP", ports => [$port, $sport, $up]);
    log_format fill '\$arg_n \$certguard_cache';

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_cache zone=fill:64k valid=1h;
        certguard_log $logs/cef.log;

        access_log $logs/fill.log fill;

        # every request a full handshake, named by ?n=
        proxy_ssl_session_reuse off;
        proxy_ssl_server_name on;
        proxy_ssl_name \$arg_n;

        location /small {
            proxy_pass https://127.0.0.1:$up;
        }

        location /big {
            certguard_policy $dir/big.policy;
            proxy_pass https://127.0.0.1:$up;
        }
    }

    server {
        listen 127.0.0.1:$sport;
        location = /metrics {
            certguard_status;
        }
    }

@{[ $ng->tls_server(name => 'fill', port => $up, cert => $cert) ]}
HTTP

sub evictions {
    return $ng->counters($sport, 'http',
                         'certguard_cache_evictions_total')->[0] // -1;
}

sub fetch {
    my ($path, $name) = @_;
    my $r = $ng->get($port, "/$path?n=$name.fill.test");

    return $r->{status};
}

sub sources {
    my %s = map { split / / } $ng->log_lines('fill');

    return \%s;
}

# fill: 200 destinations into room for about a hundred

my $bad = 0;
for my $i (1 .. 200) {
    $bad++ if fetch('small', "s$i") != 200;
}
is($bad, 0, 'fill: 200 destinations answered');

my $filled = evictions();
my $room = 200 - $filled;
ok($filled > 0, "fill: the zone is full ($filled evicted)");

# 64 KB is 16 pages of eight 512-byte blocks; the slab pool's own pages
# and the zone's header take a few
cmp_ok($room, '>=', 96, "a 64 KB zone holds $room one-block entries");

# once full, one insertion evicts exactly one entry

for my $i (201 .. 250) {
    $bad++ if fetch('small', "s$i") != 200;
}
is($bad, 0, '50 more destinations answered');
is(evictions() - $filled, 50, 'full zone: 50 insertions evicted 50 entries');

# ten large entries evict what they need: a few blocks each

my $before = evictions();
for my $i (1 .. 10) {
    $bad++ if fetch('big', "b$i") != 200;
}
is($bad, 0, 'ten large entries answered');
my $big = evictions() - $before;
cmp_ok($big, '>=', 20, "ten large entries evicted $big (several blocks each)");
cmp_ok($big, '<=', 60, 'ten large entries evicted at most 6 blocks each');

# the 40 destinations used last before them are still cached

my @warm = map { "s$_" } reverse 211 .. 250;
my $lines = scalar $ng->log_lines('fill');
$bad += fetch('small', $_) != 200 for @warm;
is($bad, 0, 'warm destinations answered');
my @src = map { (split / /)[1] } ($ng->log_lines('fill'))[$lines .. $lines + 39];
is(scalar(grep { $_ eq 'HIT' } @src), 40,
   'the 40 warm destinations are all still hits');
is(sources()->{'b10.fill.test'}, 'MISS', 'the last large entry was scored');
is(fetch('big', 'b10'), 200, 'the last large entry again');
is((split / /, ($ng->log_lines('fill'))[-1])[1], 'HIT',
   'the last large entry is a hit');

# fresh and cached verdicts write the same record (but for the connection)

my @cef = grep { /dhost=b10\.fill\.test/ } $ng->log_lines('cef');
is(scalar @cef, 2, 'two records of the large entry: fresh and cached');
# daysToExpiry counts from each record's own time: the two a second apart
# can be a day apart for a certificate made that second
my @days = map { / cn3=(-?\d+)/ ? $1 : undef } @cef;
ok(defined $days[0] && defined $days[1] && $days[0] - $days[1] >= 0
   && $days[0] - $days[1] <= 1, "daysToExpiry: @{[ $days[0] // '-' ]} "
   . "then @{[ $days[1] // '-' ]}");
s/ (rt|spt|connectionId|cn3)=\S+//g for @cef;
is($cef[1], $cef[0], 'the cached verdict writes the fresh one\'s record');
like($cef[0], qr/big_16/, 'the record names the hits');

$ng->stop;

done_testing();
