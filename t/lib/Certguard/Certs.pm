package Certguard::Certs;

# Certificates for certguard's tests, generated with the openssl command line
# into a directory of the test's own.  Nothing is checked in, so nothing
# expires: every validity period is relative to the time of the test.
#
#   my $pki  = Certguard::Certs->new($dir);
#   my $root = $pki->ca('root', subject => '/CN=certguard test root');
#   my $int  = $pki->ca('int', issuer => $root, subject => '/CN=test int');
#   my $leaf = $pki->leaf('good', issuer => $int, subject => '/CN=good.test',
#       san => 'DNS:good.test,IP:127.0.0.1', key => 'rsa:2048',
#       md => 'sha256', not_before => -86400, not_after => 90 * 86400,
#       ext => ['1.3.6.1.4.1.11129.2.4.2=DER:0400']);
#
# Each call returns a hashref: name, cert (PEM), key, chain (the certificate
# and its intermediates, leaf first: what a server sends), sha256 and sha1
# (lower-case hex of the DER), spki_sha256 (of its SubjectPublicKeyInfo),
# not_before and not_after (unix seconds), serial (upper-case hex) and
# subject.  $root->{cert} is a trust anchor file.
#
# Options of ca() and leaf():
#   issuer      the issuing CA's hashref; omitted: self-signed
#   subject     an openssl -subj string ("/CN=x/O=y", see subj() for
#               escaping), or an arrayref of [type, value] pairs written
#               as they are, even empty values ([[C => ''], [CN => '']])
#   san         "DNS:a,IP:127.0.0.1"; leaf default "DNS:<name>.test";
#               undef or '' for a certificate without subjectAltName
#   key         "rsa:BITS", "ec:CURVE" (e.g. prime256v1, secp384r1,
#               secp224r1), "ec-explicit:CURVE" (the curve's parameters
#               written out, not named), "dsa:BITS", "ed25519"; leaves
#               default to rsa:2048, CAs to ec:prime256v1
#   fresh_key   1: a key of its own instead of the one leaves share
#   key_of      another certificate's hashref: its key, not a new one (a
#               cross-signed copy of a CA, a renewed certificate)
#   md          signature digest of the issuer: sha256 (default), sha1, ...
#   not_before, not_after   seconds relative to the $pki's time (new($dir,
#               now => EPOCH) sets it); defaults: leaves -60d/+120d,
#               CAs -5y/+10y
#   serial      upper-case hex, default random
#   ext         extra extension lines for the openssl config
#               ("1.3.6.1.4.1.11129.2.4.2=DER:0400": an empty SCT list)
#   pathlen     ca() only: basicConstraints pathlen
#   omit        extensions of the default set to leave out, by openssl
#               config name (['subjectKeyIdentifier', 'keyUsage']); ext
#               can then add them back as wanted
#
# Also in the hashref: der (a DER copy of the certificate), intermediates
# (paths, in the order sent), self_signed, is_ca, key_type.  Names are file
# names and unique within a $pki; one $pki per directory (new() starts a
# fresh CA database there).  $pki->good_leaf('good', issuer => $root) is
# a leaf the default policy passes when $root is trusted.  $pki->bundle($name, @certs) writes a PEM file
# of several certificates (e.g. a CA file with two anchors), and
# Certguard::Certs::subj(CN => 'a/b', O => 'x') escapes values for -subj.
#
# Keys are the slow part: leaves of one $pki share one key per type (they
# never sign anything), and CA keys default to EC, which is fast.

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha1_hex sha256_hex);
use File::Path qw(make_path);
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX qw(strftime);


sub new {
    my ($class, $dir, %opt) = @_;
    my $self;

    croak 'Certguard::Certs->new: a directory is required' unless $dir;
    make_path("$dir/newcerts");

    $self = bless {
        dir   => $dir,
        now   => $opt{now} // time(),
        keys  => {},
        csrs  => {},
        names => {},
        seq   => 0,
    }, $class;

    _write("$dir/index.txt", '');
    _write("$dir/index.txt.attr", "unique_subject = no\n");
    _write("$dir/ca.cnf", <<"CNF");
# written by t/lib/Certguard/Certs.pm: a CA database for test certificates
[ca]
default_ca = certguard_test

[certguard_test]
dir             = $dir
database        = \$dir/index.txt
serial          = \$dir/serial
new_certs_dir   = \$dir/newcerts
default_md      = sha256
policy          = policy_anything
unique_subject  = no
email_in_dn     = yes
copy_extensions = none

[policy_anything]
commonName = optional

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = certguard test key
CNF

    return $self;
}


