#!/usr/bin/perl

# Stream module, CONNECT front end: curl through the proxy (HTTPS_PROXY
# style) to local TLS destinations with good and bad certificates, TLS 1.2
# and 1.3, names resolved by nginx's resolver and IP literals; blocked
# destinations never see a client byte; the verdict cache; monitor mode;
# CEF records; variables; malformed requests; the open-relay guards; and
# the ClientHello SNI check inside the tunnel (sni_mismatch).

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

use IO::Socket::INET;
use IO::Socket::SSL;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

###############################################################################

my $MODULE = module_path('ngx_stream_certguard_module');
my $STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so';

plan(skip_all => "no $MODULE") unless -e $MODULE;
plan(skip_all => "no $STREAM") unless -e $STREAM;
plan(skip_all => 'no curl') unless -x '/usr/bin/curl';

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream test root');

my %cert = (
    good => $pki->leaf('good', issuer => $root, subject => '/CN=good.test',
                       san => 'DNS:good.test,DNS:tls12.test,IP:127.0.0.1',
                       ext => [$SCT], not_before => -10 * $DAY,
                       not_after => 80 * $DAY),
    self => $pki->leaf('self', subject => '/CN=self.test',
                       san => 'DNS:self.test'),
    good6 => $pki->leaf('good6', issuer => $root, subject => '/CN=good6.test',
                        san => 'IP:::1', ext => [$SCT],
                        not_before => -10 * $DAY, not_after => 80 * $DAY),
);

write_file("$dir/test.policy", 'include ' . policy_dir()
    . "/default.policy;\nweight sni_mismatch 100;\n");

my $dns = start_dns();
my ($proxy, $monitor, $strict, $backend, $good, $tls12, $self, $sysproxy,
    $good6) = free_ports(9);

# a syslog receiver for certguard_log syslog:
my $syslog = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Proto => 'udp') or die "udp: $!";
my $syslog_port = $syslog->sockport;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

my $common = <<"CONF";
        certguard_policy $dir/test.policy;
        certguard_trusted_certificate $root->{cert};
        preread_timeout 3s;
        proxy_pass \$certguard_upstream;
        proxy_connect_timeout 3s;
CONF

$ng->start(<<"HTTP", module => 0, ports => [$backend], main => <<"MAIN");
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP
load_module $STREAM;
load_module $MODULE;

stream {
    resolver 127.0.0.1:$dns->{port} ipv6=off valid=1s;
    resolver_timeout 3s;

    log_format cg '\$status v=\$certguard_verdict s=\$certguard_score '
                  'sig="\$certguard_signals" up=\$certguard_upstream '
                  'sha=\$certguard_cert_sha256 '
                  'subj="\$certguard_cert_subject"';
    log_format dst '\$ssl_protocol sni="\$ssl_server_name" '
                   'rx=\$bytes_received';
    log_format cef '\$certguard_cef';

    certguard_cache zone=stream_cg:1m valid=5m;

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports 443 1024-65535;
        certguard_connect_allow 127.0.0.0/8 ::1;
        certguard_log $d/logs/cef.log;
        access_log $d/logs/proxy.log cg;
        access_log $d/logs/proxy-cef.log cef;
$common
    }

    server {
        listen 127.0.0.1:$sysproxy;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_log syslog:server=127.0.0.1:$syslog_port,tag=certguard
                      min_verdict=block;
$common
    }

    server {
        listen 127.0.0.1:$monitor;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_mode monitor;
        certguard_log $d/logs/cef-monitor.log;
        access_log $d/logs/monitor.log cg;
$common
    }

    # defaults: port 443 only, loopback refused
    server {
        listen 127.0.0.1:$strict;
        certguard_connect on;
$common
    }

@{[ dst_server('good', $good, $cert{good}, 'TLSv1.3') ]}
@{[ dst_server('tls12', $tls12, $cert{good}, 'TLSv1.2') ]}
@{[ dst_server('self', $self, $cert{self}, 'TLSv1.2 TLSv1.3') ]}
@{[ dst_server('good6', $good6, $cert{good6}, 'TLSv1.3', '[::1]') ]}
}
MAIN

sub dst_server {
    my ($name, $port, $c, $protocols, $addr) = @_;

    $addr //= '127.0.0.1';

    return <<"SERVER";
    server {
        listen $addr:$port ssl;
        ssl_certificate $c->{chain};
        ssl_certificate_key $c->{key};
        ssl_protocols $protocols;
        access_log $d/logs/dst-$name.log dst;
        proxy_pass 127.0.0.1:$backend;
    }
SERVER
}

###############################################################################

