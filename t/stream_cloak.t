#!/usr/bin/perl

# Stream module against cloaking destinations.  A front that routes
# ClientHellos with ALPN h2 to a self-signed server and the others to a
# CA-issued one: the probe sends the client's ALPN (and its other
# parameters), so it sees what the client would see and the tunnel is
# refused with a TLS alert; the probe with OpenSSL's defaults
# (certguard_connect_sni off) is fooled, which is why it is not the
# default.  A front that alternates two TLS 1.2 servers, one CA-issued and
# one self-signed: the probe gets the first, the tunnel the second, and the
# certificate in the clear is compared with the probed one (cert_cloaking,
# the tunnel cut); the destination is refused at once afterwards.  An
# ordinary destination still opens, with TLS 1.3 and 1.2.  To a server
# that records ClientHellos, the probe's carries the client's suites,
# groups, versions, ALPN, SNI and extensions.  A ClientHello
# larger than the preread buffer is refused; a CONNECT request larger than
# it gets its 400.

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
use POSIX qw();
use Time::HiRes qw(sleep time);

###############################################################################

my ($MODULE, $STREAM) = need_stream(curl => 1);

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard cloak test root');

my %cert = (
    good => $pki->good_leaf('good', issuer => $root,
                            san => 'DNS:good.test'),
    shown => $pki->good_leaf('shown', issuer => $root,
                             san => 'DNS:front.test,DNS:rr.test'),
    hidden => $pki->leaf('hidden', subject => '/CN=front.test',
                         san => 'DNS:front.test,DNS:rr.test'),
);

write_file("$dir/test.policy",
           'include ' . policy_dir() . "/default.policy;\n");

my ($dns, $proxy, $legacy, $monitor, $small, $backend, $shown_be,
    $hidden_be, $good, $front, $shown, $hidden, $rr, $shown12,
    $hidden12, $open) = free_ports(16);

# a "destination" that records the first bytes of every connection and
# answers nothing: the probe's ClientHello, then the client's
my $recorder = start_recorder("$dir/hellos");

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

$ng->dns_server($dns, '*.test' => ['127.0.0.1']);

my $common = <<"CONF";
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        proxy_pass \$certguard_upstream;
CONF

$ng->start(<<"HTTP", module => 0, ports => [$backend, $shown_be, $hidden_be],
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
    server {
        listen 127.0.0.1:$shown_be;
        location / { return 200 "shown to probes\\n"; }
    }
    server {
        listen 127.0.0.1:$hidden_be;
        location / { return 200 "hidden from probes\\n"; }
    }
HTTP
           main => <<"MAIN",
load_module $STREAM;
load_module $MODULE;

stream {
    resolver 127.0.0.1:$dns ipv6=off valid=1s;
    resolver_timeout 3s;

    log_format dst '\$ssl_protocol sni="\$ssl_server_name"';
    log_format front 'sni="\$ssl_preread_server_name" '
                     'alpn="\$ssl_preread_alpn_protocols" '
                     'v=\$ssl_preread_protocol up=\$upstream_addr';

    certguard_policy $dir/test.policy;
    certguard_trusted_certificate $root->{cert};
    certguard_cache zone=cloak_cg:1m valid=5m;
    preread_timeout 3s;
    proxy_connect_timeout 3s;

    server {
        listen 127.0.0.1:$proxy;
        certguard_log $d/logs/cef.log;
$common
    }

    # the probe before the answer, with OpenSSL's defaults
    server {
        listen 127.0.0.1:$legacy;
        certguard_connect_sni off;
        certguard_cache off;
        certguard_log $d/logs/cef-legacy.log;
$common
    }

    server {
        listen 127.0.0.1:$monitor;
        certguard_mode monitor;
        certguard_cache off;
        certguard_log $d/logs/cef-monitor.log;
$common
    }

    # probe failures let through: the recorder answers no probe
    server {
        listen 127.0.0.1:$open;
        certguard_probe_failure allow;
        certguard_probe_timeout 1s;
        certguard_cache off;
$common
    }

    server {
        listen 127.0.0.1:$small;
        preread_buffer_size 1k;
        certguard_log $d/logs/cef-small.log;
$common
    }

    # the cloaking front: ALPN h2 (browsers, curl) gets the hidden server
    map \$ssl_preread_alpn_protocols \$cloak_upstream {
        ~\\bh2\\b        127.0.0.1:$hidden;
        default         127.0.0.1:$shown;
    }

    server {
        listen 127.0.0.1:$front;
        ssl_preread on;
        access_log $d/logs/front.log front;
        proxy_pass \$cloak_upstream;
    }

    # the alternating front: the first connection gets the CA-issued
    # server, the next the self-signed one (one worker, round robin)
    upstream alternating {
        server 127.0.0.1:$shown12;
        server 127.0.0.1:$hidden12;
    }

    server {
        listen 127.0.0.1:$rr;
        proxy_pass alternating;
    }

@{[ dst('good', $good, $cert{good}, $backend) ]}
@{[ dst('shown', $shown, $cert{shown}, $shown_be) ]}
@{[ dst('hidden', $hidden, $cert{hidden}, $hidden_be) ]}
@{[ dst('shown12', $shown12, $cert{shown}, $shown_be,
        protocols => 'TLSv1.2') ]}
@{[ dst('hidden12', $hidden12, $cert{hidden}, $hidden_be,
        protocols => 'TLSv1.2') ]}
}
MAIN
           expect_log => qr/\[crit\] .*SSL_shutdown\(\) failed/);

