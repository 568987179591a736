#!/usr/bin/perl

# The analyst content in docs/siem/ reads only fields certguard's records
# carry: every CommonSecurityLog column the Sentinel queries use, and every
# raw CEF key or CIM alias the Splunk searches use, is present in records
# produced here by the real producers (the CLI's check --format cef, and a
# forward proxy that refuses destinations and credentials).

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
plan(skip_all => 'no curl') unless -x '/usr/bin/curl';

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard siem test root');
my $good = $pki->good_leaf('good', issuer => $root);
my $c2 = $pki->leaf('c2', subject => '/CN=Major Cobalt Strike/O=cobaltstrike',
                    san => 'DNS:c2.test');

my @records;

for my $c ([$good, 'good.test'], [$c2, 'c2.test']) {
    my $r = check($c->[0]{chain}, ca_file => $root->{cert}, sni => $c->[1],
                  format => 'cef', dst => '127.0.0.2:443',
                  args => ['--client-sni', $c->[1]]);
    push @records, grep { /^CEF:0\|/ } split /\n/, $r->{out};
}

# refusal records from a real forward proxy: a port, a wrong password

my ($port, $dns) = free_ports(2);
write_file("$dir/users", "alice:{PLAIN}secret\n");
my $ng = Certguard::Nginx->new("$dir/nginx");
$ng->dns_server($dns, 'x.test' => ['127.0.0.2']);
$ng->start(<<"HTTP", ports => [$port]);
    resolver 127.0.0.1:$dns ipv6=off;
    server {
        listen 127.0.0.1:$port;
        certguard_log $dir/nginx/logs/cef.log;
        certguard_proxy_auth "siem";
        certguard_proxy_auth_user_file $dir/users;
        location / { include @{[ repo_root() ]}/conf/forward-proxy.conf; }
    }
HTTP
for my $u ('alice:secret', 'alice:wrong') {
    run({ timeout => 20 }, 'curl', '-s', '--max-time', '10', '-x',
        "http://$u\@127.0.0.1:$port", 'http://x.test:25/');
}
$ng->stop;
push @records, $ng->log_lines('cef');

ok(@records >= 4, 'records from the CLI and the proxy') or diag(explain(\@records));

# every key seen in any record, and the header's event classes
my (%key, %class);
for (@records) {
    $class{$1} = 1 if /^CEF:0\|[^|]*\|[^|]*\|[^|]*\|([^|]*)\|/;
    $key{$1} = 1 while /(?:^|\s)([A-Za-z0-9]+)=/g;
}
ok($class{'dest-refused'} && $class{'auth-failed'} && $class{'cert-block'},
   'refusal, authentication and certificate records');

# CommonSecurityLog columns and the CEF key each comes from (docs/cef.md)
my %column = (
    DeviceVendor => 'header', DeviceEventClassID => 'header',
    TimeGenerated => 'header', DeviceAction => 'act', SourceIP => 'src',
    SourceUserName => 'suser', DestinationHostName => 'dhost',
    DestinationIP => 'dst', DestinationPort => 'dpt', Reason => 'reason',
    Message => 'msg', DeviceCustomString1 => 'cs1',
    DeviceCustomString2 => 'cs2', DeviceCustomString3 => 'cs3',
    DeviceCustomString5 => 'cs5', DeviceCustomNumber1 => 'cn1',
    FlexString1 => 'flexString1', FlexString2 => 'flexString2',
    EventCount => 'cnt', AdditionalExtensions => 'connectionId',
);
# read inside coalesce(..., 1): a record may leave it out
my %optional = (EventCount => 1);

my $kql = read_file(repo_root() . '/docs/siem/sentinel/hunting.kql');
$kql =~ s{//[^\n]*}{}g;
my %used = map { $_ => 1 } grep { exists $column{$_} } $kql =~ /\b([A-Z]\w+)\b/g;
ok(scalar keys %used >= 15, 'the Sentinel queries read ' . scalar(keys %used)
   . ' columns');
for my $c (sort keys %used) {
    next if $optional{$c};
    my $k = $column{$c};
    ok($k eq 'header' || $key{$k}, "Sentinel column $c: CEF $k is in the records");
}
my %named = map { $_ => 1 } $kql =~ /\b([A-Z]\w+)\s*=[^=~]/g;
my @unknown = grep { /^(Device|Source|Destination|Flex|Event|Additional)/
                     && !exists $column{$_} && !$named{$_} }
              $kql =~ /\b([A-Z]\w+)\b/g;
is_deeply([sort { $a cmp $b } keys %{{ map { $_ => 1 } @unknown }}], [],
          'the Sentinel queries use no column the mapping does not know');

# Splunk: raw keys and the aliases of props.conf
my %alias = (action => 'act', src => 'src', user => 'suser',
             dest_host => 'dhost', dest => 'dst', dest_port => 'dpt');
my $spl = read_file(repo_root() . '/docs/siem/splunk/searches.spl');
my %splused;
for my $w ($spl =~ /\b([A-Za-z_][A-Za-z0-9_]*)\b/g) {
    $splused{$w} = 1 if $w =~ /^(cs\d|cn\d|flexString\d|reason|msg|cnt)$/
                        || exists $alias{$w};
}
ok(scalar keys %splused >= 10, 'the Splunk searches read '
   . scalar(keys %splused) . ' fields');
for my $f (sort keys %splused) {
    next if $f eq 'cnt';        # coalesce(cnt, 1)
    my $k = $alias{$f} // $f;
    ok($key{$k}, "Splunk field $f: CEF $k is in the records");
}

my $props = read_file(repo_root() . '/docs/siem/splunk/props.conf');
for my $a (sort keys %alias) {
    next if $a eq 'src';
    like($props, qr/\b$alias{$a} AS $a\b/, "props.conf aliases $alias{$a} as $a");
}

done_testing();
