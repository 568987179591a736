#!/usr/bin/perl

# The Debian packages on this machine: make deb builds them (once; later
# runs reuse them until a source changes) with no lintian error, dpkg
# installs them, the modules-enabled links appear and nginx -t accepts
# Debian's own nginx.conf with them; an nginx that loads the modules the
# Debian way (include modules-enabled/*.conf) answers through both of them
# with /etc/certguard/default.policy; logrotate's file rotates the CEF logs
# and nginx reopens them; dpkg -r leaves an nginx that still starts, and
# dpkg -P leaves the machine as it was.
#
# Root only (dpkg); CERTGUARD_DEB_TEST=0 skips it.  Files of the packages'
# that something else put there (make install) are moved aside while the
# test runs and put back after; packages already installed skip the test.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Hardening;
use Certguard::Nginx;
use Certguard::Stream;

use Fcntl qw(:flock);
use JSON::PP ();
use Time::HiRes qw(sleep time);

###############################################################################

plan(skip_all => 'root only (dpkg -i)') unless $> == 0;
plan(skip_all => 'CERTGUARD_DEB_TEST=0')
    if ($ENV{CERTGUARD_DEB_TEST} // '') eq '0';

my @PKGS = qw(libnginx-mod-http-certguard libnginx-mod-stream-certguard
              certguard);
my $NGINX = '/usr/sbin/nginx';
my $ENABLED = '/etc/nginx/modules-enabled';
my $AVAILABLE = '/usr/share/nginx/modules-available';
my %LINK = (http => "$ENABLED/50-mod-http-certguard.conf",
            stream => "$ENABLED/70-mod-stream-certguard.conf");

# every worktree's tests share this machine's dpkg database
my $lockfile = (-d '/run/lock' ? '/run/lock' : '/tmp')
    . '/certguard-deb-test.lock';
open my $lock, '>', $lockfile or BAIL_OUT("$lockfile: $!");
my $deadline = time() + 150;
until (flock($lock, LOCK_EX | LOCK_NB)) {
    plan(skip_all => 'another t/deb.t holds the packages') if time() > $deadline;
    sleep 1;
}

my @installed = grep { installed($_) } @PKGS;
plan(skip_all => "already installed: @installed (dpkg -P them first)")
    if @installed;

my $dir = tempdir();
my $deb = build_dir() . '/deb';

# make deb: builds, runs lintian, fails on its errors

{
    local %ENV = %ENV;
    delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL)};
    my $t = time();
    my $r = run({ timeout => 600 }, 'make', '-C', repo_root(),
                'B=' . build_dir(), 'deb');
    is($r->{exit}, 0, 'make deb') or diag($r->{out} . $r->{err});
    diag(sprintf 'make deb: %.0fs', time() - $t) if time() - $t > 5;
}

my %file;
$file{$_} = (grep { !/dbgsym/ } glob "$deb/${_}_*.deb")[0] for @PKGS;
ok($file{$_}, "built $_") for @PKGS;
BAIL_OUT('no packages') if grep { !$file{$_} } @PKGS;

my $lintian = read_file("$deb/lintian.log");
unlike($lintian, qr/^E: /m, 'lintian: no errors');

like(control($file{'libnginx-mod-http-certguard'}, 'Depends'),
     qr/(^|, )nginx-abi-[\d.]+-\d+(,|$)/, 'http module depends on nginx-abi');
like(control($file{'libnginx-mod-stream-certguard'}, 'Depends'),
     qr/(^|, )nginx-abi-[\d.]+-\d+(,|$)/, 'stream module depends on nginx-abi');
like(control($file{'libnginx-mod-stream-certguard'}, 'Depends'),
     qr/(^|, )libnginx-mod-stream(,|$)/,
     'stream module depends on libnginx-mod-stream');

# what else put files where the packages go is kept aside until the end

