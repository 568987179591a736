#!/usr/bin/perl

# HTTP module and nginx's upstream machinery: a block is not retried on the
# next server (proxy_next_upstream) and does not count as a failure of the
# server (max_fails), while real failures still are; TLS 1.2 and TLS 1.3;
# proxy_ssl_verify on and off keep their stock behaviour; locations with
# certguard off are unaffected; monitor mode.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $other = $pki->ca('other', subject => '/CN=Example Corp Internal CA');

my %cert = (
    good     => $pki->good_leaf('good', issuer => $root),
    backup   => $pki->good_leaf('backup', issuer => $root),
    mismatch => $pki->good_leaf('mismatch', issuer => $root,
                                san => 'DNS:elsewhere.test'),
    internal => $pki->good_leaf('internal', issuer => $other),
    bad1     => $pki->leaf('bad1', subject => '/CN=bad1.test',
                           san => 'DNS:bad1.test'),
    bad2     => $pki->leaf('bad2', subject => '/CN=bad2.test',
                           san => 'DNS:bad2.test'),
);

my @names = sort keys %cert;
my ($port, $closed, @up) = free_ports(2 + @names);
my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

my ($upstreams, $servers) = $ng->tls_upstreams(\%cert, \%up);

$ng->start(<<"HTTP", ports => [$port, @up]);
$upstreams

    # two blocked servers and a backup: a retry would reach the backup
    upstream retry.test {
        server 127.0.0.1:$up{bad1} max_fails=1 fail_timeout=60s;
        server 127.0.0.1:$up{bad2} max_fails=1 fail_timeout=60s;
        server 127.0.0.1:$up{backup} backup;
    }

    # a real failure (nothing listens) is still retried on the backup
    upstream realfail.test {
        server 127.0.0.1:$closed;
        server 127.0.0.1:$up{backup} backup;
    }

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/cef.log;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Action \$certguard_action always;

        location /retry/ {
            proxy_next_upstream error timeout http_502;
            proxy_pass https://\$host;
        }

        location /v12/ {
            proxy_ssl_protocols TLSv1.2;
            proxy_pass https://\$host;
        }

        location /v13/ {
            proxy_ssl_protocols TLSv1.3;
            proxy_pass https://\$host;
        }

        location /verify/ {
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $root->{cert};
            proxy_pass https://\$host;
        }

        location /verify-off/ {
            certguard off;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $root->{cert};
            proxy_pass https://\$host;
        }

        location /off/ {
            certguard off;
            proxy_pass https://\$host;
        }

        location /monitor/ {
            certguard_mode monitor;
            proxy_pass https://\$host;
        }
    }

$servers
HTTP

sub fetch {
    my ($name, $path) = @_;

    return $ng->get($port, $path, Host => "$name.test");
}

# no retry, no failure accounting

my @retry = map { fetch('retry', '/retry/') } 1 .. 4;
is_deeply([ map { $_->{status} } @retry ], [403, 403, 403, 403],
          'blocked servers: every request 403');
is(scalar $ng->access_log('backup'), 0, 'block not retried on the backup');
is(scalar $ng->access_log('bad1') + $ng->access_log('bad2'), 0,
   'blocked servers received nothing');
unlike($ng->error_log, qr/upstream server temporarily disabled/,
       'a block does not disable the server');
unlike($ng->error_log, qr/no live upstreams/, 'servers stay live');
is(scalar(() = $ng->error_log =~ /certguard: blocked certificate/g), 4,
   'one scored handshake per request');

my $r = fetch('realfail', '/retry/');
is($r->{status}, 200, 'real failure: retried on the backup');
is(scalar $ng->access_log('backup'), 1, 'real failure: backup answered');

# TLS 1.2 and TLS 1.3

for my $v (['/v12/', 'TLSv1.2'], ['/v13/', 'TLSv1.3']) {
    my ($path, $proto) = @$v;
    my $before = () = $ng->access_log('good');

    $r = fetch('good', $path);
    is($r->{status}, 200, "$proto: good certificate passes");
    is($r->{headers}{'x-verdict'}, 'allow', "$proto: allow");
    my @log = $ng->access_log('good');
    like($log[$before] // '', qr/^\Q$proto\E /, "$proto: upstream saw $proto");

    $r = fetch('bad1', $path);
    is($r->{status}, 403, "$proto: self-signed blocked");
    is(scalar $ng->access_log('bad1'), 0, "$proto: blocked upstream untouched");

    $r = fetch('internal', $path);
    is($r->{status}, 200, "$proto: internal CA passes");
    is($r->{headers}{'x-verdict'}, 'tag', "$proto: internal CA tagged");
}

# proxy_ssl_verify: what nginx rejects it still rejects (502 and its own
# log line), with certguard on or off; what certguard blocks is 403

for my $path ('/verify/', '/verify-off/') {
    my $on = $path eq '/verify/' ? 'certguard on' : 'certguard off';

    $r = fetch('good', $path);
    is($r->{status}, 200, "verify on, $on: good passes");

    $r = fetch('mismatch', $path);
    is($r->{status}, 502, "verify on, $on: name mismatch is nginx's 502");

    $r = fetch('internal', $path);
    is($r->{status}, 502, "verify on, $on: untrusted is nginx's 502");
}

like($ng->error_log, qr/upstream SSL certificate does not match "mismatch\.test"/,
     'verify on: nginx logs the mismatch');
like($ng->error_log, qr/upstream SSL certificate verify error/,
     'verify on: nginx logs the verify error');

$r = fetch('bad2', '/verify/');
is($r->{status}, 403, 'verify on: certguard block is 403');

# certguard off: stock nginx, no verdict

$r = fetch('bad1', '/off/');
is($r->{status}, 200, 'certguard off: self-signed passes');
is($r->{headers}{'x-verdict'} // '', '', 'certguard off: no verdict');

$r = fetch('mismatch', '/off/');
is($r->{status}, 200, 'verify off, certguard off: mismatch passes');

# monitor mode: scored and logged as would-block, never blocked

my $cef_before = () = $ng->log_lines('cef');
$r = fetch('bad2', '/monitor/');
is($r->{status}, 200, 'monitor: passes');
is($r->{headers}{'x-verdict'}, 'block', 'monitor: verdict is block');
is($r->{headers}{'x-action'}, 'would-block', 'monitor: action would-block');
my @cef = $ng->log_lines('cef');
like($cef[$cef_before] // '', qr/ act=would-block .*dhost=bad2\.test|dhost=bad2\.test.* act=would-block /,
     'monitor: CEF act=would-block');

$ng->stop;

done_testing();
