#!/usr/bin/perl

# Stream module with two workers: the verdict cache is shared between them
# (one probe however many workers see the destination, also when a flood of
# tunnels reaches both workers while the destination is still cold), its
# entries expire after valid=, and a zone too small for every destination
# evicts the least recently used entries instead of failing.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

use Time::HiRes qw(sleep);

###############################################################################

my ($MODULE, $STREAM) = need_stream();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream test root');
my $good = $pki->good_leaf('good', issuer => $root,
                           san => 'DNS:good.test,IP:127.0.0.1');

# one destination server on 60 loopback addresses: 60 cache entries
my @many = map { "127.0.0.$_" } 1 .. 60;
my $wide = $pki->good_leaf('wide', issuer => $root,
                           san => join(',', map { "IP:$_" } @many));

write_file("$dir/test.policy",
           'include ' . policy_dir() . "/default.policy;\n");

my ($proxy, $short, $floodp, $backend, $many, @dst) = free_ports(5 + 13);

# the flood destination is slow to answer (0.5 s), so that the whole flood
# arrives in both workers while the first probe still runs
my $relay = start_relay($dst[12], 0.5);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

my $dsts = join '', map {
    dst_server(name => $_, port => $dst[$_], cert => $good,
               backend => $backend, logs => "$d/logs")
} 0 .. $#dst;

$ng->start(<<"HTTP", module => 0, workers => 2, ports => [$backend],
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP
           main => <<"MAIN");
load_module $STREAM;
load_module $MODULE;

stream {
    log_format cg '\$pid \$status v=\$certguard_verdict';
    log_format dst '\$ssl_protocol rx=\$bytes_received';

    certguard_policy $dir/test.policy;
    certguard_trusted_certificate $root->{cert};
    certguard_connect_ports 1024-65535;
    certguard_connect_allow 127.0.0.0/8;
    certguard_connect_sni off;

    server {
        listen 127.0.0.1:$proxy reuseport;
        certguard_connect on;
        certguard_cache zone=workers_cg:32k valid=10m;
        access_log $d/logs/proxy.log cg;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$floodp reuseport;
        certguard_connect on;
        certguard_cache zone=flood_cg:1m valid=10m;
        certguard_connect_sni on;     # the probe waits for the ClientHello
        access_log $d/logs/flood.log cg;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$short reuseport;
        certguard_connect on;
        certguard_cache zone=short_cg:1m valid=3s;
        access_log $d/logs/short.log cg;
        proxy_pass \$certguard_upstream;
    }

$dsts

    log_format many '\$server_addr rx=\$bytes_received';

    server {
@{[ join '', map { "        listen $_:$many ssl;\n" } @many ]}
        ssl_certificate $wide->{chain};
        ssl_certificate_key $wide->{key};
        access_log $d/logs/many.log many;
        proxy_pass 127.0.0.1:$backend;
    }
}
MAIN

###############################################################################

# twenty tunnels from changing source ports: reuseport spreads them over
# both workers, the shared zone lets only the first one probe

for (1 .. 20) {
    like(tunnel($proxy, $dst[0]), qr/backend ok/, "tunnel $_ to dst 0")
        or last;
}

my @log = $ng->wait_lines('proxy', 20);
my %pids = map { (split / /)[0] => 1 } @log;
is(scalar keys %pids, 2, 'both workers served tunnels');
is(scalar(grep { /rx=0$/ } $ng->wait_lines('dst-0', 21)), 1,
   'one probe for tunnels in both workers');

# a flood to a cold destination over both workers: one probe

{
    my $probes;

    # the tunnels' sessions end (and are logged) when they close: until
    # then the destination's log holds the probes alone
    my (undef, $ok, $tls) = connect_flood($floodp, "127.0.0.1:$relay->{port}",
        20, client_hello(''), sub { $probes = $ng->log_lines('dst-12') });

    is($ok, 20, 'flood over two workers: every CONNECT answered 200');
    is($tls, 20, 'flood over two workers: every tunnel reached the server');
    my %fpids = map { (split / /)[0] => 1 } $ng->wait_lines('flood', 20);
    is(scalar keys %fpids, 2, 'flood over two workers: both workers served');
    is($probes, 1,
       'flood over two workers: the destination saw exactly one probe');
}

# valid=3s: an entry older than that is probed again

tunnel($short, $dst[1]);
tunnel($short, $dst[1]);
is(scalar(grep { /rx=0$/ } $ng->wait_lines('dst-1', 3)), 1,
   'valid=3s: a second tunnel at once uses the entry');
sleep 4;
tunnel($short, $dst[1]);
is(scalar(grep { /rx=0$/ } $ng->wait_lines('dst-1', 5)), 2,
   'valid=3s: after expiry the destination is probed again');

# a 32 KB zone cannot hold a verdict for each of sixty destinations (it
# holds about forty): the least recently used ones are evicted, the most
# recent one is still served

my $bad = 0;
for my $a (@many) {
    $bad++ unless tunnel_to($proxy, "https://$a:$many/") =~ /backend ok/;
}
is($bad, 0, 'tunnels to 60 destinations');

sub probes {
    my ($a, $n) = @_;

    return scalar grep { /^\Q$a\E rx=0$/ } $ng->wait_lines('many', $n);
}

tunnel_to($proxy, "https://$many[-1]:$many/");
is(probes($many[-1], 121), 1, 'small zone: the most recent entry is kept');
tunnel_to($proxy, "https://$many[0]:$many/");
is(probes($many[0], 123), 2,
   'small zone: the oldest entry was evicted and probed again');

unlike($ng->error_log, qr/\[(alert|emerg|crit)\]|exited on signal/,
       'no alerts or crashes in the error log');

$ng->stop;
stop_relay($relay);

done_testing();

###############################################################################

# GET / through a CONNECT tunnel (TLS to the destination); the response.
sub tunnel {
    my ($port, $to) = @_;

    return tunnel_to($port, "https://127.0.0.1:$to/");
}

sub tunnel_to {
    my ($port, $url) = @_;
    my $r = proxy_curl($root->{cert}, $port, $url);

    return $r->{body} . $r->{err};
}

###############################################################################
