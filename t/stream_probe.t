#!/usr/bin/perl

# Stream module, the probe: timeouts against a destination that accepts
# and never answers, refused connections, certguard_probe_failure (after
# the tunnel's ClientHello, a TLS alert; before the answer with
# certguard_connect_sni off, a 403 that says why), servers that require a
# client certificate (TLS 1.2 and 1.3), slowloris-style partial CONNECT
# requests, a CONNECT flood to a cold destination (one probe for all),
# reload (a new policy is not served old verdicts), a bad policy failing
# nginx -t, and SNI passthrough (certguard_probe on).

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
use Net::SSLeay;
use Time::HiRes qw(sleep time);

###############################################################################

my ($MODULE, $STREAM) = need_stream(curl => 1);

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard stream test root');

sub trusted { $pki->good_leaf($_[0], issuer => $root) }

my %cert = (
    good   => trusted('good'),
    mtls12 => trusted('mtls12'),
    mtls13 => trusted('mtls13'),
    flood  => trusted('flood'),
    client => $pki->leaf('client', issuer => $root, subject => '/CN=client',
                         san => 'DNS:client.test',
                         ext => ['extendedKeyUsage = clientAuth']),
    self   => $pki->leaf('self', subject => '/CN=self.test',
                         san => 'DNS:self.test'),
);

write_file("$dir/test.policy",
           'include ' . policy_dir() . "/default.policy;\n");
write_file("$dir/bad.policy", "threshold block 70;\nweight no_such_signal 5;\n");

my ($dns, $proxy, $open, $backend, $good, $self, $mtls12, $mtls13, $flood,
    $pt_good, $pt_self, $closed, $legacy) = free_ports(13);

# a destination that accepts (the kernel's backlog) and never answers
my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Listen => 64) or die "listen: $!";
my $silent_port = $silent->sockport;

# a slow path to the flood destination: each connection waits 0.5 s first,
# so that every CONNECT of the flood arrives while the one probe runs
my $relay = start_relay($flood, 0.5);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

# nginx's resolver: every *.test name is 127.0.0.1
$ng->dns_server($dns, '*.test' => ['127.0.0.1']);

my $need_client_cert = "ssl_verify_client on;\n"
    . "        ssl_client_certificate $root->{cert};";

my $stream = sub {
    my ($policy) = @_;

    return <<"MAIN";
load_module $STREAM;
load_module $MODULE;

stream {
    resolver 127.0.0.1:$dns ipv6=off valid=1s;
    resolver_timeout 3s;

    log_format cg '\$status v=\$certguard_verdict sig="\$certguard_signals" '
                  'up=\$certguard_upstream pre=\$ssl_preread_server_name';
    log_format dst '\$ssl_protocol rx=\$bytes_received';

    certguard_policy $policy;
    certguard_trusted_certificate $root->{cert};
    certguard_connect_ports 1024-65535;
    certguard_connect_allow 127.0.0.0/8;
    certguard_probe_timeout 1s;
    certguard_cache zone=probe_cg:1m valid=5m;
    preread_timeout 1s;
    proxy_connect_timeout 3s;

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_log $d/logs/cef.log;
        access_log $d/logs/proxy.log cg;
        proxy_pass \$certguard_upstream;
    }

    # the probe before the answer, with OpenSSL's defaults
    server {
        listen 127.0.0.1:$legacy;
        certguard_connect on;
        certguard_connect_sni off;
        proxy_pass \$certguard_upstream;
    }

    # probe failures let through; no cache, so every probe is counted
    server {
        listen 127.0.0.1:$open;
        certguard_connect on;
        certguard_probe_failure allow;
        certguard_cache off;
        certguard_log $d/logs/cef-open.log;
        access_log $d/logs/open.log cg;
        proxy_pass \$certguard_upstream;
    }

    # SNI passthrough
    server {
        listen 127.0.0.1:$pt_good;
        certguard_probe on;
        certguard_probe_port $good;
        ssl_preread on;
        access_log $d/logs/pt.log cg;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$pt_self;
        certguard_probe on;
        certguard_probe_port $self;
        access_log $d/logs/pt.log cg;
        proxy_pass \$certguard_upstream;
    }

@{[ dst('good', $good, $cert{good}) ]}
@{[ dst('self', $self, $cert{self}) ]}
@{[ dst('mtls12', $mtls12, $cert{mtls12}, protocols => 'TLSv1.2',
        extra => $need_client_cert) ]}
@{[ dst('mtls13', $mtls13, $cert{mtls13}, protocols => 'TLSv1.3',
        extra => $need_client_cert) ]}
@{[ dst('flood', $flood, $cert{flood}) ]}
}
MAIN
};

my $http = <<"HTTP";
    server {
        listen 127.0.0.1:$backend;
        location / { return 200 "backend ok\\n"; }
    }
HTTP

# the destinations may log the probe's early close as a failed
# SSL_shutdown(), at crit
$ng->start($http, module => 0, ports => [$backend],
           main => $stream->("$dir/test.policy"),
           expect_log => qr/\[crit\] .*SSL_shutdown\(\) failed/);

