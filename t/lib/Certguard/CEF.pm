package Certguard::CEF;

# A strict CEF parser, written from the specification (ArcSight "Implementing
# ArcSight CEF", revision 25), not from certguard's formatter: the second
# parser the CEF tests read records with, beside liblognorm's.
#
#   my $r = Certguard::CEF::parse($line);    # dies: "cef: <why>"
#   $r->{version}, vendor, product, device_version, class, name, severity
#   $r->{ext}{key}        the unescaped value
#   $r->{keys}            the keys in the order of the record
#
#   my $f = Certguard::CEF::both($line);     # both parsers, field by field
#
# What the specification says and this parser enforces:
# - "CEF:Version|Device Vendor|Device Product|Device Version|Device Event
#   Class ID|Name|Severity|Extension"; Version 0 or 1; Severity 0-10 or
#   Unknown, Low, Medium, High, Very-High.
# - In the header a pipe is written \| and a backslash \\; no other escape,
#   and no line breaks.
# - The extension is key=value pairs separated by spaces.  Keys are
#   alphanumeric.  In a value an equal sign is written \=, a backslash \\,
#   a newline \n and a carriage return \r; no other escape; pipes and spaces
#   are plain.  A value runs to the space before the next key=, so an
#   unescaped "=" anywhere but right after a key is an error.
# - The record is UTF-8.
# - Keys of the extension dictionary have a type and a length limit; a key
#   outside it is a vendor's custom key and only needs to be alphanumeric.
#
# Where it is more lenient than the letter: spaces between the seventh pipe
# and the first key are skipped (certguard writes one, liblognorm needs
# it); src and dst may hold IPv6 addresses (the dictionary says IPv4 and
# has c6a2/c6a3 for IPv6; Sentinel, Splunk and liblognorm take them).

use strict;
use warnings;

use Encode qw();
use Exporter qw(import);

our @EXPORT_OK = qw(parse both);

# The dictionary entries for the keys the tests meet: [type, max length].
my %DICT = (
    act                      => ['String', 63],
    app                      => ['String', 31],
    cnt                      => ['Integer'],
    deviceDirection          => ['Direction'],
    destinationServiceName   => ['String', 1023],
    dhost                    => ['String', 1023],
    dpt                      => ['Port'],
    dst                      => ['IP'],
    dvchost                  => ['String', 100],
    msg                      => ['String', 1023],
    outcome                  => ['String', 63],
    reason                   => ['String', 1023],
    request                  => ['String', 1023],
    requestClientApplication => ['String', 1023],
    requestMethod            => ['String', 1023],
    rt                       => ['TimeStamp'],
    spt                      => ['Port'],
    src                      => ['IP'],
    suser                    => ['String', 1023],
    flexString1              => ['String', 1023],
    flexString1Label         => ['String', 128],
    flexString2              => ['String', 1023],
    flexString2Label         => ['String', 128],
    deviceCustomDate1        => ['TimeStamp'],
    deviceCustomDate1Label   => ['String', 1023],
    deviceCustomDate2        => ['TimeStamp'],
    deviceCustomDate2Label   => ['String', 1023],
    (map { ("cs$_" => ['String', 4000], "cs${_}Label" => ['String', 1023]) }
         1 .. 6),
    (map { ("cn$_" => ['Long'], "cn${_}Label" => ['String', 1023]) } 1 .. 3),
);

my @MONTHS = qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec);


sub _fail { die "cef: $_[0]\n" }


# The header: seven fields, each up to an unescaped pipe.
sub _header {
    my ($s) = @_;
    my (@f, $cur, $i, $c);

    $cur = '';
    for ($i = 0; $i < length $s && @f < 7; $i++) {
        $c = substr($s, $i, 1);

        if ($c eq '\\') {
            my $n = substr($s, ++$i, 1);
            _fail("header: escape \\$n is not \\| or \\\\")
                unless $n eq '|' || $n eq '\\';
            $cur .= $n;

        } elsif ($c eq '|') {
            push @f, $cur;
            $cur = '';

        } elsif ($c eq "\n" || $c eq "\r") {
            _fail('header: a line break');

        } else {
            $cur .= $c;
        }
    }

    _fail('header: fewer than seven pipes') if @f < 7;

    return (\@f, substr($s, $i));
}


