package Certguard::Stream;

# Clients for the stream module's tests (CONNECT front end and SNI
# passthrough), all on 127.0.0.1.  The nginx process itself is a
# Certguard::Nginx with the stream{} block given as main => ...:
#
#   my ($MODULE, $STREAM) = need_stream(curl => 1);   # or skip_all
#   main => "load_module $STREAM;\nload_module $MODULE;\nstream { ...
#       @{[ dst_server(name => 'good', port => $good, cert => $c,
#                      backend => $backend, logs => $ng->dir . '/logs') ]}
#   }"
#
#   my $r = proxy_curl($ca, $proxy, "https://good.test:$good/", @curl_args);
#       # { code, connect, body, exit, err }
#   my $resp = raw($proxy, "CONNECT x:1 HTTP/1.1\r\n\r\n");  # all it sent
#   my $s = connect_tunnel($proxy, "good.test:$good");       # or undef
#   my ($sent, $ok, $tls) = connect_flood($proxy, "127.0.0.1:$p", 20,
#                                         client_hello('x.test'), sub {});
#   my $hello = client_hello('good.test', alpn => ['h2', 'http/1.1']);
#   my $t = connect_hello($proxy, "good.test:$good", $hello);
#       # { connect (200, 403, ...), head, reply (what came back after
#       #   the hello: 'alert', 'hello' for a ServerHello, 'closed',
#       #   'timeout' or 'other'), bytes }
#   my $relay = start_relay($to, 0.5);   # {pid, port}; stop_relay($relay)

use strict;
use warnings;

use Exporter qw(import);
use Carp qw(croak);
use IO::Select;
use IO::Socket::INET;
use Net::SSLeay;
use POSIX qw();
use Test::More qw();
use Time::HiRes qw(sleep);

use Certguard::Test qw(module_path run);

our @EXPORT = qw(need_stream dst_server proxy_curl raw raw_nowait
    connect_tunnel connect_flood connect_hello client_hello tls_reply
    own_address start_relay stop_relay);

our $STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so';

my @RELAYS;


# The certguard stream module and nginx's stream module, or skip_all
# without them (and without curl, with curl => 1).
sub need_stream {
    my (%o) = @_;
    my $module = module_path('ngx_stream_certguard_module');

    Test::More::plan(skip_all => "no $module") unless -e $module;
    Test::More::plan(skip_all => "no $STREAM") unless -e $STREAM;
    Test::More::plan(skip_all => 'no curl')
        if $o{curl} && !-x '/usr/bin/curl';

    return ($module, $STREAM);
}


