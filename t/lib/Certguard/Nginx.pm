package Certguard::Nginx;

# Real nginx processes for the modules' tests, on 127.0.0.1 only: a
# generated nginx.conf in a directory of the test's own, error_log to a file
# there, started in the foreground as a child, stopped and reloaded by pid.
# One instance usually holds both the proxy and its TLS upstream servers
# (each upstream server with an access log of its own).
#
#   my $ng = Certguard::Nginx->new("$dir/nginx");
#   my ($port, $up) = free_ports(2);
#   $ng->start(<<"HTTP", ports => [$port, $up]);     # the http{} contents
#       server { listen 127.0.0.1:$port; ... }
#   HTTP
#   my $r = $ng->get($port, '/path', Host => 'x');   # {status, headers, body}
#   $ng->reload($new_http);  $ng->stop;
#   my ($ok, $text) = $ng->test_config($http);       # nginx -t
#   $ng->tls_server(name => 'good', port => $up, cert => $leaf) is a server{}
#   for an upstream; $ng->access_log('good') what that server received;
#   $ng->tls_upstreams(\%cert, \%port) such servers and their upstream{}s.
#   $ng->wait_lines('proxy', 2) waits for two lines in logs/proxy.log;
#   $ng->dns_server($port, 'a.test' => ['127.0.0.1']) answers nginx's
#   resolver until the instance stops.
#
# Options of start(), test_config() and reload(): workers (default 1),
# module (0: do not load_module the certguard module), main (more main
# context lines), error_level (default info).

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More qw();
use Time::HiRes qw(sleep time);

use Certguard::Test qw(module_path write_file read_file run);

our $NGINX = $ENV{CERTGUARD_NGINX} // '/usr/sbin/nginx';


# The module is part of the build: a missing one is a failure, not a skip.
sub need_module {
    my $so = module_path();

    Test::More::BAIL_OUT("no $so: run 'make' (or set CERTGUARD_BUILD)")
        unless -e $so;
    Test::More::BAIL_OUT("no $NGINX") unless -x $NGINX;

    return $so;
}


sub new {
    my ($class, $dir) = @_;

    croak 'Certguard::Nginx->new: a directory is required' unless $dir;
    make_path("$dir/tmp", "$dir/logs");

    return bless { dir => $dir, owner => $$ }, $class;
}


sub dir { $_[0]->{dir} }
sub error_log_path { "$_[0]->{dir}/logs/error.log" }


