#!/usr/bin/perl

# certguard_intermediates: a real upstream that sends its leaf without the
# intermediate.  With the intermediate in the pool the proxy completes the
# chain and allows; without it the chain is untrusted and tags, and is not
# taken for a mimicked CA (the intermediate is named like a public CA).
# The pool is never an anchor; nginx -t names a bad file with the
# directive's file:line, in http and in stream.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;
use Certguard::Stream qw(need_stream);

###############################################################################

Certguard::Nginx::need_module();

my $DAY = 86400;
my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard pool test root');
my $int = $pki->ca('int', issuer => $root,
                   subject => '/C=US/O=DigiCert Inc/CN=DigiCert Pool Test CA');
my $full = $pki->good_leaf('omits', issuer => $int);

# what a server that omits its intermediate sends: the leaf alone
my $leaf = { %$full, chain => $full->{cert} };

# the test root stands for the system bundle
$ENV{SSL_CERT_FILE} = $root->{cert};

my $other = $pki->ca('other', subject => '/CN=unrelated root');
write_file("$dir/leaf-only.pem", read_file($leaf->{cert}));
write_file("$dir/bad.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n"
                           . "-----END CERTIFICATE-----\n");

my ($port, $up) = free_ports(2);
my $ng = Certguard::Nginx->new("$dir/nginx");

my ($upstreams, $servers) = $ng->tls_upstreams({ omits => $leaf },
                                               { omits => $up });

sub http {
    my (%o) = @_;

    return <<"HTTP";
$upstreams

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        $o{pool}

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_pass https://\$host;
        }

        location /nopool/ {
            proxy_pass https://\$host/;
        }
    }

@{[ $o{servers} // $servers ]}
HTTP
}

# nginx -t: a good pool, a bad file, a file of leaves only

my ($ok, $out) = $ng->test_config(http(
    pool => "certguard_intermediates $int->{cert};"));
ok($ok, 'nginx -t: certguard_intermediates FILE') or diag($out);

($ok, $out) = $ng->test_config(http(
    pool => "certguard_intermediates $int->{cert};\n"
          . "        certguard_intermediates $dir/bad.pem;"),
    expect_log => qr/\[emerg\] .*bad\.pem/);
ok(!$ok, 'nginx -t: a malformed intermediates file fails');
like($out, qr{\Q$dir\E/bad\.pem: certificate 1 is malformed .* in \S+\.conf:\d+},
     'nginx -t: names the file and the directive\'s file:line');

($ok, $out) = $ng->test_config(http(
    pool => "certguard_intermediates $dir/leaf-only.pem;"),
    expect_log => qr/\[emerg\] .*leaf-only\.pem/);
ok(!$ok, 'nginx -t: a file without a CA certificate fails');
like($out, qr/leaf-only\.pem: no CA certificate in the file/,
     'nginx -t: the file refused');

write_file("$dir/mixed.pem", read_file($leaf->{cert}) . read_file($int->{cert}));
($ok, $out) = $ng->test_config(http(
    pool => "certguard_intermediates $dir/mixed.pem;"),
    expect_log => qr/\[warn\] .*mixed\.pem/);
ok($ok, 'nginx -t: a leaf beside a CA certificate is skipped') or diag($out);
like($out, qr/mixed\.pem: warning: certificate 1 \(CN=omits\.test\) is not a CA/,
     'nginx -t: with a warning naming it');

($ok, $out) = $ng->test_config(http(
    pool => "certguard_intermediates $dir/none.pem;"),
    expect_log => qr/\[emerg\] .*none\.pem/);
ok(!$ok, 'nginx -t: a missing intermediates file fails');
like($out, qr/none\.pem: cannot open/, 'nginx -t: the missing file named');

SKIP: {
    my ($module, $stream) = eval { need_stream() };
    skip 'no stream module', 3 unless $module;

    my $main = sub {
        my ($file) = @_;
        return <<"MAIN";
load_module $stream;
load_module $module;
stream {
    certguard_policy @{[ policy_dir() ]}/default.policy;
    certguard_intermediates $file;
    server {
        listen 127.0.0.1:$port;
        certguard_connect on;
        proxy_pass \$certguard_upstream;
    }
}
MAIN
    };

    ($ok, $out) = $ng->test_config('', module => 0,
        main => $main->($int->{cert}));
    ok($ok, 'nginx -t: stream certguard_intermediates FILE') or diag($out);

    ($ok, $out) = $ng->test_config('', module => 0,
        main => $main->("$dir/bad.pem"),
        expect_log => qr/\[emerg\] .*bad\.pem/);
    ok(!$ok, 'nginx -t: stream, a malformed file fails');
    like($out, qr{bad\.pem: certificate 1 is malformed .* in \S+\.conf:\d+},
         'nginx -t: stream names the file and file:line');
}

# a real proxy: / completes the chain from the pool, /nopool/ does not

$ng->start(<<"HTTP", ports => [$port, $up]);
$upstreams

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location / {
            certguard_intermediates $int->{cert};
            proxy_pass https://\$host;
        }

        location /nopool/ {
            proxy_pass https://\$host/;
        }

        location /other/ {
            certguard_intermediates $other->{cert};
            proxy_pass https://\$host/;
        }
    }

$servers
HTTP

my $r = $ng->get($port, '/', Host => 'omits.test');
is($r->{status}, 200, 'pool: 200');
like($r->{body}, qr/upstream omits/, 'pool: the upstream answered');
is($r->{headers}{'x-verdict'}, 'allow', 'pool: the completed chain is allowed');
is($r->{headers}{'x-signals'} // '', '', 'pool: no signal');

$r = $ng->get($port, '/nopool/', Host => 'omits.test');
is($r->{status}, 200, 'no pool: 200, not blocked');
is($r->{headers}{'x-verdict'}, 'tag', 'no pool: tagged');
like($r->{headers}{'x-signals'} // '', qr/\buntrusted_chain\b/,
     'no pool: untrusted_chain');
unlike($r->{headers}{'x-signals'} // '', qr/\bmimicked_ca\b/,
       'no pool: a missing issuer named like a public CA is not mimicked_ca');

$r = $ng->get($port, '/other/', Host => 'omits.test');
is($r->{headers}{'x-verdict'}, 'tag',
   'a pool without the issuer completes nothing');

$ng->finish();

done_testing();
