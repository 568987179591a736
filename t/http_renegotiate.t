#!/usr/bin/perl

# HTTP module, TLS 1.2 renegotiation asked for by the upstream (a
# HelloRequest in the middle of a kept connection): certguard leaves the
# session of the connection alone, so the renegotiation and the request on
# it succeed as they do without the module.  The connection is opened by
# one location and reused by another with a different policy, whose
# verdict does not match the session's.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Certs;
use Certguard::Nginx;

use IO::Socket::SSL;
use Net::SSLeay;
use POSIX qw();

###############################################################################

Certguard::Nginx::need_module();

my $dir = tempdir();
my $pki = Certguard::Certs->new("$dir/pki");
my $root = $pki->ca('root', subject => '/CN=certguard renegotiation root');
my $leaf = $pki->good_leaf('reneg', issuer => $root);

write_file("$dir/one.policy", 'include ' . policy_dir()
    . "/default.policy;\nname one;\n");
write_file("$dir/two.policy", 'include ' . policy_dir()
    . "/default.policy;\nname two;\n");

my ($port, $up) = free_ports(2);

# The upstream: TLS 1.2, keeps the connection, and asks for a
# renegotiation before it answers the second request on a connection.
# What it saw goes to server.log: one line per connection and request.
my $srv = IO::Socket::SSL->new(LocalAddr => '127.0.0.1', LocalPort => $up,
                               Listen => 5, ReuseAddr => 1,
                               SSL_cert_file => $leaf->{chain},
                               SSL_key_file => $leaf->{key},
                               SSL_version => 'TLSv1_2')
    or die "listen: $SSL_ERROR";

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    alarm 60;
    open my $log, '>>', "$dir/server.log" or POSIX::_exit(1);
    $log->autoflush(1);

    while (my $c = $srv->accept) {
        my $n = 0;
        print $log "connection\n";

        while (1) {
            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                sysread($c, my $buf, 4096) or last;
                $req .= $buf;
            }
            last unless $req =~ /\r\n\r\n/;

            if (++$n == 2) {
                my $ssl = $c->_get_ssl_object;
                eval {
                    Net::SSLeay::clear_options($ssl,
                        Net::SSLeay::OP_NO_RENEGOTIATION());
                };
                my $rc = Net::SSLeay::renegotiate($ssl)
                         && Net::SSLeay::do_handshake($ssl) == 1;
                print $log 'renegotiation ', ($rc ? 'ok' : 'failed'), "\n";
            }

            print $log "request $n\n";
            print $c "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                . "Connection: keep-alive\r\n\r\nok\n";
        }

        close $c;
    }

    POSIX::_exit(0);
}

close $srv;

my $ng = Certguard::Nginx->new("$dir/nginx");

$ng->start(<<"HTTP", ports => [$port]);
    upstream reneg.test {
        server 127.0.0.1:$up;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:$port;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        certguard_trusted_certificate $root->{cert};
        add_header X-Certguard-Verdict \$certguard_verdict always;

        location /one {
            certguard on;
            certguard_policy $dir/one.policy;
            proxy_pass https://reneg.test;
        }

        location /two {
            certguard on;
            certguard_policy $dir/two.policy;
            proxy_pass https://reneg.test;
        }
    }
HTTP

my $r = $ng->get($port, '/one');
is($r->{status}, 200, 'first request: 200');
is($r->{headers}{'x-certguard-verdict'}, 'allow', 'first request: allowed');

$r = $ng->get($port, '/two');
is($r->{status}, 200, 'second request, renegotiated: 200');
is($r->{body}, "ok\n", 'second request: the upstream\'s answer');

my $log = -e "$dir/server.log" ? read_file("$dir/server.log") : '';
like($log, qr/renegotiation ok/, 'the renegotiation succeeded');
is(() = $log =~ /^connection$/mg, 1,
   'both requests on one upstream connection (no retry)');
unlike($ng->error_log, qr/SSL_read\(\) failed/,
       'no SSL_read() error in the error log');

$ng->stop;
kill 'TERM', $pid;
waitpid($pid, 0);

done_testing();