# The whole nginx.conf around the http{} contents given.
sub config {
    my ($self, $http, %o) = @_;
    my ($d, $module, $user);

    $d = $self->{dir};
    $module = ($o{module} // 1)
        ? 'load_module ' . ($o{module_path} // module_path()) . ";\n" : '';
    $user = $> == 0 ? "user root;\n" : '';

    return <<"CONF";
# written by t/lib/Certguard/Nginx.pm
$module${user}worker_processes $o{workers};
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log $o{error_level};
@{[ $o{main} // '' ]}
events {
    worker_connections 256;
}

http {
    access_log $d/logs/access.log;
    log_format certguard_upstream '\$ssl_protocol \$ssl_session_reused '
                                  '\$request \$connection '
                                  '\$connection_requests';
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;

$http
}
CONF
}


sub _opts {
    my (%o) = @_;

    $o{workers} //= 1;
    $o{error_level} //= 'info';

    return %o;
}


# nginx -t on this configuration: (1 if it is valid, nginx's output).
sub test_config {
    my ($self, $http, %o) = @_;
    my ($conf, $r);

    %o = _opts(%o);
    $conf = "$self->{dir}/nginx-t.conf";
    write_file($conf, $self->config($http, %o));
    $r = run({ timeout => 30 }, $NGINX, '-t', '-p', "$self->{dir}/",
             '-c', $conf, '-e', "$self->{dir}/logs/error-t.log");

    return ($r->{exit} == 0 ? 1 : 0, $r->{err} . $r->{out});
}


# Starts nginx and waits until every port of ports => [...] accepts.
sub start {
    my ($self, $http, %o) = @_;
    my ($pid, $deadline);

    croak 'Certguard::Nginx: already running' if $self->{pid};

    %o = _opts(%o);
    $self->{opts} = { %o };
    write_file("$self->{dir}/nginx.conf", $self->config($http, %o));
    write_file($self->error_log_path, '');

    $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/logs/stderr.log";
        open STDERR, '>&', \*STDOUT;
        exec $NGINX, '-p', "$self->{dir}/", '-c', "$self->{dir}/nginx.conf",
            '-e', "$self->{dir}/logs/error.log"
            or POSIX::_exit(127);
    }
    $self->{pid} = $pid;

    $deadline = time() + 10;
    for my $port (@{ $o{ports} // [] }) {
        while (!_accepts($port)) {
            if (waitpid($pid, WNOHANG) == $pid) {
                delete $self->{pid};
                croak "nginx exited:\n" . $self->error_log
                    . read_file("$self->{dir}/logs/stderr.log");
            }
            croak "nginx: port $port not ready\n" . $self->error_log
                if time() > $deadline;
            sleep 0.02;
        }
    }

    # the workers are up when they logged their start
    $self->_wait_workers($o{workers}, 0);

    return $self;
}


sub _accepts {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 1);

    return 0 unless $s;
    close $s;

    return 1;
}


sub _wait_workers {
    my ($self, $n, $after) = @_;
    my $deadline = time() + 10;

    while (time() < $deadline) {
        my $log = $self->error_log;
        my $seen = () = substr($log, $after) =~ /start worker process/g;
        return 1 if $seen >= $n;
        sleep 0.02;
    }

    croak "nginx: workers did not start\n" . $self->error_log;
}


# Rewrites the configuration and sends SIGHUP; returns when the new workers
# started and the old ones exited (their pids are gone).
sub reload {
    my ($self, $http, %o) = @_;
    my ($before, @old, $deadline);

    croak 'Certguard::Nginx: not running' unless $self->{pid};

    %o = (%{ $self->{opts} }, %o);
    %o = _opts(%o);
    $self->{opts} = { %o };
    write_file("$self->{dir}/nginx.conf", $self->config($http, %o));

    @old = $self->worker_pids;
    $before = length $self->error_log;
    kill 'HUP', $self->{pid};

    $deadline = time() + 10;
    while (time() < $deadline) {
        my $log = substr($self->error_log, $before);
        croak "nginx: reload failed:\n$log" if $log =~ /\[emerg\]/;
        last if $log =~ /start worker process/;
        sleep 0.02;
    }
    $self->_wait_workers($o{workers}, $before);

    while (time() < $deadline) {
        last unless grep { kill 0, $_ } @old;
        sleep 0.02;
    }

    return $self;
}


# Pids of the worker processes (children of the master).
sub worker_pids {
    my ($self) = @_;
    my @pids;

    return () unless $self->{pid};
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
        push @pids, $pid if $ppid == $self->{pid};
    }

    return wantarray ? sort { $a <=> $b } @pids : scalar @pids;
}


sub stop {
    my ($self) = @_;
    my $deadline;

    return unless $self->{owner} == $$;

    for my $child (@{ delete $self->{children} // [] }) {
        kill 'TERM', $child;
        waitpid($child, 0);
    }

    return unless $self->{pid};

    kill 'QUIT', $self->{pid};
    $deadline = time() + 10;
    while (waitpid($self->{pid}, WNOHANG) == 0) {
        if (time() > $deadline) {
            kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
            last;
        }
        sleep 0.02;
    }
    delete $self->{pid};
}


sub DESTROY {
    my ($self) = @_;
    local $?;

    $self->stop;
}


sub error_log {
    my ($self) = @_;

    return -e $self->error_log_path ? read_file($self->error_log_path) : '';
}


# Lines of logs/NAME.log (an upstream's access log, a CEF file, ...).
sub log_lines {
    my ($self, $name) = @_;
    my $path = "$self->{dir}/logs/$name.log";

    return () unless -e $path;
    return split /\n/, read_file($path);
}


sub log_path { "$_[0]->{dir}/logs/$_[1].log" }


# The lines of logs/NAME.log once there are at least $n (5 s at most): for
# logs written after the response, e.g. by stream sessions.
sub wait_lines {
    my ($self, $name, $n) = @_;
    my $deadline = time() + 5;
    my @lines;

    while (1) {
        @lines = $self->log_lines($name);
        return @lines if @lines >= $n || time() > $deadline;
        sleep 0.05;
    }
}


# What an upstream server of tls_server() received: its access log lines.
sub access_log { $_[0]->log_lines("up-$_[1]") }


# A TLS server{} to proxy to: name, port, cert (a Certs.pm hashref), and
# optionally protocols (default "TLSv1.2 TLSv1.3"), extra (more lines).
# It answers every request with "upstream NAME" and logs to logs/up-NAME.log.
sub tls_server {
    my ($self, %o) = @_;
    my $protocols = $o{protocols} // 'TLSv1.2 TLSv1.3';

    return <<"SERVER";
    server {
        listen 127.0.0.1:$o{port} ssl;
        server_name $o{name};
        ssl_certificate $o{cert}{chain};
        ssl_certificate_key $o{cert}{key};
        ssl_protocols $protocols;
        access_log $self->{dir}/logs/up-$o{name}.log certguard_upstream;
        keepalive_requests 1000;
        @{[ $o{extra} // '' ]}
        location / {
            return 200 "upstream $o{name}\\n";
        }
    }
SERVER
}


# For every name => cert of %$certs, with its port in %$ports: the text of
# an "upstream NAME.test" to that port and of its tls_server(); returns
# (the upstreams, the servers).
sub tls_upstreams {
    my ($self, $certs, $ports) = @_;
    my @names = sort keys %$certs;

    return (join('', map {
                "    upstream $_.test { server 127.0.0.1:$ports->{$_}; }\n"
            } @names),
            join('', map {
                $self->tls_server(name => $_, port => $ports->{$_},
                                  cert => $certs->{$_})
            } @names));
}


# A plain HTTP/1.1 request on a new connection (Connection: close unless
# told otherwise): returns { status, headers => {lc name => value}, body,
# raw }.  Headers given as name => value; request => 'GET /x' overrides the
# request line's method and target.
sub get {
    my ($self, $port, $path, %h) = @_;
    my ($s, $req, $raw, $r, $target);

    $target = delete $h{request} // "GET $path";
    $h{Host} //= 'localhost';
    $h{Connection} //= 'close';

    $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10)
        or croak "connect 127.0.0.1:$port: $!";
    $req = "$target HTTP/1.1\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n";
    print $s $req;

    $raw = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 15;
    eval {
        while (1) {
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $raw .= $buf;
        }
    };
    alarm 0;
    close $s;

    return parse_response($raw);
}


# A DNS server for nginx's resolver on 127.0.0.1:$port (UDP), answering A
# queries for the names given (name => [IPv4 addresses]; "*.test" stands
# for every name under test. that is not given itself) and NXDOMAIN for
# others; stopped with the instance.
sub dns_server {
    my ($self, $port, %names) = @_;
    my ($sock, $pid);

    $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Proto => 'udp')
        or croak "dns_server: $!";

    $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        while (1) {
            my $peer = $sock->recv(my $q, 512);
            next unless defined $peer && length $q > 12;

            my ($id) = unpack 'n', $q;
            my ($pos, @labels) = (12);
            while ($pos < length $q) {
                my $len = ord substr($q, $pos, 1);
                last if $len == 0;
                push @labels, substr($q, $pos + 1, $len);
                $pos += $len + 1;
            }
            $pos++;
            my ($qtype) = unpack 'n', substr($q, $pos, 2);
            @labels = map { lc } @labels;
            my ($name) = grep { exists $names{$_} } join('.', @labels),
                map { join '.', '*', @labels[$_ .. $#labels] } 1 .. $#labels;
            my @addrs = $qtype == 1 && $name ? @{ $names{$name} } : ();
            my $rcode = $name ? 0 : 3;

            my $answer = join '', map {
                pack('n n n N n C4', 0xc00c, 1, 1, 60, 4, split /\./)
            } @addrs;
            $sock->send(pack('n n n n n n', $id, 0x8180 | $rcode, 1,
                             scalar @addrs, 0, 0)
                        . substr($q, 12, $pos + 4 - 12) . $answer, 0, $peer);
        }
    }

    close $sock;
    push @{ $self->{children} }, $pid;

    return $pid;
}


sub parse_response {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my $r = { raw => $raw, body => $body // '', headers => {} };

    ($r->{status}) = ($head // '') =~ m{^HTTP/\d\.\d (\d{3})};
    $r->{status} //= 0;
    for my $line (split /\r\n/, $head // '') {
        my ($k, $v) = $line =~ /^([^:\s]+):\s*(.*)$/ or next;
        $r->{headers}{lc $k} = $v;
    }

    return $r;
}

1;
