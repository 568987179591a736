#!/usr/bin/perl

# The default TLS certificates of real offensive tools (C2 frameworks,
# RATs, phishing kits, interception proxies), made the way each tool makes
# them (t/lib/tool_certs.py: every case there cites the tool's source file
# and commit), must block under the default policy, through the CLI and,
# for a few, through a real nginx proxy; the generalising checks must
# catch them without the name list where the table says so.  Benign odd
# certificates beside them must not block: a public leaf whose server
# omits the intermediate (badssl incomplete-chain), a corporate CA's leaf
# with an ordinary subject, an empty-subject Let's Encrypt-style leaf.
# docs/signals.md, "Offensive tools covered", is this table.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);

###############################################################################

need_cli();

my $PY = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
plan(skip_all => 'python3-cryptography is not installed')
    unless system($PY, '-c', 'import cryptography') == 0;

my $dir = tempdir();
my $gen = run({ timeout => 600 }, $PY, 'lib/tool_certs.py', "$dir/certs");
is($gen->{exit}, 0, 'tool_certs.py made every certificate')
    or BAIL_OUT("tool_certs.py: $gen->{err}");
my %sni = map { split / / } split /\n/, $gen->{out};

# case => [the signals that must fire, 1 when the checks that generalise
# block it without the name list].  Sources: the comment of each case in
# t/lib/tool_certs.py (tool's file@commit).
my %tools = (
    # C2 frameworks
    cobaltstrike     => [[qw/self_signed default_subject malformed_name/], 1],
    sliver_https     => [[qw/untrusted_chain malformed_name/], 1],
    sliver_mtls      => [[qw/untrusted_chain malformed_name/], 1],
    metasploit_rex   => [[qw/untrusted_chain forged_issuer/], 1],
    metasploit_msf   => [[qw/self_signed/], 1],
    havoc            => [[qw/self_signed malformed_name/], 1],
    mythic_ui        => [[qw/self_signed default_subject/], 1],
    mythic_http      => [[qw/self_signed default_subject/], 1],
    mythic_docker    => [[qw/self_signed default_subject/], 1],
    covenant         => [[qw/self_signed default_subject/], 1],
    empire           => [[qw/self_signed default_subject/], 1],
    poshc2           => [[qw/self_signed default_subject/], 1],
    merlin           => [[qw/self_signed malformed_name/], 1],
    merlin_testcert  => [[qw/self_signed default_subject/], 1],
    pupy             => [[qw/untrusted_chain bad_version default_subject/],
                         1],
    caldera          => [[qw/self_signed default_subject/], 1],
    deimos           => [[qw/self_signed impossible_validity
                             default_subject/], 1],
    # tunnels and network tools
    frp              => [[qw/self_signed malformed_name/], 1],
    frp_old          => [[qw/self_signed malformed_name
                             impossible_validity/], 1],
    ligolo           => [[qw/self_signed default_subject/], 1],
    responder        => [[qw/self_signed malformed_name/], 1],
    villain          => [[qw/self_signed default_subject/], 1],
    go_generate_cert => [[qw/self_signed default_subject/], 1],
    # RATs
    asyncrat         => [[qw/self_signed default_subject/], 1],
    quasar           => [[qw/self_signed default_subject/], 1],
    dcrat            => [[qw/forged_issuer default_subject weak_key/], 1],
    venomrat         => [[qw/forged_issuer default_subject weak_key/], 1],
    # phishing and interception
    evilginx         => [[qw/untrusted_chain default_subject weak_key/], 0],
    gophish          => [[qw/self_signed default_subject/], 1],
    modlishka        => [[qw/malformed_name default_subject/], 1],
    mitmproxy        => [[qw/issuer_key_reuse forged_issuer
                             default_subject/], 1],
    burp             => [[qw/malformed_name default_subject/], 1],
    beef             => [[qw/self_signed/], 1],
);

my $policy = policy_dir() . '/default.policy';
my $nolist = write_file("$dir/nolist.policy", "include $policy;\n"
    . "name no-names;\nweight default_subject 0;\n");

my @shape = qw/malformed_name impossible_validity bad_version forged_issuer
               issuer_key_reuse/;

ok(scalar(keys %tools) >= 30, 'at least 30 tool defaults');
is_deeply([sort grep { !/^(corp_ca|le_empty_subject)$/ } keys %sni],
          [sort keys %tools], 'every case made has expectations');

