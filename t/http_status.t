#!/usr/bin/perl

# certguard_status: the counters of both workers in the Prometheus text
# exposition format, read by a real parser (python3-prometheus-client's),
# after real traffic through two workers; the counters survive a reload.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream;

###############################################################################

Certguard::Nginx::need_module();

my $python = '/usr/bin/python3';
plan(skip_all => 'no python3-prometheus-client (scripts/deps.sh)')
    unless system($python, '-c', 'import prometheus_client.parser') == 0;

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard test root');

my %cert = (
    good => $pki->good_leaf('good', issuer => $root),
    bad  => $pki->leaf('bad', subject => '/CN=Major Cobalt Strike',
                       san => 'DNS:bad.test'),
);

my ($port, $sport, $up_good, $up_bad, $proxy) = free_ports(5);
my ($stream_module, $stream) = need_stream(curl => 1);
my $ng = Certguard::Nginx->new("$dir/nginx");

my $http = <<"HTTP";
    upstream good.test { server 127.0.0.1:$up_good; }
    upstream bad.test { server 127.0.0.1:$up_bad; }

    server {
        listen 127.0.0.1:$port reuseport;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_cache zone=verdicts:1m valid=5m;
        proxy_ssl_session_reuse off;

        location / {
            proxy_pass https://\$host;
        }
    }

    server {
        listen 127.0.0.1:$sport;
        location = /metrics {
            certguard_status;
        }
    }

@{[ $ng->tls_server(name => 'good', port => $up_good, cert => $cert{good}) ]}
@{[ $ng->tls_server(name => 'bad', port => $up_bad, cert => $cert{bad}) ]}
HTTP

my $main = <<"MAIN";
load_module @{[ module_path() ]};
load_module $stream;
load_module $stream_module;

stream {
    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_cache zone=stream_cg:1m;
        certguard_connect_ports $up_good;
        certguard_allow 127.0.0.1;
        proxy_pass \$certguard_upstream;
    }
}
MAIN

$ng->start($http, ports => [$port, $sport, $up_good, $up_bad, $proxy],
           workers => 2, module => 0, main => $main);

# parsed by prometheus_client: name{labels} -> value, and the family names
sub scrape {
    my $r = $ng->get($sport, '/metrics');
    my $p = run({ stdin => $r->{body}, timeout => 30 }, $python, '-c', <<'PY');
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out, names = {}, []
for fam in text_string_to_metric_families(sys.stdin.read()):
    names.append(fam.name + ":" + fam.type)
    for s in fam.samples:
        key = s.name + "{" + ",".join("%s=%s" % kv for kv in sorted(s.labels.items())) + "}"
        out[key] = s.value
print(json.dumps({"samples": out, "families": names}))
PY
    is($p->{exit}, 0, 'the exposition parses') or diag($p->{err});
    return ($r, decode_json($p->{out} || '{}'));
}

# traffic: every request a new client connection, spread over both workers

my (%status, %pids);
for my $i (1 .. 20) {
    my $host = $i % 4 ? 'good.test' : 'bad.test';
    my $r = $ng->get($port, '/', Host => $host);
    $status{$host}{$r->{status}}++;
}
is($status{'good.test'}{200}, 15, '15 allowed requests');
is($status{'bad.test'}{403}, 5, '5 blocked requests');

my ($r, $m) = scrape();
is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4',
   'content type of the text exposition format');
like($r->{body}, qr/^# HELP certguard_verdicts_total .+\n# TYPE certguard_verdicts_total counter\n/m,
     'HELP and TYPE lines');

my %fam = map { $_ => 1 } @{ $m->{families} };
for (qw(certguard_verdicts:counter certguard_signals:counter
        certguard_cache_requests:counter certguard_cache_evictions:counter
        certguard_probes:counter certguard_probe_duration_seconds:histogram
        certguard_refusals:counter certguard_auth_failures:counter)) {
    ok($fam{$_}, "family $_");
}
is(scalar @{ $m->{families} }, scalar keys %fam, 'each family once');

# every family on the page is in docs/directives.md's table, and the table
# names none the page lacks
my ($doc) = read_file(repo_root() . '/docs/directives.md')
    =~ /^#### certguard_status\n(.*?)^###/ms;
my %doc = map { $_ => 1 } ($doc // '') =~ /`(certguard_[a-z_]+)`/g;
delete $doc{certguard_status};
my %page = map { my ($n, $t) = split /:/; ($t eq 'counter' ? "${n}_total" : $n) => 1 }
           @{ $m->{families} };
is_deeply([sort keys %doc], [sort keys %page],
          'docs/directives.md lists exactly the families on the page');

my $s = $m->{samples};
is($s->{'certguard_verdicts_total{module=http,verdict=allow}'}, 15,
   'verdicts: 15 allow, counted across both workers');
is($s->{'certguard_verdicts_total{module=http,verdict=block}'}, 5,
   'verdicts: 5 block');
is($s->{'certguard_signals_total{module=http,signal=default_subject}'}, 5,
   'signals: default_subject in each block');
is($s->{'certguard_cache_requests_total{module=http,result=miss}'}
   + $s->{'certguard_cache_requests_total{module=http,result=hit}'}, 20,
   'cache: one lookup a request');
ok($s->{'certguard_cache_requests_total{module=http,result=hit}'} >= 16,
   'cache: hits after the first of each certificate (and worker race)');

# the stream module's counters, on the same page: one probe, its verdict,
# a cache hit for the second tunnel, a refused port

for (1 .. 2) {
    run({ timeout => 20 }, 'curl', '-sk', '--max-time', '10', '-x',
        "http://127.0.0.1:$proxy", "https://127.0.0.1:$up_good/");
}
run({ timeout => 20 }, 'curl', '-sk', '--max-time', '10', '-x',
    "http://127.0.0.1:$proxy", "https://127.0.0.1:$up_bad/");

($r, $m) = scrape();
$s = $m->{samples};
is($s->{'certguard_probes_total{module=stream,result=ok}'}, 1,
   'stream: one probe for two tunnels');
is($s->{'certguard_probe_duration_seconds_count{module=stream}'}, 1,
   'stream: the probe in the histogram');
is($s->{'certguard_cache_requests_total{module=stream,result=hit}'}, 1,
   'stream: the second tunnel from the cache');
my $sv = 0;
$sv += $s->{"certguard_verdicts_total{module=stream,verdict=$_}"} // 0
    for qw(allow tag block);
is($sv, 2, 'stream: two verdicts');
is($s->{'certguard_refusals_total{module=stream,reason=port}'}, 1,
   'stream: the refused port');

# a reload keeps the zone, and with it the counters

$ng->reload($http);
$ng->get($port, '/', Host => 'good.test');
($r, $m) = scrape();
is($m->{samples}{'certguard_verdicts_total{module=http,verdict=allow}'}, 16,
   'reload: counters go on');

$ng->stop;

done_testing();
