#!/usr/bin/perl

# Embedded SCTs against a CT log list ("ct_log_list FILE;"): SCTs made in
# the test by test CT logs (t/lib/sct_pki.py: ECDSA P-256 logs signing the
# RFC 6962 precertificate data) verify, a changed signature, a copied SCT
# list or a future-dated SCT fire invalid_sct, an unlisted log is
# unverified_sct and not invalid, no list leaves no_sct a presence check;
# the list's errors name file:line through lint and nginx -t;
# scripts/ct-log-list on a log_list.json fixture; real badssl SCTs against
# the keys of their real logs (t/data/ct-logs-badssl.cnf); one real nginx
# proxy to upstreams serving the leaves.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Nginx;

###############################################################################

need_cli();

my $PY = '/usr/bin/python3';
plan(skip_all => 'python3-cryptography is not installed (scripts/deps.sh)')
    unless run($PY, '-c', 'import cryptography')->{exit} == 0;

my $DAY = 86400;
my $dir = tempdir();
my $repo = repo_root();
my $now = time();
my $script = "$repo/scripts/ct-log-list";

my $r = run($PY, "$repo/t/lib/sct_pki.py", $dir, $now);
is($r->{exit}, 0, 'the test PKI with SCTs is made') or diag($r->{err});

# the test root stands for the system bundle: its leaves are public ones,
# which unverified_sct (as no_sct) asks
$ENV{SSL_CERT_FILE} = "$dir/root.pem";

my $default = policy_dir() . '/default.policy';
mkdir "$dir/p";
# relative: next to the policy, whatever the working directory
write_file("$dir/p/logs.cnf", read_file("$dir/logs.cnf"));
write_file("$dir/p/list.policy", "include $default;\nct_log_list logs.cnf;\n");
write_file("$dir/other.policy", "include $default;\n"
    . "ct_log_list $dir/other.cnf;\n");