for my $t (sort keys %tools) {
    my ($want, $generic) = @{ $tools{$t} };
    my $r = check("$dir/certs/$t.pem", policy => $policy, sni => $sni{$t});

    is($r->{exit}, 0, "$t: exit 0") or diag($r->{err});
    is($r->{json} && $r->{json}{verdict}, 'block', "$t: blocked")
        or diag($r->{out});
    ok(fired($r->{json}, $_), "$t: $_") for @$want;

    next unless $generic;

    # the same without any name list: what generalises
    $r = check("$dir/certs/$t.pem", policy => $nolist, sni => $sni{$t});
    is($r->{json} && $r->{json}{verdict}, 'block',
       "$t: blocked without the name list") or diag($r->{out});
}

# the shape signals one by one, on what they are about

my $r = check("$dir/certs/sliver_https.pem", sni => 'localhost');
like(fired($r->{json}, 'malformed_name')->{detail} // '',
     qr/^leaf issuer is empty \(\+1 more\)$/,
     'sliver: the empty issuer, then STREET=""');
$r = check("$dir/certs/havoc.pem");
like(fired($r->{json}, 'malformed_name')->{detail} // '',
     qr/^leaf subject: empty (ST|stateOrProvinceName)/, 'havoc: empty ST');
$r = check("$dir/certs/cobaltstrike.pem");
like(fired($r->{json}, 'malformed_name')->{detail} // '',
     qr/^leaf subject: C "Earth"/, 'cobalt strike: C=Earth');
$r = check("$dir/certs/modlishka.pem");
like(fired($r->{json}, 'malformed_name')->{detail} // '',
     qr/^leaf subject: C "Earth" \(\+1 more\)$/,
     'modlishka: C=Earth, and the CA\'s lower-case pl');
$r = check("$dir/certs/burp.pem");
like(fired($r->{json}, 'malformed_name')->{detail} // '',
     qr/^leaf subject: C "PortSwigger"/, 'burp: C=PortSwigger');
$r = check("$dir/certs/deimos.pem");
like(fired($r->{json}, 'impossible_validity')->{detail} // '',
     qr/^leaf notAfter 2020-01-24T12:00:00Z not after notBefore 2020-01-24T12:00:00Z$/,
     'deimos: zero lifetime');
$r = check("$dir/certs/frp_old.pem");
like(fired($r->{json}, 'impossible_validity')->{detail} // '',
     qr/before 1950$/, 'frp_old: year 1');
$r = check("$dir/certs/pupy.pem");
like(fired($r->{json}, 'bad_version')->{detail} // '',
     qr/^leaf version field 3 /, 'pupy: version field 3');
$r = check("$dir/certs/metasploit_rex.pem");
like(fired($r->{json}, 'forged_issuer')->{detail} // '',
     qr/^issuer CN=Lisa Gerald,O=Lisa,C=US, signed by the leaf's own key$/,
     'metasploit: the invented issuer');
ok(!fired($r->{json}, 'self_signed'), 'metasploit: not self_signed');
$r = check("$dir/certs/mitmproxy.pem");
like(fired($r->{json}, 'issuer_key_reuse')->{detail} // '',
     qr/^leaf key is the key of depth 1 \(O=mitmproxy,CN=mitmproxy\)$/,
     'mitmproxy: the CA key');
like(fired($r->{json}, 'default_subject')->{detail} // '',
     qr/mitmproxy/, 'mitmproxy: its name, in the leaf issuer');

# self-signed certificates are not forged: self_signed says it
for my $t (qw/cobaltstrike empire responder merlin frp/) {
    $r = check("$dir/certs/$t.pem");
    ok(!fired($r->{json}, 'forged_issuer'), "$t: no forged_issuer");
}

# the mitmproxy CA trusted (an operator who installed it): the leaf is
# still its CA's key
$r = check("$dir/certs/mitmproxy.pem", sni => 'www.example.test',
           ca_file => (split_chain("$dir/certs/mitmproxy.pem"))[1]);
ok($r->{json} && $r->{json}{trusted}, 'mitmproxy CA trusted: chain verifies');
ok(fired($r->{json}, 'issuer_key_reuse'),
   'mitmproxy CA trusted: issuer_key_reuse');
ok(fired($r->{json}, 'forged_issuer'),
   'mitmproxy CA trusted: the leaf verifies under its own key');

###############################################################################

# benign controls

