#!/usr/bin/perl

# The CEF fields a SOC joins and pivots on (issue 12), from real nginx runs,
# every record read by two parsers field by field (liblognorm's
# lognormalizer and the strict parser of t/lib/Certguard/CEF.pm): method,
# User-Agent, the proxy's host name, the upstream's TLS version and cipher
# as the upstream itself saw them, the leaf's SHA-1 and SPKI SHA-256, a
# connection id that $certguard_id shows in the access log, the query
# string kept out of request unless certguard_log says query=on; a
# forward-proxy refusal; and a probe failure of the stream module, which
# is an event class of its own.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::CEF;
use Certguard::Syslog;
use Certguard::Stream;

use IO::Socket::INET;
use Sys::Hostname qw(hostname);

###############################################################################

Certguard::Nginx::need_module();

plan(skip_all => 'no lognormalizer (liblognorm-utils)')
    unless grep { -x "$_/lognormalizer" } split /:/, $ENV{PATH};

my $STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so';
my $SMODULE = module_path('ngx_stream_certguard_module');
my $stream = -e $STREAM && -e $SMODULE;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');

# leaves of one Certs.pm share their key: certificates re-issued under it
my %cert = (
    good12 => $pki->good_leaf('good12', issuer => $root),
    good13 => $pki->good_leaf('good13', issuer => $root),
    bad    => $pki->leaf('bad', subject => '/CN=bad.test',
                         san => 'DNS:bad.test'),
);

my @names = sort keys %cert;
my ($port, $fport, $sport, $closed, @up) = free_ports(4 + @names);
my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";
my $conf = repo_root() . '/conf/forward-proxy.conf';
my $cipher12 = 'ECDHE-RSA-AES128-GCM-SHA256';

my $servers = join '', map {
    $ng->tls_server(name => $_, port => $up{$_}, cert => $cert{$_},
                    $_ eq 'good12'
                    ? (protocols => 'TLSv1.2', extra => "ssl_ciphers $cipher12;")
                    : $_ eq 'good13' ? (protocols => 'TLSv1.3') : ())
} @names;
my $upstreams = join '', map {
    "    upstream $_.test { server 127.0.0.1:$up{$_}; }\n"
} @names;

my $main = !$stream ? '' : <<"MAIN";
load_module $STREAM;
load_module $SMODULE;

stream {
    certguard_policy @{[ policy_dir() ]}/default.policy;
    certguard_trusted_certificate $root->{cert};
    certguard_connect_ports 1024-65535;
    certguard_connect_allow 127.0.0.0/8;
    certguard_probe_timeout 2s;

    server {
        listen 127.0.0.1:$sport;
        certguard_connect on;
        certguard_log $logs/cef-stream.log;
        proxy_pass \$certguard_upstream;
    }
}
MAIN

$ng->start(<<"HTTP", ports => [$port, $fport, @up, $stream ? $sport : ()],
$upstreams
    log_format ids '\$certguard_id \$request_uri';

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        access_log $logs/ids.log ids;
        proxy_ssl_protocols TLSv1.2 TLSv1.3;

        location / {
            certguard_log $logs/cef.log;
            proxy_pass https://\$host;
        }

        location /q/ {
            certguard_log $logs/cef-query.log min_verdict=tag query=on;
            proxy_pass https://\$host;
        }
    }

    # a forward proxy that refuses a port
    server {
        listen 127.0.0.1:$fport;
        access_log $logs/ids-fwd.log ids;
        certguard_log $logs/cef-fwd.log;
        certguard_http_ports 80;

        location / {
            include $conf;
        }
    }

$servers
HTTP
    main => $main);

###############################################################################

# Requests on one client connection (HTTP/1.1 keep-alive): the responses.
sub keepalive {
    my (@req) = @_;
    my ($s, @resp);

    $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10)
        or die "connect: $!";

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 20;
    for my $req (@req) {
        print $s $req;
        my $raw = '';
        while ($raw !~ /\r\n\r\n/) {
            sysread($s, my $buf, 4096) or last;
            $raw .= $buf;
        }
        my ($len) = $raw =~ /^Content-Length: (\d+)/mi;
        my ($head) = $raw =~ /^(.*?\r\n\r\n)/s;
        while (defined $len && length($raw) < length($head // '') + $len) {
            sysread($s, my $buf, 4096) or last;
            $raw .= $buf;
        }
        push @resp, Certguard::Nginx::parse_response($raw);
    }
    alarm 0;
    close $s;

    return @resp;
}

