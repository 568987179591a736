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

use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

###############################################################################

my $MODULE = module_path('ngx_stream_certguard_module');
my $STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so';

plan(skip_all => "no $MODULE") unless -e $MODULE;
plan(skip_all => "no $STREAM") unless -e $STREAM;

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream test root');
my $good = $pki->leaf('good', issuer => $root, subject => '/CN=good.test',
                      san => 'DNS:good.test,IP:127.0.0.1', ext => [$SCT],
                      not_before => -10 * $DAY, not_after => 80 * $DAY);

write_file("$dir/test.policy",
           'include ' . policy_dir() . "/default.policy;\n");

my ($proxy, $short, $floodp, $backend, @dst) = free_ports(4 + 13);

# the flood destination is slow to answer (0.5 s), so that the whole flood
# arrives in both workers while the first probe still runs
my $relay = start_relay($dst[12], 0.5);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

my $dsts = join '', map { <<"SERVER" } 0 .. $#dst;
    server {
        listen 127.0.0.1:$dst[$_] ssl;
        ssl_certificate $good->{chain};
        ssl_certificate_key $good->{key};
        access_log $d/logs/dst-$_.log dst;
        proxy_pass 127.0.0.1:$backend;
    }
SERVER

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
        certguard_connect_sni on;     # closed tunnels never connect
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
}
MAIN

###############################################################################

# twenty tunnels from changing source ports: reuseport spreads them over
# both workers, the shared zone lets only the first one probe

for (1 .. 20) {
    like(tunnel($proxy, $dst[0]), qr/backend ok/, "tunnel $_ to dst 0")
        or last;
}

my @log = wait_lines('proxy', 20);
my %pids = map { (split / /)[0] => 1 } @log;
is(scalar keys %pids, 2, 'both workers served tunnels');
is(scalar(grep { /rx=0$/ } wait_lines('dst-0', 21)), 1,
   'one probe for tunnels in both workers');

# a flood to a cold destination over both workers: one probe

{
    my @s;

    for (1 .. 20) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$floodp",
                                      Timeout => 5) or last;
        print $s "CONNECT 127.0.0.1:$relay->{port} HTTP/1.1\r\n\r\n";
        push @s, $s;
    }

    my $ok = 0;
    for my $s (@s) {
        my $resp = '';
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 10;
        eval {
            while ($resp !~ /\r\n\r\n/) {
                sysread($s, my $buf, 1) or last;
                $resp .= $buf;
            }
        };
        alarm 0;
        $ok++ if $resp =~ /^HTTP\/1\.1 200 /;
        close $s;
    }

    is($ok, 20, 'flood over two workers: every CONNECT answered 200');
    my %fpids = map { (split / /)[0] => 1 } wait_lines('flood', 20);
    is(scalar keys %fpids, 2, 'flood over two workers: both workers served');
    sleep 0.5;
    is(scalar($ng->log_lines('dst-12')), 1,
       'flood over two workers: the destination saw exactly one probe');
}

# valid=3s: an entry older than that is probed again

tunnel($short, $dst[1]);
tunnel($short, $dst[1]);
is(scalar(grep { /rx=0$/ } wait_lines('dst-1', 3)), 1,
   'valid=3s: a second tunnel at once uses the entry');
sleep 4;
tunnel($short, $dst[1]);
is(scalar(grep { /rx=0$/ } wait_lines('dst-1', 5)), 2,
   'valid=3s: after expiry the destination is probed again');

# a 32 KB zone cannot hold a verdict for each of ten destinations: the least
# recently used ones are evicted, the most recent one is still served

for my $i (2 .. 11) {
    like(tunnel($proxy, $dst[$i]), qr/backend ok/, "tunnel to dst $i");
}
tunnel($proxy, $dst[11]);
is(scalar(grep { /rx=0$/ } wait_lines('dst-11', 3)), 1,
   'small zone: the most recent entry is kept');
tunnel($proxy, $dst[2]);
is(scalar(grep { /rx=0$/ } wait_lines('dst-2', 3)), 2,
   'small zone: the oldest entry was evicted and probed again');

unlike($ng->error_log, qr/\[(alert|emerg|crit)\]|exited on signal/,
       'no alerts or crashes in the error log');

$ng->stop;
kill 'TERM', $relay->{pid};
waitpid($relay->{pid}, 0);

done_testing();

###############################################################################

# A TCP relay on a free port to 127.0.0.1:$to that waits $delay seconds
# before it connects onward.
sub start_relay {
    my ($to, $delay) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 64, ReuseAddr => 1)
        or die "relay: $!";
    my $pid = fork // die "fork: $!";

    if ($pid) {
        my $port = $l->sockport;
        close $l;
        return { pid => $pid, port => $port };
    }

    $SIG{CHLD} = 'IGNORE';

    while (my $c = $l->accept) {
        my $child = fork;
        next unless defined $child;
        if ($child) {
            close $c;
            next;
        }

        sleep $delay;
        my $u = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$to")
            or POSIX::_exit(0);
        my $sel = IO::Select->new($c, $u);
        OUTER: while (1) {
            for my $h ($sel->can_read(10)) {
                my $n = sysread($h, my $buf, 16384);
                last OUTER unless $n;
                syswrite($h == $c ? $u : $c, $buf);
            }
        }
        POSIX::_exit(0);
    }

    POSIX::_exit(0);
}

# GET / through a CONNECT tunnel (TLS to the destination); the response.
sub tunnel {
    my ($port, $to) = @_;
    my $r = run({ timeout => 20 }, '/usr/bin/curl', '-sS', '--max-time', '10',
                '--proxy', "http://127.0.0.1:$port", '--cacert',
                $root->{cert}, "https://127.0.0.1:$to/");

    return $r->{out} . $r->{err};
}


# The lines of logs/NAME.log once there are at least $n (5 s at most).
sub wait_lines {
    my ($name, $n) = @_;
    my $deadline = time() + 5;
    my @lines;

    while (1) {
        @lines = $ng->log_lines($name);
        return @lines if @lines >= $n || time() > $deadline;
        sleep 0.05;
    }
}

###############################################################################

END {
    kill 'TERM', $relay->{pid} if $relay && $relay->{pid};
}

###############################################################################