sub dst {
    my ($name, $port, $c, $be, %o) = @_;

    return dst_server(name => $name, port => $port, cert => $c,
                      backend => $be, logs => "$d/logs", %o);
}

###############################################################################

# the fixture cloaks: directly, ALPN h2 gets the hidden server

like(direct($front, 'front.test')->{out}, qr/hidden from probes/,
     'front, ALPN h2: the hidden server');
like(direct($front, 'front.test', '--no-alpn')->{out}, qr/shown to probes/,
     'front, no ALPN: the CA-issued server');

# the probe with OpenSSL's defaults (no ALPN) is shown the CA-issued
# server, and the tunnel opens to the hidden one: the issue's demonstration

my $r = curl($legacy, 'https://front.test:' . $front . '/', '-k');
like($r->{body}, qr/hidden from probes/,
     'certguard_connect_sni off: the defaults probe is cloaked');

# the probe sends the client's parameters: no ALPN, the CA-issued server

$r = curl($proxy, 'https://front.test:' . $front . '/', '--no-alpn');
is($r->{connect}, 200, 'no ALPN: CONNECT answered');
like($r->{body}, qr/shown to probes/, 'no ALPN: the tunnel opens');

# ALPN h2: the probe is shown the self-signed server, as the client is

# the earlier tunnels' lines come when their sessions close: count once
# the log stands still
my $before = -1;
for (1 .. 50) {
    my $n = () = $ng->log_lines('front');
    last if $n == $before;
    $before = $n;
    sleep 0.2;
}
$r = curl($proxy, 'https://front.test:' . $front . '/', '-k');
is($r->{connect}, 200, 'ALPN h2: CONNECT answered first');
unlike($r->{body}, qr/hidden from probes/, 'ALPN h2: no content');
like($r->{err}, qr/alert handshake failure/,
     'ALPN h2: refused with a TLS alert');

my @front = $ng->wait_lines('front', $before + 1);
is(scalar @front, $before + 1, 'ALPN h2: the front saw the probe alone');
like($front[-1], qr/^sni="front\.test" alpn="h2,http\/1\.1" v=TLSv1\.3 /,
     "ALPN h2: the probe sent the client's SNI, ALPN and version");
like($front[-1], qr/ up=127\.0\.0\.1:$hidden$/,
     'ALPN h2: the probe reached the hidden server');

my ($cef) = grep { /dhost=front\.test/ && /act=blocked/ }
            $ng->wait_lines('cef', 2);
