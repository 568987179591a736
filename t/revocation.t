#!/usr/bin/perl

# Revocation: CRLs (certguard check --crl, certguard_crl) and stapled OCSP
# responses (certguard check --ocsp, and what upstreams staple to the HTTP
# module and the stream probe).  A test CA kept by openssl ca (an index.txt
# database) issues two leaves and revokes one; openssl ca -gencrl makes its
# CRLs, openssl ocsp its OCSP responses (a responder on 127.0.0.1 in a
# network namespace of its own, and offline: -reqin/-respout); nginx upstreams staple them with ssl_stapling_file.
#
# The HTTP module over both versions: with TLS 1.3 the staple comes with the
# certificate, before the verify callback; with TLS 1.2 (nginx 1.22's
# default proxy_ssl_protocols has no TLSv1.3) the CertificateStatus comes
# after it, and the status callback decides (docs/directives.md).

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

need_cli();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard revocation root');
my $good = $pki->good_leaf('good', issuer => $root,
    san => 'DNS:good.test,DNS:wrong.test,DNS:stale.test,IP:127.0.0.1');
my $revoked = $pki->good_leaf('revoked', issuer => $root,
    san => 'DNS:revoked.test,DNS:plain.test,DNS:crl.test,IP:127.0.0.1');

# another CA, with a leaf of the good leaf's serial that it revokes
my $pki2 = Certguard::Certs->new("$dir/pki2");
my $other = $pki2->ca('other', subject => '/CN=certguard other root');
my $twin = $pki2->good_leaf('twin', issuer => $other,
                            serial => $good->{serial});

sub openssl {
    my $r = run('openssl', @_);
    die "openssl @_: $r->{err}" if $r->{exit} != 0;
    return $r->{out};
}

# the database's config with a CRL number (openssl ca -gencrl writes
# CRLNumber only with one): Certs.pm's ca.cnf has none
sub crl_config {
    my ($d) = @_;
    my $cnf = read_file("$d/ca.cnf");
    $cnf =~ s/^(database\s*=.*\n)/$1crlnumber = \$dir\/crlnumber\n/m
        or die 'ca.cnf: no database line';
    write_file("$d/crl.cnf", $cnf);
    write_file("$d/crlnumber", "1000\n");
    return "$d/crl.cnf";
}

sub gencrl {
    my ($cnf, $ca, $out, @more) = @_;
    openssl('ca', '-batch', '-config', $cnf, '-gencrl', '-cert', $ca->{cert},
            '-keyfile', $ca->{key}, '-out', $out, @more);
    return $out;
}

openssl('ca', '-batch', '-config', "$dir/pki/ca.cnf", '-revoke',
        $revoked->{cert}, '-cert', $root->{cert}, '-keyfile', $root->{key},
        '-crl_reason', 'keyCompromise');
openssl('ca', '-batch', '-config', "$dir/pki2/ca.cnf", '-revoke',
        $twin->{cert}, '-cert', $other->{cert}, '-keyfile', $other->{key});

my $crl = gencrl(crl_config("$dir/pki"), $root, "$dir/root.crl.pem",
                 '-crldays', 1);
my $crl_der = "$dir/root.crl.der";
openssl('crl', '-in', $crl, '-outform', 'DER', '-out', $crl_der);
my $other_crl = gencrl(crl_config("$dir/pki2"), $other, "$dir/other.crl.pem",
                       '-crldays', 30);
my $nonum = gencrl("$dir/pki/ca.cnf", $root, "$dir/nonum.crl.pem",
                   '-crldays', 30);
write_file("$dir/both.crl.pem", read_file($other_crl) . read_file($crl));

like(openssl('crl', '-in', $crl, '-noout', '-text'),
     qr/Serial Number: \Q$revoked->{serial}\E.*Key Compromise/s,
     'the CRL lists the revoked leaf, key compromise');

# a responder certificate the CA issued for OCSP signing (RFC 6960 4.2.2.2)
my $responder = $pki->leaf('responder', issuer => $root,
    subject => '/CN=revocation responder',
    san => '', fresh_key => 1, key => 'ec:prime256v1',
    omit => ['extendedKeyUsage'], ext => ['extendedKeyUsage = OCSPSigning']);