# The records of logs/NAME.log, each read by both parsers (undef where
# they disagree or either rejects it, with a diagnostic).
sub records {
    my ($name, $n) = @_;

    return map {
        my $line = $_;
        my $r = eval { Certguard::CEF::both($line) };
        diag("$name: $@$line") unless $r;
        $r;
    } $ng->wait_lines($name, $n // 1);
}

my $host = lc hostname();
my $ua = 'certguard-test/1.0 (x=y|z\\ cs1=forged)';

###############################################################################

# two requests on one client connection, the query cut from request

my @r = keepalive(map {
    "GET /p/$_?token=s3cret&x=1 HTTP/1.1\r\nHost: good12.test\r\n"
    . "User-Agent: $ua\r\n\r\n"
} 1, 2);
is(scalar(grep { $_->{status} == 200 } @r), 2,
   'keep-alive: two requests through');

my @rec = records('cef', 2);
is(scalar @rec, 2, 'two records, both parsers agree on each');
my @ids = $ng->wait_lines('ids', 2);
my ($id1) = ($ids[0] // '') =~ /^([0-9a-f]{16}) /;
ok($id1, '$certguard_id: 16 lower-case hex characters');
is(($ids[1] // '') =~ s/ .*//sr, $id1,
   '$certguard_id: the same for both requests of the connection');

my @up12 = $ng->access_log('good12');

for my $i (0, 1) {
    my $x = $rec[$i] && $rec[$i]{ext} || {};
    my $n = $i + 1;

    is($rec[$i] && $rec[$i]{class}, 'cert-allow', "request $n: cert-allow");
    is($x->{requestMethod}, 'GET', "request $n: requestMethod");
    is($x->{request}, "https://good12.test/p/$n?",
       "request $n: request ends at the query");
    is($x->{requestClientApplication}, $ua,
       "request $n: requestClientApplication is the User-Agent, whole");
    is($x->{dvchost}, $host, "request $n: dvchost is the host name");
    is($x->{connectionId}, $id1, "request $n: connectionId is \$certguard_id");
    is($x->{app}, ($up12[$i] // '') =~ s/ .*//sr,
       "request $n: app is the TLS version the upstream logged");
    is($x->{app}, 'TLSv1.2', "request $n: TLSv1.2");
    is($x->{tlsCipher}, $cipher12, "request $n: tlsCipher is the upstream's");
    is($x->{flexString1Label}, 'sha1', "request $n: flexString1Label");
    is($x->{flexString1}, $cert{good12}{sha1}, "request $n: leaf SHA-1");
    is($x->{flexString2Label}, 'spkiSha256', "request $n: flexString2Label");
    is($x->{flexString2}, $cert{good12}{spki_sha256},
       "request $n: leaf SPKI SHA-256");
    is($x->{cs3}, $cert{good12}{sha256}, "request $n: leaf SHA-256");
}

like($up12[1] // '', qr/^TLSv1\.2 r /,
     'the second request resumed the upstream session (its record comes '
     . 'from the session)');
unlike(join('', $ng->log_lines('cef')), qr/s3cret/,
       'the query\'s token is in no record');

# TLS 1.3

my ($t13) = keepalive("GET /t HTTP/1.1\r\nHost: good13.test\r\n"
                      . "Connection: close\r\n\r\n");
is($t13->{status}, 200, 'TLS 1.3: request through');
my ($r13) = (records('cef', 3))[2];
is($r13 && $r13->{ext}{app}, 'TLSv1.3', 'TLS 1.3: app');
like($r13 && $r13->{ext}{tlsCipher} // '', qr/^TLS_(?:AES|CHACHA20)_\w+$/,
     'TLS 1.3: tlsCipher is a TLS 1.3 suite');
is($r13 && $r13->{ext}{request}, 'https://good13.test/t',
   'TLS 1.3: a request without a query is whole');

# another connection, query=on

my ($q) = keepalive("GET /q/a?token=kept HTTP/1.1\r\nHost: good13.test\r\n"
                    . "User-Agent: curl/8\r\nConnection: close\r\n\r\n");
is($q->{status}, 200, 'query=on: request through');

# a block: POST, and its own record

my ($b) = keepalive("POST /q/x?k=v HTTP/1.1\r\nHost: bad.test\r\n"
                    . "Content-Length: 0\r\nConnection: close\r\n\r\n");
is($b->{status}, 403, 'bad: blocked');

my ($qb) = records('cef-query', 1);
is(scalar $ng->log_lines('cef-query'), 1,
   'min_verdict=tag with query=on: the block logged, the allow not');
my $qx = $qb && $qb->{ext} || {};
is($qb && $qb->{class}, 'cert-block', 'query=on: block record');
is($qx->{requestMethod}, 'POST', 'block: requestMethod POST');
is($qx->{request}, 'https://bad.test/q/x?k=v', 'query=on: the query kept');
ok(!exists $qx->{requestClientApplication},
   'no User-Agent header: no requestClientApplication');
is($qx->{flexString1}, $cert{bad}{sha1}, 'block: SHA-1 of the bad leaf');
is($qx->{flexString2}, $cert{good12}{spki_sha256},
   'block: the same SPKI SHA-256 as the good leaves (one key, re-issued)');
isnt($qx->{flexString1}, $cert{good12}{sha1},
     '... while the certificate digests differ');
my @ids2 = $ng->wait_lines('ids', 5);
my ($id3) = ($ids2[4] // '') =~ /^([0-9a-f]{16}) \/q\/x/;
is($qx->{connectionId}, $id3, 'block: connectionId is $certguard_id');
isnt($id3 // '', $id1, 'another connection, another id');
my %seen = map { (/^(\S+)/)[0] => 1 } @ids2[2 .. 4];
ok(keys %seen == 3 && !$seen{$id1}, 'each connection its own id');

# a forward-proxy refusal

my $fr = run({ timeout => 20 }, 'curl', '-s', '-o', '/dev/null', '-w',
             '%{http_code}', '--max-time', '10', '-A', $ua,
             '-x', "http://127.0.0.1:$fport",
             'http://refused.test:25/p?token=s3cret');
is($fr->{out}, '403', 'forward proxy: port 25 refused');

my ($ref) = records('cef-fwd', 1);
my $rx = $ref && $ref->{ext} || {};
is($ref && $ref->{class}, 'dest-refused', 'refusal: dest-refused');
is($rx->{reason}, 'port', 'refusal: reason port');
is($rx->{requestMethod}, 'GET', 'refusal: requestMethod');
is($rx->{request}, 'http://refused.test:25/p?', 'refusal: query cut');
is($rx->{requestClientApplication}, $ua, 'refusal: User-Agent');
is($rx->{dvchost}, $host, 'refusal: dvchost');
my ($fid) = ($ng->wait_lines('ids-fwd', 1))[0] =~ /^(\S+)/;
is($rx->{connectionId}, $fid, 'refusal: connectionId is $certguard_id');
ok(!exists $rx->{app} && !exists $rx->{flexString1},
   'refusal: no TLS or certificate keys');

# a probe failure of the stream module: its own event class

SKIP: {
    skip 'no stream modules', 7 unless $stream;

    # answered first, probed with the tunnel's ClientHello, refused after
    my $t = connect_hello($sport, "127.0.0.1:$closed", client_hello(undef));
    is($t->{connect}, 200, 'stream: a closed port, CONNECT answered first');
    is($t->{reply}, 'alert', 'stream: a closed port, then a TLS alert');

    my ($pf) = records('cef-stream', 1);
    my $px = $pf && $pf->{ext} || {};
    is($pf && $pf->{class}, 'probe-failed', 'stream: probe-failed class');
    is($pf && $pf->{name}, 'TLS certificate probe failed', 'stream: name');
    is($pf && $pf->{severity}, 5, 'stream: severity 5');
    is($px->{act}, 'blocked', 'stream: act=blocked (probe failure block)');
    is($px->{reason}, 'probe_failed', 'stream: reason');
}

$ng->stop;

done_testing();

###############################################################################
