#!/usr/bin/perl

# Stream module, CONNECT front end: curl through the proxy (HTTPS_PROXY
# style) to local TLS destinations with good and bad certificates, TLS 1.2
# and 1.3, names resolved by nginx's resolver and IP literals; blocked
# destinations never see a client byte; the verdict cache; monitor mode;
# CEF records; variables; malformed requests; the open-relay guards; and
# the ClientHello SNI check inside the tunnel (sni_mismatch).  A blocked
# destination is refused with a TLS alert after the 200 when it is first
# probed (with the client's ClientHello), with 403 once it is known.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

use IO::Socket::INET;
use IO::Socket::SSL;
use Time::HiRes qw(sleep time);

###############################################################################

my ($MODULE, $STREAM) = need_stream(curl => 1);

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream test root');

my %cert = (
    good => $pki->good_leaf('good', issuer => $root,
                       san => 'DNS:good.test,DNS:tls12.test,IP:127.0.0.1'),
    self => $pki->leaf('self', subject => '/CN=self.test',
                       san => 'DNS:self.test'),
    good6 => $pki->good_leaf('good6', issuer => $root, san => 'IP:::1'),
);

write_file("$dir/test.policy", 'include ' . policy_dir()
    . "/default.policy;\nweight sni_mismatch 100;\n");

my ($dns, $proxy, $monitor, $strict, $backend, $good, $tls12, $self,
    $sysproxy, $good6) = free_ports(10);

# a syslog receiver for certguard_log syslog:
my $syslog = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Proto => 'udp') or die "udp: $!";
my $syslog_port = $syslog->sockport;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

# nginx's resolver: every *.test name is 127.0.0.1
$ng->dns_server($dns, '*.test' => ['127.0.0.1']);

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
    resolver 127.0.0.1:$dns ipv6=off valid=1s;
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

@{[ dst('good', $good, $cert{good}, protocols => 'TLSv1.3') ]}
@{[ dst('tls12', $tls12, $cert{good}, protocols => 'TLSv1.2') ]}
@{[ dst('self', $self, $cert{self}) ]}
@{[ dst('good6', $good6, $cert{good6}, protocols => 'TLSv1.3',
        addr => '[::1]') ]}
}
MAIN

sub dst {
    my ($name, $port, $c, %o) = @_;

    return dst_server(name => $name, port => $port, cert => $c,
                      backend => $backend, logs => "$d/logs", %o);
}

###############################################################################

# allowed: a name resolved by nginx, TLS 1.3

my $r = curl($proxy, "https://good.test:$good/");
is($r->{code}, 200, 'good.test through CONNECT: 200 from the destination');
like($r->{body}, qr/backend ok/, 'good.test: the tunnel carries the request');
is($r->{connect}, 200, 'good.test: CONNECT answered 200');

my @dst = $ng->wait_lines('dst-good', 2);
is(scalar(grep { /rx=0$/ } @dst), 1, 'good.test: one probe session (no bytes)');
is(scalar(grep { /rx=[1-9]/ } @dst), 1, 'good.test: one tunnel session');
like($dst[0], qr/^TLSv1\.3 sni="good\.test"/, 'probe used TLS 1.3 and SNI');

my @log = $ng->wait_lines('proxy', 1);
like($log[-1], qr/^200 v=allow s=0 sig="" up=127\.0\.0\.1:$good /,
     'access log: verdict, score, signals, upstream');
like($log[-1], qr/sha=$cert{good}{sha256} /, 'access log: certificate SHA-256');
like($log[-1], qr/subj="CN=good\.test"/, 'access log: certificate subject');

# cached: the second tunnel is not probed again

$r = curl($proxy, "https://good.test:$good/");
is($r->{code}, 200, 'good.test again: 200');
@dst = $ng->wait_lines('dst-good', 3);
is(scalar(grep { /rx=0$/ } @dst), 1, 'good.test again: served from the cache');

# an IP literal: no resolver, no SNI, IP SAN checked

$r = curl($proxy, "https://127.0.0.1:$good/");
is($r->{code}, 200, 'IP literal through CONNECT: 200');
@dst = $ng->wait_lines('dst-good', 5);
like((grep { /rx=0$/ } @dst)[-1], qr/sni="-"/,
     'IP literal: probe without SNI');

# an IPv6 literal

$r = curl($proxy, "https://[::1]:$good6/");
is($r->{code}, 200, 'IPv6 literal through CONNECT: 200');
# the session's access log line comes when it closes, after curl's exit
my @v6;
for (1 .. 50) {
    @v6 = grep { / up=\[::1\]:$good6 / } $ng->log_lines('proxy');
    last if @v6;
    select(undef, undef, undef, 0.1);
}
ok(scalar @v6, 'IPv6: $certguard_upstream in brackets')
    or diag(join("\n", $ng->log_lines('proxy')));

# TLS 1.2 only

$r = curl($proxy, "https://tls12.test:$tls12/", '--tls-max', '1.2');
is($r->{code}, 200, 'TLS 1.2 destination: 200');
@dst = $ng->wait_lines('dst-tls12', 2);
is(scalar(grep { /^TLSv1\.2 / } @dst), 2, 'TLS 1.2: probe and tunnel');

# blocked: a self-signed certificate; the destination sees only the probe,
# made with the client's ClientHello after the 200, and the client gets a
# TLS alert

$r = curl($proxy, "https://self.test:$self/", '-k');
is($r->{connect}, 200, 'self.test: CONNECT answered first');
like($r->{err}, qr/alert handshake failure/,
     'self.test: the tunnel refused with a TLS alert');
isnt($r->{code}, 200, 'self.test: no response from the destination');

# known now to show a blocked certificate: 403 before any ClientHello

