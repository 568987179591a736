package Certguard::Test;

# Small helpers shared by certguard's tests: where the build is, a temporary
# directory per test, running the CLI, JSON, files and loopback ports.
#
# Environment:
#   CERTGUARD_BUILD   build directory (default: <repo>/build)
#   CERTGUARD_SHARED  the shared folder (default: <repo>/../shared)
#   CERTGUARD_KEEP=1  keep temporary directories (their paths are printed)

use strict;
use warnings;

use Exporter qw(import);
use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(rmtree);
use File::Temp qw();
use Fcntl qw(O_RDONLY O_CREAT LOCK_EX LOCK_NB);
use IO::Socket::IP;
use JSON::PP qw();
use POSIX qw(WNOHANG);
use Test::More qw();

our @EXPORT_OK = qw(repo_root build_dir shared_dir policy_dir cli_path
    module_path tempdir run cli check write_file read_file decode_json
    encode_json free_port free_ports reserve_port fired signal_ids need_cli);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my $JSON = JSON::PP->new->utf8->canonical;
my @TEMP;


sub repo_root  { $ROOT }
sub build_dir  { abs_path($ENV{CERTGUARD_BUILD} // "$ROOT/build")
                     // ($ENV{CERTGUARD_BUILD} // "$ROOT/build") }
sub shared_dir { $ENV{CERTGUARD_SHARED} // "$ROOT/../shared" }
sub policy_dir { "$ROOT/policies" }
sub cli_path   { build_dir() . '/certguard' }
sub module_path { build_dir() . '/' . ($_[0] // 'ngx_http_certguard_module')
                      . '.so' }


# Every test needs the CLI; a missing one is a build failure, not a skip.
sub need_cli {
    my $cli = cli_path();

    Test::More::BAIL_OUT("no $cli: run 'make' (or set CERTGUARD_BUILD)")
        unless -x $cli;

    return $cli;
}


# A fresh directory, removed when the test ends unless CERTGUARD_KEEP=1.
sub tempdir {
    my ($tag) = @_;
    my $dir;

    ($tag //= $0) =~ s{.*/}{};
    $tag =~ s/\W+/-/g;
    $dir = File::Temp::tempdir("certguard-$tag-XXXXXX", TMPDIR => 1);
    push @TEMP, [$dir, $$];

    return $dir;
}


END {
    for my $t (@TEMP) {
        my ($dir, $pid) = @$t;
        next unless $pid == $$;
        if ($ENV{CERTGUARD_KEEP}) {
            Test::More::diag("kept $dir");
        } else {
            rmtree($dir);
        }
    }
}


# Runs a command without a shell.  Options (a hashref first): stdin (data),
# timeout (seconds, default 60), env (hashref added to the environment).
# Returns { out, err, exit, signal, cmd }; exit is -1 after a timeout.
sub run {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};
    my (@cmd) = @_;
    my ($dir, $pid, $r, $deadline);

    $dir = File::Temp::tempdir('certguard-run-XXXXXX', TMPDIR => 1,
                               CLEANUP => 1);
    write_file("$dir/in", $opt->{stdin} // '');

    $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', "$dir/in" or POSIX::_exit(126);
        open STDOUT, '>', "$dir/out" or POSIX::_exit(126);
        open STDERR, '>', "$dir/err" or POSIX::_exit(126);
        @ENV{keys %{ $opt->{env} }} = values %{ $opt->{env} }
            if $opt->{env};
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    $r = { cmd => join(' ', @cmd) };
    $deadline = time() + ($opt->{timeout} // 60);
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) {
            $r->{exit} = $? >> 8;
            $r->{signal} = $? & 127;
            last;
        }
        if (time() > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $r->{exit} = -1;
            $r->{signal} = 9;
            last;
        }
        select(undef, undef, undef, 0.01);
    }

    $r->{out} = read_file("$dir/out");
    $r->{err} = read_file("$dir/err");
    rmtree($dir);

    return $r;
}


# Runs build/certguard with these arguments.
sub cli {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};

    return run($opt, need_cli(), @_);
}


# certguard check on one chain, decoded: check($chain, policy => FILE,
# sni => NAME, dst => ADDR, at => TIME, ca_file => FILE, format => json,
# args => [...more]).  Returns the run result with {json} decoded (undef
# when stdout is not one JSON object).
sub check {
    my ($chain, %o) = @_;
    my (@args, $r);

    @args = ('check');
    push @args, '--policy', $o{policy} // policy_dir() . '/default.policy';
    push @args, '--ca-file', $o{ca_file} if defined $o{ca_file};
    push @args, '--sni', $o{sni} if defined $o{sni};
    push @args, '--dst', $o{dst} if defined $o{dst};
    push @args, '--at', $o{at} if defined $o{at};
    push @args, '--format', $o{format} if defined $o{format};
    push @args, @{ $o{args} } if $o{args};
    push @args, ref $chain ? @$chain : $chain;

    $r = cli(@args);
    if (($o{format} // 'json') eq 'json') {
        $r->{json} = eval { $JSON->decode($r->{out}) };
    }

    return $r;
}


# The hit for signal $id in a decoded result, or undef.
sub fired {
    my ($json, $id) = @_;

    return undef unless ref $json eq 'HASH' && ref $json->{signals};
    for my $s (@{ $json->{signals} }) {
        return $s if $s->{id} eq $id;
    }

    return undef;
}


# Ids of the signals in a decoded result, sorted (exempt ones too).
sub signal_ids {
    my ($json) = @_;

    return () unless ref $json eq 'HASH' && ref $json->{signals};
    return sort map { $_->{id} } @{ $json->{signals} };
}


sub decode_json { $JSON->decode($_[0]) }
sub encode_json { $JSON->encode($_[0]) }


sub write_file {
    my ($path, $data) = @_;

    open my $fh, '>:raw', $path or croak "$path: $!";
    print $fh $data;
    close $fh or croak "$path: $!";

    return $path;
}


sub read_file {
    my ($path) = @_;

    open my $fh, '<:raw', $path or croak "$path: $!";
    local $/;
    my $data = <$fh>;

    return $data // '';
}


# Loopback ports for the tests' listeners, free for TCP and UDP on
# 127.0.0.1 (and TCP on ::1).  Tests run in parallel (prove -j) and other
# checkouts run theirs on the same machine, so a port that is merely free
# now could be taken before nginx binds it: every port handed out is locked
# (flock on $PORT_LOCKS/PORT) until this test process exits, and the ports
# come from below the kernel's ephemeral range, so that no outgoing
# connection (curl's, nginx's to its upstreams) takes one meanwhile.
# CERTGUARD_PORTS=LOW-HIGH chooses the range.
my $PORT_LOCKS = '/tmp/certguard-ports';
my (%LOCKED, @RANGE, $IPV6);

sub _port_range {
    my ($lo, $hi) = (32768, 60999);

    return @RANGE if @RANGE;
    return @RANGE = ($1, $2)
        if ($ENV{CERTGUARD_PORTS} // '') =~ /^(\d+)-(\d+)$/ && $1 <= $2;

    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        ($lo, $hi) = split ' ', scalar(<$fh>) // '';
    }

    return @RANGE = (20000, $lo - 1) if $lo > 21000;
    return @RANGE = ($hi + 1, 65535) if $hi < 64535;
    return @RANGE = (1024, 65535);
}


# Locks $port for this process's lifetime: 0 when another test (this one
# included) holds it.
sub _lock_port {
    my ($port) = @_;
    my $fh;

    return 0 if $LOCKED{$port};

    if (!-d $PORT_LOCKS && mkdir $PORT_LOCKS) {
        chmod 01777, $PORT_LOCKS;
    }
    sysopen($fh, "$PORT_LOCKS/$port", O_RDONLY | O_CREAT, 0666)
        or croak "free_port: $PORT_LOCKS/$port: $!";
    if (!flock($fh, LOCK_EX | LOCK_NB)) {
        close $fh;
        return 0;
    }
    $LOCKED{$port} = $fh;

    return 1;
}


# Nothing listens on $port or holds it for UDP, on any loopback address a
# test uses.
sub _port_bindable {
    my ($port) = @_;

    $IPV6 //= IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Proto => 'tcp') ? 1 : 0;

    for my $try (['127.0.0.1', 'tcp'], ['127.0.0.1', 'udp'],
                 $IPV6 ? ['::1', 'tcp'] : ())
    {
        my ($addr, $proto) = @$try;
        my $s = IO::Socket::IP->new(LocalHost => $addr, LocalPort => $port,
                                    Proto => $proto,
                                    $proto eq 'tcp'
                                        ? (Listen => 1, ReuseAddr => 1) : ())
            or return 0;
        close $s;
    }

    return 1;
}


# Locks $port for this test if it is free: for a port a test needs at a
# given distance from another one.
sub reserve_port {
    my ($port) = @_;

    return 0 unless $port > 0 && $port < 65536 && _lock_port($port);

    return _port_bindable($port);
}


# A free loopback port, locked for this test ($proto is accepted for
# compatibility: every port is free for both TCP and UDP).
sub free_port {
    my ($proto) = @_;
    my ($lo, $hi) = _port_range();
    my $n = $hi - $lo + 1;
    my $start = ($$ * 7919 + int(rand $n)) % $n;

    for my $i (0 .. $n - 1) {
        my $port = $lo + ($start + $i) % $n;
        return $port if reserve_port($port);
    }

    croak "free_port: no free port in $lo-$hi";
}


sub free_ports {
    my ($n, $proto) = @_;

    return map { free_port($proto) } 1 .. $n;
}

1;