sub dir { $_[0]->{dir} }
sub now { $_[0]->{now} }


sub ca {
    my ($self, $name, %o) = @_;

    return $self->_issue($name, 1, %o);
}


sub leaf {
    my ($self, $name, %o) = @_;

    return $self->_issue($name, 0, %o);
}


# A leaf with nothing against it under the default policy once its issuer
# is trusted: CN and SAN <name>.test, an (empty) SCT list, issued ten days
# ago, valid for 80 more.  The options are leaf()'s and win; give issuer.
sub good_leaf {
    my ($self, $name, %o) = @_;

    return $self->leaf($name, subject => "/CN=$name.test",
                       san => "DNS:$name.test",
                       ext => ['1.3.6.1.4.1.11129.2.4.2=DER:0400'],
                       not_before => -10 * 86400, not_after => 80 * 86400,
                       %o);
}


# A PEM file of several certificates (hashrefs or paths), in that order:
# a CA bundle of several anchors, or a chain sent in an unusual order.
sub bundle {
    my ($self, $name, @items) = @_;
    my ($path, $pem);

    $path = "$self->{dir}/$name.pem";
    $pem = join '', map { _read(ref $_ ? $_->{cert} : $_) } @items;
    _write($path, $pem);

    return $path;
}


# A PEM file of a certificate (hashref or path) with the last byte of its
# DER, the signature's, changed: the same to-be-signed bytes, a signature
# that does not verify.
sub flipped {
    my ($self, $name, $item) = @_;
    my ($path, $der);

    $path = "$self->{dir}/$name.pem";
    $der = _der(_read(ref $item ? $item->{cert} : $item));
    substr($der, -1, 1) = chr(ord(substr($der, -1, 1)) ^ 0x01);
    _write($path, "-----BEGIN CERTIFICATE-----\n" . encode_base64($der)
                  . "-----END CERTIFICATE-----\n");

    return $path;
}


# Escapes values for an openssl -subj string, in the order given:
# subj(CN => 'a/b', O => 'x') is "/CN=a\/b/O=x".
sub subj {
    my (@pairs) = @_;
    my $s = '';

    while (@pairs) {
        my ($type, $value) = splice @pairs, 0, 2;
        $value =~ s{([\\/+=])}{\\$1}g;
        $s .= "/$type=$value";
    }

    return $s eq '' ? '/' : $s;
}