# allowed: a name resolved by nginx, TLS 1.3

my $r = curl($proxy, "https://good.test:$good/");
is($r->{code}, 200, 'good.test through CONNECT: 200 from the destination');
like($r->{body}, qr/backend ok/, 'good.test: the tunnel carries the request');
is($r->{connect}, 200, 'good.test: CONNECT answered 200');

my @dst = wait_lines('dst-good', 2);
is(scalar(grep { /rx=0$/ } @dst), 1, 'good.test: one probe session (no bytes)');
is(scalar(grep { /rx=[1-9]/ } @dst), 1, 'good.test: one tunnel session');
like($dst[0], qr/^TLSv1\.3 sni="good\.test"/, 'probe used TLS 1.3 and SNI');

my @log = wait_lines('proxy', 1);
like($log[-1], qr/^200 v=allow s=0 sig="" up=127\.0\.0\.1:$good /,
     'access log: verdict, score, signals, upstream');
like($log[-1], qr/sha=$cert{good}{sha256} /, 'access log: certificate SHA-256');
like($log[-1], qr/subj="CN=good\.test"/, 'access log: certificate subject');

# cached: the second tunnel is not probed again

$r = curl($proxy, "https://good.test:$good/");
is($r->{code}, 200, 'good.test again: 200');
@dst = wait_lines('dst-good', 3);
is(scalar(grep { /rx=0$/ } @dst), 1, 'good.test again: served from the cache');

# an IP literal: no resolver, no SNI, IP SAN checked

$r = curl($proxy, "https://127.0.0.1:$good/");
is($r->{code}, 200, 'IP literal through CONNECT: 200');
@dst = wait_lines('dst-good', 5);
like((grep { /rx=0$/ } @dst)[-1], qr/sni="-"/,
     'IP literal: probe without SNI');

# an IPv6 literal

$r = curl($proxy, "https://[::1]:$good6/");
is($r->{code}, 200, 'IPv6 literal through CONNECT: 200');
like(($ng->log_lines('proxy'))[-1] // '', qr/ up=\[::1\]:$good6 /,
     'IPv6: $certguard_upstream in brackets');

# TLS 1.2 only

$r = curl($proxy, "https://tls12.test:$tls12/", '--tls-max', '1.2');
is($r->{code}, 200, 'TLS 1.2 destination: 200');
@dst = wait_lines('dst-tls12', 2);
is(scalar(grep { /^TLSv1\.2 / } @dst), 2, 'TLS 1.2: probe and tunnel');

# blocked: a self-signed certificate; the destination sees only the probe

$r = curl($proxy, "https://self.test:$self/", '-k');
is($r->{connect}, 403, 'self.test: CONNECT refused with 403');
isnt($r->{code}, 200, 'self.test: no response from the destination');

$r = raw($proxy, "CONNECT self.test:$self HTTP/1.1\r\nHost: self.test\r\n"
         . "Proxy-Authorization: Basic c2VjcmV0LXBhc3N3b3Jk\r\n\r\n");
like($r, qr{^HTTP/1\.1 403 Forbidden\r\n}, 'self.test: raw CONNECT gets 403');
like($r, qr/self_signed/, '403 body names the signal');

@dst = wait_lines('dst-self', 1);
is(scalar(grep { /rx=[1-9]/ } @dst), 0,
   'blocked destination never received client bytes');

