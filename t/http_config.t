#!/usr/bin/perl

# HTTP module configuration: `nginx -t` fails on a bad policy with the
# engine's file:line message and on misused directives; `nginx -s reload`
# swaps the policy (and cached verdicts of the old one are not served); a
# reload with a broken policy keeps the running configuration.

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
my $ss = $pki->leaf('ss', subject => '/CN=ss.test', san => 'DNS:ss.test');

my $default = policy_dir() . '/default.policy';

write_file("$dir/lenient.policy", "include $default;\n"
    . "name lenient;\nweight self_signed 0;\nweight untrusted_chain 0;\n");
write_file("$dir/unknown.policy", "name broken;\n\nweight nosuch_signal 10;\n");
write_file("$dir/syntax.policy", "name broken;\n# comment\nthreshold tag 30\n");
write_file("$dir/included.policy", "name outer;\ninclude $dir/unknown.policy;\n");

my ($port, $up) = free_ports(2);

my $ng = Certguard::Nginx->new("$dir/nginx");

sub http {
    my (%o) = @_;
    my $policy = $o{policy} // $default;

    return <<"HTTP";
    upstream ss.test { server 127.0.0.1:$up; }

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $root->{cert};
        @{[ $o{cache} // 'certguard_cache zone=verdicts:1m;' ]}
        @{[ $o{extra} // '' ]}

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Cache \$certguard_cache always;

        location / {
            proxy_ssl_session_reuse off;
            proxy_pass https://\$host;
        }
    }

@{[ $ng->tls_server(name => 'ss', port => $up, cert => $ss) ]}
HTTP
}

# nginx -t

my ($ok, $out) = $ng->test_config(http());
ok($ok, 'nginx -t: valid configuration') or diag($out);

($ok, $out) = $ng->test_config(http(policy => "$dir/unknown.policy"),
    expect_log => qr/\[emerg\] .*unknown\.policy:3: unknown signal/);
ok(!$ok, 'nginx -t: unknown signal fails');
like($out, qr{\Q$dir\E/unknown\.policy:3: unknown signal "nosuch_signal"},
     'nginx -t: file:line of the unknown signal');
like($out, qr/nginx(-t)?\.conf:\d+/, 'nginx -t: and the nginx.conf line');

($ok, $out) = $ng->test_config(http(policy => "$dir/syntax.policy"),
    expect_log => qr/\[emerg\] .*syntax\.policy:[34]: unexpected end of file/);
ok(!$ok, 'nginx -t: syntax error fails');
# the statement starts on line 3; the end of the file is line 4
like($out, qr{\Q$dir\E/syntax\.policy:[34]: .*expected ";"},
     'nginx -t: file:line of the syntax error');

($ok, $out) = $ng->test_config(http(policy => "$dir/included.policy"));
ok(!$ok, 'nginx -t: error in an included file fails');
like($out, qr{\Q$dir\E/unknown\.policy:3:}, 'nginx -t: the included file named');

($ok, $out) = $ng->test_config(http(policy => "$dir/missing.policy"),
    expect_log => qr/\[emerg\] .*missing\.policy: cannot open/);
ok(!$ok, 'nginx -t: missing policy fails');
like($out, qr/missing\.policy/, 'nginx -t: missing policy named');

for my $case (
    ['certguard_block_status 502;', qr/invalid status "502"/, 'status 502'],
    ['certguard_block_status 200;', qr/invalid status "200"/, 'status 200'],
    ['certguard_cache valid=1m;', qr/must have "zone" parameter/,
     'cache without zone'],
    ['certguard_log syslog:tag=x;', qr/no syslog server specified/,
     'syslog without server'],
    ['certguard_log off min_verdict=tag;', qr/invalid parameter/, 'log off args'],
    ['certguard_log x.log min_verdict=maybe;', qr/invalid parameter/,
     'bad min_verdict'],
    ['certguard_mode audit;', qr/invalid value "audit"/, 'unknown mode'],
    ["certguard_geoip_country $dir/none.mmdb;", qr/none\.mmdb/,
     'missing GeoIP database'],
)
{
    my ($extra, $re, $name) = @$case;

    ($ok, $out) = $ng->test_config(http(extra => $extra, cache => ''),
                                   expect_log => qr/\[emerg\] .*$re/);
    ok(!$ok, "nginx -t: $name fails");
    like($out, $re, "nginx -t: $name message");
}

$ng->expect_log(qr/\[emerg\] .*"certguard" is on but no "certguard_policy"/);
($ok, $out) = $ng->test_config(<<"HTTP");
    server {
        listen 127.0.0.1:$port;
        certguard on;
        location / { proxy_pass https://127.0.0.1:$up; }
    }
HTTP
ok(!$ok, 'nginx -t: certguard on without a policy fails');
like($out, qr/no "certguard_policy"/, 'nginx -t: missing policy explained');

($ok, $out) = $ng->test_config(<<"HTTP");
    server {
        listen 127.0.0.1:$port;
        certguard_trusted_certificate $dir/none.pem;
        location / { proxy_pass https://127.0.0.1:$up; }
    }
HTTP
ok($ok, 'nginx -t: certguard off loads nothing') or diag($out);

($ok, $out) = $ng->test_config(<<"HTTP");
    server {
        listen 127.0.0.1:$port;
        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        location / { proxy_pass https://127.0.0.1:$up; }
    }
HTTP
ok($ok, 'nginx -t: certguard_trusted_certificate FILE system=off') or diag($out);

($ok, $out) = $ng->test_config(<<"HTTP", expect_log => qr/invalid parameter "system=maybe"/);
    server {
        listen 127.0.0.1:$port;
        certguard_trusted_certificate $root->{cert} system=maybe;
        location / { proxy_pass https://127.0.0.1:$up; }
    }
HTTP
ok(!$ok, 'nginx -t: an unknown trust parameter fails');
like($out, qr/invalid parameter "system=maybe" in \S+:\d+/, 'nginx -t: names the parameter and file:line');

# each file is loaded once per configuration, however many locations name
# it (counted with strace, where there is one)

SKIP: {
    skip 'no strace', 3 unless -x '/usr/bin/strace';

    my $many = join '', map { <<"LOC" } 1 .. 4;
        location /l$_/ {
            certguard_policy $dir/lenient.policy;
            certguard_trusted_certificate $root->{cert};
            proxy_pass https://127.0.0.1:$up;
        }
LOC
    my %o = (workers => 1, error_level => 'info');
    write_file("$dir/nginx/many.conf", $ng->config(<<"HTTP", %o));
    server {
        listen 127.0.0.1:$port;
        certguard on;
        certguard_policy $dir/lenient.policy;
        certguard_trusted_certificate $root->{cert};
$many
    }
HTTP

    my $t = run({ timeout => 60 }, '/usr/bin/strace', '-f', '-qq',
                '-e', 'trace=openat', '-o', "$dir/strace.out",
                $Certguard::Nginx::NGINX, '-t', '-p', "$dir/nginx/",
                '-c', "$dir/nginx/many.conf",
                '-e', "$dir/nginx/logs/error-t.log");
    my $trace = read_file("$dir/strace.out");
    is($t->{exit}, 0, 'five mentions: nginx -t passes') or diag($t->{err});

    is(scalar(() = $trace =~ /lenient\.policy"/g), 1,
       'policy named five times: read once');
    is(scalar(() = $trace =~ /\Q$root->{cert}\E"/g), 1,
       'trust bundle named five times: read once');
}

# reload swaps the policy

$ng->start(http(policy => "$dir/lenient.policy"), ports => [$port, $up]);

my $r = $ng->get($port, '/', Host => 'ss.test');
is($r->{status}, 200, 'lenient policy: self-signed passes');
is($r->{headers}{'x-verdict'}, 'allow', 'lenient policy: allow');
$r = $ng->get($port, '/', Host => 'ss.test');
is($r->{headers}{'x-cache'}, 'HIT', 'lenient policy: verdict cached');

$ng->reload(http(policy => $default));

$r = $ng->get($port, '/', Host => 'ss.test');
is($r->{status}, 403, 'after reload: default policy blocks');
is($r->{headers}{'x-cache'}, 'MISS', 'after reload: old verdict not served');

# a broken policy on reload: nginx keeps the running configuration

write_file("$dir/nginx/nginx.conf",
           $ng->config(http(policy => "$dir/unknown.policy"), workers => 1,
                       error_level => 'info'));
$ng->expect_log(qr/\[emerg\] .*unknown\.policy:3: unknown signal/);
my $before = length $ng->error_log;
kill 'HUP', $ng->{pid};

my $deadline = time() + 10;
while (time() < $deadline
       && substr($ng->error_log, $before) !~ /\[emerg\]/)
{
    select(undef, undef, undef, 0.05);
}
like(substr($ng->error_log, $before), qr/unknown\.policy:3:/,
     'broken reload: error names file:line');

$r = $ng->get($port, '/', Host => 'ss.test');
is($r->{status}, 403, 'broken reload: previous policy still enforced');

$ng->stop;

done_testing();