sub _issue {
    my ($self, $name, $is_ca, %o) = @_;
    my ($dir, $keytype, $key, $csr, $subject, $md, $nb, $na, $serial);
    my ($ext, @cmd, $cert, $chain, $der, $r);

    croak "Certguard::Certs: bad name '$name'" unless $name =~ /^[\w.-]+$/;
    croak "Certguard::Certs: '$name' issued twice" if $self->{names}{$name}++;

    $dir = $self->{dir};
    $keytype = $o{key} // ($is_ca ? 'ec:prime256v1' : 'rsa:2048');
    $keytype = $o{key_of}{key_type} if $o{key_of};
    $key = $o{key_of} ? $o{key_of}{key}
         : $self->_key($keytype, $is_ca || $o{fresh_key} ? $name : undef);
    $subject = $o{subject} // "/CN=$name" . ($is_ca ? '' : '.test');
    # Ed25519/Ed448 signers take no digest
    $md = $o{md} // (($o{issuer} ? $o{issuer}{key_type} : $keytype)
                     =~ /^ed/i ? 'default' : 'sha256');

    $nb = $self->{now} + ($o{not_before} // ($is_ca ? -5 * 365 * 86400
                                                     : -60 * 86400));
    $na = $self->{now} + ($o{not_after} // ($is_ca ? 10 * 365 * 86400
                                                   : 120 * 86400));

    $serial = $o{serial} // $self->_serial();
    croak "Certguard::Certs: bad serial '$serial'"
        unless $serial =~ /^[0-9A-Fa-f]+$/;
    _write("$dir/serial", (length($serial) % 2 ? '0' : '') . uc($serial) . "\n");

    if (ref $subject) {
        $csr = $self->_raw_csr($name, $key, $subject);
    } else {
        $csr = $self->_csr($key);
    }

    $ext = "[ext]\n";
    if ($is_ca) {
        $ext .= 'basicConstraints = critical,CA:TRUE'
            . (defined $o{pathlen} ? ",pathlen:$o{pathlen}" : '') . "\n"
            . "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n";
    } else {
        my $san = exists $o{san} ? $o{san} : "DNS:$name.test";
        $ext .= "basicConstraints = CA:FALSE\n"
            . "keyUsage = critical,digitalSignature"
            . ($keytype =~ /^rsa/ ? ',keyEncipherment' : '') . "\n"
            . "extendedKeyUsage = serverAuth\n";
        $ext .= "subjectAltName = $san\n" if defined $san && $san ne '';
    }
    $ext .= "subjectKeyIdentifier = hash\n";
    $ext .= "authorityKeyIdentifier = keyid:always\n" if $o{issuer};
    for my $name (@{ $o{omit} // [] }) {
        # openssl 3 adds key identifiers unless told "none"
        my $none = $name =~ /^(subject|authority)KeyIdentifier$/
            ? "$name = none\n" : '';
        $ext =~ s/^\Q$name\E = .*\n/$none/m
            or $none and $ext .= $none
            or croak "Certguard::Certs: no $name to omit";
    }
    $ext .= "$_\n" for @{ $o{ext} // [] };
    _write("$dir/$name.ext", $ext);

    $cert = "$dir/$name.crt";
    @cmd = ('openssl', 'ca', '-batch', '-config', "$dir/ca.cnf", '-notext',
            '-preserveDN', '-utf8', '-in', $csr, '-out', $cert,
            '-startdate', _gentime($nb), '-enddate', _gentime($na),
            '-extfile', "$dir/$name.ext", '-extensions', 'ext');
    push @cmd, '-md', $md unless $md eq 'default';
    push @cmd, '-subj', $subject unless ref $subject;
    if ($o{issuer}) {
        push @cmd, '-cert', $o{issuer}{cert}, '-keyfile', $o{issuer}{key};
    } else {
        push @cmd, '-selfsign', '-keyfile', $key;
    }
    _run(@cmd);

    $chain = "$dir/$name.chain.pem";
    $r = {
        name       => $name,
        cert       => $cert,
        key        => $key,
        chain      => $chain,
        is_ca      => $is_ca,
        self_signed => $o{issuer} ? 0 : 1,
        subject    => $subject,
        serial     => uc($serial =~ s/^0+(?=.)//r),
        not_before => $nb,
        not_after  => $na,
        key_type   => $keytype,
    };

    # what a server sends: itself and the intermediates above it, no root
    $r->{intermediates} = !$o{issuer} ? []
        : [ $o{issuer}{self_signed} ? ()
            : ($o{issuer}{cert}, @{ $o{issuer}{intermediates} }) ];
    _write($chain, join '', map { _read($_) } $cert, @{ $r->{intermediates} });

    $der = _der(_read($cert));
    $r->{sha256} = sha256_hex($der);
    $r->{sha1} = sha1_hex($der);
    _run('openssl', 'x509', '-in', $cert, '-noout', '-pubkey')
        =~ /-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----/s
        or croak 'Certguard::Certs: no public key';
    $r->{spki_sha256} = sha256_hex(decode_base64($1));
    $r->{der} = "$dir/$name.der";
    _write($r->{der}, $der);

    return $r;
}


sub _key {
    my ($self, $type, $own) = @_;
    my ($path, @alg);

    if (!defined $own && $self->{keys}{$type}) {
        return $self->{keys}{$type};
    }

    if ($type =~ /^rsa:(\d+)$/) {
        @alg = ('-algorithm', 'RSA', '-pkeyopt', "rsa_keygen_bits:$1");
    } elsif ($type =~ /^ec(-explicit)?:([\w-]+)$/) {
        @alg = ('-algorithm', 'EC', '-pkeyopt', "ec_paramgen_curve:$2",
                '-pkeyopt',
                'ec_param_enc:' . ($1 ? 'explicit' : 'named_curve'));
    } elsif ($type =~ /^(ed25519|ed448)$/i) {
        @alg = ('-algorithm', uc $1);
    } elsif ($type =~ /^dsa:(\d+)$/) {
        # DSA keys come from parameters generated first
        $path = "$self->{dir}/" . ($own // 'shared') . ".dsa-$1.params";
        _run('openssl', 'genpkey', '-genparam', '-algorithm', 'DSA',
             '-pkeyopt', "dsa_paramgen_bits:$1", '-out', $path);
        @alg = ('-paramfile', $path);
    } else {
        croak "Certguard::Certs: unknown key type '$type'";
    }

    ($path = "$self->{dir}/" . ($own // 'shared') . ".$type.key")
        =~ s/:/-/g;
    _run('openssl', 'genpkey', @alg, '-out', $path);
    $self->{keys}{$type} //= $path unless defined $own;

    return $path;
}


# The CSR only carries the public key (openssl ca -subj sets the name), so
# one per key is enough.
sub _csr {
    my ($self, $key) = @_;
    my $path = "$key.csr";

    return $self->{csrs}{$key} if $self->{csrs}{$key};

    _run('openssl', 'req', '-new', '-config', "$self->{dir}/ca.cnf",
         '-key', $key, '-out', $path);

    return $self->{csrs}{$key} = $path;
}


# openssl's -subj drops empty values and enforces length limits; a name as
# written by careless tools (e.g. "C=, ST=, L=, O=, OU=, CN=") needs the
# entries added as raw strings, so this CSR is made with Net::SSLeay.
sub _raw_csr {
    my ($self, $name, $key, $entries) = @_;
    my ($bio, $pkey, $req, $xn, $path);

    require Net::SSLeay;
    Net::SSLeay::initialize();

    $bio = Net::SSLeay::BIO_new_file($key, 'r')
        or croak "Certguard::Certs: cannot read $key";
    $pkey = Net::SSLeay::PEM_read_bio_PrivateKey($bio);
    Net::SSLeay::BIO_free($bio);

    $req = Net::SSLeay::X509_REQ_new();
    $xn = Net::SSLeay::X509_REQ_get_subject_name($req);
    for my $e (@$entries) {
        my ($type, $value) = @$e;
        # V_ASN1_PRINTABLESTRING for countryName, V_ASN1_UTF8STRING else;
        # a plain ASN.1 type (not MBSTRING_*) skips the size limits
        my $asn1 = $type =~ /^(C|countryName)$/ ? 19 : 12;
        Net::SSLeay::X509_NAME_add_entry_by_txt($xn, $type, $asn1, $value,
                                                -1, 0)
            or croak "Certguard::Certs: cannot add $type to a name";
    }
    Net::SSLeay::X509_REQ_set_pubkey($req, $pkey)
        and Net::SSLeay::X509_REQ_sign($req, $pkey,
                Net::SSLeay::EVP_get_digestbyname('sha256'))
        or croak 'Certguard::Certs: cannot make a CSR';

    $path = "$self->{dir}/$name.csr";
    _write($path, Net::SSLeay::PEM_get_string_X509_REQ($req));
    Net::SSLeay::X509_REQ_free($req);
    Net::SSLeay::EVP_PKEY_free($pkey);

    return $path;
}


sub _serial {
    my ($self) = @_;

    # 16 random bytes, positive and without a leading zero byte
    return sprintf('%X', 16 + int(rand(112)))
        . join('', map { sprintf '%02X', int(rand(256)) } 1 .. 15);
}


sub _gentime {
    return strftime('%Y%m%d%H%M%SZ', gmtime($_[0]));
}


sub _der {
    my ($pem) = @_;

    $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----/s
        or croak 'Certguard::Certs: no certificate in PEM';

    return decode_base64($1);
}


sub _run {
    my (@cmd) = @_;
    my ($out, $pid);

    # openssl chatters on stderr even when it succeeds: keep it for errors
    $pid = open(my $fh, '-|') // croak "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or do { print "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    $out = do { local $/; <$fh> } // '';
    close $fh;
    croak "Certguard::Certs: '@cmd' failed:\n$out" if $?;

    return $out;
}


sub _read {
    my ($path) = @_;

    open my $fh, '<:raw', $path or croak "Certguard::Certs: $path: $!";
    local $/;
    return scalar <$fh>;
}


sub _write {
    my ($path, $data) = @_;

    open my $fh, '>:raw', $path or croak "Certguard::Certs: $path: $!";
    print $fh $data;
    close $fh or croak "Certguard::Certs: $path: $!";
}

1;