like($cef // '', qr/self_signed/, 'CEF: blocked, self_signed');

# a destination that showed some client a blocked certificate: refused at
# once, before any ClientHello

$r = curl($proxy, 'https://front.test:' . $front . '/', '--no-alpn');
is($r->{connect}, 403, 'front.test afterwards: 403 before the ClientHello');

# an ordinary destination opens, with TLS 1.3 and with TLS 1.2 (its
# certificate compared and found the probed one)

$r = curl($proxy, "https://good.test:$good/");
like($r->{body}, qr/backend ok/, 'an ordinary destination opens (TLS 1.3)');
$r = curl($proxy, "https://good.test:$good/", '--tls-max', '1.2');
like($r->{body}, qr/backend ok/, 'an ordinary destination opens (TLS 1.2)');
unlike($ng->error_log, qr/not the one probed/,
       'ordinary destinations: no certificate mismatch');

# TLS 1.2, alternating servers: the probe gets the CA-issued one, the
# tunnel the self-signed one, whose certificate travels in the clear

like(direct($rr, 'rr.test', '--tls-max', '1.2')->{out}, qr/shown to probes/,
     'alternating front: first the CA-issued server');
like(direct($rr, 'rr.test', '--tls-max', '1.2')->{out},
     qr/hidden from probes/, 'alternating front: then the hidden server');

$r = curl($monitor, "https://rr.test:$rr/", '-k', '--tls-max', '1.2');
like($r->{body}, qr/hidden from probes/,
     'monitor mode: a cloaked TLS 1.2 tunnel goes on');
my ($mon) = grep { /cert_cloaking/ } $ng->wait_lines('cef-monitor', 2);
like($mon // '', qr/act=would-block/, 'monitor mode: CEF would-block');

$r = curl($proxy, "https://rr.test:$rr/", '-k', '--tls-max', '1.2');
is($r->{connect}, 200, 'TLS 1.2 cloaking: the probe allowed the tunnel');
unlike($r->{body}, qr/hidden from probes/,
       'TLS 1.2 cloaking: the tunnel is cut before the content');
like($r->{err}, qr/alert handshake failure/,
     'TLS 1.2 cloaking: the client gets a TLS alert');
like($ng->error_log,
     qr/certificate in the tunnel to "rr\.test:$rr" is not the one probed/,
     'TLS 1.2 cloaking: the error log says so');

($cef) = grep { /dhost=rr\.test/ && /cert_cloaking/ }
         $ng->wait_lines('cef', 7);
like($cef // '', qr/act=blocked/, 'CEF: blocked, cert_cloaking');
like($cef // '', qr/self_signed/, 'CEF: the chain the client got is scored');

$r = curl($proxy, "https://rr.test:$rr/", '-k', '--tls-max', '1.2');
is($r->{connect}, 403, 'a destination caught cloaking: 403 afterwards');

# the probe's ClientHello and the client's, as a destination sees them

{
    my $hello = client_hello('rec.test', alpn => ['h2', 'http/1.1'],
        setup => sub {
            my ($ssl) = @_;
            Net::SSLeay::set1_groups_list($ssl, 'P-384:X25519:P-256');
            Net::SSLeay::set_cipher_list($ssl,
                'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305');
            Net::SSLeay::set_ciphersuites($ssl,
                'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384');
            Net::SSLeay::set_tlsext_status_type($ssl, 1);     # OCSP
        });

    my $t = connect_hello($open, "rec.test:$recorder->{port}", $hello);
    is($t->{connect}, 200, 'recorder: CONNECT answered');

    my @got;
    for (1 .. 50) {
        @got = sort glob("$dir/hellos/*");
        last if @got >= 2;
        sleep 0.1;
    }
    is(scalar @got, 2, 'recorder: the probe and the client were recorded');

    my ($probe, $client) = map { hello_fields(read_file($_)) } @got[0, 1];
    my $mine = hello_fields($hello);

    is($client->{random}, $mine->{random},
       'recorder: the second is the client (its random)');
    for my $f (qw(ciphers groups sigalgs versions alpn sni)) {
        is($probe->{$f}, $client->{$f}, "probe and client: the same $f");
    }
    is($probe->{exts}, $client->{exts},
       'probe and client: the same extensions (status_request too)');
    is($probe->{order}, $client->{order},
       'probe and client: in the same order (both are OpenSSL)');
    isnt($probe->{random}, $client->{random},
         'probe and client: their own randoms');
}

# a ClientHello larger than preread_buffer_size cannot be copied: refused

{
    my $hello = padded_hello('good.test', 1500);
    ok(length($hello) > 1024, 'a ClientHello of ' . length($hello)
       . ' bytes');

    my $t = connect_hello($small, "good.test:$good", $hello);
    is($t->{connect}, 200, 'large ClientHello: CONNECT answered');
    is($t->{reply}, 'alert', 'large ClientHello: refused with a TLS alert');
    my $why = qr/ClientHello in the tunnel to "good\.test:$good" larger/;
    like($ng->error_log, qr/$why than preread_buffer_size/,
         'large ClientHello: the error log says why');
    my ($rec) = $ng->wait_lines('cef-small', 1);
    like($rec // '', qr/\|request-refused\|.*reason=malformed/,
         'large ClientHello: a refusal record');

    $t = connect_hello($small, "good.test:$good", client_hello('good.test'));
    is($t->{reply}, 'hello', 'a ClientHello that fits goes through');
}

# a CONNECT request larger than preread_buffer_size gets its 400, also
# while the client is still sending it (no reset)

$r = curl($small, "https://good.test:$good/", '--proxy-header',
          'X-Filler: ' . ('a' x 30000));
is($r->{connect}, 400, 'CONNECT larger than the buffer: 400 (curl)');

{
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$small",
                                  Timeout => 5);
    my $req = "CONNECT good.test:$good HTTP/1.1\r\n"
              . ("X-Filler: " . 'b' x 1000 . "\r\n") x 200;
    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $req);

    my ($got, $err) = ('', '');
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval {
        while (1) {
            my $n = sysread($s, my $buf, 4096);
            $err = "$!" unless defined $n;
            last unless $n;
            $got .= $buf;
        }
    };
    alarm 0;

    like($got, qr{^HTTP/1\.1 400 Bad Request\r\n.*request too large}s,
         'CONNECT larger than the buffer: the 400 is read');
    is($err, '', 'CONNECT larger than the buffer: no reset');
}

unlike($ng->error_log, qr/\[(alert|emerg)\]|exited on signal/,
       'no alerts or crashes in the error log');

$ng->stop;
stop_recorder($recorder);

done_testing();

###############################################################################

# curl through the proxy, trusting the test root.
sub curl { proxy_curl($root->{cert}, @_) }

# A ClientHello with SNI $name and an extension of $pad bytes no one knows.
sub padded_hello {
    my ($name, $pad) = @_;
    my $sni = pack('n n n C n a*', 0, length($name) + 5, length($name) + 3,
                   0, length($name), $name);
    my $exts = $sni . pack('n n', 0xffa0, $pad) . ("\0" x $pad);
    my $body = pack('n', 0x0303) . ("\x42" x 32) . pack('C', 0)
               . pack('n n n', 4, 0x1301, 0x1302) . pack('C C', 1, 0)
               . pack('n', length $exts) . $exts;
    my $hs = pack('C', 1) . substr(pack('N', length $body), 1) . $body;

    return pack('C n n', 0x16, 0x0301, length $hs) . $hs;
}

# The fields of a ClientHello in one record that a destination can see,
# as hex: cipher suites, the bodies of supported_groups,
# signature_algorithms, supported_versions, ALPN, server_name, the sorted
# extension types, the types in order (padding aside), the random.
sub hello_fields {
    my ($h) = @_;
    my %f;
    my $p = 9;

    return {} unless length($h) > 50;

    $f{random} = unpack('H*', substr($h, $p + 2, 32));
    $p += 34;
    $p += 1 + ord(substr($h, $p, 1));
    my $cl = unpack('n', substr($h, $p, 2));
    $f{ciphers} = unpack('H*', substr($h, $p + 2, $cl));
    $p += 2 + $cl;
    $p += 1 + ord(substr($h, $p, 1));
    my $end = $p + 2 + unpack('n', substr($h, $p, 2));
    $p += 2;

    my (%ext, @order);
    while ($p + 4 <= $end) {
        my ($type, $len) = unpack('n n', substr($h, $p, 4));
        $ext{$type} = unpack('H*', substr($h, $p + 4, $len));
        push @order, $type;
        $p += 4 + $len;
    }

    $f{order} = join ',', grep { $_ != 21 } @order;

    @f{qw(groups sigalgs versions alpn sni)} = @ext{10, 13, 43, 16, 0};
    $f{exts} = join ',', sort { $a <=> $b } grep { $_ != 21 } keys %ext;

    return \%f;
}

# A listener on 127.0.0.1 that writes the first bytes of each connection
# to $dir/NNN (numbered in order) and closes it after 0.5 s.
sub start_recorder {
    my ($to) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 16, ReuseAddr => 1)
        or die "recorder: $!";
    mkdir $to;
    my $pid = fork // die "fork: $!";

    if ($pid) {
        my $port = $l->sockport;
        close $l;
        return { pid => $pid, port => $port };
    }

    my $n = 0;
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 120;
    while (my $c = $l->accept) {
        my $got = '';
        my $until = time + 1;
        $c->blocking(0);
        while (time < $until) {
            my $k = sysread($c, my $buf, 16384);
            last if defined $k && $k == 0;
            $got .= $buf if $k;
            last if length $got >= 5
                    && length $got >= 5 + unpack('n', substr($got, 3, 2));
            sleep 0.02;
        }
        write_file(sprintf('%s/%03d', $to, $n++), $got);
        close $c;
    }
    POSIX::_exit(0);
}

sub stop_recorder {
    my ($r) = @_;
    kill 'TERM', $r->{pid};
    waitpid($r->{pid}, 0);
}

# curl straight to a front (no proxy), any certificate.
sub direct {
    my ($port, $name, @args) = @_;

    return run({ timeout => 20 }, '/usr/bin/curl', '-sS', '-k',
               '--max-time', '10', '--resolve', "$name:$port:127.0.0.1",
               @args, "https://$name:$port/");
}

###############################################################################
