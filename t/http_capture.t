#!/usr/bin/perl

# HTTP module: certguard_capture.  Each chain scored cold (no cache, or a
# cache miss) is kept once as <sha256 of the chain>.pem with a JSON
# sidecar; a second cold scoring counts; a cache hit does not; two workers
# count every sighting; nothing is left half-written; max_size bounds the
# directory; "off" turns it off below; the CLI replays the directory.

use warnings;
use strict;

use Test::More;
use Digest::SHA qw(sha256_hex);
use MIME::Base64 qw(decode_base64);

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
my $int = $pki->ca('int', issuer => $root, subject => '/CN=certguard test int');

my %cert = (
    good => $pki->good_leaf('good', issuer => $int),
    bad  => $pki->leaf('bad', subject => '/CN=bad.test', san => 'DNS:bad.test'),
    c1   => $pki->good_leaf('c1', issuer => $int),
    c2   => $pki->good_leaf('c2', issuer => $int),
    c3   => $pki->good_leaf('c3', issuer => $int),
);

my ($port, @up) = free_ports(1 + keys %cert);
my %port = map { $_ => shift @up } sort keys %cert;

my $cap = "$dir/capture";
my $small = "$dir/small";
my $policy = policy_dir() . '/default.policy';

# an entry is its PEM and a sidecar of about 230 bytes: room for two
my $entry = -s $cert{c1}{chain};
my $max = 2 * ($entry + 300) + 100;

my $ng = Certguard::Nginx->new("$dir/nginx");
my ($upstreams, $servers) = $ng->tls_upstreams(\%cert, \%port);

$ng->start(<<"HTTP", ports => [$port, values %port], workers => 2);
$upstreams
    server {
        listen 127.0.0.1:$port reuseport;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $root->{cert};
        certguard_capture $cap;

        proxy_ssl_session_reuse off;
        add_header X-Cache \$certguard_cache always;

        location / {
            proxy_pass https://\$host;
        }

        location /cached/ {
            certguard_cache zone=verdicts:1m valid=5m;
            proxy_pass https://\$host;
        }

        location /small/ {
            certguard_capture $small/ max_size=$max;
            proxy_pass https://\$host;
        }

        location /off/ {
            certguard_capture off;
            proxy_pass https://\$host;
        }
    }

$servers
HTTP

is(scalar $ng->worker_pids, 2, 'two workers') or diag($ng->error_log);