sub dst {
    my ($name, $port, $c, %o) = @_;

    return dst_server(name => $name, port => $port, cert => $c,
                      backend => $backend, logs => "$d/logs", %o);
}

###############################################################################

# a destination that never answers: the probe times out, and the tunnel's
# client gets a TLS alert

my $hello = client_hello('');           # IP literals: no SNI

my $t0 = time();
my $r = connect_hello($proxy, "127.0.0.1:$silent_port", $hello);
my $took = time() - $t0;
is($r->{connect}, 200, 'silent destination: CONNECT answered first');
is($r->{reply}, 'alert', 'silent destination: a TLS alert after the '
   . 'ClientHello');
is(unpack('H*', $r->{bytes}), '15030300020228',
   'the alert is a fatal handshake_failure');
ok($took > 0.8 && $took < 4, sprintf('probe timeout took %.1f s', $took));

my @cef = $ng->wait_lines('cef', 1);
like($cef[0] // '', qr/probe_failed/, 'CEF names the probe failure');
like($cef[0] // '', qr/act=blocked/, 'CEF: the failed probe was blocked');

{
    my $s = connect_tunnel($open, "127.0.0.1:$silent_port");
    syswrite($s, $hello) if $s;
    my ($rec) = $ng->wait_lines('cef-open', 1);
    like($rec // '', qr/act=allowed .*probe_failed|probe_failed.*act=allowed/,
         'probe_failure allow: the tunnel opens');
    close $s if $s;
}

$r = raw($legacy, "CONNECT 127.0.0.1:$silent_port HTTP/1.1\r\n\r\n");
like($r, qr{^HTTP/1\.1 403 .*probe failed: timed out}s,
     'certguard_connect_sni off: 403, probe timed out');

# a closed port: refused

$r = connect_hello($proxy, "127.0.0.1:$closed", $hello);
is($r->{reply}, 'alert', 'closed port: a TLS alert');
like($ng->error_log, qr/certguard probe failed: connection refused/,
     'closed port: the probe failed, connection refused');
$r = raw($legacy, "CONNECT 127.0.0.1:$closed HTTP/1.1\r\n\r\n");
like($r, qr{^HTTP/1\.1 403 .*probe failed: connection refused}s,
     'certguard_connect_sni off: 403, connection refused');

# a destination that does not speak TLS: the handshake fails

$r = connect_hello($proxy, "127.0.0.1:$backend", $hello);
is($r->{reply}, 'alert', 'plain HTTP destination: a TLS alert');
$r = raw($legacy, "CONNECT 127.0.0.1:$backend HTTP/1.1\r\n\r\n");
like($r, qr{^HTTP/1\.1 403 .*probe failed: TLS handshake failed}s,
     'certguard_connect_sni off: 403, handshake failed');

# destinations that require a client certificate: the probe still sees
# the server's certificate and scores it

for my $v (['mtls12', $mtls12, '1.2'], ['mtls13', $mtls13, '1.3']) {
    my ($name, $port, $tls) = @$v;

    $r = curl($proxy, "https://$name.test:$port/", '--cert',
              $cert{client}{cert}, '--key', $cert{client}{key});
    is($r->{connect}, 200, "client certificate required, TLS $tls: "
       . 'CONNECT allowed');
    like($r->{body}, qr/backend ok/,
         "client certificate required, TLS $tls: the client's own "
         . 'certificate gets through the tunnel');

    my ($rec) = grep { /dhost=$name\.test/ } $ng->wait_lines('cef', 1);
    like($rec // '', qr/act=allowed/,
         "client certificate required, TLS $tls: scored and allowed");
    like($rec // '', qr/cs1=CN\\=$name\.test/,
         "client certificate required, TLS $tls: the server's subject");
}

# slowloris: a CONNECT request that never ends is cut at preread_timeout

{
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$proxy",
                                  Timeout => 5);
    my ($got, $closed_at) = ('', 0);
    my $start = time();
    my $req = "CONNECT good.test:$good HTTP/1.1\r\nHost: good.test\r\nX-Slow: ";

    local $SIG{PIPE} = 'IGNORE';
    $s->blocking(0);

    for my $i (0 .. 40) {
        syswrite($s, substr($req . ('z' x 100), $i, 1));
        sleep 0.1;
        my $n = sysread($s, my $buf, 4096);
        if (defined $n && $n == 0) {
            $closed_at = time() - $start;
            last;
        }
        $got .= $buf if $n;
    }

    ok($closed_at > 0.8 && $closed_at < 2.5,
       sprintf('slowloris: closed after %.1f s', $closed_at));
    unlike($got, qr/200/, 'slowloris: no tunnel');
}

# a CONNECT flood to a cold destination: one probe for all

{
    my $probes;

    # a tunnel's session is logged when it ends: while they are open, the
    # destination's log holds the probes alone
    my ($sent, $ok, $tls) = connect_flood($open, "127.0.0.1:$relay->{port}",
        20, $hello, sub { $probes = $ng->log_lines('dst-flood') });

    is($sent, 20, 'flood: 20 CONNECT requests sent');
    is($ok, 20, 'flood: every CONNECT answered 200');
    is($tls, 20, 'flood: every tunnel reached the destination');
    is($probes, 1, 'flood: the destination saw exactly one probe');
    my @rec = grep { /dhost=127\.0\.0\.1/ && /dpt=$relay->{port}/ }
              $ng->wait_lines('cef-open', 21);
    is(scalar @rec, 20, 'flood: 20 CEF records, one per tunnel');
}

# SNI passthrough: the destination is the ClientHello's server name

$r = run({ timeout => 20 }, '/usr/bin/curl', '-sS', '--max-time', '10',
         '--resolve', "good.test:$pt_good:127.0.0.1", '--cacert',
         $root->{cert}, "https://good.test:$pt_good/");
like($r->{out}, qr/backend ok/, 'passthrough: good.test reached');
my @pt = $ng->wait_lines('pt', 1);
like($pt[-1], qr/^200 v=allow .* up=127\.0\.0\.1:$good pre=good\.test$/,
     'passthrough: probed address, ssl_preread still sees the name');

$r = run({ timeout => 20 }, '/usr/bin/curl', '-sS', '-k', '--max-time', '10',
         '--resolve', "self.test:$pt_self:127.0.0.1",
         "https://self.test:$pt_self/");
unlike($r->{out}, qr/backend ok/, 'passthrough: self.test blocked');
like($r->{err}, qr/alert handshake failure/,
     'passthrough: the client gets a TLS alert');
@pt = $ng->wait_lines('pt', 2);
like($pt[-1], qr/^403 v=block /, 'passthrough: closed with 403 status');
is(scalar(grep { /rx=[1-9]/ } $ng->log_lines('dst-self')), 0,
   'passthrough: the blocked destination received no client bytes');

# a ClientHello that arrives in pieces is reassembled before it is read

{
    my $hello = client_hello('good.test');
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$pt_good",
                                  Timeout => 5);
    my $n = int(length($hello) / 3);

    for my $piece (substr($hello, 0, 3), substr($hello, 3, $n),
                   substr($hello, 3 + $n))
    {
        syswrite($s, $piece);
        sleep 0.1;
    }

    my $got = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 5;
    eval { sysread($s, $got, 5) };
    alarm 0;
    is(unpack('H4', $got), '1603',
       'passthrough: ClientHello in three pieces reaches the destination');
}