my @OURS = ('/usr/lib/nginx/modules/ngx_http_certguard_module.so',
            '/usr/lib/nginx/modules/ngx_stream_certguard_module.so',
            '/usr/bin/certguard', '/usr/bin/certguard-ct-log-list',
            '/etc/certguard', '/etc/logrotate.d/certguard',
            "$AVAILABLE/mod-http-certguard.conf",
            "$AVAILABLE/mod-stream-certguard.conf",
            map { ($_, "$_.removed") } values %LINK);
my @saved;
for my $path (@OURS) {
    next unless -e $path || -l $path;
    rename($path, "$path.t-deb-saved") or BAIL_OUT("$path: $!");
    push @saved, $path;
}
diag("moved aside while the test runs: @saved") if @saved;

my $cleaned;
sub cleanup {
    return if $cleaned++;
    dpkg('-P', @PKGS) if grep { installed($_) } @PKGS;
    for my $path (@saved) {
        rename("$path.t-deb-saved", $path) or warn "restore $path: $!\n";
    }
}
END { cleanup() }
$SIG{INT} = $SIG{TERM} = sub { cleanup(); exit 1 };

# install

my $r = dpkg('-i', map { $file{$_} } @PKGS);
is($r->{exit}, 0, 'dpkg -i the three packages') or diag($r->{err});
ok(installed($_), "$_ installed") for @PKGS;

for my $m (qw(http stream)) {
    is(readlink($LINK{$m}) // '', "$AVAILABLE/mod-$m-certguard.conf",
       "$m module enabled: $LINK{$m}");
    is(read_file("$AVAILABLE/mod-$m-certguard.conf"),
       "load_module modules/ngx_${m}_certguard_module.so;\n",
       "$m module: the load_module snippet");
}

ok(-f "/etc/certguard/$_", "/etc/certguard/$_")
    for qw(default.policy strict.policy monitor.policy forward-proxy.conf
           lists/public-cas.list);
my $conffiles = dpkg_query('-W', '-f', '${Conffiles}', 'certguard');
like($conffiles, qr{^ /etc/certguard/default\.policy }m,
     'default.policy is a conffile');
like($conffiles, qr{^ /etc/certguard/lists/blocklist\.csv }m,
     'the lists are conffiles');
like($conffiles, qr{^ /etc/logrotate\.d/certguard }m,
     'the logrotate file is a conffile');

for my $f ('/usr/bin/certguard',
           '/usr/lib/nginx/modules/ngx_http_certguard_module.so',
           '/usr/lib/nginx/modules/ngx_stream_certguard_module.so') {
    my $h = hardening($f);
    ok($h->{relro} && $h->{bindnow} && $h->{stack_protector}
       && $h->{fortify}, "$f: RELRO, BIND_NOW, stack protector, fortify");
}

$r = run({ timeout => 30 }, '/usr/bin/certguard', 'lint',
         glob '/etc/certguard/*.policy');
is($r->{exit}, 0, 'certguard lint /etc/certguard/*.policy')
    or diag($r->{out} . $r->{err});

# the CT log list converter runs with what the package depends on: a
# one-log list in, OpenSSL's CT log file out
{
    my $k = run({ timeout => 30 }, 'sh', '-c',
                'openssl ecparam -name prime256v1 -genkey -noout | '
                . 'openssl ec -pubout -outform DER 2>/dev/null | base64 -w0');
    my $key = $k->{out};
    my $id = run({ timeout => 30 }, 'sh', '-c',
                 "printf %s '$key' | base64 -d | openssl dgst -sha256 "
                 . '-binary | base64 -w0')->{out};
    my $dir = tempdir();
    write_file("$dir/list.json", JSON::PP::encode_json({ operators => [
        { name => 't', logs => [ { description => 'deb test log',
                                   key => $key, log_id => $id,
                                   state => { usable => {} } } ] } ] }));
    $r = run({ timeout => 30 }, '/usr/bin/certguard-ct-log-list', '-o',
             "$dir/ct.cnf", "$dir/list.json");
    is($r->{exit}, 0, 'certguard-ct-log-list converts a log list')
        or diag($r->{err});
    like(read_file("$dir/ct.cnf") // '', qr/^enabled_logs = deb_test_log$/m,
         'certguard-ct-log-list: the log is enabled');
}