sub fetch {
    my ($name, $path) = @_;

    return $ng->get($port, $path // '/', Host => "$name.test");
}

sub files {
    my ($d, $glob) = @_;
    my @f = sort glob("$d/$glob");

    return @f;
}

# The sidecar of a chain: written after the handshake, from an event the
# worker runs later in the same turn; wait a little for it, no more.
sub sidecar {
    my ($d, $sha, $count) = @_;
    my $j;

    for (1 .. 50) {
        $j = -e "$d/$sha.json"
            ? eval { decode_json(read_file("$d/$sha.json")) } : undef;
        last if $j && $j->{count} >= ($count // 1);
        select(undef, undef, undef, 0.05);
    }

    return $j;
}

# what names an entry: SHA-256 over the DER of each certificate as sent
sub chain_sha {
    my ($pem) = @_;
    my @der = map { decode_base64($_) }
              $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END/sg;

    return sha256_hex(join '', @der);
}

my $good_sha = chain_sha(read_file($cert{good}{chain}));
my $bad_sha = chain_sha(read_file($cert{bad}{chain}));

###############################################################################

# the first sighting

my $t0 = time;
is(fetch('good')->{status}, 200, 'good: allowed');

my $j = sidecar($cap, $good_sha);
ok($j, 'good: sidecar written') or diag($ng->error_log);
ok(-f "$cap/$good_sha.pem", 'good: chain written, named by its SHA-256');
is(read_file("$cap/$good_sha.pem") =~ tr/\n//,
   read_file($cert{good}{chain}) =~ tr/\n//, 'good: the chain as sent');
is(chain_sha(read_file("$cap/$good_sha.pem")), $good_sha,
   'the PEM hashes to its name');
is_deeply([ sort keys %{ $j // {} } ],
          [ sort qw/sha256 name client_sni dst_addr dst_port first_seen
                    last_seen count verdict policy/ ],
          'sidecar: these fields and no others');
is($j->{sha256}, $good_sha, 'sidecar: sha256');
is($j->{name}, 'good.test', 'sidecar: the name checked');
is($j->{client_sni}, undef, 'sidecar: no client SNI in HTTP proxying');
is($j->{dst_addr}, '127.0.0.1', 'sidecar: destination address');
is($j->{dst_port}, $port{good}, 'sidecar: destination port');
ok($j->{first_seen} >= $t0 - 1 && $j->{first_seen} <= time + 1,
   'sidecar: first_seen is now');
is($j->{last_seen}, $j->{first_seen}, 'sidecar: last_seen = first_seen');
is($j->{count}, 1, 'sidecar: count 1');
is($j->{verdict}, 'allow', 'sidecar: verdict');
is($j->{policy}, 'default', 'sidecar: policy name');

my @m = stat("$cap/$good_sha.pem");
is($m[2] & 0777, 0640, 'chain file mode 0640');

# no cache here: the next handshake is cold again, and counts

select(undef, undef, undef, 1.1);
is(fetch('good')->{status}, 200, 'good again');
$j = sidecar($cap, $good_sha, 2);
is($j->{count}, 2, 'a second cold scoring counts');
ok($j->{last_seen} > $j->{first_seen}, 'last_seen moves, first_seen stays');

# a block is captured too

is(fetch('bad')->{status}, 403, 'bad: blocked');
$j = sidecar($cap, $bad_sha);
is($j && $j->{verdict}, 'block', 'bad: captured with its verdict');
is($j && $j->{name}, 'bad.test', 'bad: its name');

# behind a cache: the miss counts, the hit does not

my $r1 = fetch('good', '/cached/');
is($r1->{headers}{'x-cache'}, 'MISS', 'cached: miss');
$j = sidecar($cap, $good_sha, 3);
is($j->{count}, 3, 'cached: the miss counts');
my $r2 = fetch('good', '/cached/');
is($r2->{headers}{'x-cache'}, 'HIT', 'cached: hit');
select(undef, undef, undef, 0.3);
$j = sidecar($cap, $good_sha);
is($j->{count}, 3, 'cached: a hit is not a sighting');

# off below

is(fetch('c3', '/off/')->{status}, 200, 'off: allowed');
select(undef, undef, undef, 0.3);
is(scalar(my @f = files($cap, '*.pem')), 2, 'off: nothing captured');

# two workers, each request cold: every sighting counted once

my %pids;
for (1 .. 20) {
    my $r = fetch('good');
    $pids{ok}++ if $r->{status} == 200;
}
is($pids{ok}, 20, 'twenty more requests');
$j = sidecar($cap, $good_sha, 23);
is($j->{count}, 23, 'two workers: every sighting counted');
my %who = map { (split / /)[0] => 1 }
          grep { /allowed certificate of "good\.test"/ }
          map { /\[info\] (\d+)#/ ? "$1 $_" : () }
          split /\n/, $ng->error_log;
ok(keys %who >= 2, 'both workers scored (and wrote)')
    or diag(join ',', keys %who);

is(scalar(grep { m{/\.tmp-} } glob("$cap/.*")), 0, 'no temporary file left');
my @json = files($cap, '*.json');
my @pem = files($cap, '*.pem');
is(scalar @json, 2, 'two sidecars');
is(scalar @pem, 2, 'beside two chains');

# max_size: the least recently seen go

for my $n (qw/c1 c2 c3/) {
    is(fetch($n, '/small/')->{status}, 200, "small: $n");
    my $sha = chain_sha(read_file($cert{$n}{chain}));
    ok(sidecar($small, $sha), "small: $n captured");
    select(undef, undef, undef, 0.05);
}

my @kept = files($small, '*.pem');
my $total = 0;
$total += -s $_ for files($small, '*');
ok($total <= $max, "small: $total bytes, at most max_size=$max");
is(scalar @kept, 2, 'small: two of three kept');
ok(-e "$small/" . chain_sha(read_file($cert{c3}{chain})) . '.pem',
   'small: the newest kept');
ok(!-e "$small/" . chain_sha(read_file($cert{c1}{chain})) . '.pem',
   'small: the oldest evicted');

# the CLI replays what was captured: name and time from each sidecar

my $r = cli('check', '--policy', $policy, '--ca-file', $root->{cert}, $cap);
is($r->{exit}, 0, 'replay: exit 0') or diag($r->{err});
my @lines = map { decode_json($_) } split /\n/, $r->{out};
is(scalar @lines, 2, 'replay: one line per captured chain');
my %by = map { $_->{file} =~ m{([0-9a-f]{64})\.pem$} ? ($1 => $_) : () }
         @lines;
is($by{$good_sha}{name}, 'good.test', 'replay: name from the sidecar');
is($by{$good_sha}{verdict}, 'allow', 'replay: the proxy\'s verdict');
is($by{$bad_sha}{name}, 'bad.test', 'replay: the other name');
is($by{$bad_sha}{verdict}, 'block', 'replay: block reproduced');

# configuration errors

$ng->expect_log(qr/invalid max_size "max_size=lots"/,
                qr/takes no parameters with "off"/,
                qr/invalid parameter "fast"/);

my ($ok, $text) = $ng->test_config(<<"HTTP");
    server { listen 127.0.0.1:$port; certguard_capture $cap max_size=lots; }
HTTP
ok(!$ok && $text =~ /invalid max_size "max_size=lots"/,
   'nginx -t: a bad max_size') or diag($text);

($ok, $text) = $ng->test_config(<<"HTTP");
    server { listen 127.0.0.1:$port; certguard_capture off $cap; }
HTTP
ok(!$ok && $text =~ /takes no parameters with "off"/,
   'nginx -t: off takes nothing') or diag($text);

($ok, $text) = $ng->test_config(<<"HTTP");
    server { listen 127.0.0.1:$port; certguard_capture $cap fast; }
HTTP
ok(!$ok && $text =~ /invalid parameter "fast"/, 'nginx -t: unknown parameter')
    or diag($text);

$ng->stop;

done_testing();
