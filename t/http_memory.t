#!/usr/bin/perl

# The certificate memory in the HTTP module (certguard_memory): a name is
# first served with one CA's certificate; after a restart of the proxy the
# same name serves another CA's certificate with another key, and
# cert_changed fires (the memory survived the restart), and the policy
# decides: the default policy tags, a stricter one blocks.  Then a worker
# is killed with SIGKILL in the middle of traffic: the store still opens,
# reads and takes new sightings.

use warnings;
use strict;

use Test::More;
use Time::HiRes qw(time sleep);

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

my $DAY = 86400;
my $SCT = '1.3.6.1.4.1.11129.2.4.2=DER:0400';

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $ca1 = $pki->ca('ca1', subject => '/CN=certguard http memory CA 1');
my $ca2 = $pki->ca('ca2', subject => '/CN=certguard http memory CA 2');
my $cas = $pki->bundle('cas', $ca1, $ca2);

my %o = (subject => '/CN=n.test', san => 'DNS:n.test,DNS:*.load.test',
         ext => [$SCT], not_before => -10 * $DAY, not_after => 80 * $DAY);
my $a = $pki->leaf('a', issuer => $ca1, %o);
my $b = $pki->leaf('b', issuer => $ca2, fresh_key => 1, %o);

write_file("$dir/strict.policy", 'include ' . policy_dir()
           . "/default.policy;\nname strict-memory;\n"
           . "weight cert_changed 70;\n");

my $mem = "$dir/memory";
my ($port, $strict, $up) = free_ports(3);
my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

sub http {
    my ($cert, $size) = @_;
    my $common = <<"COMMON";
        certguard on;
        certguard_trusted_certificate $cas;
        certguard_log $logs/cef.log;
        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;
        location / {
            proxy_ssl_session_reuse off;
            proxy_ssl_name \$host;
            proxy_pass https://backend;
        }
COMMON

    return <<"HTTP"
    certguard_memory $mem@{[ $size ? " size=$size" : '' ]};

    upstream backend { server 127.0.0.1:$up; }

    server {
        listen 127.0.0.1:$port;
        certguard_policy @{[ policy_dir() ]}/default.policy;
$common
    }

    server {
        listen 127.0.0.1:$strict;
        certguard_policy $dir/strict.policy;
$common
    }
HTTP
    . $ng->tls_server(name => 'n', port => $up, cert => $cert);
}

# Waits until the memory holds what match says (the workers write it on a
# timer, about a second after the handshake).
sub memory_shows {
    my ($name, $match) = @_;
    my $deadline = time() + 10;
    my $r;

    while (time() < $deadline) {
        $r = cli('memory', $mem, 'show', $name);
        return $r if $r->{exit} == 0 && $r->{out} =~ $match;
        sleep 0.2;
    }

    diag("memory show $name: exit $r->{exit}: $r->{err}$r->{out}");
    return undef;
}

sub header {
    my ($r, $h) = @_;

    return $r->{headers}{lc $h} // '';
}

###############################################################################

# a bad size is refused at configuration time

my ($ok, $out) = $ng->test_config(http($a, '1k'),
                                  expect_log => qr/\[emerg\].*certguard_memory/);
ok(!$ok, 'certguard_memory size=1k is refused');
like($out, qr/invalid certguard_memory size "size=1k"/, '... and named');

($ok, $out) = $ng->test_config("    certguard_memory $mem;\n" . http($a),
                               expect_log => qr/\[emerg\].*certguard_memory/);
ok(!$ok, 'two certguard_memory directives are refused');
like($out, qr/"certguard_memory" directive is duplicate/, '... as duplicate');

($ok, $out) = $ng->test_config(http($a) . "    server { listen 127.0.0.1:$port;"
                               . " server_name tmp; proxy_temp_path $mem; }\n",
                               expect_log => qr/\[emerg\].*same path name/);
ok(!$ok, 'the memory directory cannot be a temp path too');

# first: n.test serves A, from CA 1

$ng->start(http($a), ports => [$port, $strict, $up]);

my $r = $ng->get($port, '/', Host => 'n.test');
is($r->{status}, 200, 'A: the request goes through');
like(header($r, 'X-Signals'), qr/\bfirst_seen\b/, 'A: first_seen fires');
is(header($r, 'X-Verdict'), 'allow', 'A: allowed');

ok(memory_shows('n.test', qr/\Q$a->{sha256}\E/),
   'A is written to the memory (while nginx runs)');
ok(-d $mem && -e "$mem/data.mdb", 'the memory directory was created');

$r = $ng->get($port, '/', Host => 'n.test');
is(header($r, 'X-Signals'), '', 'A again: nothing fires');