# Debian's own nginx.conf loads modules-enabled/*.conf

$r = run({ timeout => 30 }, $NGINX, '-T');
is($r->{exit}, 0, 'nginx -t on /etc/nginx/nginx.conf with the modules')
    or diag($r->{err});
like($r->{out}, qr{^load_module modules/ngx_http_certguard_module\.so;}m,
     'nginx -T: the http module is loaded');
like($r->{out}, qr{^load_module modules/ngx_stream_certguard_module\.so;}m,
     'nginx -T: the stream module is loaded');

# requests through the installed modules

my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard deb test root');
my %cert = (good => $pki->good_leaf('good', issuer => $root,
                                    san => 'DNS:good.test,IP:127.0.0.1'),
            self => $pki->leaf('self', subject => '/CN=self.test',
                               san => 'DNS:self.test,IP:127.0.0.1'));
my ($port, $cport, @up) = free_ports(4);
my %up = (good => $up[0], self => $up[1]);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

# "load_module modules/..." is relative to the prefix: Debian's has this link
symlink('/usr/lib/nginx/modules', "$dir/nginx/modules") or die "symlink: $!";
my ($upstreams, $servers) = $ng->tls_upstreams(\%cert, \%up);

$ng->start(<<"HTTP", module => 0, ports => [$port, $cport], main => <<"MAIN");
$upstreams
    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy /etc/certguard/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/certguard.cef;
        add_header X-Certguard-Verdict \$certguard_verdict always;

        location / {
            proxy_pass https://\$host;
        }
    }

