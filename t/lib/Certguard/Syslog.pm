package Certguard::Syslog;

# A real syslog receiver for CEF tests: Debian's rsyslogd in the foreground
# as a child, listening with imudp on 127.0.0.1:<free port>, parsing each
# message with mmnormalize (liblognorm's "%cef:cef%" parser) and writing one
# JSON line per message.  Its own config, pid file and work directory in the
# test's directory; no system inputs (no /dev/log, no kernel log).
#
#   my $s = Certguard::Syslog->start($dir);
#   ... send to 127.0.0.1:$s->port (nginx: syslog:server=127.0.0.1:PORT)
#   my @r = $s->wait_records(1, 10);     # decoded hashes
#   $s->stop;
#
# A record is mmnormalize's result: { cef => { DeviceVendor, DeviceProduct,
# DeviceVersion, SignatureID, Name, Severity, Extensions => { key => value } } }
# when the message parsed, { originalmsg, 'unparsed-data' } when it did not;
# each also has _msg (the message as rsyslog saw it) and _raw (the datagram).
#
# lognormalize($line) runs one line through the lognormalizer CLI with the
# same rulebase and returns the decoded result in the same shape.

use strict;
use warnings;

use Exporter qw(import);
use Carp qw(croak);
use File::Path qw(make_path);
use File::Temp qw();
use IO::Socket::INET;
use JSON::PP qw();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use Certguard::Test qw(free_port write_file read_file run);

our @EXPORT_OK = qw(lognormalize);

my $RSYSLOGD = $ENV{CERTGUARD_RSYSLOGD} // '/usr/sbin/rsyslogd';
my $RULEBASE = "version=2\nrule=:%cef:cef%\n";


sub start {
    my ($class, $dir) = @_;
    my ($self, $d, $pid, $deadline);

    croak 'Certguard::Syslog: no rsyslogd' unless -x $RSYSLOGD;

    $d = "$dir/syslog";
    make_path("$d/work");
    $self = bless { dir => $d, port => free_port('udp'),
                    out => "$d/records.jsonl" }, $class;

    write_file("$d/cef.rb", $RULEBASE);
    write_file("$d/records.jsonl", '');
    write_file("$d/rsyslog.conf", <<"CONF");
# written by t/lib/Certguard/Syslog.pm
global(workDirectory="$d/work" maxMessageSize="64k")
module(load="imudp")
module(load="mmrm1stspace")
module(load="mmnormalize")

# one JSON object a line: the message, the datagram, and what mmnormalize
# made of it
template(name="certguard_json" type="list") {
    constant(value="{\\"_msg\\":\\"")
    property(name="msg" format="json")
    constant(value="\\",\\"_raw\\":\\"")
    property(name="rawmsg" format="json")
    constant(value="\\",\\"parsed\\":")
    property(name="\$!")
    constant(value="}\\n")
}

ruleset(name="certguard") {
    # RFC 3164 messages (nginx's) keep the space after "tag:" in msg
    action(type="mmrm1stspace")
    action(type="mmnormalize" rulebase="$d/cef.rb")
    action(type="omfile" file="$d/records.jsonl" template="certguard_json")
}

input(type="imudp" address="127.0.0.1" port="$self->{port}"
      ruleset="certguard")
CONF

    $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$d/rsyslogd.log";
        open STDERR, '>&', \*STDOUT;
        exec $RSYSLOGD, '-n', '-f', "$d/rsyslog.conf", '-i', "$d/rsyslogd.pid"
            or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;

    # ready when the port is taken: binding it ourselves then fails
    $deadline = time() + 10;
    while (time() < $deadline) {
        my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                          LocalPort => $self->{port},
                                          Proto => 'udp');
        last unless $probe;
        close $probe;
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            croak "Certguard::Syslog: rsyslogd exited:\n"
                . read_file("$d/rsyslogd.log");
        }
        sleep 0.05;
    }

    return $self;
}


sub port { $_[0]->{port} }
sub dir  { $_[0]->{dir} }
sub file { $_[0]->{out} }


# Every record received so far, decoded.
sub records {
    my ($self) = @_;
    my @r;

    for my $line (split /\n/, read_file($self->{out})) {
        my $j = eval { JSON::PP->new->utf8->decode($line) };
        if (!$j) {
            push @r, { _error => "undecodable: $line" };
            next;
        }
        my $rec = ref $j->{parsed} eq 'HASH' ? $j->{parsed} : {};
        $rec->{_msg} = $j->{_msg};
        $rec->{_raw} = $j->{_raw};
        push @r, $rec;
    }

    return @r;
}


# Waits until at least $n records arrived or $timeout seconds passed, then
# returns every record (possibly fewer than $n).
sub wait_records {
    my ($self, $n, $timeout) = @_;
    my ($deadline, @r);

    $deadline = time() + ($timeout // 10);
    while (1) {
        @r = $self->records;
        last if @r >= $n || time() > $deadline;
        sleep 0.05;
    }

    return @r;
}


# Sends one message as nginx would (RFC 3164 over UDP); for self-checks.
sub send {
    my ($self, $msg, $tag) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Proto => 'udp')
        or croak "Certguard::Syslog: $!";
    my @t = gmtime();
    my $date = sprintf '%s %2d %02d:%02d:%02d',
        (qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec))[$t[4]],
        $t[3], $t[2], $t[1], $t[0];

    $s->send('<190>' . $date . ' localhost ' . ($tag // 'nginx') . ': '
             . $msg);
    close $s;
}


sub stop {
    my ($self) = @_;
    my $deadline;

    return unless $self->{pid} && $self->{owner} == $$;

    kill 'TERM', $self->{pid};
    $deadline = time() + 5;
    while (waitpid($self->{pid}, WNOHANG) == 0) {
        if (time() > $deadline) {
            kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
            last;
        }
        sleep 0.05;
    }
    delete $self->{pid};
}


sub DESTROY {
    my ($self) = @_;
    local $?;

    $self->stop;
}


# One line through lognormalizer (liblognorm's own CLI); returns the decoded
# result of the first output line.  In list context, every output line (a
# line that splits in two shows up as two results).
sub lognormalize {
    my ($line) = @_;
    my ($dir, $r, @out);

    $dir = File::Temp::tempdir('certguard-lognorm-XXXXXX', TMPDIR => 1,
                               CLEANUP => 1);
    write_file("$dir/cef.rb", $RULEBASE);
    $line .= "\n" unless $line =~ /\n\z/;
    $r = run({ stdin => $line }, 'lognormalizer', '-r', "$dir/cef.rb",
             '-e', 'json');
    File::Path::rmtree($dir);
    croak "lognormalizer failed: $r->{err}" if $r->{exit};

    @out = map { JSON::PP->new->utf8->decode($_) }
           grep { length } split /\n/, $r->{out};

    return wantarray ? @out : $out[0];
}

1;
