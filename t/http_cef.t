#!/usr/bin/perl

# HTTP module: CEF records.  certguard_log syslog:server=... reaches a real
# rsyslog receiver (mmnormalize, %cef:cef%) and parses into the expected
# fields, also for a hostile certificate subject; certguard_log FILE with
# min_verdict= filters; $certguard_cef carries the same record.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Syslog;

###############################################################################

Certguard::Nginx::need_module();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');
my $other = $pki->ca('other', subject => '/CN=Example Corp Internal CA');

my $hostile_cn = "x|y act=allowed\\ cs1=z\nCEF:0|forged|";

my %cert = (
    good     => $pki->good_leaf('good', issuer => $root),
    internal => $pki->good_leaf('internal', issuer => $other),
    bad      => $pki->leaf('bad', subject => '/CN=bad.test',
                           san => 'DNS:bad.test'),
    hostile  => $pki->leaf('hostile', subject => [[O => 'certguard'],
                                                  [CN => $hostile_cn]],
                           san => 'DNS:hostile.test'),
);

my $syslog = Certguard::Syslog->start($dir);

my @names = sort keys %cert;
my ($port, @up) = free_ports(1 + @names);
my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

my ($upstreams, $servers) = $ng->tls_upstreams(\%cert, \%up);

$ng->start(<<"HTTP", ports => [$port, @up]);
$upstreams

    log_format cef escape=none '\$certguard_cef';

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};

        location /syslog/ {
            certguard_log syslog:server=127.0.0.1:@{[ $syslog->port ]},tag=certguard;
            proxy_pass https://\$host;
        }

        location /file/ {
            certguard_log $logs/cef-block.log min_verdict=block;
            access_log $logs/cef-var.log cef;
            proxy_pass https://\$host;
        }

        location /var-only/ {
            access_log $logs/cef-var-only.log cef;
            proxy_pass https://\$host;
        }

        location /tagged/ {
            certguard_log $logs/cef-tag.log min_verdict=tag;
            proxy_pass https://\$host;
        }
    }

$servers
HTTP

sub fetch {
    my ($name, $path) = @_;

    return $ng->get($port, $path, Host => "$name.test");
}

# syslog: one record per scored handshake, parsed by mmnormalize

is(fetch('good', '/syslog/')->{status}, 200, 'syslog: good passes');
is(fetch('internal', '/syslog/')->{status}, 200, 'syslog: internal passes');
is(fetch('bad', '/syslog/')->{status}, 403, 'syslog: bad blocked');
is(fetch('hostile', '/syslog/')->{status}, 403, 'syslog: hostile blocked');

my @rec = $syslog->wait_records(4, 10);
is(scalar @rec, 4, 'syslog: four records');

my %by = map { ($_->{cef}{Extensions}{dhost} // '?') => $_ } @rec;
my $pn = 0;

for my $case (['good', 'allowed'], ['internal', 'tagged'],
              ['bad', 'blocked'], ['hostile', 'blocked'])
{
    my ($name, $act) = @$case;
    my $rec = $by{"$name.test"};
    my $cef = $rec->{cef} // {};
    my $x = $cef->{Extensions} // {};

    ok($rec->{cef}, "syslog $name: parsed as CEF");
    is($cef->{DeviceVendor}, 'certguard', "syslog $name: vendor");
    is($cef->{DeviceProduct}, 'certguard', "syslog $name: product");
    is($x->{act}, $act, "syslog $name: act=$act");
    is($x->{dst}, '127.0.0.1', "syslog $name: dst");
    is($x->{dpt}, $up{$name}, "syslog $name: dpt");
    is($x->{src}, '127.0.0.1', "syslog $name: src");
    like($x->{request} // '', qr{^https://$name\.test/syslog/},
         "syslog $name: request");

    my %label = map { ($x->{"${_}Label"} // '') => $x->{$_} }
                grep { /^cs\d$/ } keys %$x;
    is($label{sha256}, $cert{$name}{sha256}, "syslog $name: sha256 field");
}

my $hx = $by{'hostile.test'}{cef}{Extensions} // {};
my %hlabel = map { ($hx->{"${_}Label"} // '') => $hx->{$_} }
             grep { /^cs\d$/ } keys %$hx;
like($hlabel{subject} // '', qr/\Qact=allowed\E/,
     'hostile subject: kept inside its field');
is(scalar(grep { ($_->{_raw} // '') =~ /forged/ && !$_->{cef} } @rec), 0,
   'hostile subject: no forged record');
like($rec[0]{_raw} // '', qr/^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ certguard: ?CEF:0\|/,
     'syslog: RFC 3164 header with the tag');

# file with min_verdict=block, and $certguard_cef

is(fetch('good', '/file/')->{status}, 200, 'file: good passes');
is(fetch('bad', '/file/')->{status}, 403, 'file: bad blocked');

my @block = $ng->log_lines('cef-block');
is(scalar @block, 1, 'min_verdict=block: only the block is logged');
like($block[0] // '', qr/dhost=bad\.test/, 'min_verdict=block: the block');

my @var = $ng->log_lines('cef-var');
is(scalar @var, 2, '$certguard_cef: one line per request');
like($var[0] // '', qr/^CEF:0\|.* act=allowed .*dhost=good\.test/,
     '$certguard_cef: allowed record');
is($var[1], $block[0], '$certguard_cef: the record that was logged');

# $certguard_cef of a block without certguard_log still names the
# destination (the peer is released before the log phase)

is(fetch('bad', '/var-only/')->{status}, 403, 'variable only: blocked');
my ($vo) = $ng->log_lines('cef-var-only');
like($vo // '', qr/ act=blocked .* dst=127\.0\.0\.1 dpt=$up{bad} .*dhost=bad\.test/,
     'variable only: act, dst, dpt, dhost');

# min_verdict=tag (internal.test resumes the session of /syslog/: an
# abbreviated handshake is logged with the session's verdict)

fetch($_, '/tagged/') for qw/good internal bad/;
my @tag = $ng->log_lines('cef-tag');
is(scalar @tag, 2, 'min_verdict=tag: tag and block logged');
ok(!grep({ /dhost=good\.test/ } @tag), 'min_verdict=tag: allow not logged');

$ng->stop;
$syslog->stop;

done_testing();
