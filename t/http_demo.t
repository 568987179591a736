#!/usr/bin/perl

# scripts/run.sh, the README's main job: starts the demo egress proxy (one
# port, proxy authentication demo/demo, names from the demo's dnsmasq),
# shows an allowed and a blocked destination, says where the CEF records
# land, runs again without harm, and stops.  Every port and address is the
# test's own, so the demo of another checkout can run beside it.

use warnings;
use strict;

use Test::More;
use IO::Socket::INET;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

plan(skip_all => 'no dnsmasq (scripts/deps.sh)') unless -x '/usr/sbin/dnsmasq';
plan(skip_all => 'no curl') unless -x '/usr/bin/curl';

my $dir = tempdir();
my $run = "$dir/demo";

# the demo's nginx writes its logs to $run/logs: the harness checks them
my $demo = Certguard::Nginx->new($run);

my ($proxy, $dns, $http, $tls, $c2) = free_ports(5);

# destinations on loopback addresses of this test's own (127.0.x.y, from
# the process id), never the proxy's own 127.0.0.1
my $net = 16 + $$ % 200;
my ($good_addr, $c2_addr) = ("127.0.$net.2", "127.0.$net.3");

(my $stream_module = module_path()) =~ s/ngx_http_/ngx_stream_/;

my %env = (CERTGUARD_RUN_DIR => $run, CERTGUARD_PROXY_PORT => $proxy,
           CERTGUARD_DNS_PORT => $dns, CERTGUARD_GOOD_ADDR => $good_addr,
           CERTGUARD_C2_ADDR => $c2_addr, CERTGUARD_GOOD_HTTP_PORT => $http,
           CERTGUARD_GOOD_TLS_PORT => $tls, CERTGUARD_C2_PORT => $c2,
           CERTGUARD_MODULE => module_path(),
           CERTGUARD_STREAM_MODULE => $stream_module);
my $script = repo_root() . '/scripts/run.sh';

my $r = run({ env => \%env, timeout => 120 }, $script);
is($r->{exit}, 0, 'run.sh: exit 0') or diag($r->{err});
like($r->{out}, qr/certguard demo: running/, 'run.sh: running');
like($r->{out}, qr{CEF records\s+\Q$run\E/logs/cef\.log}, 'run.sh: says where CEF lands');
like($r->{out}, qr{HTTP/1\.1 200 .*hello from good\.certguard\.test\n}s,
     'tour: plain HTTP to good allowed');
like($r->{out}, qr{hello from good\.certguard\.test over TLS},
     'tour: HTTPS to good through CONNECT allowed');
like($r->{out}, qr{alert handshake failure}, 'tour: c2 refused');
like($r->{out}, qr{alert handshake failure.*CONNECT tunnel failed, response 403}s,
     'tour: c2 known from then on, 403');
like($r->{out}, qr{HTTP/1\.1 407 }, 'tour: no credentials, 407');

my $p = "http://demo:demo\@127.0.0.1:$proxy";

sub curl {
    my (@args) = @_;
    return run({ timeout => 20 }, 'curl', '-s', '--max-time', '10', @args);
}

$r = curl('-x', $p, "http://good.certguard.test:$http/");
is($r->{out}, "hello from good.certguard.test\n", 'plain HTTP by name: allowed');

$r = curl('-x', $p, '--cacert', "$run/pki/ca.crt",
          "https://good.certguard.test:$tls/");
is($r->{out}, "hello from good.certguard.test over TLS\n",
   'HTTPS by name through CONNECT: allowed');

$r = curl('-x', $p, '-k', "https://c2.certguard.test:$c2/");
isnt($r->{exit}, 0, 'C2 through CONNECT: refused');
is(-s "$run/logs/c2-upstream.log" // 0, 0, 'the C2 server received nothing');

$r = curl('-o', '/dev/null', '-w', '%{http_code}', '-x',
          "http://127.0.0.1:$proxy", "http://good.certguard.test:$http/");
is($r->{out}, '407', 'no credentials: 407');

$r = curl('-o', '/dev/null', '-w', '%{http_code}', '-x', $p,
          "http://good.certguard.test:25/");
is($r->{out}, '403', 'port 25: refused');

my @log = split /\n/, read_file("$run/logs/connect.log");
ok((grep { / 200 .*certguard=allow/ } @log), 'CONNECT log: allowed');
ok((grep { /demo .* 403 .*certguard=block .*default_subject/ } @log),
   'CONNECT log: blocked with its signals and the user');

my @cef = grep { /^CEF:0\|/ } map { split /\n/, read_file($_) }
          glob("$run/logs/*.cef $run/logs/cef*");
ok((grep { /act=blocked .*dhost=c2\.certguard\.test/ && /suser=demo/ } @cef),
   'CEF: the block is recorded, with the user');

# again: reconfigures the running proxy, still one nginx

my $pid = read_file("$run/nginx.pid");
$r = run({ env => \%env, timeout => 120 }, $script);
is($r->{exit}, 0, 'second run: exit 0') or diag($r->{err});
like($r->{out}, qr/reloaded/, 'second run: reloaded');
is(read_file("$run/nginx.pid"), $pid, 'second run: same nginx');

$r = run({ env => \%env }, $script, 'status');
is($r->{exit}, 0, 'status: running');

$r = run({ env => \%env, timeout => 60 }, $script, 'stop');
is($r->{exit}, 0, 'stop: exit 0');
like($r->{out}, qr/stopped/, 'stop: stopped');
ok(port_free($proxy), 'stop: proxy port released');
ok(!-e "$run/dnsmasq.pid", 'stop: dnsmasq stopped');

$r = run({ env => \%env, timeout => 60 }, $script, 'stop');
is($r->{exit}, 0, 'stop again: exit 0');
like($r->{out}, qr/not running/, 'stop again: not running');

done_testing();

###############################################################################

sub port_free {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1);

    return 0 unless $s;
    close $s;

    return 1;
}

END {
    # never leave the demo running when a test above died
    run({ env => \%env, timeout => 30 }, $script, 'stop') if %env && $script;
}
