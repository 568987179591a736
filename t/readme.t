#!/usr/bin/perl

# The README's minimal configuration must load as written: this takes the
# nginx block after "A minimal configuration" from README.md, points only
# its installed paths (modules, /etc/certguard, logs, the socket) at this
# checkout and a temporary directory, and runs nginx -t on it.  Anything
# else in the text (a missing events block, a directive that does not
# exist, a typo) fails here, so the README cannot rot.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Nginx;

###############################################################################

Certguard::Nginx::need_module();

my $readme = read_file(repo_root() . '/README.md');
my ($conf) = $readme =~ /A minimal configuration.*?```nginx\n(.*?)```/s;

ok(defined $conf, 'README: a minimal configuration block') or BAIL_OUT('none');

like($conf, qr/^events \{/m, 'README: the configuration has events {}');
unlike($conf, qr/^\s*resolver 127\.0\.0\.53/m, 'README: no systemd-resolved resolver');
like($conf, qr/resolver_timeout/, 'README: resolver_timeout set');
like($conf, qr/certguard_proxy_auth /, 'README: authentication shown');
like($conf, qr/certguard_http_pass/, 'README: one port for CONNECT and HTTP');

my $dir = tempdir();
(my $stream = module_path()) =~ s/ngx_http_/ngx_stream_/;
my $root = repo_root();

mkdir "$dir/logs";
write_file("$dir/users", "demo:{PLAIN}demo\n");

my %path = (
    'modules/ngx_http_certguard_module.so'   => module_path(),
    'modules/ngx_stream_certguard_module.so' => $stream,
    'modules/ngx_stream_module.so'  => '/usr/lib/nginx/modules/ngx_stream_module.so',
    '/etc/certguard/default.policy' => "$root/policies/default.policy",
    '/etc/certguard/forward-proxy.conf' => "$root/conf/forward-proxy.conf",
    '/etc/certguard/users'          => "$dir/users",
    '/var/log/nginx/certguard.cef'  => "$dir/logs/certguard.cef",
    '/run/certguard-http.sock'      => "$dir/http.sock",
);

my $text = $conf;
for my $from (sort { length $b <=> length $a } keys %path) {
    my $n = $text =~ s/\Q$from\E/$path{$from}/g;
    ok($n, "README: names $from");
}

write_file("$dir/nginx.conf", "pid $dir/nginx.pid;\n$text");

my $r = run({ timeout => 30 }, '/usr/sbin/nginx', '-t', '-p', "$dir/",
            '-c', "$dir/nginx.conf", '-e', "$dir/logs/error.log");
is($r->{exit}, 0, 'README: nginx -t passes') or diag($r->{err});
unlike($r->{err}, qr/\[(warn|emerg|alert|crit)\]/,
       'README: nginx -t says nothing but ok');

done_testing();