# and one issued for servers, not for OCSP
my $server_cert = $pki->leaf('notresponder', issuer => $root,
    subject => '/CN=not a responder',
    fresh_key => 1, key => 'ec:prime256v1');

# OCSP responses, offline: a request per leaf, answered from the index
sub ocsp_resp {
    my ($leaf, $name, %o) = @_;
    my $signer = $o{signer} // $root;
    openssl('ocsp', '-issuer', $root->{cert}, '-cert', $leaf->{cert},
            '-no_nonce', '-reqout', "$dir/$name.req");
    openssl('ocsp', '-index', "$dir/pki/index.txt", '-CA', $root->{cert},
            '-rsigner', $signer->{cert}, '-rkey', $signer->{key},
            '-reqin', "$dir/$name.req", '-respout', "$dir/$name.ocsp",
            '-ndays', 1);
    return "$dir/$name.ocsp";
}

# The same from a live responder: openssl ocsp serving the index over HTTP,
# asked by openssl ocsp as a client.  The responder listens on every
# address (it takes no bind address), so both run in a network namespace
# of their own with only lo up: nothing outside 127.0.0.1 can reach it.
sub ocsp_served {
    my (@leaves) = @_;
    my $port = 18080;
    my $script = join("\n",
        'set -e',
        'ip link set lo up',
        "openssl ocsp -index $dir/pki/index.txt -CA $root->{cert}"
            . " -rsigner $root->{cert} -rkey $root->{key} -ndays 1"
            . " -url http://127.0.0.1:$port -nrequest " . scalar(@leaves)
            . " >$dir/responder.log 2>&1 &",
        'i=0; while ! ss -ltn | grep -q ":' . $port . ' "; do'
            . ' i=$((i+1)); [ $i -lt 100 ] || exit 3; sleep 0.05; done',
        (map { "openssl ocsp -issuer $root->{cert} -cert $_->[0]{cert}"
               . " -url http://127.0.0.1:$port -no_nonce -noverify"
               . " -respout $dir/$_->[1].ocsp >/dev/null" } @leaves),
        'wait', '');
    write_file("$dir/responder.sh", $script);
    my $r = run({ timeout => 30 }, 'unshare', '-n', 'sh',
                "$dir/responder.sh");
    is($r->{exit}, 0, 'openssl ocsp answered on 127.0.0.1 in its own '
       . 'network namespace') or diag($r->{err});
    like(read_file("$dir/responder.log"), qr/Received request/,
         '... the responder saw the requests');
    return map { "$dir/$_->[1].ocsp" } @leaves;
}

my ($served_good, $served_revoked) =
    ocsp_served([ $good, 'served-good' ], [ $revoked, 'served-revoked' ]);

my %ocsp = (
    good    => $served_good,
    revoked => $served_revoked,
    offline_good => ocsp_resp($good, 'good'),
    offline_revoked => ocsp_resp($revoked, 'revoked'),
    wrong   => ocsp_resp($good, 'wrong', signer => $other),
    wrong_revoked => ocsp_resp($revoked, 'wrong_revoked', signer => $other),
    delegated => ocsp_resp($revoked, 'delegated', signer => $responder),
    undelegated => ocsp_resp($revoked, 'undelegated', signer => $server_cert),
);
write_file("$dir/garbage.ocsp", "\x30\x82\x01\x00" . 'x' x 40);

like(openssl('ocsp', '-respin', $ocsp{revoked}, '-resp_text', '-noverify'),
     qr/Cert Status: revoked.*keyCompromise/s,
     'openssl ocsp says the revoked leaf is revoked');

###############################################################################
# the CLI

my $now = time();

sub chk {
    my ($leaf, @args) = @_;
    my $r = check($leaf->{chain}, ca_file => $root->{cert},
                  args => ['--no-system-roots', @args]);
    die "certguard check: $r->{err}" unless $r->{json};
    return $r->{json};
}

my $j = chk($revoked, '--crl', $crl);
is($j->{verdict}, 'block', 'CRL: the revoked leaf blocks');
is(fired($j, 'revoked')->{detail}, 'crl: depth 0: keyCompromise',
   'CRL: revoked says the source and the reason');

$j = chk($good, '--crl', $crl);
is($j->{verdict}, 'allow', 'CRL: the good leaf is allowed');
is_deeply([signal_ids($j)], [], 'CRL: and nothing fires');