$r = raw($proxy, "CONNECT self.test:$self HTTP/1.1\r\nHost: self.test\r\n"
         . "Proxy-Authorization: Basic c2VjcmV0LXBhc3N3b3Jk\r\n\r\n");
like($r, qr{^HTTP/1\.1 403 Forbidden\r\n}, 'self.test again: 403');
like($r, qr/self_signed/, '403 body names the signal');

@dst = $ng->wait_lines('dst-self', 1);
is(scalar(grep { /rx=[1-9]/ } @dst), 0,
   'blocked destination never received client bytes');

my @cef = $ng->wait_lines('cef', 4);
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

my @cefvar = $ng->wait_lines('proxy-cef', 3);
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
my @mon = $ng->wait_lines('cef-monitor', 1);
like($mon[0] // '', qr/act=would-block/, 'monitor mode: CEF says would-block');
@log = $ng->wait_lines('monitor', 1);
like($log[-1], qr/v=block .*sig="[^"]*self_signed/,
     'monitor mode: the variables keep the verdict');

# the ClientHello inside the tunnel must name the CONNECT host

my $s = connect_tunnel($proxy, "good.test:$good");
ok($s, 'tunnel to good.test open');
my $tls = $s && IO::Socket::SSL->start_SSL($s, SSL_hostname => 'evil.test',
    SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
ok(!$tls, 'ClientHello for evil.test inside a good.test tunnel is cut off');
@cef = $ng->wait_lines('cef', 5);
like($cef[-1], qr/sni_mismatch/, 'CEF: sni_mismatch fired');
like($cef[-1], qr/act=blocked/, 'CEF: domain fronting blocked');

# a ClientHello whose server name is no DNS name: not the CONNECT host
$s = connect_tunnel($proxy, "good.test:$good");
$tls = $s && IO::Socket::SSL->start_SSL($s, SSL_hostname => 'bad!name.test',
    SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
ok(!$tls, 'ClientHello with a malformed server name is cut off');
@cef = $ng->wait_lines('cef', 6);
like($cef[-1], qr/sni_mismatch/, 'CEF: malformed client SNI is a mismatch');

$s = connect_tunnel($proxy, "good.test:$good");
$tls = $s && IO::Socket::SSL->start_SSL($s, SSL_hostname => 'good.test',
    SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
ok($tls, 'ClientHello for the CONNECT host goes through');
if ($tls) {
    print $tls "GET / HTTP/1.0\r\nHost: good.test\r\n\r\n";
    local $/;
    like(<$tls> // '', qr/backend ok/, 'matching SNI: the request arrives');
}

# the same name but for a trailing dot: the engine's rule, no mismatch
$s = connect_tunnel($proxy, "good.test.:$good");
ok($s, 'tunnel to good.test. (trailing dot) open');
$tls = $s && IO::Socket::SSL->start_SSL($s, SSL_hostname => 'GOOD.test',
    SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5);
ok($tls, 'ClientHello for GOOD.test in a good.test. tunnel goes through');
@cef = grep { /request=good\.test\.:$good / } $ng->wait_lines('cef', 8);
is(scalar @cef, 1, 'CEF: one record for the good.test. tunnel');
like($cef[0] // '', qr/act=allowed/, 'CEF: trailing dot allowed');
unlike($cef[0] // '', qr/sni_mismatch/,
       'CEF: no sni_mismatch for a trailing dot');

# an open tunnel is an active session: nginx's graceful shutdown waits for it
close $s if $s;
undef $tls;

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
like(raw($proxy, "CONNECT user:hunter2\@good.test:$good HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'userinfo in the target: 400');
unlike($ng->error_log, qr/hunter2/, 'userinfo in the target: not logged');
like(raw($proxy, "CONNECT good.test:$good HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'folded header line: 400');
like(raw($proxy, "CONNECT nxdomain.invalid:$good HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 502 }, 'unresolvable name: 502');

# each refusal is a CEF record of its own class, reason and severity

sub cef_refusal {
    my ($re) = @_;
    return (grep { /\|(?:dest|request)-refused\|/ && /$re/ }
            $ng->log_lines('cef'))[-1] // '';
}

like(raw($proxy, "CONNECT good.test:25 HTTP/1.1\r\n\r\n"),
     qr{^HTTP/1\.1 403 .*port not allowed}s, 'CONNECT to port 25: 403');
like(cef_refusal(qr/dpt=25 /),
     qr/\|dest-refused\|[^|]*\|3\| .*dhost=good\.test .*reason=port$/,
     'port 25: CEF dest-refused, reason port');
like(cef_refusal(qr/reason=userinfo/), qr/\|request-refused\|/,
     'userinfo in the target: CEF request-refused');
unlike(join('', $ng->log_lines('cef')), qr/hunter2/,
       'userinfo in the target: not in the CEF log');
like(cef_refusal(qr/dhost=nxdomain\.invalid/), qr/reason=unresolved/,
     'unresolvable name: CEF reason unresolved');
like(cef_refusal(qr/reason=method/), qr/\|request-refused\|/,
     'GET: CEF request-refused, reason method');
ok(cef_refusal(qr/reason=malformed/), 'malformed request: CEF record');

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
    skip 'no non-loopback address on this host', 2 unless $own;
    like(raw($proxy, "CONNECT $own:$good HTTP/1.1\r\n\r\n"),
         qr{^HTTP/1\.1 403 .*not allowed}s,
         "the proxy's own address ($own) refused");
    like(cef_refusal(qr/dhost=\Q$own\E /),
         qr/\|7\| .*reason=(?:own|special)_address/,
         "own address: CEF severity 7 (a private one is special)");
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

done_testing();

###############################################################################

# curl through the proxy, trusting the test root.
sub curl { proxy_curl($root->{cert}, @_) }

###############################################################################
