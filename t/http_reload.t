#!/usr/bin/perl

# Reload under load: while a client keeps sending requests through the proxy
# (two workers, shared cache), nginx is reloaded again and again with
# policies that disagree about one destination.  Nothing may be lost: every
# request gets the answer of one policy or the other (200 or 403, never a
# 5xx or a dropped connection), no worker crashes, and once the reloads stop
# the last policy decides.

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

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');

my %cert = (
    good => $pki->good_leaf('good', issuer => $root),
    self => $pki->leaf('self', subject => '/CN=self.test',
                       san => 'DNS:self.test',
                       not_before => -10 * $DAY, not_after => 80 * $DAY),
);

# "strict" blocks the self-signed destination, "lenient" lets it through
write_file("$dir/strict.policy", <<'POLICY');
name strict;
threshold tag 30;
threshold block 70;
weight self_signed 50;
weight untrusted_chain 30;
POLICY
write_file("$dir/lenient.policy", <<'POLICY');
name lenient;
threshold tag 30;
threshold block 70;
weight self_signed 10;
weight untrusted_chain 10;
POLICY

my ($port, $good_port, $self_port) = free_ports(3);
my $ng = Certguard::Nginx->new("$dir/nginx");

sub http {
    my ($policy) = @_;

    return <<"HTTP"
    upstream good.test { server 127.0.0.1:$good_port; }
    upstream self.test { server 127.0.0.1:$self_port; }

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $dir/$policy.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_cache zone=reload:1m valid=10m;
        certguard_log $dir/nginx/logs/cef.log;

        location / {
            proxy_ssl_server_name on;
            proxy_pass https://\$host;
            add_header X-Policy \$certguard_verdict always;
        }
    }
HTTP
    . $ng->tls_server(name => 'good', port => $good_port,
                      cert => $cert{good})
    . $ng->tls_server(name => 'self', port => $self_port,
                      cert => $cert{self});
}

$ng->start(http('strict'), workers => 2,
           ports => [$port, $good_port, $self_port]);

is($ng->get($port, '/', Host => 'self.test')->{status}, 403,
   'strict policy: self-signed destination blocked');

# the load: a child sends requests until told to stop (or 60 s, 20000 at most)

my $results = "$dir/results";
my $stop = "$dir/stop";
my $pid = fork() // die "fork: $!";

if ($pid == 0) {
    my $deadline = time() + 60;
    open my $out, '>', $results or die "$results: $!";
    $out->autoflush(1);

    for my $i (1 .. 20000) {
        last if -e $stop || time() > $deadline;
        my $host = $i % 2 ? 'self.test' : 'good.test';
        my $r = eval { $ng->get($port, "/$i", Host => $host) };
        my $status = $r ? ($r->{status} // 'none') : 'error';
        print $out "$host $status\n";
    }

    close $out;
    exit 0;
}

sleep 0.3;
my $reloads = 0;
for my $i (1 .. 8) {
    $ng->reload(http($i % 2 ? 'lenient' : 'strict'));
    $reloads++;
    sleep 0.15;
}

write_file($stop, '');
waitpid($pid, 0);
is($?, 0, 'load client finished');

my (%by, @bad);
for (split /\n/, read_file($results)) {
    my ($host, $status) = split;
    $by{$host}{$status}++;
    push @bad, $_ unless ($host eq 'good.test' && $status eq '200')
                      || ($host eq 'self.test' && $status =~ /^(200|403)$/);
}

my $total = 0;
$total += $_ for map { values %$_ } values %by;

is($reloads, 8, 'eight reloads under load');
cmp_ok($total, '>=', 50, "load: $total requests during the reloads");
cmp_ok($total, '<', 20000, 'load: still running when the last reload ended');
is(scalar @bad, 0, 'every request got one policy\'s answer (200 or 403)')
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
ok($by{'self.test'}{200} && $by{'self.test'}{403},
   'both policies decided during the run')
    or diag(explain(\%by));

my $log = $ng->error_log;
unlike($log, qr/exited on signal|\[alert\]|\[emerg\]/,
       'no worker crashed, no alert');

# the last reload (8: strict) decides, whatever was cached before
is($ng->get($port, '/', Host => 'self.test')->{status}, 403,
   'after the reloads: the last policy blocks');

$ng->reload(http('lenient'));
my $r = $ng->get($port, '/', Host => 'self.test');
is($r->{status}, 200, 'one more reload: the lenient policy allows');
is($r->{headers}{'x-policy'}, 'allow', 'its verdict, not a cached one');

my @cef = split /\n/, read_file("$dir/nginx/logs/cef.log");
is(scalar(grep { !/^CEF:0\|certguard\|/ } @cef), 0,
   'every CEF line written during the reloads is whole');

$ng->stop;

done_testing();

###############################################################################