$j = chk($revoked, '--crl', $crl_der);
ok(fired($j, 'revoked'), 'CRL in DER: revoked');

$j = chk($revoked, '--crl', "$dir/both.crl.pem");
ok(fired($j, 'revoked'), 'two CRLs in one file: revoked');
$j = chk($good, '--crl', "$dir/both.crl.pem");
is($j->{verdict}, 'allow', 'two CRLs in one file: the good leaf allowed');

$j = chk($revoked, '--crl', $other_crl, '--crl', $crl);
ok(fired($j, 'revoked'), '--crl twice: revoked');

$j = chk($good, '--crl', $other_crl);
is_deeply([signal_ids($j)], [],
          "the good leaf's serial on another CA's CRL: ignored");
$j = chk($revoked, '--crl', $other_crl);
is($j->{verdict}, 'allow',
   'no CRL of its own CA: the revoked leaf is not checked');

# a CRL past its nextUpdate still revokes what it lists; the others are
# not known to be good any more: crl_invalid tags
$j = chk($revoked, '--crl', $crl, '--at', $now + 3 * 86400);
is($j->{verdict}, 'block', 'expired CRL: the revoked leaf still blocks');
ok(fired($j, 'revoked'), 'expired CRL: revoked');
$j = chk($good, '--crl', $crl, '--at', $now + 3 * 86400);
is($j->{verdict}, 'tag', 'expired CRL: the good leaf is tagged');
like(fired($j, 'crl_invalid')->{detail}, qr/^depth 0: CRL has expired/,
     'expired CRL: crl_invalid says so');

$j = chk($good, '--crl', $nonum);
like(fired($j, 'crl_invalid')->{detail}, qr/CRL without CRLNumber/,
     'a CRL without CRLNumber: crl_invalid');
is($j->{verdict}, 'tag', 'a CRL without CRLNumber: tagged');

# a CRL of the CA signed with another key (the other CA's, same name)
my $pki3 = Certguard::Certs->new("$dir/pki3");
my $fake = $pki3->ca('fake', subject => '/CN=certguard revocation root');
my $fake_crl = gencrl(crl_config("$dir/pki3"), $fake, "$dir/fake.crl.pem",
                      '-crldays', 30);
$j = chk($good, '--crl', $fake_crl);
ok(fired($j, 'crl_invalid'), "a CRL in the CA's name, another key: "
   . 'crl_invalid');
ok(!fired($j, 'revoked'), '... and nothing revoked by it');

# an intermediate the root revokes: every certificate of the path is
# checked (CRL_CHECK_ALL), the leaf under it has no CRL of its own CA
my $int = $pki->ca('int', issuer => $root, subject => '/CN=revoked int');
my $under = $pki->good_leaf('under', issuer => $int);
$j = chk($under, '--crl', $crl);
is_deeply([signal_ids($j)], [], 'an intermediate not on the CRL: nothing');
openssl('ca', '-batch', '-config', "$dir/pki/ca.cnf", '-revoke',
        $int->{cert}, '-cert', $root->{cert}, '-keyfile', $root->{key},
        '-crl_reason', 'cACompromise');
my $crl2 = gencrl("$dir/pki/crl.cnf", $root, "$dir/root2.crl.pem",
                  '-crldays', 1);
$j = chk($under, '--crl', $crl2);
is(fired($j, 'revoked') && fired($j, 'revoked')->{detail},
   'crl: depth 1: cACompromise', 'a revoked intermediate: revoked, depth 1');
is($j->{verdict}, 'block', 'a revoked intermediate blocks its leaves');

my $r = check($good->{chain}, ca_file => $root->{cert},
              args => ['--crl', "$dir/missing.crl"]);
is($r->{exit}, 2, '--crl of a missing file: exit 2');
like($r->{err}, qr/missing\.crl: cannot open/, '... naming the file');
$r = check($good->{chain}, ca_file => $root->{cert},
           args => ['--crl', $root->{cert}]);
is($r->{exit}, 2, '--crl of a certificate: exit 2');
like($r->{err}, qr/no X509 CRL/, '... saying there is no CRL');
like(cli('check', '--help')->{out}, qr/--crl FILE\]\.\.\. \[--ocsp FILE\]/,
     'check --help names --crl and --ocsp');