# The extension, left to right: a key, "=", a value up to the space that
# comes before the next key=.
sub _extension {
    my ($s) = @_;
    my (%ext, @keys, $key, $val, $c, $n);

    pos($s) = 0;
    $s =~ /\G +/gc;

    while (pos($s) < length $s) {
        $s =~ /\G([A-Za-z0-9]+)=/gc
            or _fail('extension: no key= at "'
                     . substr($s, pos($s), 20) . '"');
        $key = $1;
        _fail("extension: key $key twice") if exists $ext{$key};

        $val = '';
        while (pos($s) < length $s) {
            if ($s =~ /\G\\(.)/gcs) {
                $c = $1;
                $val .= $c eq '=' ? '=' : $c eq '\\' ? '\\'
                      : $c eq 'n' ? "\n" : $c eq 'r' ? "\r"
                      : _fail("extension: $key: escape \\$c");

            } elsif ($s =~ /\G (?=[A-Za-z0-9]+=)/gc) {
                last;

            } elsif ($s =~ /\G([^\\= \r\n]+| )/gc) {
                $val .= $1;

            } elsif ($s =~ /\G=/gc) {
                _fail("extension: $key: an unescaped = in the value");

            } elsif ($s =~ /\G\\\z/gc) {
                _fail("extension: $key: a lone backslash at the end");

            } else {
                _fail("extension: $key: a raw line break");
            }
        }

        $ext{$key} = $val;
        push @keys, $key;
    }

    return (\%ext, \@keys);
}


sub _timestamp {
    my ($v) = @_;
    my $m = join '|', @MONTHS;

    return $v =~ /^\d+$/
        || $v =~ /^(?:$m) \d\d(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d{3})?(?: \S+)?$/;
}


sub _typed {
    my ($key, $v) = @_;
    my $d = $DICT{$key} or return;
    my ($type, $max) = @$d;

    if ($type eq 'String') {
        _fail("$key: " . length($v) . " characters, at most $max")
            if length $v > $max;
    } elsif ($type eq 'Integer' || $type eq 'Long') {
        _fail("$key: \"$v\" is not an integer") unless $v =~ /^-?\d+$/;
    } elsif ($type eq 'Port') {
        _fail("$key: \"$v\" is not a port")
            unless $v =~ /^\d+$/ && $v <= 65535;
    } elsif ($type eq 'Direction') {
        _fail("$key: \"$v\" is not 0 or 1") unless $v =~ /^[01]$/;
    } elsif ($type eq 'TimeStamp') {
        _fail("$key: \"$v\" is not a timestamp") unless _timestamp($v);
    } elsif ($type eq 'IP') {
        _fail("$key: \"$v\" is not an IP address")
            unless $v =~ /^\d{1,3}(?:\.\d{1,3}){3}$/
                   || ($v =~ /^[0-9A-Fa-f:.]+$/ && $v =~ /:/);
    }
}


sub parse {
    my ($line) = @_;
    my ($s, $f, $rest, $ext, $keys);

    _fail('no record') unless defined $line;

    $s = eval { Encode::decode('UTF-8', "$line", Encode::FB_CROAK) };
    _fail('not UTF-8') unless defined $s;
    $s =~ s/\n\z//;
    _fail('a line break in the record') if $s =~ /[\r\n]/;
    _fail('does not start with CEF:') unless $s =~ s/^CEF://;

    ($f, $rest) = _header($s);
    _fail("version \"$f->[0]\"") unless $f->[0] =~ /^[01]$/;
    _fail("severity \"$f->[6]\"")
        unless $f->[6] =~ /^(?:[0-9]|10|Unknown|Low|Medium|High|Very-High)$/;
    _fail('empty vendor, product or version')
        if grep { $_ eq '' } @$f[1 .. 3];

    ($ext, $keys) = _extension($rest);
    _typed($_, $ext->{$_}) for @$keys;

    return { version => $f->[0], vendor => $f->[1], product => $f->[2],
             device_version => $f->[3], class => $f->[4], name => $f->[5],
             severity => $f->[6], ext => $ext, keys => $keys };
}


# The record through this parser and liblognorm's (Certguard::Syslog): the
# fields when both read the same header and the same key = value pairs;
# dies naming the first difference otherwise.
sub both {
    my ($line) = @_;
    my ($r, $l, $x, @k);

    require Certguard::Syslog;

    $r = parse($line);
    $l = eval { Certguard::Syslog::lognormalize($line) };
    _fail("lognormalizer: $@") unless $l;
    _fail('lognormalizer did not parse it') unless ref $l->{cef} eq 'HASH';

    my %h = (DeviceVendor => 'vendor', DeviceProduct => 'product',
             DeviceVersion => 'device_version', SignatureID => 'class',
             Name => 'name', Severity => 'severity');
    for (sort keys %h) {
        my ($a, $b) = ($l->{cef}{$_} // '(none)', $r->{$h{$_}});
        _fail("header $_: lognormalizer \"$a\", strict \"$b\"") if $a ne $b;
    }

    $x = $l->{cef}{Extensions} // {};
    @k = sort keys %$x;
    _fail("keys: lognormalizer @k, strict @{[ sort @{ $r->{keys} } ]}")
        if "@k" ne join ' ', sort @{ $r->{keys} };

    for (@k) {
        _fail("$_: lognormalizer \"$x->{$_}\", strict \"$r->{ext}{$_}\"")
            if $x->{$_} ne $r->{ext}{$_};
    }

    return $r;
}

1;
