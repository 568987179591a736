#!/usr/bin/perl

# Stream module, debug log: with "error_log ... debug" (nginx built
# --with-debug, as Debian's is), a CONNECT session's path shows in order:
# the request, the name resolved, the answer, the ClientHello in the
# tunnel, the cache miss, the probe with the client's parameters (claim,
# connect, handshake, verdict), the session's verdict and the open tunnel;
# then a cache hit, a tunnel refused with an alert, and the same
# destination refused with 403 before the answer.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

###############################################################################

my ($MODULE, $STREAM) = need_stream(curl => 1);

my $v = run({ timeout => 10 }, $Certguard::Nginx::NGINX, '-V');
plan(skip_all => 'nginx without --with-debug')
    unless ($v->{err} . $v->{out}) =~ /--with-debug/;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard debug test root');
my $good = $pki->good_leaf('good', issuer => $root, san => 'DNS:good.test');
my $self = $pki->leaf('self', subject => '/CN=self.test',
                      san => 'DNS:self.test');

my ($dns, $proxy, $backend, $gport, $sport) = free_ports(5);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

$ng->dns_server($dns, '*.test' => ['127.0.0.1']);

my %o = (module => 0, ports => [$backend], error_level => 'debug');
$ng->start(<<"HTTP", %o, main => <<"MAIN");
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP
load_module $STREAM;
load_module $MODULE;

stream {
    resolver 127.0.0.1:$dns ipv6=off;
    log_format dst '\$ssl_protocol';

    certguard_cache zone=debug_cg:1m;

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        preread_timeout 3s;
        proxy_pass \$certguard_upstream;
    }

@{[ dst_server(name => 'good', port => $gport, cert => $good,
               backend => $backend, logs => "$d/logs") ]}
@{[ dst_server(name => 'self', port => $sport, cert => $self,
               backend => $backend, logs => "$d/logs") ]}
}
MAIN

###############################################################################

my $r = proxy_curl($root->{cert}, $proxy, "https://good.test:$gport/");
is($r->{code}, 200, 'good.test through CONNECT: 200');

my $up = qr/127\.0\.0\.1:$gport/;

in_order('the first tunnel',
    [qr/CONNECT good\.test:$gport, \d+ bytes of request/, 'request parsed'],
    [qr/resolving good\.test/, 'lookup: resolving'],
    [qr/good\.test resolved, addresses: 1, one allowed/, 'resolved'],
    [qr/destination of good\.test:$gport is $up/, 'destination address'],
    [qr/CONNECT answered, waiting for the ClientHello/, 'CONNECT answered'],
    [qr/ClientHello: SNI "good\.test", ALPN \d+ bytes/, 'ClientHello read'],
    [qr/client SNI "good\.test" in the tunnel to good\.test:$gport/,
     'client SNI read'],
    [qr/no cached verdict for $up/, 'cache miss'],
    [qr/probe of $up starts, the zone's claim held/, 'probe claims the key'],
    [qr/probing $up/, 'probe connects'],
    [qr/probe connected to $up/, 'probe connected'],
    [qr/probe with the client's parameters: SNI "good\.test"/,
     "the client's parameters"],
    [qr/probe handshake with $up done, chain captured/, 'handshake done'],
    [qr/probe verdict allow, score \d+, for $up/, 'probe verdict'],
    [qr/verdict allow, score \d+, for good\.test:$gport/, 'session verdict'],
    [qr/tunnel to $up open, verdict allow/, 'tunnel open']);
unlike($ng->error_log, qr/not set|none of the client's list known/,
       "OpenSSL took every parameter of curl's ClientHello");

my $before = length $ng->error_log;

$r = proxy_curl($root->{cert}, $proxy, "https://good.test:$gport/");
is($r->{code}, 200, 'good.test again: 200');

in_order('the second tunnel',
    [qr/cached verdict for $up/, 'cache hit'],
    [qr/tunnel to $up open/, 'tunnel open'],
    { from => $before });
unlike(substr($ng->error_log, $before), qr/certguard: probing/,
       'the second tunnel: no probe');

$before = length $ng->error_log;

$r = proxy_curl($root->{cert}, $proxy, "https://self.test:$sport/", '-k');
is($r->{connect}, 200, 'self.test: CONNECT answered');
like($r->{err}, qr/alert handshake failure/, 'self.test: a TLS alert');

in_order('the blocked tunnel',
    [qr/probe verdict block/, 'probe verdict block'],
    [qr/verdict block, score \d+, for self\.test:$sport/, 'session verdict'],
    [qr/handshake_failure alert sent/, 'tunnel refused'],
    [qr/lingering for \d+ ms before 403/, 'lingering close'],
    { from => $before });

# the destination is known now: refused before the answer

$before = length $ng->error_log;

$r = proxy_curl($root->{cert}, $proxy, "https://self.test:$sport/", '-k');
is($r->{connect}, 403, 'self.test again: CONNECT refused with 403');

in_order('the known destination',
    [qr/127\.0\.0\.1:$sport is known to show a blocked certificate/,
     'known to be blocked'],
    [qr/answering 403: "certguard: certificate blocked: .*self_signed/,
     '403 answered'],
    { from => $before });

unlike($ng->error_log, qr/\[(alert|emerg|crit)\]|segfault|exited on signal/,
       'no alerts or crashes in the error log');

$ng->stop;

done_testing();

###############################################################################

# Each pattern is found in certguard's lines of the error log, each after
# the one before it; the last argument may be { from => offset }.
sub in_order {
    my ($name, @steps) = @_;
    my $from = ref $steps[-1] eq 'HASH' ? (pop @steps)->{from} : 0;
    my (@lines, @found);

    # a session's last lines (the lingering close) may come after the
    # client has its answer: read again until every step is there, 5 s
    for my $try (1 .. 50) {
        @lines = grep { /certguard/ } split /\n/,
                 substr($ng->error_log, $from);
        @found = ();
        my $i = 0;
        for my $step (@steps) {
            $i++ while $i < @lines && $lines[$i] !~ $step->[0];
            push @found, $i < @lines;
            $i = 0 if $i >= @lines;     # the others are looked for anyway
        }
        last unless grep { !$_ } @found;
        select(undef, undef, undef, 0.1);
    }

    for my $k (0 .. $#steps) {
        ok($found[$k], "$name: $steps[$k][1]")
            or diag("no line matching $steps[$k][0]");
    }
}


###############################################################################