# diff and report take the CRLs too: a policy that does not weigh
# revoked against the default, over the revoked and the good leaf
write_file("$dir/norevoke.policy", 'include ' . policy_dir()
           . "/default.policy;\nweight revoked 0;\n");
my @two = ('--policy', policy_dir() . '/default.policy', '--policy',
           "$dir/norevoke.policy", '--ca-file', $root->{cert},
           '--no-system-roots');
$r = cli('diff', @two, '--crl', $crl, $revoked->{chain}, $good->{chain});
is($r->{exit}, 0, 'diff --crl: runs') or diag($r->{err});
like($r->{out}, qr/: block -> allow \(.*-revoked/,
     'diff --crl: the revoked leaf blocks under one policy, not the other');
like($r->{out}, qr/^1 of 2 verdicts change/m, 'diff --crl: only that one');
$r = cli('diff', @two, $revoked->{chain}, $good->{chain});
like($r->{out}, qr/^0 of 2 verdicts change/m,
     'diff without --crl: revocation unknown, nothing changes');
$r = cli('diff', @two, '--crl', "$dir/missing.crl", $good->{chain});
is($r->{exit}, 2, 'diff --crl of a missing file: exit 2');
like($r->{err}, qr/missing\.crl: cannot open/, '... naming the file');
$r = cli('report', @two[0, 1, 4 .. 6], '--crl', $crl, '-o',
         "$dir/report.html", $revoked->{chain}, $good->{chain});
is($r->{exit}, 0, 'report --crl: runs') or diag($r->{err});
like(read_file("$dir/report.html"), qr/revoked/,
     'report --crl: the revoked signal is on the page');

# stapled OCSP, as saved files

$j = chk($revoked, '--ocsp', $ocsp{revoked});
is($j->{verdict}, 'block', 'OCSP: a revoked status blocks');
is(fired($j, 'revoked')->{detail}, 'ocsp: keyCompromise',
   'OCSP: revoked says the source and the reason');
$j = chk($good, '--ocsp', $ocsp{good});
is_deeply([signal_ids($j)], [], 'OCSP: a good status, nothing fires');
$j = chk($revoked, '--ocsp', $ocsp{offline_revoked});
is(fired($j, 'revoked') && fired($j, 'revoked')->{detail},
   'ocsp: keyCompromise', 'OCSP made offline (-reqin/-respout): revoked');
$j = chk($good, '--ocsp', $ocsp{offline_good});
is_deeply([signal_ids($j)], [], 'OCSP made offline: good, nothing fires');
$j = chk($good, '--ocsp', $ocsp{wrong});
like(fired($j, 'ocsp_invalid')->{detail}, qr/not signed by the leaf's CA/,
     "OCSP signed by another CA's key: ocsp_invalid");
is($j->{verdict}, 'allow', '... which alone does not tag');
$j = chk($revoked, '--ocsp', $ocsp{wrong_revoked});
ok(!fired($j, 'revoked'), 'a revocation signed by another key revokes '
   . 'nothing');
ok(fired($j, 'ocsp_invalid'), '... and is ocsp_invalid');
$j = chk($revoked, '--ocsp', $ocsp{delegated});
is(fired($j, 'revoked') && fired($j, 'revoked')->{detail},
   'ocsp: keyCompromise', "OCSP by the CA's delegated responder: revoked");
$j = chk($revoked, '--ocsp', $ocsp{undelegated});
ok(!fired($j, 'revoked') && fired($j, 'ocsp_invalid'),
   'OCSP by a certificate of the CA without the OCSP signing EKU: '
   . 'ocsp_invalid, not revoked');
$j = chk($good, '--ocsp', $ocsp{good}, '--at', $now + 3 * 86400);
like(fired($j, 'ocsp_invalid')->{detail}, qr/stale/,
     'OCSP past its nextUpdate: ocsp_invalid, stale');
$j = chk($good, '--ocsp', $ocsp{revoked});
like(fired($j, 'ocsp_invalid')->{detail}, qr/no status for the leaf/,
     "another leaf's response: no status for this one");
$j = chk($good, '--ocsp', "$dir/garbage.ocsp");
like(fired($j, 'ocsp_invalid')->{detail}, qr/not a DER OCSP response/,
     'garbage stapled: ocsp_invalid, no crash');
my $cef = check($revoked->{chain}, ca_file => $root->{cert},
                format => 'cef',
                args => ['--no-system-roots', '--ocsp', $ocsp{revoked}]);
like($cef->{out}, qr/ revocation=ocsp\b/,
     'CEF carries the revocation source');

###############################################################################
# nginx: the HTTP module and the stream probe

Certguard::Nginx::need_module();
my ($MODULE, $STREAM) = need_stream(curl => 1);

my ($port, $proxy, $proxy_crl, $u_good, $u_revoked, $u_plain, $u_wrong,
    $u_tls12, $port12) = free_ports(9);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $d = $ng->dir;

sub upstream {
    my ($name, $port, $cert, $staple, @more) = @_;
    return $ng->tls_server(name => $name, port => $port, cert => $cert, @more,
        extra => $staple ? "ssl_stapling on;\n"
                           . "        ssl_stapling_file $staple;" : '');
}

my @ports = ($port, $u_good, $u_revoked, $u_plain, $u_wrong, $u_tls12,
             $port12);
$ng->start(<<"HTTP", ports => \@ports, main => <<"MAIN");
    upstream good.test { server 127.0.0.1:$u_good; }
    upstream revoked.test { server 127.0.0.1:$u_revoked; }
    upstream plain.test { server 127.0.0.1:$u_plain; }
    upstream crl.test { server 127.0.0.1:$u_plain; }
    upstream wrong.test { server 127.0.0.1:$u_wrong; }

    log_format cg '\$host \$status \$certguard_verdict "\$certguard_signals"';

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        certguard_log $d/logs/cef.log;
        access_log $d/logs/proxy.log cg;

        proxy_ssl_session_reuse off;
        proxy_ssl_protocols TLSv1.2 TLSv1.3;
        proxy_ssl_server_name on;

        location / {
            proxy_pass https://\$host;
        }

        location /crl/ {
            certguard_crl $crl;
            certguard_crl $other_crl;
            proxy_pass https://\$host;
        }
    }

    log_format cg12 '\$host \$status \$certguard_verdict '
                    '"\$certguard_signals" \$certguard_cache';

    # nginx's default protocols without TLSv1.0 and 1.1: TLS 1.2 only
    server {
        listen 127.0.0.1:$port12;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        certguard_log $d/logs/cef12.log;
        access_log $d/logs/proxy12.log cg12;

        proxy_ssl_session_reuse off;
        proxy_ssl_protocols TLSv1.2;
        proxy_ssl_server_name on;

        location / {
            proxy_pass https://\$host;
        }

        location /cached/ {
            certguard_cache zone=staple12:1m;
            proxy_pass https://\$host;
        }
    }

