#!/usr/bin/perl

# scripts/run.sh, the README's main job: starts the demo egress proxy with
# the default policy, shows an allowed and a blocked destination, says where
# the CEF records land, runs again without harm, and stops.

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

my $dir = tempdir();
my $run = "$dir/demo";

# the demo's nginx writes its logs to $run/logs: the harness checks them
my $demo = Certguard::Nginx->new($run);

# the demo's upstreams listen on PORT+363 and PORT+364
my $port;
for (1 .. 50) {
    my $p = free_port();
    next if $p + 364 > 65535;
    next if grep { !reserve_port($_) } $p + 363, $p + 364;
    $port = $p;
    last;
}
BAIL_OUT('no free port triple') unless $port;

my $connect_port = free_port();
(my $stream_module = module_path()) =~ s/ngx_http_/ngx_stream_/;

my %env = (CERTGUARD_RUN_DIR => $run, CERTGUARD_PORT => $port,
           CERTGUARD_CONNECT_PORT => $connect_port,
           CERTGUARD_MODULE => module_path(),
           CERTGUARD_STREAM_MODULE => $stream_module);
my $script = repo_root() . '/scripts/run.sh';

my $r = run({ env => \%env, timeout => 120 }, $script);
is($r->{exit}, 0, 'run.sh: exit 0') or diag($r->{err});
like($r->{out}, qr/certguard demo: running/, 'run.sh: running');
like($r->{out}, qr{CEF records\s+\Q$run\E/logs/cef\.log}, 'run.sh: says where CEF lands');
like($r->{out}, qr{HTTP/1\.1 200 .*hello from good}s, 'tour: good allowed');
like($r->{out}, qr{HTTP/1\.1 403 .*default_subject}s, 'tour: c2 blocked');

SKIP: {
    skip 'no stream module', 4 unless -r $stream_module;

    like($r->{out}, qr{HTTPS_PROXY=\S+ curl -s --cacert \S+ https://\S+\nhello from good},
         'tour: CONNECT to good allowed');
    like($r->{out}, qr{CONNECT refused}, 'tour: CONNECT to c2 refused');

    my @log = split /\n/, read_file("$run/logs/connect.log");
    ok((grep { / 200 .*certguard=allow/ } @log), 'CONNECT log: allowed');
    ok((grep { / 403 .*certguard=block .*default_subject/ } @log),
       'CONNECT log: blocked with its signals');
}

my $ng = Certguard::Nginx->new("$dir/client");

my $good = $ng->get($port, undef, request => 'GET http://good.certguard.test/',
                    Host => 'good.certguard.test');
is($good->{status}, 200, 'proxy: good destination allowed');
is($good->{headers}{'x-certguard-verdict'}, 'allow', 'proxy: verdict header');

my $c2 = $ng->get($port, undef, request => 'GET http://c2.certguard.test/',
                  Host => 'c2.certguard.test');
is($c2->{status}, 403, 'proxy: C2 destination blocked');
like($c2->{body}, qr/default_subject/, 'proxy: body names the signal');

my @cef = split /\n/, read_file("$run/logs/cef.log");
ok((grep { /act=blocked .*dhost=c2\.certguard\.test/ } @cef),
   'CEF: the block is recorded');
is(-s "$run/logs/c2-upstream.log" // 0, 0, 'the C2 upstream received nothing');

# again: reconfigures the running proxy, still one nginx

my $pid = read_file("$run/nginx.pid");
$r = run({ env => \%env, timeout => 120 }, $script);
is($r->{exit}, 0, 'second run: exit 0');
like($r->{out}, qr/reloaded/, 'second run: reloaded');
is(read_file("$run/nginx.pid"), $pid, 'second run: same nginx');

$r = run({ env => \%env }, $script, 'status');
is($r->{exit}, 0, 'status: running');

$r = run({ env => \%env, timeout => 60 }, $script, 'stop');
is($r->{exit}, 0, 'stop: exit 0');
like($r->{out}, qr/stopped/, 'stop: stopped');
ok(port_free($port), 'stop: port released');

$r = run({ env => \%env, timeout => 60 }, $script, 'stop');
is($r->{exit}, 0, 'stop again: exit 0');
like($r->{out}, qr/not running/, 'stop again: not running');

done_testing();

###############################################################################

sub port_free {
    my ($p) = @_;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1);

    return 0 unless $s;
    close $s;

    return 1;
}

END {
    # never leave the demo running when a test above died
    run({ env => \%env, timeout => 30 }, $script, 'stop') if %env && $script;
}