{
    my $s = IO::Socket::SSL->new(PeerAddr => "127.0.0.1:$pt_good",
                                 SSL_hostname => '', Timeout => 5,
                                 SSL_verify_mode => SSL_VERIFY_NONE);
    ok(!$s, 'passthrough without SNI: refused (probe_failure block)');
}

# reload: a new policy that lets self-signed certificates through; the
# cache must not answer with the old verdict

# (the passthrough probe of self.test above marked it as showing a blocked
# certificate: refused before the ClientHello)
$r = raw($proxy, "CONNECT self.test:$self HTTP/1.1\r\n\r\n");
like($r, qr{^HTTP/1\.1 403 .*self_signed}s,
     'before reload: self.test known to be blocked, 403');

write_file("$dir/lenient.policy", 'include ' . policy_dir()
    . "/default.policy;\nweight self_signed 0;\nweight untrusted_chain 0;\n");
$ng->reload($http, main => $stream->("$dir/lenient.policy"));

$r = connect_hello($proxy, "self.test:$self", client_hello('self.test'));
is($r->{connect}, 200, 'after reload: CONNECT answered');
is($r->{reply}, 'hello', 'after reload: the new policy lets the tunnel open');

my ($ok, $out) = $ng->test_config($http, module => 0,
    main => $stream->("$dir/bad.policy"),
    expect_log => qr/\[emerg\] .*bad\.policy:2: unknown signal/);
ok(!$ok, 'nginx -t fails with a bad policy');
like($out, qr/bad\.policy:2/, 'nginx -t names the policy file and line');

# (the destinations log their failed handshakes with the probe as crit)
$ng->expect_log(
    qr/\[emerg\] .*"certguard_connect" is on but no "certguard_policy" is set/);
($ok, $out) = $ng->test_config($http, module => 0, main => <<"MAIN");
load_module $STREAM;
load_module $MODULE;
stream {
    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        proxy_pass \$certguard_upstream;
    }
}
MAIN
ok(!$ok, 'nginx -t fails with certguard_connect but no policy');
like($out, qr/"certguard_connect" is on but no "certguard_policy" is set/,
     'nginx -t says why');

unlike(join("\n", grep { !/SSL_shutdown\(\) failed/ }
                   split /\n/, $ng->error_log),
       qr/\[(alert|emerg|crit)\]|exited on signal/,
       'no alerts or crashes in the error log');

$ng->stop;
stop_relay($relay);

done_testing();

###############################################################################

# curl through the proxy, trusting the test root.
sub curl { proxy_curl($root->{cert}, @_) }

###############################################################################
