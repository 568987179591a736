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
#   $ng->counters($port, 'http', 'certguard_x_total', ...) reads those
#   counters of one module from certguard_status at /metrics on $port.
#
# Options of start(), test_config() and reload(): workers (default 1),
# module (0: do not load_module the certguard module), main (more main
# context lines), error_level (default info), expect_log (a qr// or a list
# of them, added to expect_log()).
#
# The error log net, as nginx-tests has it: when an instance stops (stop(),
# or at done_testing / the end of the test for one still running), one
# assertion named for it says its logs (logs/error*.log, and
# logs/stderr*.log where sanitizers write) hold no [alert], [emerg] or
# [crit] line, no "exited on signal" and no sanitizer report; it fails
# with the offending lines.  A test that provokes such a line on purpose
# says so first: $ng->expect_log(qr/.../) excuses the lines that match.
# new() on a directory where something else runs nginx with its logs in
# logs/ (scripts/run.sh) has those logs checked at the end the same way.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Test2::API qw(test2_add_callback_testing_done);
use Test::More qw();
use Time::HiRes qw(sleep time);

use Certguard::Test qw(module_path write_file read_file run);

our $NGINX = $ENV{CERTGUARD_NGINX} // '/usr/sbin/nginx';

# What no test may leave in an error log unless it said it would.
our $BAD_LINE = qr/\[(?:alert|emerg|crit)\]|exited on signal
                  |AddressSanitizer|LeakSanitizer|runtime\ error:/x;

# Every instance of this process, weakly: the ones still there when the
# test is done are stopped and checked before the plan is written.
my @INSTANCES;

test2_add_callback_testing_done(sub {
    for my $ng (grep { defined } @INSTANCES) {
        $ng->finish;
    }
});


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

    my $self = bless { dir => $dir, owner => $$, expect => [],
                       checked => {}, problems => [] }, $class;
    push @INSTANCES, $self;
    weaken($INSTANCES[-1]);

    return $self;
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
    my ($self, %o) = @_;

    $self->expect_log(ref $o{expect_log} eq 'ARRAY' ? @{ $o{expect_log} }
                                                    : $o{expect_log})
        if defined $o{expect_log};
    delete $o{expect_log};
    $o{workers} //= 1;
    $o{error_level} //= 'info';

    return %o;
}


# nginx -t on this configuration: (1 if it is valid, nginx's output).
sub test_config {
    my ($self, $http, %o) = @_;
    my ($conf, $r);

    %o = $self->_opts(%o);
    $conf = "$self->{dir}/nginx-t.conf";
    write_file($conf, $self->config($http, %o));
    $r = run({ timeout => 30 }, $NGINX, '-t', '-p', "$self->{dir}/",
             '-c', $conf, '-e', "$self->{dir}/logs/error-t.log");
    _append("$self->{dir}/logs/stderr-t.log", $r->{err} . $r->{out});
    $self->{pending} = 1;
    $self->_problem("nginx -t exited on signal $r->{signal}")
        if $r->{signal};

    return ($r->{exit} == 0 ? 1 : 0, $r->{err} . $r->{out});
}