$servers
HTTP
include $ENABLED/*.conf;

stream {
    server {
        listen 127.0.0.1:$cport;

        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_policy /etc/certguard/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_log $logs/certguard-stream.cef;
        proxy_pass \$certguard_upstream;
    }
}
MAIN

$r = $ng->get($port, '/', Host => 'good.test');
is($r->{status}, 200, 'http module: good.test 200');
is($r->{headers}{'x-certguard-verdict'}, 'allow',
   'http module: verdict header allow');
like($r->{body}, qr/upstream good/, 'http module: the upstream answered');

$r = $ng->get($port, '/', Host => 'self.test');
is($r->{status}, 403, 'http module: self-signed self.test 403');
is($r->{headers}{'x-certguard-verdict'}, 'block',
   'http module: verdict header block');

# the probe goes with the tunnel's ClientHello (no SNI for an IP literal)
is(connect_hello($cport, "127.0.0.1:$up{good}", client_hello(''))->{reply},
   'hello', 'stream module: CONNECT to good opens a tunnel');
is(connect_hello($cport, "127.0.0.1:$up{self}", client_hello(''))->{reply},
   'alert', 'stream module: CONNECT to self-signed refused');

my @cef = wait_lines("$logs/certguard.cef", 2);
is(scalar(grep { /^CEF:0\|certguard\|/ } @cef), 2, 'http CEF: two records');
@cef = wait_lines("$logs/certguard-stream.cef", 2);
is(scalar(grep { /^CEF:0\|certguard\|/ } @cef), 2, 'stream CEF: two records');

# the package's logrotate file, on this instance's logs and pid

my $rot = read_file('/etc/logrotate.d/certguard');
my $n = $rot =~ s{^/var/log/nginx/(certguard\*\.cef \{)$}{$logs/$1}m;
is($n, 1, 'logrotate: /var/log/nginx/certguard*.cef');
$n = $rot =~ s{/run/nginx\.pid}{$dir/nginx/nginx.pid}g;
ok($n >= 1, 'logrotate: signals through the pid file');
# Debian's nginx service is not this instance: the pid file path is taken
$n = $rot =~ s{invoke-rc\.d nginx rotate}{false}g;
is($n, 1, 'logrotate: asks invoke-rc.d first');
$rot =~ s{create 0640 www-data adm}{create 0640 root root};
write_file("$dir/logrotate.conf", $rot);

$r = run({ timeout => 30 }, '/usr/sbin/logrotate', '-f', '-s',
         "$dir/logrotate.state", "$dir/logrotate.conf");
is($r->{exit}, 0, 'logrotate -f') or diag($r->{out} . $r->{err});
ok(-s "$logs/certguard.cef.1", 'logrotate: certguard.cef.1');
ok(-s "$logs/certguard-stream.cef.1", 'logrotate: certguard-stream.cef.1');

$r = $ng->get($port, '/', Host => 'good.test');
is($r->{status}, 200, 'after rotation: 200');
@cef = wait_lines("$logs/certguard.cef", 1);
like($cef[0] // '', qr/^CEF:0\|certguard\|.*dhost=good\.test/,
     'after rotation: nginx writes to the new certguard.cef');

$ng->stop;

# remove: the links are put aside, nginx still starts

$r = dpkg('-r', @PKGS);
is($r->{exit}, 0, 'dpkg -r') or diag($r->{err});
ok(!installed($_), "$_ removed") for @PKGS;
for my $m (qw(http stream)) {
    ok(!-e $LINK{$m} && !-l $LINK{$m}, "$m: no enabled link after remove");
}
ok(!-e '/usr/lib/nginx/modules/ngx_http_certguard_module.so',
   'remove: the http module is gone');
ok(-e '/etc/certguard/default.policy', 'remove: the conffiles stay');

$r = run({ timeout => 30 }, $NGINX, '-t');
is($r->{exit}, 0, 'nginx -t after dpkg -r') or diag($r->{err});

# purge: nothing left

$r = dpkg('-P', @PKGS);
is($r->{exit}, 0, 'dpkg -P') or diag($r->{err});
ok(!-e '/etc/certguard', 'purge: /etc/certguard is gone');
ok(!-e '/etc/logrotate.d/certguard', 'purge: the logrotate file is gone');
ok(!-e "$_.removed" && !-l "$_.removed", "purge: no $_.removed")
    for values %LINK;
is(dpkg_query('-W', '-f', '${db:Status-Abbrev}\n', @PKGS), '',
   'purge: dpkg knows none of the packages');

$r = run({ timeout => 30 }, $NGINX, '-t');
is($r->{exit}, 0, 'nginx -t after dpkg -P') or diag($r->{err});

cleanup();

done_testing();

###############################################################################

# The lines of a file once there are at least $n (5 s at most).
sub wait_lines {
    my ($path, $n) = @_;
    my $deadline = time() + 5;
    my @lines;

    while (1) {
        @lines = -e $path ? split /\n/, read_file($path) : ();
        return @lines if @lines >= $n || time() > $deadline;
        sleep 0.05;
    }
}


sub installed {
    my ($pkg) = @_;

    return dpkg_query('-W', '-f', '${db:Status-Abbrev}', $pkg) =~ /^.i/;
}


sub dpkg_query {
    my $r = run({ timeout => 30 }, '/usr/bin/dpkg-query', @_);

    return $r->{exit} ? '' : $r->{out};
}


sub control {
    my ($file, $field) = @_;
    my $r = run({ timeout => 30 }, '/usr/bin/dpkg-deb', '-f', $file, $field);

    chomp(my $v = $r->{out});
    return $v;
}


# dpkg, waiting out another dpkg or apt that holds the lock
sub dpkg {
    my (@args) = @_;
    my $r;

    for (1 .. 60) {
        $r = run({ timeout => 120,
                   env => { DEBIAN_FRONTEND => 'noninteractive' } },
                 '/usr/bin/dpkg', @args);
        last unless $r->{exit} && $r->{err} =~ /\block\b/;
        sleep 1;
    }

    return $r;
}
