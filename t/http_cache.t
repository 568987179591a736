#!/usr/bin/perl

# HTTP module: the shared verdict cache (certguard_cache).  With two worker
# processes a certificate is scored once and served from the cache by both
# workers; the key includes the name and the destination; entries expire
# after valid=; a small zone evicts the least recently used entry.

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

# names that all lead to the good upstream: one cache entry each (more
# than a 32 KB zone holds)
my @more = map { "a$_" } 1 .. 60;
my @names = ('good', 'alias', @more);

my %cert = (
    good => $pki->good_leaf('good', issuer => $root,
                            san => join(',', map { "DNS:$_.test" } @names)),
    bad  => $pki->leaf('bad', subject => '/CN=bad.test', san => 'DNS:bad.test'),
);

my ($port, $up_good, $up_bad) = free_ports(3);

my $ng = Certguard::Nginx->new("$dir/nginx");
my $logs = "$dir/nginx/logs";

$ng->start(<<"HTTP", ports => [$port, $up_good, $up_bad], workers => 2);
    upstream good.test { server 127.0.0.1:$up_good; }
    upstream alias.test { server 127.0.0.1:$up_good; }
@{[ join '', map { "    upstream $_.test { server 127.0.0.1:$up_good; }\n" } @more ]}    upstream bad.test { server 127.0.0.1:$up_bad; }

    log_format cache '\$pid \$host \$uri \$status \$certguard_cache '
                     '\$certguard_verdict';

    server {
        # reuseport: the kernel spreads client connections over both workers
        listen 127.0.0.1:$port reuseport;

        certguard on;
        certguard_policy @{[ policy_dir() ]}/default.policy;
        certguard_trusted_certificate $root->{cert};
        certguard_cache zone=verdicts:1m valid=5m;

        access_log $logs/cache.log cache;

        # every request a full handshake
        proxy_ssl_session_reuse off;

        add_header X-Cache \$certguard_cache always;

        location / {
            proxy_pass https://\$host;
        }

        location /short/ {
            certguard_cache zone=short:64k valid=1s;
            proxy_pass https://\$host;
        }

        location /tiny/ {
            certguard_cache zone=tiny:32k;
            proxy_pass https://\$host;
        }
    }

@{[ $ng->tls_server(name => 'good', port => $up_good, cert => $cert{good}) ]}
@{[ $ng->tls_server(name => 'bad', port => $up_bad, cert => $cert{bad}) ]}
HTTP

is(scalar $ng->worker_pids, 2, 'two workers') or diag($ng->error_log);

sub fetch {
    my ($name, $path) = @_;

    return $ng->get($port, $path // '/', Host => "$name.test");
}

sub lines {
    my ($host, $uri) = @_;

    return map { [ split / / ] }
           grep { / \Q$host\E \Q$uri\E / } $ng->log_lines('cache');
}

# one miss, then hits in both workers

fetch('good') for 1 .. 30;

my @l = lines('good.test', '/');
is(scalar @l, 30, '30 requests');
is(scalar(grep { $_->[4] eq 'MISS' } @l), 1, 'scored once');
is($l[0][4], 'MISS', 'the first request scored it');
is(scalar(grep { $_->[4] eq 'HIT' } @l), 29, 'the others were cache hits');
is(scalar(grep { $_->[5] ne 'allow' } @l), 0, 'hits carry the verdict');

my $miss_pid = $l[0][0];
my %hit_pid = map { $_->[0] => 1 } grep { $_->[4] eq 'HIT' } @l;
ok((grep { $_ ne $miss_pid } keys %hit_pid),
   'another worker hit the entry the first one stored');
is(scalar(() = $ng->error_log =~ /certguard: allowed certificate of "good\.test"/g),
   30, 'one scored handshake per request');

# blocks are cached too, and still blocked

my @b = map { fetch('bad') } 1 .. 3;
is_deeply([ map { $_->{status} } @b ], [403, 403, 403], 'cached block blocks');
is_deeply([ map { $_->{headers}{'x-cache'} } @b ], ['MISS', 'HIT', 'HIT'],
          'block: miss, then hits');
is(scalar $ng->access_log('bad'), 0, 'cached block: upstream untouched');

# the name is part of the key: the same certificate under another name

my $a1 = fetch('alias');
my $a2 = fetch('alias');
is($a1->{headers}{'x-cache'}, 'MISS', 'another name: scored');
is($a2->{headers}{'x-cache'}, 'HIT', 'another name: then cached');

# valid=1s

is(fetch('good', '/short/')->{headers}{'x-cache'}, 'MISS', 'short: miss');
is(fetch('good', '/short/')->{headers}{'x-cache'}, 'HIT', 'short: hit');
select(undef, undef, undef, 2.1);
is(fetch('good', '/short/')->{headers}{'x-cache'}, 'MISS',
   'short: expired after valid=');

# a zone with room for a few entries evicts the least recently used one

# (a 32k zone has room for about forty entries, not for sixty-two)
my @tiny = ('good', 'bad', 'alias', @more);
my @first = map { fetch($_, '/tiny/')->{headers}{'x-cache'} } @tiny;
is_deeply(\@first, [('MISS') x @tiny], 'tiny: every entry scored');
my @again = map { fetch($_, '/tiny/') } @tiny;
is(scalar(grep { $_->{status} == 0 } @again), 0, 'tiny: every request answered');
ok((grep { $_->{headers}{'x-cache'} eq 'MISS' } @again),
   'tiny: entries were evicted');
is($again[1]{status}, 403, 'tiny: block still blocks after eviction');
unlike($ng->error_log, qr/\[(crit|alert|emerg)\].*(slab|certguard)/,
       'no allocation errors logged');

$ng->stop;

done_testing();