@{[ upstream('good', $u_good, $good, $ocsp{good}) ]}
@{[ upstream('revoked', $u_revoked, $revoked, $ocsp{revoked}) ]}
@{[ upstream('plain', $u_plain, $revoked) ]}
@{[ upstream('wrong', $u_wrong, $good, $ocsp{wrong}) ]}
@{[ upstream('tls12', $u_tls12, $revoked, $ocsp{revoked},
             protocols => 'TLSv1.2') ]}
HTTP
load_module $STREAM;
load_module @{[ module_path('ngx_stream_certguard_module') ]};

stream {
    log_format cg '\$status v=\$certguard_verdict sig="\$certguard_signals"';

    server {
        listen 127.0.0.1:$proxy;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        certguard_log $d/logs/stream-cef.log;
        access_log $d/logs/stream.log cg;
        proxy_pass \$certguard_upstream;
    }

    server {
        listen 127.0.0.1:$proxy_crl;
        certguard_connect on;
        certguard_connect_ports 1024-65535;
        certguard_connect_allow 127.0.0.0/8;
        certguard_connect_sni off;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert} system=off;
        certguard_crl $crl_der;
        certguard_log $d/logs/stream-cef.log;
        access_log $d/logs/stream.log cg;
        proxy_pass \$certguard_upstream;
    }
}
MAIN

my @expect = (
    [good    => 200, 'allow', qr/^$/, 'a good staple allows'],
    [revoked => 403, 'block', qr/\brevoked\b/, 'a revoked staple blocks'],
    [plain   => 200, 'allow', qr/^$/,
     'no staple: the revoked leaf passes without a CRL'],
    [wrong   => 200, 'allow', qr/^ocsp_invalid$/,
     "a staple signed by another CA's key: ocsp_invalid"],
);