my @cef = wait_lines('cef', 4);
my ($cef) = grep { /dhost=self\.test/ } @cef;
ok($cef, 'CEF record for the blocked destination');
like($cef // '', qr/act=blocked/, 'CEF: act=blocked');
like($cef // '', qr/request=self\.test:$self/, 'CEF: request is the target');
like($cef // '', qr/dst=127\.0\.0\.1/, 'CEF: dst is the probed address');
like($cef // '', qr/dpt=$self/, 'CEF: dpt is the probed port');
ok(grep({ /dhost=good\.test/ && /act=allowed/ } @cef),
   'CEF record for the allowed destination');

my $all = join '', map { read_file($_) } glob "$d/logs/*";
unlike($all, qr/c2VjcmV0|secret-password/,
       'Proxy-Authorization is in no log');

my @cefvar = wait_lines('proxy-cef', 3);
like((grep { /self\.test/ } @cefvar)[0] // '',
     qr/^CEF:0\|certguard\|.*act=blocked.*dhost=self\.test/,
     '$certguard_cef in an access log');

# syslog: only verdicts at or above min_verdict=block

raw($sysproxy, "CONNECT good.test:$good HTTP/1.1\r\n\r\n");
raw($sysproxy, "CONNECT self.test:$self HTTP/1.1\r\n\r\n");
my @dgrams;
$syslog->blocking(0);
my $until = time() + 3;
while (time() < $until && @dgrams < 2) {
    if (defined $syslog->recv(my $m, 4096)) {
        push @dgrams, $m if length $m;
    } else {
        sleep 0.05;
    }
}
is(scalar @dgrams, 1, 'syslog: one datagram (the allowed tunnel is below '
   . 'min_verdict)');
like($dgrams[0] // '', qr/^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ certguard: CEF:0\|/,
     'syslog: header, tag and CEF record');
like($dgrams[0] // '', qr/dhost=self\.test/, 'syslog: the blocked host');

# monitor mode: scored and logged, never blocked

$r = curl($monitor, "https://self.test:$self/", '-k');
is($r->{code}, 200, 'monitor mode: self.test goes through');
my @mon = wait_lines('cef-monitor', 1);
like($mon[0] // '', qr/act=would-block/, 'monitor mode: CEF says would-block');
@log = wait_lines('monitor', 1);
like($log[-1], qr/v=block .*sig="[^"]*self_signed/,
     'monitor mode: the variables keep the verdict');

# the ClientHello inside the tunnel must name the CONNECT host

my $s = connect_tunnel($proxy, "good.test:$good");
ok($s, 'tunnel to good.test open');
my $tls = $s && IO::Socket::SSL->start_SSL($s, SSL_hostname => 'evil.test',
    SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
ok(!$tls, 'ClientHello for evil.test inside a good.test tunnel is cut off');
@cef = wait_lines('cef', 5);
like($cef[-1], qr/sni_mismatch/, 'CEF: sni_mismatch fired');
like($cef[-1], qr/act=blocked/, 'CEF: domain fronting blocked');

$s = connect_tunnel($proxy, "good.test:$good");
$tls = $s && IO::Socket::SSL->start_SSL($s, SSL_hostname => 'good.test',
    SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
ok($tls, 'ClientHello for the CONNECT host goes through');
if ($tls) {
    print $tls "GET / HTTP/1.0\r\nHost: good.test\r\n\r\n";
    local $/;
    like(<$tls> // '', qr/backend ok/, 'matching SNI: the request arrives');
}

# malformed and refused requests

like(raw($proxy, "GET http://good.test/ HTTP/1.1\r\nHost: good.test\r\n\r\n"),
     qr{^HTTP/1\.1 405 .*\r\nAllow: CONNECT\r\n}s, 'GET: 405 with Allow');
like(raw($proxy, "CONNECT good.test HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'CONNECT without a port: 400');
like(raw($proxy, "CONNECT good.test:99999 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'CONNECT to port 99999: 400');
like(raw($proxy, "CONNECT go\x01od.test:443 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'control character in the target: 400');
like(raw($proxy, "CONNECT good.test:443 HTTP/2.0\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'unknown HTTP version: 400');
like(raw($proxy, "\x16\x03\x01\x00\x05hello"),
     qr{^HTTP/1\.1 400 }, 'TLS to the proxy port: 400');
like(raw($proxy, "CONNECT good.test:$good HTTP/1.1\r\n"
         . ('X-Filler: ' . 'a' x 100 . "\r\n") x 200),
     qr{^HTTP/1\.1 400 }, 'oversized request headers: 400');
like(raw($proxy, "CONNECT nxdomain.invalid:$good HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 502 }, 'unresolvable name: 502');

like(raw($strict, "CONNECT good.test:$good HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 403 .*port not allowed}s,
     'default certguard_connect_ports: only 443');
like(raw($strict, "CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 403 .*not allowed}s, 'loopback refused by default');
like(raw($strict, "CONNECT good.test:443 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 403 .*not allowed}s,
     'a name resolving to loopback refused by default');
like(raw($strict, "CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 403 .*not allowed}s, 'link-local (metadata) refused');
like(raw($strict, "CONNECT [::1]:443 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 403 .*not allowed}s, 'IPv6 loopback refused');

SKIP: {
    my $own = own_address();
    skip 'no non-loopback address on this host', 1 unless $own;
    like(raw($proxy, "CONNECT $own:$good HTTP/1.1\r\n\r\n"),
         qr{^HTTP/1\.1 403 .*not allowed}s,
         "the proxy's own address ($own) refused");
}

# garbage of every kind never takes the proxy down

{
    srand(42);
    my @parts = ('CONNECT ', 'GET ', ' ', ':', '443', "\r\n", "\n", "\r",
                 'HTTP/1.1', '[', ']', 'good.test', '::1', "\0", "\x16\x03",
                 'Host: x', ':99999', '-1', 'a' x 300);
    for (1 .. 300) {
        my $req = join '', map { $parts[rand @parts] } 1 .. 1 + int rand 12;
        $req .= "\r\n\r\n" if rand() < 0.5;
        raw_nowait($proxy, $req);
    }
    $r = curl($proxy, "https://good.test:$good/");
    is($r->{code}, 200, 'after 300 garbage requests the proxy still works');
}

unlike($ng->error_log, qr/\[(alert|emerg|crit)\]|segfault|exited on signal/,
       'no alerts or crashes in the error log');

$ng->stop;
stop_dns($dns);

done_testing();

###############################################################################

# curl through the proxy; returns { code, connect, body, exit }.
sub curl {
    my ($port, $url, @args) = @_;
    my $r = run({ timeout => 20 }, '/usr/bin/curl', '-sS', '--max-time', '10',
                '--proxy', "http://127.0.0.1:$port", '--cacert',
                $root->{cert}, '-w', '\n%{http_code} %{http_connect}',
                @args, $url);
    my ($body, $code, $connect) = $r->{out} =~ /^(.*)\n(\d+) (\d+)$/s;

    return { body => $body // '', code => $code // 0,
             connect => $connect // 0, exit => $r->{exit},
             err => $r->{err} };
}


# A raw request to the proxy; everything the proxy sent until it closed.
sub raw {
    my ($port, $req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return '';
    my $resp = '';

    local $SIG{PIPE} = 'IGNORE';
    print $s $req;

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval {
        while (sysread($s, my $buf, 4096)) {
            $resp .= $buf;
            last if $req =~ /^CONNECT/ && $resp =~ /^HTTP\/1\.1 200 /
                    && $resp =~ /\r\n\r\n/;
        }
    };
    alarm 0;

    return $resp;
}


# Sends a request and reads for a short while only.
sub raw_nowait {
    my ($port, $req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return '';

    local $SIG{PIPE} = 'IGNORE';
    print $s $req;
    $s->blocking(0);
    sleep 0.002;
    sysread($s, my $buf, 4096);
    close $s;

    return $buf // '';
}


# A socket with an established CONNECT tunnel, or undef.
sub connect_tunnel {
    my ($port, $target) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return undef;
    my $resp = '';

    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";

    while ($resp !~ /\r\n\r\n/) {
        sysread($s, my $buf, 1) or return undef;
        $resp .= $buf;
    }

    return $resp =~ /^HTTP\/1\.1 200 / ? $s : undef;
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


sub own_address {
    my $r = run('/usr/sbin/ip', '-4', '-o', 'addr', 'show');

    for my $line (split /\n/, $r->{out} // '') {
        my ($a) = $line =~ /inet (\d+\.\d+\.\d+\.\d+)/ or next;
        return $a unless $a =~ /^127\./;
    }

    return undef;
}


# A tiny DNS server on 127.0.0.1 for nginx's resolver: every *.test name
# is 127.0.0.1, anything else does not exist.
sub start_dns {
    my $port = free_port('udp');
    my $sock = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port",
                                     Proto => 'udp')
        or die "dns socket: $!";
    my $pid = fork // die "fork: $!";

    if ($pid) {
        close $sock;
        return { pid => $pid, port => $port };
    }

    while (1) {
        $sock->recv(my $q, 512) // next;
        next if length($q) < 17;
        my ($id) = unpack('n', $q);
        my $pos = 12;
        my @labels;
        while ((my $len = ord substr($q, $pos, 1)) != 0) {
            push @labels, substr($q, $pos + 1, $len);
            $pos += $len + 1;
            last if $pos >= length $q;
        }
        my $qtype = unpack('n', substr($q, $pos + 1, 2));
        my $question = substr($q, 12, $pos + 5 - 12);
        my $name = lc join '.', @labels;
        my $found = $name =~ /\.test$/ && $name ne 'nxdomain.test';
        my $answer = ($found && $qtype == 1)
            ? pack('nnnNn', 0xc00c, 1, 1, 1, 4) . pack('C4', 127, 0, 0, 1)
            : '';
        my $resp = pack('nnnnnn', $id, $found ? 0x8180 : 0x8183, 1,
                        $answer ? 1 : 0, 0, 0) . $question . $answer;
        $sock->send($resp);
    }
}


sub stop_dns {
    my ($dns) = @_;

    kill 'TERM', $dns->{pid};
    waitpid($dns->{pid}, 0);
}

END {
    kill 'TERM', $dns->{pid} if $dns && $dns->{pid};
}

###############################################################################