# a restart; now n.test serves B, from CA 2 with another key

$ng->stop;
$ng->start(http($b), ports => [$port, $strict, $up]);

$r = $ng->get($port, '/', Host => 'n.test');
like(header($r, 'X-Signals'), qr/\bcert_changed\b/,
     'B after the restart: cert_changed fires (the memory survived)');
is(header($r, 'X-Verdict'), 'tag', 'the default policy tags it');
is($r->{status}, 200, '... and lets it through');

$r = $ng->get($strict, '/', Host => 'n.test');
is($r->{status}, 403, 'a policy weighing cert_changed 70 blocks it');
like(header($r, 'X-Signals'), qr/\bcert_changed\b/, '... for cert_changed');

my @cef = grep { /cert_changed/ } $ng->log_lines('cef');
ok(@cef >= 2, 'CEF records of the change');
like($cef[0] // '', qr/ prevSha256=$a->{sha256}(?: |$)/,
     'CEF: the previous certificate');
like($cef[0] // '', qr/ prevIssuer=CN\\=certguard http memory CA 1$/,
     'CEF: its issuer');
like($cef[0] // '', qr/ firstSeen=\d{13} /, 'CEF: first seen');

# a reload: new workers, the same memory

$ng->reload(http($b));
$r = $ng->get($strict, '/', Host => 'n.test');
like(header($r, 'X-Signals'), qr/\bcert_changed\b/,
     'after a reload: the change is still seen');

$r = memory_shows('n.test', qr/\Q$b->{sha256}\E/);
ok($r && $r->{out} =~ /\Q$a->{sha256}\E/ && $r->{out} =~ /2 certificates/,
   'the memory holds A and B');

# SIGKILL of a worker in the middle of traffic

$ng->stop;
$ng->start(http($b), ports => [$port, $strict, $up], workers => 2,
           expect_log => qr/worker process \d+ exited on signal 9/);

my $results = "$dir/results";
my $stop = "$dir/stop";
my $pid = fork() // die "fork: $!";

if ($pid == 0) {
    my $deadline = time() + 30;
    open my $res, '>', $results or die "$results: $!";
    $res->autoflush(1);

    for my $i (1 .. 5000) {
        last if -e $stop || time() > $deadline;
        my $g = eval { $ng->get($port, '/', Host => "n$i.load.test") };
        print $res(($g ? $g->{status} // 'none' : 'error'), "\n");
    }

    close $res;
    exit 0;
}

# let it run, then kill a worker while requests keep coming
my $deadline = time() + 10;
sleep 0.1 while time() < $deadline
                && (-s $results // 0) < 4 * 40;     # 40 answers
my ($victim) = $ng->worker_pids;
ok($victim && kill('KILL', $victim), "SIGKILL to worker $victim");

$deadline = time() + 10;
sleep 0.1 while time() < $deadline && kill(0, $victim);
ok(!kill(0, $victim), 'the worker is gone');

my $before = -s $results;
$deadline = time() + 10;
sleep 0.1 while time() < $deadline && (-s $results) < $before + 4 * 40;
write_file($stop, '');
waitpid($pid, 0);

my @status = split /\n/, read_file($results);
my $good = grep { $_ eq '200' } @status;
ok($good >= 60, "traffic went on around the kill ($good of "
   . scalar(@status) . ' answered 200)');

# what the workers queued is written within about a second
my (@lines, @parsed, $loaded);
$deadline = time() + 10;
while (time() < $deadline) {
    $r = cli('memory', $mem, 'export');
    @lines = grep { length } split /\n/, $r->{out};
    @parsed = grep { defined } map { eval { decode_json($_) } } @lines;
    $loaded = grep { $_->{name} =~ /\.load\.test$/ } @parsed;
    last if $r->{exit} != 0 || $loaded >= 30;
    sleep 0.2;
}
is($r->{exit}, 0, 'after the kill: the store opens and exports')
    or diag($r->{err});
is(scalar @parsed, scalar @lines, 'after the kill: every line is sound');
ok($loaded >= 30, "sightings of the traffic were written ($loaded)");

$r = $ng->get($port, '/', Host => 'after-kill.load.test');
is($r->{status}, 200, 'after the kill: a request');
like(header($r, 'X-Signals'), qr/\bfirst_seen\b/, '... for a new name');
ok(memory_shows('after-kill.load.test', qr/\Q$b->{sha256}\E/),
   'after the kill: new sightings are still written');

$ng->stop;

# the memory a reload or restart keeps is the one the CLI reads
$r = cli('memory', $mem, 'show', 'n.test');
like($r->{out}, qr/\Q$a->{sha256}\E/, 'stopped: A still in the memory');

done_testing();