# Starts nginx and waits until every port of ports => [...] accepts.
sub start {
    my ($self, $http, %o) = @_;
    my ($pid, $deadline);

    croak 'Certguard::Nginx: already running' if $self->{pid};

    %o = $self->_opts(%o);
    $self->{opts} = { %o };
    write_file("$self->{dir}/nginx.conf", $self->config($http, %o));
    write_file($self->error_log_path, '');
    $self->{checked}{$self->error_log_path} = 0;

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
    $self->{pending} = 1;

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


# How many frames up the first caller outside this file and Test2 is.
sub _outside_frames {
    my $n = 1;

    while (my ($pkg, $file) = caller($n)) {
        last unless $file eq __FILE__
                    || $pkg =~ /^(?:Test2::|Test::Builder|Test::More)/;
        $n++;
    }

    return $n;
}


sub _append {
    my ($path, $data) = @_;

    open my $fh, '>>:raw', $path or croak "$path: $!";
    print $fh $data;
    close $fh or croak "$path: $!";
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
    %o = $self->_opts(%o);
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

    # a worker the master is respawning, or one a loaded machine has not
    # scheduled yet, is briefly missing: look again for up to 3 s (a crash
    # is the error-log net's to report)
    for my $try (1 .. 150) {
        for my $stat (glob '/proc/[0-9]*/stat') {
            open my $fh, '<', $stat or next;
            my $line = <$fh> // next;
            my ($pid, $ppid) = $line =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
            push @pids, $pid if $ppid == $self->{pid};
        }
        last if @pids;
        sleep 0.02;
    }

    return wantarray ? sort { $a <=> $b } @pids : scalar @pids;
}


sub stop {
    my ($self) = @_;
    my ($deadline, $w);

    return unless $self->{owner} == $$;

    for my $child (@{ delete $self->{children} // [] }) {
        kill 'TERM', $child;
        waitpid($child, 0);
    }

    return unless $self->{pid};

    kill 'QUIT', $self->{pid};
    $deadline = time() + 10;
    while (($w = waitpid($self->{pid}, WNOHANG)) == 0) {
        if (time() > $deadline) {
            $self->_problem("nginx $self->{pid} did not exit within 10 s "
                            . 'of SIGQUIT (killed)');
            kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
            last;
        }
        sleep 0.02;
    }
    $self->_problem("nginx $self->{pid} exited with "
                    . ($? & 127 ? 'signal ' . ($? & 127)
                                : 'status ' . ($? >> 8)))
        if $w == $self->{pid} && $?;
    delete $self->{pid};

    $self->check_log;
}


# Stops the instance if it runs and checks its logs: done_testing (or the
# end of a test that died) does it for every instance still there.
sub finish {
    my ($self) = @_;
    local $?;

    return unless $self->{owner} == $$;

    $self->stop;
    $self->check_log;
}


sub DESTROY {
    my ($self) = @_;

    $self->finish;
}


# Lines matching one of these patterns (qr// or plain strings) are what
# the test provokes on purpose: the error log check excuses them.
sub expect_log {
    my ($self, @patterns) = @_;

    push @{ $self->{expect} }, map { ref $_ ? $_ : qr/\Q$_\E/ } @patterns;

    return $self;
}


sub _problem {
    my ($self, $what) = @_;

    push @{ $self->{problems} }, $what;
    $self->{pending} = 1;
}


# The error log net: one assertion, named for the instance, over what its
# error and stderr logs gained since the last check (nothing when they
# gained nothing and nginx did not run since); the offending lines, with
# file and line number, in its diagnostics.
sub check_log {
    my ($self) = @_;
    my (@bad, %text, $name);

    return unless $self->{owner} == $$;

    for my $file (glob("$self->{dir}/logs/error*.log"),
                  glob("$self->{dir}/logs/stderr*.log"))
    {
        $text{$file} = read_file($file);
        # start() empties error.log
        $self->{checked}{$file} = 0
            if ($self->{checked}{$file} // 0) > length $text{$file};
        $self->{pending} = 1
            if length $text{$file} > ($self->{checked}{$file} // 0);
    }

    return unless delete $self->{pending};

    # after done_testing nothing can be reported any more
    if (Test2::API::test2_stack()->top->ended) {
        Test::More::diag("nginx $self->{dir}: logs not checked: the test "
                         . 'ended before the instance was stopped');
        return;
    }

    @bad = @{ $self->{problems} };
    $self->{problems} = [];

    for my $file (sort keys %text) {
        my $from = $self->{checked}{$file} // 0;
        my $no = () = substr($text{$file}, 0, $from) =~ /\n/g;
        (my $short = $file) =~ s{^\Q$self->{dir}\E/}{};

        $self->{checked}{$file} = length $text{$file};

        for my $line (split /\n/, substr($text{$file}, $from)) {
            $no++;
            next unless $line =~ $BAD_LINE;
            next if grep { $line =~ $_ } @{ $self->{expect} };
            push @bad, "$short:$no: $line";
        }
    }

    # the failure names the test's line that stopped the instance
    local $Test::Builder::Level = $Test::Builder::Level + _outside_frames();
    ($name = $self->{dir}) =~ s{.*/}{};
    Test::More::ok(!@bad, "$name/logs: no alert, emerg, crit, crash or "
                          . 'sanitizer report')
        or Test::More::diag(join "\n", 'offending log lines:',
                            @bad > 30 ? (@bad[0 .. 29],
                                         '... (' . @bad . ' in all)')
                                      : @bad);
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


# The values of one module's counters (names as on the page, labels none
# but module) on the certguard_status page at /metrics: an arrayref, undef
# for a counter the page lacks.
sub counters {
    my ($self, $port, $module, @names) = @_;
    my $body = $self->get($port, '/metrics')->{body} // '';

    return [map { ($body =~ /^\Q$_\E\{module="\Q$module\E"\} (\d+)$/m)[0] }
            @names];
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