for my $e (@expect) {
    my ($name, $status, $verdict, $sig, $what) = @$e;
    $r = $ng->get($port, '/', Host => "$name.test");
    is($r->{status}, $status, "http: $what: $status");
    my @l = grep { /^$name\.test / } $ng->wait_lines('proxy', 1);
    my ($v, $s) = ($l[-1] // '') =~ /^\S+ \d+ (\S+) "([^"]*)"/;
    is($v, $verdict, "http: $name: $verdict");
    like($s // 'none', $sig, "http: $name: signals");
}

$r = $ng->get($port, '/crl/', Host => 'crl.test');
is($r->{status}, 403, 'http: certguard_crl blocks the revoked leaf');
like($r->{body}, qr/signals: [^\n]*\brevoked\b/, 'http: named revoked');
$r = $ng->get($port, '/crl/', Host => 'good.test');
is($r->{status}, 200, 'http: certguard_crl: the good leaf passes');

my @cef = grep { /revoked/ } $ng->wait_lines('cef', 1);
like($cef[0] // '', qr/ revocation=ocsp\b/,
     'http CEF: the staple named as the source');
ok(grep({ / revocation=crl\b/ } @cef), 'http CEF: certguard_crl named as the source');

# TLS 1.2: the staple arrives after the verify callback, and the status
# callback decides; one CEF record a decision
#
# The status callback aborts with the alert RFC 6066 names for it,
# bad_certificate_status_response (113): nginx 1.22 as the upstream does not
# know it as a peer's and logs it at crit (docs/directives.md)
$ng->expect_log(qr/\[crit\] .*SSL_do_handshake\(\) failed .*bad certificate status response:SSL alert number 113\) while SSL handshaking, client: 127\.0\.0\.1, server: 127\.0\.0\.1:$u_revoked$/);
for my $e (@expect) {
    my ($name, $status, $verdict, $sig, $what) = @$e;
    $r = $ng->get($port12, '/', Host => "$name.test");
    is($r->{status}, $status, "http TLS 1.2: $what: $status");
    my @l = grep { /^$name\.test / } $ng->wait_lines('proxy12', 1);
    my ($v, $s) = ($l[-1] // '') =~ /^\S+ \d+ (\S+) "([^"]*)"/;
    is($v, $verdict, "http TLS 1.2: $name: $verdict");
    like($s // 'none', $sig, "http TLS 1.2: $name: signals");
}

$r = $ng->get($port12, '/', Host => 'revoked.test');
like($r->{body}, qr/signals: [^\n]*\brevoked\b/,
     'http TLS 1.2: the block names revoked');
like($ng->error_log,
     qr/\[error\].*callback failed.*invalid status response/,
     'http TLS 1.2: nginx logs the aborted handshake at error');

my @cef12 = $ng->wait_lines('cef12', 5);
for my $name (qw(good revoked plain wrong)) {
    my $n = grep { / dhost=$name\.test / } @cef12;
    is($n, $name eq 'revoked' ? 2 : 1,
       "http TLS 1.2 CEF: one record a handshake for $name.test");
}
my ($rcef) = grep { / dhost=revoked\.test / } @cef12;
like($rcef // '', qr/ act=blocked .* app=TLSv1\.2 /,
     'http TLS 1.2 CEF: the revoked staple blocked, over TLS 1.2');
like($rcef // '', qr/ revocation=ocsp\b/,
     'http TLS 1.2 CEF: the staple named as the source');
my ($wcef) = grep { / dhost=wrong\.test / } @cef12;
like($wcef // '', qr/ reason=ocsp_invalid /,
     'http TLS 1.2 CEF: the bad staple is ocsp_invalid');
my ($gcef) = grep { / dhost=good\.test / } @cef12;
unlike($gcef // '', qr/ act=blocked /, 'http TLS 1.2 CEF: the good staple allowed');

# the cache entry is the verdict with the staple: the second request is
# a hit that still blocks the revoked leaf
for my $name (qw(revoked good)) {
    my $status = $name eq 'revoked' ? 403 : 200;
    for my $source (qw(MISS HIT)) {
        $r = $ng->get($port12, '/cached/', Host => "$name.test");
        is($r->{status}, $status,
           "http TLS 1.2 cache: $name.test: $status ($source)");
    }
    my @l = grep { /^$name\.test / } $ng->wait_lines('proxy12', 9);
    like(join("\n", @l[-2, -1]),
         $name eq 'revoked'
         ? qr/^\S+ 403 block "[^"]*\brevoked\b[^"]*" MISS\n\S+ 403 block "[^"]*\brevoked\b[^"]*" HIT$/
         : qr/^\S+ 200 allow "" MISS\n\S+ 200 allow "" HIT$/,
         "http TLS 1.2 cache: $name.test: the hit repeats the miss");
}
@cef12 = $ng->wait_lines('cef12', 9);
is(scalar(@cef12), 9, 'http TLS 1.2 CEF: one record a request, hits too');

# the stream probe: every destination through CONNECT

my %stream = (good => $u_good, revoked => $u_revoked, plain => $u_plain,
              wrong => $u_wrong);
my %want = (good => [200, qr/^$/], revoked => [403, qr/\brevoked\b/],
            plain => [200, qr/^$/], wrong => [200, qr/^ocsp_invalid$/]);
my $n = 0;

for my $name (qw(good revoked plain wrong)) {
    $r = proxy_curl($root->{cert}, $proxy,
                    "https://127.0.0.1:$stream{$name}/");
    is($r->{connect} || $r->{code}, $want{$name}[0],
       "stream: $name: CONNECT answered $want{$name}[0]");
    my @l = $ng->wait_lines('stream', ++$n);
    my ($s) = $l[-1] =~ /sig="([^"]*)"/;
    like($s // 'none', $want{$name}[1], "stream: $name: signals");
}

like($r->{body}, qr/upstream wrong/, 'stream: the tunnel reached the server');

# the probe takes the staple over TLS 1.2 too (CertificateStatus comes after
# the certificates: it is read once the handshake is over)
$r = proxy_curl($root->{cert}, $proxy, "https://127.0.0.1:$u_tls12/");
is($r->{connect}, 403, 'stream: a revoked staple over TLS 1.2: refused');
my @tl = $ng->wait_lines('stream', ++$n);
like($tl[-1], qr/^403 v=block sig="[^"]*\brevoked\b/,
     'stream: TLS 1.2: revoked');

# certguard_crl in stream: the revoked leaf, stapling nothing, is refused
$r = proxy_curl($root->{cert}, $proxy_crl, "https://127.0.0.1:$u_plain/");
is($r->{connect}, 403, 'stream: certguard_crl refuses the revoked leaf');
my @sl = $ng->wait_lines('stream', ++$n);
like($sl[-1], qr/^403 v=block sig="[^"]*\brevoked\b/,
     'stream: certguard_crl: revoked');
$r = proxy_curl($root->{cert}, $proxy_crl, "https://127.0.0.1:$u_good/");
is($r->{connect}, 200, 'stream: certguard_crl: the good leaf passes');
$n++;

my @scef = $ng->wait_lines('stream-cef', 4);
ok(grep({ / revocation=ocsp\b/ } @scef), 'stream CEF: a staple named the source');
ok(grep({ / revocation=crl\b/ } @scef), 'stream CEF: certguard_crl named the source');

# nginx -t names the line of a CRL it cannot read

$ng->expect_log(qr/\[emerg\] .*certguard_crl "[^"]*": (cannot open|no X509 CRL)/);

my ($ok, $text) = $ng->test_config(<<"HTTP");
    server {
        listen 127.0.0.1:$port;
        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_crl $dir/missing.crl;
        location / { proxy_pass https://127.0.0.1:$u_good; }
    }
HTTP
ok(!$ok, 'nginx -t: a missing CRL file fails');
like($text, qr/certguard_crl "[^"]*missing\.crl": cannot open.* in \S+:\d+/,
     'nginx -t: names the file and the line');

($ok, $text) = $ng->test_config(<<"HTTP");
    server {
        listen 127.0.0.1:$port;
        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_crl $root->{cert};
        location / { proxy_pass https://127.0.0.1:$u_good; }
    }
HTTP
ok(!$ok, 'nginx -t: a file without a CRL fails');
like($text, qr/no X509 CRL block.* in \S+:\d+/, 'nginx -t: says why, where');

$ng->stop;

done_testing();