sub eval_leaf {
    my ($name, %o) = @_;

    my $c = check("$dir/$name.pem",
                  policy => $o{policy} // "$dir/p/list.policy",
                  sni => $o{sni} // "$name.test", at => $o{at} // $now);
    if ($c->{exit} != 0 || !$c->{json}) {
        diag("$c->{cmd}: exit $c->{exit}: $c->{err}$c->{out}");
        return undef;
    }

    return $c->{json};
}

sub fires {
    my ($j, $id, $name) = @_;

    ok($j && fired($j, $id), "$id fires: $name")
        or diag(explain($j ? $j->{signals} : 'no result'));
}

sub quiet {
    my ($j, $id, $name) = @_;

    ok($j && !fired($j, $id), "$id does not fire: $name")
        or diag(explain($j ? fired($j, $id) : 'no result'));
}

sub detail {
    my ($j, $id) = @_;
    my $s = fired($j, $id);

    return $s ? $s->{detail} : '';
}

# the list: a valid SCT verifies, the chain is trusted and clean

my $j = eval_leaf('good');
is($j && $j->{verdict}, 'allow', 'valid SCT of a listed log: allow');
is($j && $j->{score}, 0, 'valid SCT of a listed log: score 0');
quiet($j, $_, 'valid SCT of a listed log')
    for qw/invalid_sct unverified_sct no_sct untrusted_chain/;

# a changed byte of the signature: a strong sign of forgery

$j = eval_leaf('badsig');
fires($j, 'invalid_sct', 'a signature byte changed');
like(detail($j, 'invalid_sct'),
     qr/^SCT of "certguard test log 1" does not verify \(1 of 1; 0 unlisted\)/,
     'invalid_sct: the log and the counts in the detail');
is($j && $j->{verdict}, 'tag', 'invalid SCT alone on a trusted chain: tag');
is($j && $j->{score}, 60, 'invalid_sct weighs 60 in the default policy');
quiet($j, 'unverified_sct', 'a signature byte changed (invalid_sct\'s)');

# the SCT list of another certificate (same name, another key), an SCT over
# another issuer's key, an SCT dated after the evaluation time

$j = eval_leaf('copied', sni => 'good.test');
fires($j, 'invalid_sct', "another certificate's SCTs copied");
$j = eval_leaf('otherissuer');
fires($j, 'invalid_sct', "an SCT over another issuer's key");
$j = eval_leaf('future');
fires($j, 'invalid_sct', 'an SCT dated after the evaluation time');
like(detail($j, 'invalid_sct'), qr/dated after the evaluation time/,
     'invalid_sct: a future SCT says so');
$j = eval_leaf('future', at => $now + 2 * $DAY);
quiet($j, 'invalid_sct', 'the same SCT once its time has come');

# a log the list does not hold: unknown, not invalid

$j = eval_leaf('unknown');
quiet($j, 'invalid_sct', 'SCT of an unlisted log');
fires($j, 'unverified_sct', 'SCT of an unlisted log');
like(detail($j, 'unverified_sct'), qr/1 of 1 from unlisted logs/,
     'unverified_sct: the unlisted SCTs counted');
is($j && $j->{verdict}, 'allow', 'unverified_sct alone: allow (10)');

$j = eval_leaf('good', policy => "$dir/other.policy");
quiet($j, 'invalid_sct', 'a valid SCT of a log the list lacks');
fires($j, 'unverified_sct', 'a valid SCT of a log the list lacks');
$j = eval_leaf('unknown', policy => "$dir/other.policy");
quiet($j, $_, 'the other log listed: its SCT verifies')
    for qw/invalid_sct unverified_sct/;

# one listed, one not: verified; a bad one among good ones still counts

$j = eval_leaf('mixed');
quiet($j, $_, 'one SCT listed and valid, one unlisted')
    for qw/invalid_sct unverified_sct/;
$j = eval_leaf('mixedbad');
fires($j, 'invalid_sct', 'one bad SCT beside a good one');
like(detail($j, 'invalid_sct'), qr/\(1 of 3; 1 unlisted\)/,
     'invalid_sct: 1 invalid of 3, 1 unlisted (its bad signature unknown)');

# unverified_sct binds leaves of public roots only, as no_sct

$j = eval_chain_private('unknown');
quiet($j, 'unverified_sct', 'unlisted log under a private root');
$j = eval_chain_private('badsig');
fires($j, 'invalid_sct', 'a bad SCT under a private root');

sub eval_chain_private {
    my ($name) = @_;
    local $ENV{SSL_CERT_FILE} = '/nonexistent';

    my $c = check("$dir/$name.pem", policy => "$dir/p/list.policy",
                  ca_file => "$dir/root.pem", args => ['--no-system-roots'],
                  sni => "$name.test", at => $now);
    ok($c->{json} && $c->{json}{trusted}, "$name: trusted by a private root")
        or diag($c->{err});
    return $c->{json};
}

# no list: nothing is verified, no_sct stays a presence check

for my $name (qw/good badsig unknown copied/) {
    $j = eval_leaf($name, policy => $default, $name eq 'copied'
                                              ? (sni => 'good.test') : ());
    quiet($j, $_, "no ct_log_list, $name") for qw/invalid_sct unverified_sct
                                                 no_sct/;
    is($j && $j->{verdict}, 'allow', "no ct_log_list, $name: allow");
}

# the weights: 0 turns the check off

write_file("$dir/p/off.policy",
           "include list.policy;\nweight invalid_sct 0;\n");
$j = eval_leaf('badsig', policy => "$dir/p/off.policy");
quiet($j, 'invalid_sct', 'weight invalid_sct 0');

###############################################################################

# errors: the policy statement, or the list's own file:line

my $k1 = read_file("$dir/log1.b64");
my @bad = (
    # name, list text (undef: no file), where, what
    ['missing list', undef, 'policy',
     qr/ct_log_list ".*missing\.cnf": cannot open/],
    ['CONF syntax', "enabled_logs = a\n[a\ndescription = x\n", 2,
     qr/invalid CT log list/],
    ['no enabled_logs', "[a]\ndescription = x\nkey = $k1\n", 'policy',
     qr/no "enabled_logs"/],
    ['empty enabled_logs', "\nenabled_logs = ,\n", 2, qr/names no log/],
    ['missing section', "# logs\nenabled_logs = a, b\n[a]\n"
        . "description = x\nkey = $k1\n", 2, qr/names "b", expected a \[b\]/],
    ['no key', "enabled_logs = a\n\n[a]\ndescription = x\n", 3,
     qr/\[a\] has no "key"/],
    ['no description', "enabled_logs = a\n\n\n[ a ]\nkey = $k1\n", 4,
     qr/\[a\] has no "description"/],
    ['bad key', "enabled_logs = a\n[a]\ndescription = x\n\nkey = AAAA$k1\n", 5,
     qr/\[a\]: invalid key/],
);

my $i = 0;
for my $t (@bad) {
    my ($name, $text, $where, $what) = @$t;
    my $list = "$dir/bad$i.cnf";
    $list = "$dir/missing.cnf" unless defined $text;
    write_file($list, $text) if defined $text;
    my $p = write_file("$dir/bad$i.policy", "name bad;\n\nct_log_list "
                       . ($list =~ s{.*/}{}r) . ";\n");
    $i++;
    my $at = $where eq 'policy' ? qr/^\Q$p\E:3: / : qr/^\Q$list\E:$where: /;

    $r = cli('lint', $p);
    is($r->{exit}, 2, "lint exit 2: $name");
    is(scalar(split /\n/, $r->{err}), 1, "one error line: $name")
        or diag($r->{err});
    like($r->{err}, $at, "the error names its file:line: $name")
        or diag($r->{err});
    like($r->{err}, $what, "the error says what is wrong: $name");
}

$r = cli('lint', "$dir/p/list.policy");
is($r->{exit}, 0, 'lint: a policy with a ct_log_list') or diag($r->{err});

###############################################################################

# scripts/ct-log-list on a log_list.json in the v3 schema

my $id = sub {
    my $b = shift;
    my $c = run($PY, '-c', 'import base64,hashlib,sys; print(base64.b64encode('
                . 'hashlib.sha256(base64.b64decode(sys.argv[1])).digest())'
                . '.decode())', $b);
    chomp(my $o = $c->{out});
    return $o;
};
my $k2 = read_file("$dir/log2.b64");
my ($id1, $id2) = ($id->($k1), $id->($k2));

sub log_json {
    my ($desc, $key, $log_id, $state) = @_;
    return { description => $desc, key => $key, log_id => $log_id,
             url => 'https://ct.example/', mmd => 86400,
             $state ? (state => { $state => {
                 timestamp => '2025-01-01T00:00:00Z' } }) : () };
}

write_file("$dir/log_list.json", encode_json({
    version => '99.1', log_list_timestamp => '2026-11-30T12:00:00Z',
    operators => [
        { name => 'Test Operator "A"', email => ['ct@a.example'],
          logs => [ log_json("certguard 'test' log #1 \$x", $k1, $id1,
                             'usable'),
                    log_json('certguard test log 2', $k2, $id2, 'retired') ] },
        { name => 'Test Operator B', email => ['ct@b.example'], logs => [],
          tiled_logs => [ log_json('certguard test log 2 (tiled)', $k2,
                                   $id2, 'pending') ] },
    ] }));

$r = run($script, '-o', "$dir/p/usable.cnf", "$dir/log_list.json");
is($r->{exit}, 0, 'ct-log-list: converts a v3 list') or diag($r->{err});
my $cnf = read_file("$dir/p/usable.cnf");
like($cnf, qr/^enabled_logs = certguard_test_log_1_x$/m,
     'ct-log-list: usable logs only by default');
like($cnf, qr/^description = certguard \\'test\\' log \\#1 \\\$x$/m,
     'ct-log-list: quotes, comment and variable characters escaped');
write_file("$dir/p/usable.policy",
           "include $default;\nct_log_list usable.cnf;\n");
$r = cli('lint', "$dir/p/usable.policy");
is($r->{exit}, 0, 'ct-log-list: its output loads') or diag($r->{err});
$j = eval_leaf('good', policy => "$dir/p/usable.policy");
quiet($j, $_, 'ct-log-list output: the usable log verifies')
    for qw/invalid_sct unverified_sct/;
$j = eval_leaf('badsig', policy => "$dir/p/usable.policy");
like(detail($j, 'invalid_sct'), qr/^SCT of "certguard 'test' log #1 \$x"/,
     'ct-log-list output: the description as the list has it');
$j = eval_leaf('unknown', policy => "$dir/p/usable.policy");
fires($j, 'unverified_sct', 'ct-log-list output: a retired log left out');

$r = run($script, '--all', '-o', "$dir/p/all.cnf", "$dir/log_list.json");
is($r->{exit}, 0, 'ct-log-list --all') or diag($r->{err});
like(read_file("$dir/p/all.cnf"),
     qr/^enabled_logs = certguard_test_log_1_x,certguard_test_log_2,\S+$/m,
     'ct-log-list --all: every log');
like(read_file("$dir/p/all.cnf"), qr/,certguard_test_log_2_tiled$/m,
     'ct-log-list --all: tiled logs too');
write_file("$dir/p/all.policy", "include $default;\nct_log_list all.cnf;\n");
$j = eval_leaf('unknown', policy => "$dir/p/all.policy");
quiet($j, $_, 'ct-log-list --all: the retired log verifies')
    for qw/invalid_sct unverified_sct/;

write_file("$dir/wrong-id.json", encode_json({ operators => [
    { name => 'X', logs => [ log_json('x', $k1, $id2, 'usable') ] } ] }));
$r = run($script, "$dir/wrong-id.json");
is($r->{exit}, 1, 'ct-log-list: a log_id that is not its key\'s fails');
like($r->{err}, qr/not the SHA-256 of its key/, 'ct-log-list: and says so');
write_file("$dir/not-v3.json", '{"logs": []}');
$r = run($script, "$dir/not-v3.json");
is($r->{exit}, 1, 'ct-log-list: not the v3 schema fails');
write_file("$dir/none.json", encode_json({ operators => [
    { name => 'X', logs => [ log_json('x', $k1, $id1, 'retired') ] } ] }));
$r = run($script, "$dir/none.json");
is($r->{exit}, 1, 'ct-log-list: no usable log fails');

###############################################################################

# real SCTs: badssl leaves against their real logs' keys

my $corpus = shared_dir() . '/corpus/badssl';
SKIP: {
    skip "no badssl corpus in $corpus", 11
        unless -f "$corpus/wildcard-rsa2048.pem";
    local $ENV{SSL_CERT_FILE} = '/etc/ssl/certs/ca-certificates.crt';

    write_file("$dir/real.policy", "include $default;\n"
        . "ct_log_list $repo/t/data/ct-logs-badssl.cnf;\n");

    for my $t (['wildcard-rsa2048', 'foo.badssl.com', 1600000000],
               ['wildcard-ecc256', 'ecc256.badssl.com', 1600000000],
               ['subdomain-revoked', 'revoked.badssl.com', 1640000000])
    {
        my ($name, $sni, $at) = @$t;
        my $c = check("$corpus/$name.pem", policy => "$dir/real.policy",
                      sni => $sni, at => $at);
        quiet($c->{json}, $_, "$name: real SCTs of listed logs")
            for qw/invalid_sct unverified_sct/;
        $c = check("$corpus/$name.pem", policy => "$dir/other.policy",
                   sni => $sni, at => $at);
        fires($c->{json}, 'unverified_sct', "$name: none of its logs listed");
    }

    # 2020-03-23 10:00: the leaf is valid (from 00:00), its SCTs are dated
    # 16:42 that day
    my $c = check("$corpus/wildcard-rsa2048.pem", policy => "$dir/real.policy",
                  sni => 'foo.badssl.com', at => 1584957600);
    fires($c->{json}, 'invalid_sct', 'wildcard-rsa2048 before its SCTs');
    like(detail($c->{json}, 'invalid_sct'),
         qr/dated after the evaluation time \(3 of 3/,
         'wildcard-rsa2048 before its SCTs: all three future-dated');
}

###############################################################################

# a real nginx proxy: the policy's list loads at configuration time, errors
# stop nginx -t with file:line

Certguard::Nginx::need_module();

my %cert = map { $_ => { chain => "$dir/$_.pem", key => "$dir/$_.key" } }
    qw/good badsig unknown/;
my @names = sort keys %cert;
my ($port, @up) = free_ports(1 + @names);
my %up = map { $names[$_] => $up[$_] } 0 .. $#names;

my $ng = Certguard::Nginx->new("$dir/nginx");
my ($upstreams, $servers) = $ng->tls_upstreams(\%cert, \%up);

sub http {
    my ($policy) = @_;

    return <<"HTTP";
$upstreams

    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $dir/root.pem;

        add_header X-Verdict \$certguard_verdict always;
        add_header X-Signals \$certguard_signals always;

        location / {
            proxy_pass https://\$host;
        }
    }

$servers
HTTP
}

my ($ok, $out) = $ng->test_config(http("$dir/bad4.policy"),
    expect_log => qr/\[emerg\] .*bad4\.cnf:2: /);
ok(!$ok, 'nginx -t: a list naming a missing section fails');
like($out, qr{\Q$dir\E/bad4\.cnf:2: "enabled_logs" names "b"},
     'nginx -t: the list file:line');

$ng->start(http("$dir/p/list.policy"), ports => [$port, @up]);

sub fetch {
    my ($name) = @_;
    my $res = $ng->get($port, '/', Host => "$name.test");

    return ($res, { map { $_ => 1 }
                    split /,/, $res->{headers}{'x-signals'} // '' });
}

my ($res, $sig) = fetch('good');
is($res->{status}, 200, 'nginx: valid SCT, 200');
is($res->{headers}{'x-verdict'}, 'allow', 'nginx: valid SCT, allow');
ok(!$sig->{invalid_sct} && !$sig->{unverified_sct}, 'nginx: valid SCT quiet');
like($res->{body}, qr/upstream good/, 'nginx: the upstream answered');

($res, $sig) = fetch('badsig');
is($res->{headers}{'x-verdict'}, 'tag', 'nginx: bad SCT signature, tag');
ok($sig->{invalid_sct}, 'nginx: invalid_sct');

($res, $sig) = fetch('unknown');
ok(!$sig->{invalid_sct}, 'nginx: unlisted log, not invalid');
ok($sig->{unverified_sct}, 'nginx: unlisted log, unverified_sct');

$ng->stop();

done_testing();

###############################################################################