sub benign {
    my ($r, $name, $want) = @_;

    is($r->{exit}, 0, "$name: exit 0") or diag($r->{err});
    isnt($r->{json} && $r->{json}{verdict}, 'block', "$name: not blocked")
        or diag($r->{out});
    is($r->{json} && $r->{json}{verdict}, $want, "$name: $want") if $want;
    ok(!fired($r->{json}, $_), "$name: no $_") for @shape, 'default_subject';
}

# badssl.com's incomplete-chain: a DigiCert leaf served without its
# intermediate, inside its validity (2020-03-23 to 2022-05-17)
my $badssl = shared_dir() . '/corpus/badssl';
SKIP: {
    skip 'no badssl corpus', 8 unless -f "$badssl/wildcard-incomplete-chain.pem";

    $r = check("$badssl/wildcard-incomplete-chain.pem", at => 1609459200,
               sni => 'incomplete-chain.badssl.com');
    benign($r, 'badssl incomplete-chain', 'tag');
    ok(fired($r->{json}, 'untrusted_chain'),
       'badssl incomplete-chain: untrusted_chain');
    ok(!fired($r->{json}, 'mimicked_ca'),
       'badssl incomplete-chain: a missing issuer is not mimicked_ca');
}

# an enterprise PKI: a root in --ca-file, an issuing CA, an ordinary leaf
$r = check("$dir/certs/corp_ca.pem", ca_file => "$dir/certs/corp_ca.ca.pem",
           sni => 'intranet.corp.example');
benign($r, 'corporate CA', 'allow');
# the same without the root: untrusted, and only that
$r = check("$dir/certs/corp_ca.pem", sni => 'intranet.corp.example');
benign($r, 'corporate CA, root unknown', 'tag');

# Let's Encrypt-style: empty subject, critical SAN, from a trusted CA
$r = check("$dir/certs/le_empty_subject.pem",
           ca_file => "$dir/certs/le_empty_subject.ca.pem",
           sni => 'empty.example.test');
benign($r, 'empty-subject leaf', 'allow');

###############################################################################

# real nginx: an upstream serving a tool's default, the HTTP proxy blocks;
# the corporate leaf passes

SKIP: {
    eval { require Certguard::Nginx; Certguard::Nginx::need_module(); 1 }
        or skip 'no nginx module', 1;

    my %cert = (
        sliver => 'sliver_https', msfrex => 'metasploit_rex',
        mitm => 'mitmproxy', cobalt => 'cobaltstrike', havoc => 'havoc',
        corp => 'corp_ca',
    );
    my %files = map {
        $_ => { chain => "$dir/certs/$cert{$_}.pem",
                key => "$dir/certs/$cert{$_}.key" }
    } keys %cert;

    my @names = sort keys %cert;
    my ($port, @up) = free_ports(1 + @names);
    my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

    my $ng = Certguard::Nginx->new("$dir/nginx");
    my ($upstreams, $servers) = $ng->tls_upstreams(\%files, \%up);

    $ng->start(<<"HTTP", ports => [$port, @up]);
$upstreams

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $dir/certs/corp_ca.ca.pem;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_pass https://\$host;
        }
    }

$servers
HTTP

    my %via = (sliver => 'malformed_name', msfrex => 'forged_issuer',
               mitm => 'issuer_key_reuse', cobalt => 'default_subject',
               havoc => 'malformed_name');

    for my $n (sort keys %via) {
        my $res = $ng->get($port, '/', Host => "$n.test");
        is($res->{status}, 403, "nginx $cert{$n}: 403");
        is($res->{headers}{'x-verdict'}, 'block', "nginx $cert{$n}: block");
        like($res->{headers}{'x-signals'} // '', qr/\b$via{$n}\b/,
             "nginx $cert{$n}: $via{$n}");
        is(scalar $ng->access_log($n), 0,
           "nginx $cert{$n}: upstream received nothing");
    }

    my $res = $ng->get($port, '/', Host => 'corp.test');
    is($res->{status}, 200, 'nginx corporate leaf: 200');
    like($res->{body}, qr/upstream corp/, 'nginx corporate leaf: upstream');
    isnt($res->{headers}{'x-verdict'}, 'block', 'nginx corporate leaf: passes');

    $ng->stop();
}

done_testing();

###############################################################################

# The certificates of a PEM chain file, each written to a file of its own.
sub split_chain {
    my ($file) = @_;
    my @pem = read_file($file) =~
        /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n)/sg;
    my $i = 0;

    return map { write_file("$file." . $i++ . '.pem', $_) } @pem;
}