# A TLS destination server{} in stream{} that passes the decrypted bytes
# to a plain backend: name, port, cert (a Certs.pm hashref), backend (a
# port), logs (a directory: the access log is dst-NAME.log there, in
# log_format "dst"), and optionally protocols (default "TLSv1.2 TLSv1.3"), addr
# (default 127.0.0.1) and extra (more lines).
sub dst_server {
    my (%o) = @_;
    my $addr = $o{addr} // '127.0.0.1';
    my $protocols = $o{protocols} // 'TLSv1.2 TLSv1.3';

    return <<"SERVER";
    server {
        listen $addr:$o{port} ssl;
        ssl_certificate $o{cert}{chain};
        ssl_certificate_key $o{cert}{key};
        ssl_protocols $protocols;
        @{[ $o{extra} // '' ]}
        access_log $o{logs}/dst-$o{name}.log dst;
        proxy_pass 127.0.0.1:$o{backend};
    }
SERVER
}


# curl through the proxy on $port, trusting the CA file $ca; returns
# { code, connect, body, exit, err }.
sub proxy_curl {
    my ($ca, $port, $url, @args) = @_;
    my $r = run({ timeout => 20 }, '/usr/bin/curl', '-sS', '--max-time', '10',
                '--proxy', "http://127.0.0.1:$port", '--cacert', $ca,
                '-w', '\n%{http_code} %{http_connect}', @args, $url);
    my ($body, $code, $connect) = $r->{out} =~ /^(.*)\n(\d+) (\d+)$/s;

    return { body => $body // '', code => $code // 0,
             connect => $connect // 0, exit => $r->{exit},
             err => $r->{err} };
}


# A raw request to the proxy; everything the proxy sent until it closed
# (or, for a CONNECT, until the head of a 200 answer).
sub raw {
    my ($port, $req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return '';
    my $resp = '';

    local $SIG{PIPE} = 'IGNORE';
    print $s $req;

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval {
        while (sysread($s, my $buf, 4096)) {
            $resp .= $buf;
            last if $req =~ /^CONNECT/ && $resp =~ /^HTTP\/1\.1 200 /
                    && $resp =~ /\r\n\r\n/;
        }
    };
    alarm 0;

    return $resp;
}


# Sends a request and reads for a short while only.
sub raw_nowait {
    my ($port, $req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return '';

    local $SIG{PIPE} = 'IGNORE';
    print $s $req;
    $s->blocking(0);
    sleep 0.002;
    sysread($s, my $buf, 4096);
    close $s;

    return $buf // '';
}


# A socket with an established CONNECT tunnel, or undef.
sub connect_tunnel {
    my ($port, $target) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return undef;
    my $resp = '';

    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";

    while ($resp !~ /\r\n\r\n/) {
        sysread($s, my $buf, 1) or return undef;
        $resp .= $buf;
    }

    return $resp =~ /^HTTP\/1\.1 200 / ? $s : undef;
}


# $n CONNECT requests for $target, all sent before any answer is read, and
# with $hello (ClientHello bytes) each tunnel's ClientHello, sent once every
# answer is read: (how many were sent, how many were answered 200, how many
# tunnels brought a ServerHello back).  $open, a sub, runs while the
# tunnels are still open.
sub connect_flood {
    my ($port, $target, $n, $hello, $open) = @_;
    my (@s, @open, $ok, $tls);

    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 5) or last;
        print $s "CONNECT $target HTTP/1.1\r\n\r\n";
        push @s, $s;
    }

    $ok = 0;
    for my $s (@s) {
        my $resp = read_head($s);
        if ($resp =~ /^HTTP\/1\.1 200 /) {
            $ok++;
            push @open, $s;
        }
    }

    $tls = 0;
    if (defined $hello) {
        local $SIG{PIPE} = 'IGNORE';
        syswrite($_, $hello) for @open;
        $tls += (tls_reply($_) eq 'hello') for @open;
    }

    $open->() if $open;
    close $_ for @s;

    return (scalar @s, $ok, $tls);
}


# The bytes of an OpenSSL ClientHello for this SNI ('' or undef: none),
# with alpn => [names] and any other Net::SSLeay setting through
# setup => sub { my ($ssl) = @_; ... }.
sub client_hello {
    my ($name, %o) = @_;
    my $ctx = Net::SSLeay::CTX_new() or croak 'CTX_new';
    my $ssl = Net::SSLeay::new($ctx) or croak 'new';
    my $rb = Net::SSLeay::BIO_new(Net::SSLeay::BIO_s_mem());
    my $wb = Net::SSLeay::BIO_new(Net::SSLeay::BIO_s_mem());

    Net::SSLeay::set_bio($ssl, $rb, $wb);
    Net::SSLeay::set_tlsext_host_name($ssl, $name) if defined $name
                                                      && length $name;
    Net::SSLeay::set_alpn_protos($ssl, $o{alpn}) if $o{alpn};
    $o{setup}->($ssl) if $o{setup};
    Net::SSLeay::connect($ssl);
    my $hello = Net::SSLeay::BIO_read($wb);
    Net::SSLeay::free($ssl);
    Net::SSLeay::CTX_free($ctx);

    return $hello;
}


# A CONNECT for $target and, once it is answered 200, the ClientHello
# $hello: { connect, head, reply, bytes } (see the top of this file).
sub connect_hello {
    my ($port, $target, $hello) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5)
        or return { connect => 0, head => '', reply => 'closed',
                    bytes => '' };

    local $SIG{PIPE} = 'IGNORE';
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";

    my $head = read_head($s);
    my ($code) = $head =~ /^HTTP\/1\.1 (\d{3}) /;
    my $r = { connect => $code // 0, head => $head, reply => 'closed',
              bytes => '' };

    return $r unless ($code // 0) == 200;

    syswrite($s, $hello);
    $r->{reply} = tls_reply($s, \$r->{bytes});
    close $s;

    return $r;
}


# What a server sent back to a ClientHello, by its first record: 'alert',
# 'hello' (a handshake record), 'closed' (nothing), 'timeout' or 'other';
# the bytes read go to $$bytes.
sub tls_reply {
    my ($s, $bytes) = @_;
    my $got = '';

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    my $ok = eval {
        while (length $got < 7) {
            my $n = sysread($s, my $buf, 7 - length $got);
            last unless $n;
            $got .= $buf;
        }
        1;
    };
    alarm 0;

    $$bytes = $got if $bytes;

    return 'timeout' unless $ok;
    return 'closed' if $got eq '';
    return 'alert' if $got =~ /^\x15\x03/;
    return 'hello' if $got =~ /^\x16\x03/;
    return 'other';
}


# An HTTP response head, read a byte at a time (no byte of what follows).
sub read_head {
    my ($s) = @_;
    my $resp = '';

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval {
        while ($resp !~ /\r\n\r\n/) {
            sysread($s, my $buf, 1) or last;
            $resp .= $buf;
        }
    };
    alarm 0;

    return $resp;
}


# An IPv4 address of this host other than loopback, or undef.
sub own_address {
    my $r = run('/usr/sbin/ip', '-4', '-o', 'addr', 'show');

    for my $line (split /\n/, $r->{out} // '') {
        my ($a) = $line =~ /inet (\d+\.\d+\.\d+\.\d+)/ or next;
        return $a unless $a =~ /^127\./;
    }

    return undef;
}


# A TCP relay on a free port to 127.0.0.1:$to that waits $delay seconds
# before it connects onward: a slow destination.  Returns { pid, port };
# stopped by stop_relay() or when the test ends.
sub start_relay {
    my ($to, $delay) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 64, ReuseAddr => 1)
        or croak "relay: $!";
    my $pid = fork // croak "fork: $!";

    if ($pid) {
        my $relay = { pid => $pid, port => $l->sockport, owner => $$ };
        close $l;
        push @RELAYS, $relay;
        return $relay;
    }

    $SIG{CHLD} = 'IGNORE';

    while (my $c = $l->accept) {
        my $child = fork;
        next unless defined $child;
        if ($child) {
            close $c;
            next;
        }

        sleep $delay;
        my $u = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$to")
            or POSIX::_exit(0);
        my $sel = IO::Select->new($c, $u);
        OUTER: while (1) {
            for my $h ($sel->can_read(10)) {
                my $n = sysread($h, my $buf, 16384);
                last OUTER unless $n;
                syswrite($h == $c ? $u : $c, $buf);
            }
        }
        POSIX::_exit(0);
    }

    POSIX::_exit(0);
}


sub stop_relay {
    my ($relay) = @_;

    return unless $relay->{pid} && $relay->{owner} == $$;

    kill 'TERM', $relay->{pid};
    waitpid($relay->{pid}, 0);
    delete $relay->{pid};
}


END {
    local $?;
    stop_relay($_) for @RELAYS;
}

1;
