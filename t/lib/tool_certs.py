#!/usr/bin/python3
"""Default TLS certificates of offensive tools, made the way each tool makes
them, for t/offensive.t.

    tool_certs.py OUTDIR [NAME...]

writes OUTDIR/NAME.pem (the chain the tool's server sends, leaf first) and
OUTDIR/NAME.key (the leaf's key) for each case (all when none is named),
and prints one line per case: NAME SNI.  Each case cites the source file
and commit its shape was read from (research notes:
notes/offensive-defaults.md); the subject and issuer fields, key type and
size, validity, serial, extensions and who signs follow that code.  Random
parts (names, keys, serials, backdating) are drawn the way the tool draws
them.  Tools that shell out to `openssl req` are made by the same openssl
command here, with the system's openssl.cnf, as they are in the field.

Needs python3-cryptography (Debian package; 38 or later).
"""

import base64
import datetime
import os
import random
import subprocess
import sys
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

warnings.filterwarnings('ignore', 'Country names should be')
warnings.filterwarnings('ignore', 'SHA1 signatures are deprecated')

NOW = datetime.datetime.utcnow().replace(microsecond=0)
DAY = datetime.timedelta(days=1)
OUT = None
KEYS = {}

PS = _ASN1Type.PrintableString
UTF8 = _ASN1Type.UTF8String
IA5 = _ASN1Type.IA5String

OID = {
    'C': NameOID.COUNTRY_NAME, 'ST': NameOID.STATE_OR_PROVINCE_NAME,
    'L': NameOID.LOCALITY_NAME, 'STREET': NameOID.STREET_ADDRESS,
    'POSTALCODE': NameOID.POSTAL_CODE, 'O': NameOID.ORGANIZATION_NAME,
    'OU': NameOID.ORGANIZATIONAL_UNIT_NAME, 'CN': NameOID.COMMON_NAME,
    'emailAddress': NameOID.EMAIL_ADDRESS,
}


# --- helpers -----------------------------------------------------------

def key(kind, slot='leaf'):
    """One key per kind and slot: a CA and its leaf never share one unless
    a case asks for it (mitmproxy)."""
    k = (kind, slot)
    if k not in KEYS:
        if kind.startswith('rsa'):
            KEYS[k] = rsa.generate_private_key(65537, int(kind[3:]))
        else:
            KEYS[k] = ec.generate_private_key(
                {'p256': ec.SECP256R1(), 'p384': ec.SECP384R1(),
                 'p521': ec.SECP521R1()}[kind])
    return KEYS[k]


def go_string(v):
    """Go's asn1 writes a PrintableString when it can, else UTF8String."""
    ok = all(c.isalnum() or c in " '()+,-./:=?" for c in v)
    return PS if ok else UTF8


def name(pairs, go=False):
    """A DN in the order given (DER order, C first as Go and OpenSSL write
    it), values as they are: empty ones and C values of any length too."""
    attrs = []
    for t, v in pairs:
        typ = IA5 if t == 'emailAddress' else (
            go_string(v) if go else (PS if t == 'C' else UTF8))
        attrs.append(x509.NameAttribute(OID[t], v, typ, _validate=False))
    return x509.Name(attrs)


def go_name(pairs):
    return name(pairs, go=True)


def ku(*names):
    flags = dict(digital_signature=False, content_commitment=False,
                 key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=False, crl_sign=False,
                 encipher_only=False, decipher_only=False)
    for n in names:
        flags[n] = True
    return x509.KeyUsage(**flags)


def eku(*oids):
    return x509.ExtendedKeyUsage(list(oids))


SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


def ski(k):
    return x509.SubjectKeyIdentifier.from_public_key(k.public_key())


def aki(k):
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(k.public_key())


def bc(ca):
    return x509.BasicConstraints(ca=ca, path_length=None)


def san(*names):
    out = []
    for n in names:
        if n.startswith('IP:'):
            import ipaddress
            out.append(x509.IPAddress(ipaddress.ip_address(n[3:])))
        else:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


def rand_serial(bits):
    return random.getrandbits(bits - 1) | (1 << (bits - 2)) | 1


def probable_prime(bits):
    """BouncyCastle's BigInteger.ProbablePrime(bits): the AsyncRAT family's
    serial."""
    while True:
        n = random.getrandbits(bits) | (1 << (bits - 1)) | 1
        if all(pow(a, n - 1, n) == 1 for a in (2, 3, 5, 7, 11, 13, 17)):
            return n


def cert(subject, issuer, pub, signer, serial, nb, na, exts=(),
         md=hashes.SHA256()):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(pub.public_key()).serial_number(serial)
         .not_valid_before(nb).not_valid_after(na))
    for ext, critical in exts:
        b = b.add_extension(ext, critical=critical)
    if md is None:
        md = go_ecdsa_md(signer)
    return b.sign(signer, md).public_bytes(serialization.Encoding.DER)


def go_ecdsa_md(signer):
    """Go picks the digest from the signer's curve."""
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return {256: hashes.SHA256(), 384: hashes.SHA384(),
                521: hashes.SHA512()}[signer.curve.key_size]
    return hashes.SHA256()


# DER surgery for what the builder refuses: a version field of 3, no
# version (v1), dates before 1950.

def _len(n):
    if n < 128:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + _len(len(body)) + body


def _parse(der):
    """The elements of a SEQUENCE, as (tag, whole TLV)."""
    assert der[0] == 0x30
    i, n = 1, der[1]
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(der[2:2 + k], 'big')
        i = 2 + k
    else:
        i = 2
    body, out = der[i:i + n], []
    j = 0
    while j < len(body):
        tag, m = body[j], body[j + 1]
        h = 2
        if m & 0x80:
            k = m & 0x7f
            m = int.from_bytes(body[j + 2:j + 2 + k], 'big')
            h = 2 + k
        out.append((tag, body[j:j + h + m]))
        j += h + m
    return out


def gentime(s):
    return tlv(0x18, s.encode())


def resign(der, signer, version=None, validity=None, md=hashes.SHA256()):
    """The certificate with its TBS changed and signed again by signer:
    version None keeps it, 0 drops the field (v1), any other value is
    written as it is; validity is (notBefore, notAfter) as TLVs."""
    outer = _parse(der)
    tbs = _parse(outer[0][1])
    parts = [t for _, t in tbs]
    if version is not None:
        if tbs[0][0] == 0xa0:
            parts = parts[1:]
        if version != 0:
            parts.insert(0, tlv(0xa0, tlv(0x02, bytes([version]))))
    if validity is not None:
        # version?, serial, signature, issuer, validity, ...
        i = 4 if parts[0][0] == 0xa0 else 3
        parts[i] = tlv(0x30, validity[0] + validity[1])
    if version == 0:
        # a v1 certificate carries no extensions
        parts = [p for p in parts if p[0] != 0xa3]
    body = tlv(0x30, b''.join(parts))
    if isinstance(signer, rsa.RSAPrivateKey):
        sig = signer.sign(body, padding.PKCS1v15(), md)
    else:
        sig = signer.sign(body, ec.ECDSA(md))
    return tlv(0x30, body + outer[1][1] + tlv(0x03, b'\x00' + sig))


def pem(der):
    return ('-----BEGIN CERTIFICATE-----\n'
            + base64.encodebytes(der).decode()
            + '-----END CERTIFICATE-----\n')


def write(case, sni, chain, leaf_key):
    with open(os.path.join(OUT, case + '.pem'), 'w') as f:
        f.write(''.join(c if isinstance(c, str) else pem(c) for c in chain))
    with open(os.path.join(OUT, case + '.key'), 'wb') as f:
        f.write(leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    print(case, sni)


def openssl_req(case, sni, keyspec, days, subj, extra=()):
    """`openssl req -x509` as a tool's script runs it: the system's
    openssl.cnf, so its v3_ca section (basicConstraints critical CA:TRUE,
    key identifiers, no SAN)."""
    k = os.path.join(OUT, case + '.key')
    c = os.path.join(OUT, case + '.pem')
    subprocess.run(['openssl', 'req', '-new', '-x509', '-nodes', '-newkey',
                    keyspec, '-keyout', k, '-out', c, '-days', str(days),
                    '-subj', subj] + list(extra),
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    print(case, sni)


# --- the tools ---------------------------------------------------------

def cobaltstrike():
    # Cobalt Strike (closed source): the stock teamserver script runs
    # `keytool -keystore ./cobaltstrike.store -storepass 123456 -keypass
    # 123456 -genkey -keyalg RSA -alias cobaltstrike -dname "CN=Major Cobalt
    # Strike, OU=AdvancedPenTesting, O=cobaltstrike, L=Somewhere,
    # S=Cyberspace, C=Earth"` when the store is missing (quoted in public
    # write-ups; Elastic rule "Default Cobalt Strike Team Server
    # Certificate").  keytool: RSA-2048, SHA256withRSA, 90 days, a 64-bit
    # random serial, a SubjectKeyIdentifier and nothing else; self-signed.
    k = key('rsa2048')
    n = name([('C', 'Earth'), ('ST', 'Cyberspace'), ('L', 'Somewhere'),
              ('O', 'cobaltstrike'), ('OU', 'AdvancedPenTesting'),
              ('CN', 'Major Cobalt Strike')])
    write('cobaltstrike', 'cs.test', [cert(n, n, k, k, rand_serial(64),
                                           NOW, NOW + 90 * DAY,
                                           [(ski(k), False)])], k)


def sliver_ca(slot):
    # BishopFox/sliver server/certs/ca.go@a5c3482c6d4e L39-67: the CAs
    # (mtls-server, https) are GenerateECCCertificate(caType, "", true):
    # CommonName "" gives an empty subject; a random curve of P-521, P-384,
    # P-256; certs.go L216-225: KU digitalSignature|keyEncipherment|
    # certSign, EKU serverAuth+clientAuth, basicConstraints CA:TRUE; SKI
    # from Go.  Never sent: the listeners serve the leaf alone.
    ck = key(random.choice(['p256', 'p384', 'p521']), slot)
    nb = NOW - random.randint(0, 364) * DAY
    empty = go_name([])
    return ck, cert(empty, empty, ck, ck, rand_serial(128), nb,
                    nb + random.choice([2, 3]) * 365 * DAY,
                    [(ku('digital_signature', 'key_encipherment',
                         'key_cert_sign'), False),
                     (eku(SERVER, CLIENT), False), (bc(True), True),
                     (ski(ck), False)], md=None)


def sliver_https():
    # BishopFox/sliver server/certs/https.go@a5c3482c6d4e L31-49 and
    # server/c2/http.go L214-233: an RSA leaf (2048 or 4096, certs.go
    # L315-318) for CN --domain or "localhost", signed by the https CA
    # (empty DN), served alone.  subject.go L256-267 randomSubject: C of
    # US/CA/JP, ST/L/STREET from a table whose every country has a
    # "" -> "" -> "" entry and whose streets are mostly "" (Go writes the
    # empty values); O a codename.  certs.go L185-235: notBefore now -
    # 0..364 days, 2 or 3 x 365 days, KU digitalSignature|keyEncipherment,
    # EKU serverAuth, no basicConstraints, AKI but no SKI, SAN = CN.
    ck, _ = sliver_ca('sliver-https-ca')
    k = key(random.choice(['rsa2048', 'rsa4096']))
    nb = NOW - random.randint(0, 364) * DAY
    subj = go_name([('C', 'US'), ('ST', 'Oregon'), ('L', 'Portland'),
                    ('STREET', ''), ('O', 'Brave Falcon,'),
                    ('CN', 'localhost')])
    der = cert(subj, go_name([]), k, ck, rand_serial(128), nb,
               nb + random.choice([2, 3]) * 365 * DAY,
               [(ku('digital_signature', 'key_encipherment'), False),
                (eku(SERVER), False), (aki(ck), False),
                (san('localhost'), False)],
               md=go_ecdsa_md(ck))
    write('sliver_https', 'localhost', [der], k)


def sliver_mtls():
    # BishopFox/sliver server/c2/mtls.go@a5c3482c6d4e L52 (defaultServerCert
    # "") and L108-117, certs.go L227-235: the mTLS listener's leaf has CN
    # "" (an empty subject) and so a SAN dNSName "", critical because the
    # subject is empty (Go's buildCertExtensions); ECDSA, issued by the
    # mtls-server CA (empty DN), served alone.
    ck, _ = sliver_ca('sliver-mtls-ca')
    k = key(random.choice(['p256', 'p384', 'p521']))
    nb = NOW - random.randint(0, 364) * DAY
    der = cert(go_name([]), go_name([]), k, ck, rand_serial(128), nb,
               nb + random.choice([2, 3]) * 365 * DAY,
               [(ku('digital_signature', 'key_encipherment'), False),
                (eku(SERVER), False), (aki(ck), False),
                (x509.SubjectAlternativeName([x509.DNSName('')]), True)],
               md=go_ecdsa_md(ck))
    write('sliver_mtls', 'sliver.test', [der], k)


FIRST = ['Patricia', 'Wayne', 'Lisa', 'Gerald', 'Linda', 'Carl']


def metasploit_rex():
    # rapid7/rex-socket lib/rex/socket/ssl.rb@4726f5cc933b L19-60 (names
    # from rapid7/rex-text lib/rex/text/rand.rb@0ff51cdda72b): subject
    # /C=US/ST=<state>/L=<first name>/O=<first name>/CN=<rand_hostname>;
    # issuer /C=US/O=<first name>/CN=<first name> <first name>, an invented
    # CA: the certificate is signed with its own key.  RSA-2048, SHA-256,
    # serial (rand(2^32) << 32) + rand(2^32); notBefore now - 1 year -
    # rand(3 years), 4 to 9 x 365 days; only basicConstraints CA:FALSE.
    k = key('rsa2048')
    host = 'x3kq.a9.gov'
    subj = name([('C', 'US'), ('ST', 'TX'), ('L', random.choice(FIRST)),
                 ('O', random.choice(FIRST)), ('CN', host)])
    iss = name([('C', 'US'), ('O', 'Lisa'), ('CN', 'Lisa Gerald')])
    nb = NOW - 365 * DAY - random.randint(0, 3 * 365) * DAY
    der = cert(subj, iss, k, k,
               (random.getrandbits(32) << 32) + random.getrandbits(32) | 1,
               nb, nb + random.randint(4, 9) * 365 * DAY,
               [(bc(False), False)])
    write('metasploit_rex', host, [der], k)


def metasploit_msf():
    # rapid7/metasploit-framework lib/msf/core/cert_provider.rb@0906c3a62c09:
    # Faker names, /C=US/ST=<abbr>/O=<company>/OU=<hacker word>/CN=<company
    # as a host>/emailAddress=<OU>@<CN>, self-signed; the ctype precedence
    # bug makes handler certificates :ca: basicConstraints critical CA:TRUE,
    # keyUsage cRLSign|keyCertSign only, SKI; RSA-2048, SHA-256, the Rex
    # serial and dates.
    k = key('rsa2048')
    host = 'schmidt.kuhn.gleason.biz'
    n = name([('C', 'US'), ('ST', 'CA'), ('O', 'Schmidt, Kuhn and Gleason'),
              ('OU', 'parse'), ('CN', host),
              ('emailAddress', 'parse@' + host)])
    nb = NOW - 365 * DAY - random.randint(0, 3 * 365) * DAY
    der = cert(n, n, k, k, random.getrandbits(63) | 1, nb,
               nb + random.randint(4, 9) * 365 * DAY,
               [(bc(True), True), (ku('key_cert_sign', 'crl_sign'), False),
                (ski(k), False)])
    write('metasploit_msf', host, [der], k)


def havoc():
    # HavocFramework/Havoc teamserver/pkg/common/certs/https.go@92d6c9e8662e
    # ("Copied from Silver C2"): a self-signed CA as the listener's leaf
    # (L313 isCA=true): C=US, ST/L/STREET from a table led by "" -> "" ->
    # "" (empty values), a 4-digit PostalCode 1000-8999, O from {"", ACME,
    # Partners, ...} x {"", co, llc, ...}, CN = the bind address; SAN of
    # the CN; KU certSign|keyEncipherment|digitalSignature, EKU
    # serverAuth+clientAuth, CA:TRUE, SKI; RSA-2048; notBefore now -
    # 0..364 days, 3 x 365 days.
    k = key('rsa2048')
    n = go_name([('C', 'US'), ('ST', ''), ('L', ''), ('STREET', ''),
                 ('POSTALCODE', str(random.randint(1000, 8999))),
                 ('O', random.choice(['', 'ACME', 'Partners', 'Tech']) +
                  random.choice(['', ' co', ' llc', ' inc'])),
                 ('CN', '0.0.0.0')])
    nb = NOW - random.randint(0, 364) * DAY
    der = cert(n, n, k, k, rand_serial(128), nb, nb + 3 * 365 * DAY,
               [(ku('digital_signature', 'key_encipherment',
                    'key_cert_sign'), False),
                (eku(SERVER, CLIENT), False), (bc(True), True),
                (ski(k), False), (san('IP:0.0.0.0'), False)])
    write('havoc', 'havoc.test', [der], k)


def go_selfsigned(case, sni, subject, kind, days, sans=(), extra=()):
    # the generate_cert.go pattern: KU keyEncipherment|digitalSignature
    # (on any key type), EKU serverAuth, basicConstraints CA:FALSE, no key
    # identifiers, self-signed
    k = key(kind)
    n = go_name(subject)
    exts = [(ku('digital_signature', 'key_encipherment'), False),
            (eku(SERVER), False), (bc(False), True)]
    if sans:
        exts.append((san(*sans), not subject))
    der = cert(n, n, k, k, rand_serial(128), NOW, NOW + days * DAY,
               exts + list(extra), md=go_ecdsa_md(k))
    write(case, sni, [der], k)


def mythic_ui():
    # its-a-feature/Mythic Mythic_CLI/src/cmd/internal/utils.go@e37e057a897e
    # L35-100: O=Mythic only, ECDSA P-384, 128-bit serial, 365 days, KU
    # keyEncipherment|digitalSignature, EKU serverAuth, CA:FALSE, no SAN.
    go_selfsigned('mythic_ui', 'mythic.test', [('O', 'Mythic')], 'p384', 365)


def mythic_http():
    # MythicC2Profiles/http C2_Profiles/http/http/c2_code/webserver/
    # initialize.go@26e119f5dff1 generateCerts: O=Mythic C2, as the UI's.
    go_selfsigned('mythic_http', 'mythic.test', [('O', 'Mythic C2')],
                  'p384', 365)


def mythic_docker():
    # its-a-feature/Mythic nginx-docker/Dockerfile@e37e057a897e L7.
    openssl_req('mythic_docker', 'mythic.test', 'rsa:4096', 3650,
                '/O=Mythic/OU=Mythic/CN=Mythic', ['-sha256'])


def covenant():
    # cobbr/Covenant Covenant/Core/Utilities.cs@5decc3ccfab0 L110-124
    # (Covenant.cs L199-205): .NET CertificateRequest.CreateSelfSigned,
    # CN=Covenant, RSA-2048, KU digitalSignature|keyEncipherment|
    # dataEncipherment, EKU serverAuth, SAN IP of the bind address
    # (0.0.0.0), now - 1 day to now + 3650 days, 8-byte serial.
    k = key('rsa2048')
    n = name([('CN', 'Covenant')])
    der = cert(n, n, k, k, random.getrandbits(63) | 1, NOW - DAY,
               NOW + 3650 * DAY,
               [(ku('digital_signature', 'key_encipherment',
                    'data_encipherment'), False),
                (eku(SERVER), False), (san('IP:0.0.0.0'), False)])
    write('covenant', 'covenant.test', [der], k)


def empire():
    # BC-SECURITY/Empire setup/cert.sh@ca5b77497f82 L5 (run by
    # empire/server/server.py L168-170): openssl req -new -x509 -days 365
    # -nodes -subj "/C=US", RSA-2048.
    openssl_req('empire', 'empire.test', 'rsa:2048', 365, '/C=US')


def poshc2():
    # nettitude/PoshC2 poshc2/server/Cert.py@44ed6c056bab L19-39 (Config.py
    # L160-168): pyOpenSSL crypto.X509() without set_version (X.509 v1, no
    # extensions), C=US, ST=Minnesota, L=Minnetonka, O=Pajfds, OU=Jethpro,
    # CN=P18055077, serial 1000, now + 10 x 365 days, RSA-2048, SHA-1.
    k = key('rsa2048')
    n = name([('C', 'US'), ('ST', 'Minnesota'), ('L', 'Minnetonka'),
              ('O', 'Pajfds'), ('OU', 'Jethpro'), ('CN', 'P18055077')])
    der = cert(n, n, k, k, 1000, NOW, NOW + 3650 * DAY, md=hashes.SHA1())
    write('poshc2', 'poshc2.test', [resign(der, k, version=0,
                                           md=hashes.SHA1())], k)


def merlin():
    # Ne0nd0g/merlin pkg/servers/http/tls.go@384c061434e9 L46-113, the
    # in-memory fallback when no certificate files are configured:
    # pkix.Name{} (empty subject and issuer), no SAN, RSA-4096, serial <
    # 2^128, notBefore now - 0..359 days, + 2 years, basicConstraints
    # CA:FALSE with keyUsage keyCertSign|keyEncipherment|digitalSignature,
    # EKU serverAuth.
    k = key('rsa4096')
    n = go_name([])
    nb = NOW - random.randint(0, 359) * DAY
    der = cert(n, n, k, k, rand_serial(128), nb, nb + 730 * DAY,
               [(ku('digital_signature', 'key_encipherment',
                    'key_cert_sign'), False),
                (eku(SERVER), False), (bc(False), True)])
    write('merlin', 'merlin.test', [der], k)


def merlin_testcert():
    # Ne0nd0g/merlin data/x509/server.crt@384c061434e9 (tls.go L143-165
    # warns when it is in use): `openssl req -x509` with the prompts
    # answered by Enter: C=AU, ST=Some-State, O=Internet Widgits Pty Ltd,
    # 10 years, RSA-2048.
    openssl_req('merlin_testcert', 'merlin.test', 'rsa:2048', 3650,
                '/C=AU/ST=Some-State/O=Internet Widgits Pty Ltd')


def pupy():
    # n1nj4sec/pupy pupy/pupylib/PupyCredentials.py@97c697cf7371 L186-262,
    # L362-390 (M2Crypto): a CA O=<10 random letters>, serial 1, 1 year,
    # only basicConstraints CA:TRUE; the server leaf O=<10 letters>,
    # OU=CONTROL, serial 2, 3 years, basicConstraints critical CA:FALSE,
    # keyUsage critical keyEncipherment, Netscape nsCertType server; RSA-2048,
    # SHA-256; cert.set_version(3) writes the value 3 ("Version: 4").
    letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
    ck = key('rsa2048', 'pupy-ca')
    k = key('rsa2048')
    ca = name([('O', ''.join(random.choice(letters) for _ in range(10)))])
    subj = name([('O', ''.join(random.choice(letters) for _ in range(10))),
                 ('OU', 'CONTROL')])
    ns = x509.UnrecognizedExtension(
        x509.ObjectIdentifier('2.16.840.1.113730.1.1'), b'\x03\x02\x06\x40')
    der = cert(subj, ca, k, ck, 2, NOW, NOW + 3 * 365 * DAY,
               [(bc(False), True), (ku('key_encipherment'), True),
                (ns, False)])
    write('pupy', 'pupy.test', [resign(der, ck, version=3)], k)


def caldera():
    # mitre/caldera@cc93a0ffc17b with plugins/ssl = mitre/ssl@1ae843111919,
    # conf/insecure_certificate.pem, the HAProxy default: X.509 v1 without
    # extensions, subject = issuer OU=Servers, C=US (OU first), 10 years,
    # RSA-2048, SHA-256 (the same file in every install).
    k = key('rsa2048')
    n = name([('OU', 'Servers'), ('C', 'US')])
    der = cert(n, n, k, k, 0x8A75FC75A0C399C3, NOW - DAY, NOW + 3650 * DAY)
    write('caldera', 'caldera.test', [resign(der, k, version=0)], k)


def responder():
    # lgandx/Responder certs/gen-self-signed-cert.sh@92ea4e9af133 (settings.py
    # L386 runs it when the certificate is missing): openssl genrsa 2048,
    # openssl req -new -x509 -days 3650 -subj "/": an empty subject and
    # issuer.
    openssl_req('responder', 'responder.test', 'rsa:2048', 3650, '/')


def asyncrat():
    # NYAN-x-CAT/AsyncRAT-C-Sharp AsyncRAT-C#/Server/Helper/
    # CreateCertificate.cs@0f0cba4ec398 L22-51 (name from
    # Forms/FormCertificate.Designer.cs L67, 4096 bits from
    # FormCertificate.cs L50): CN=AsyncRAT Server, serial
    # BigInteger.ProbablePrime(120), notBefore now - 2 days, notAfter
    # DateTime.MaxValue (9999-12-31T23:59:59Z), RSA-4096, SHA-512, SKI,
    # basicConstraints critical CA:TRUE.
    rat('asyncrat', 'CN=AsyncRAT Server')


def quasar():
    # quasar/Quasar Quasar.Server/Helper/CertificateHelper.cs@9508779fc0e9
    # L54-80 (name Forms/FrmCertificate.cs L29): AsyncRAT's shape with
    # CN=Quasar Server CA.
    rat('quasar', 'CN=Quasar Server CA')


def rat(case, cn):
    k = key('rsa4096')
    n = name([('CN', cn[3:])])
    der = cert(n, n, k, k, probable_prime(120), NOW - 2 * DAY,
               datetime.datetime(9999, 12, 31, 23, 59, 59),
               [(ski(k), False), (bc(True), True)], md=hashes.SHA512())
    write(case, case + '.test', [der], k)


def dcrat(case='dcrat', tool='DcRat'):
    # qwqdanchun/DcRat Server/Helper/CreateCertificate.cs@8685b70e882a
    # L23-47 (read at 30ca53b068b4; Server/Forms/FormCertificate.cs L50
    # passes 1024 bits, FormCertificate.Designer.cs L71 the name "DcRat
    # Server"): subject CN=DcRat, issuer "CN=<name>,OU=qwqdanchun,O=DcRat
    # By qwqdanchun,L=SH,C=CN" (BouncyCastle keeps the string's order: CN
    # first), signed with the certificate's own key; serial a 160-bit
    # probable prime, notBefore now - 285 days, notAfter now + 3650 days,
    # RSA-1024, SHA-512, SKI, basicConstraints critical CA:TRUE.
    k = key('rsa1024')
    subj = name([('CN', tool)])
    iss = name([('CN', tool + ' Server'), ('OU', 'qwqdanchun'),
                ('O', tool + ' By qwqdanchun'), ('L', 'SH'), ('C', 'CN')])
    # (159 bits here: the builder refuses serials over 20 octets)
    der = cert(subj, iss, k, k, probable_prime(159), NOW - 285 * DAY,
               NOW + 3650 * DAY, [(ski(k), False), (bc(True), True)],
               md=hashes.SHA512())
    write(case, case + '.test', [der], k)


def venomrat():
    # VenomRAT, a DcRAT fork (no canonical repository; third-party
    # observations consistent with DcRat's CreateCertificate.cs@8685b70e882a):
    # subject CN=VenomRAT, issuer CN=VenomRAT Server, OU=qwqdanchun,
    # O=VenomRAT By qwqdanchun, L=SH, C=CN, own key.
    dcrat('venomrat', 'VenomRAT')


def evilginx():
    # kgretzky/evilginx2 core/certdb.go@9e3248471968: the CA (L80-156)
    # O=Evilginx Signature Trust Co., CN=Evilginx Super-Evil Root CA,
    # RSA-2048, 10 x 365 days, KU keyEncipherment|digitalSignature|certSign,
    # EKU clientAuth+serverAuth, CA:TRUE, SKI; the per-host leaf (L273-349)
    # O=Evilginx Signature Trust Co., CN=<host>, SAN host, RSA-1024, 180
    # days, KU keyEncipherment|digitalSignature, EKU serverAuth, CA:FALSE,
    # AKI; the chain sent is [leaf, CA] (L343).
    ck = key('rsa2048', 'evilginx-ca')
    k = key('rsa1024')
    ca = go_name([('O', 'Evilginx Signature Trust Co.'),
                  ('CN', 'Evilginx Super-Evil Root CA')])
    host = 'login.evilginx.test'
    cader = cert(ca, ca, ck, ck, rand_serial(128), NOW, NOW + 3650 * DAY,
                 [(ku('digital_signature', 'key_encipherment',
                      'key_cert_sign'), False),
                  (eku(CLIENT, SERVER), False), (bc(True), True),
                  (ski(ck), False)])
    leaf = cert(go_name([('O', 'Evilginx Signature Trust Co.'),
                         ('CN', host)]), ca, k, ck, rand_serial(128), NOW,
                NOW + 180 * DAY,
                [(ku('digital_signature', 'key_encipherment'), False),
                 (eku(SERVER), False), (bc(False), True), (aki(ck), False),
                 (san(host), False)])
    write('evilginx', host, [leaf, cader], k)


def gophish():
    # gophish/gophish util/util.go@956184697992 L128-170 (admin server,
    # controllers/route.go L102; phishing server controllers/phish.go L89):
    # O=Gophish only, ECDSA P-384, 10 x 365 days, KU keyEncipherment|
    # digitalSignature, EKU serverAuth, CA:FALSE, no SAN.
    go_selfsigned('gophish', 'gophish.test', [('O', 'Gophish')], 'p384',
                  3650)


def modlishka():
    # drk1wi/Modlishka plugin/autocert.go@e539d1061c98: an embedded v1 CA
    # C=pl, ST=pl, L=pl, O=pl, OU=pl, CN=pl, emailAddress=pl@pl (its key is
    # public in the file); the leaf C=Earth, O=Mother Nature, CN=<domain>,
    # SAN domain and *.domain, SubjectKeyId 01 02 03, serial < 2^63, one
    # year, basicConstraints CA:FALSE, RSA-2048; only the leaf is served.
    ck = key('rsa2048', 'modlishka-ca')
    k = key('rsa2048')
    ca = go_name([('C', 'pl'), ('ST', 'pl'), ('L', 'pl'), ('O', 'pl'),
                  ('OU', 'pl'), ('CN', 'pl'), ('emailAddress', 'pl@pl')])
    host = 'modlishka.test'
    der = cert(go_name([('C', 'Earth'), ('O', 'Mother Nature'),
                        ('CN', host)]), ca, k, ck, random.getrandbits(62) | 1,
               NOW, NOW + 365 * DAY,
               [(bc(False), True), (x509.SubjectKeyIdentifier(b'\1\2\3'),
                                    False),
                (san(host, '*.' + host), False)])
    write('modlishka', host, [der], k)


def mitmproxy():
    # mitmproxy/mitmproxy mitmproxy/certs.py@09ef5682cee2: the CA
    # (create_ca) CN=mitmproxy, O=mitmproxy, RSA-2048, now - 2 days to now +
    # 10 x 365 days, critical CA:TRUE, EKU serverAuth, critical KU
    # keyCertSign|cRLSign, SKI; the leaf (dummy_cert) copies the upstream's
    # CN and SANs, AKI, EKU serverAuth, no KU or basicConstraints, 365 days,
    # and carries the CA's own public key
    # (builder.public_key(cacert.public_key())); chain [leaf, CA].
    ck = key('rsa2048', 'mitmproxy-ca')
    ca = name([('CN', 'mitmproxy'), ('O', 'mitmproxy')])
    host = 'www.example.test'
    cader = cert(ca, ca, ck, ck, rand_serial(128), NOW - 2 * DAY,
                 NOW + 3650 * DAY,
                 [(bc(True), True), (eku(SERVER), False),
                  (ku('key_cert_sign', 'crl_sign'), True), (ski(ck), False)])
    leaf = cert(name([('CN', host)]), ca, ck, ck, rand_serial(128),
                NOW - 2 * DAY, NOW + 365 * DAY,
                [(aki(ck), False), (eku(SERVER), False), (san(host), False)])
    write('mitmproxy', host, [leaf, cader], ck)


def burp():
    # Burp Suite (PortSwigger, closed source), from public dumps of its CA
    # and leaves (notes/offensive-defaults.md section 19): the CA C=PortSwigger,
    # ST=PortSwigger, L=PortSwigger, O=PortSwigger, OU=PortSwigger CA,
    # CN=PortSwigger CA; the leaf CN=<host>, OU=PortSwigger CA,
    # O=PortSwigger, C=PortSwigger, C first in DER; the leaf is served.
    ck = key('rsa2048', 'burp-ca')
    k = key('rsa2048')
    ca = name([('C', 'PortSwigger'), ('ST', 'PortSwigger'),
               ('L', 'PortSwigger'), ('O', 'PortSwigger'),
               ('OU', 'PortSwigger CA'), ('CN', 'PortSwigger CA')])
    host = 'www.example.test'
    der = cert(name([('C', 'PortSwigger'), ('O', 'PortSwigger'),
                     ('OU', 'PortSwigger CA'), ('CN', host)]), ca, k, ck,
               rand_serial(64), NOW - DAY, NOW + 365 * DAY,
               [(san(host), False), (aki(ck), False)])
    write('burp', host, [der], k)


def deimos():
    # DeimosC2/DeimosC2 c2/lib/certs/gen_cert.go@036ed1ffd239 L45-97 (a copy
    # of generate_cert.go): O=Acme Co, ECDSA P-256, KU keyEncipherment|
    # digitalSignature, EKU serverAuth, CA:FALSE, SAN the listener host;
    # c2/listeners/https.go L96 passes validFrom "Jan 24 12:00:00 2020" and
    # validFor 8760, a time.Duration of 8,760 ns: notBefore = notAfter.
    k = key('p256')
    n = go_name([('O', 'Acme Co')])
    t = datetime.datetime(2020, 1, 24, 12, 0, 0)
    der = cert(n, n, k, k, rand_serial(128), t, t,
               [(ku('digital_signature', 'key_encipherment'), False),
                (eku(SERVER), False), (bc(False), True),
                (san('deimos.test'), False)], md=hashes.SHA256())
    write('deimos', 'deimos.test', [der], k)


def frp():
    # fatedier/frp pkg/transport/tls.go@40274d8c9224 newRandomTLSKeyPair
    # (since 024e4f5f, v0.64.0): a template with serial and dates only: an
    # empty subject and issuer, no extensions; RSA-2048, notBefore now -
    # 1 h, notAfter now + 10 x 365 days.
    k = key('rsa2048')
    n = go_name([])
    der = cert(n, n, k, k, rand_serial(128), NOW - datetime.timedelta(
        hours=1), NOW + 3650 * DAY)
    write('frp', 'frp.test', [der], k)


def frp_old():
    # fatedier/frp pkg/transport/tls.go, v0.63.0 and older (e.g. tag
    # v0.52.0): x509.Certificate{SerialNumber: big.NewInt(1)}: serial 1,
    # empty subject and issuer, no extensions, and both dates Go's zero
    # time.Time, 0001-01-01T00:00:00Z.
    k = key('rsa2048')
    n = go_name([])
    der = cert(n, n, k, k, 1, NOW, NOW + DAY)
    zero = gentime('00010101000000Z')
    write('frp_old', 'frp.test', [resign(der, k, validity=(zero, zero))], k)


def ligolo():
    # nicocha30/ligolo-ng pkg/tlsutils/selfcert.go@913fe64e088d L89-117,
    # -selfcert with the default domain (cmd/proxy/main.go L52): O=ligolo,
    # SAN ligolo, ECDSA P-256, 365 days, the generate_cert.go extensions.
    go_selfsigned('ligolo', 'ligolo', [('O', 'ligolo')], 'p256', 365,
                  sans=['ligolo'])


def go_generate_cert():
    # golang/go src/crypto/tls/generate_cert.go@151aa24c47d6: O=Acme Co, no
    # CN, SANs from --host, RSA-2048, 365 days, EKU serverAuth (copied
    # into many tools' code).
    go_selfsigned('go_generate_cert', 'go.test', [('O', 'Acme Co')],
                  'rsa2048', 365, sans=['go.test'])


def villain():
    # t3l3machus/Villain Core/settings.py@87e5dd18927f L56-57: the operator
    # makes the certificate with the suggested `openssl req -x509 -newkey
    # rsa:2048 ... -days 365`; the prompts answered by Enter give
    # OpenSSL's defaults.
    openssl_req('villain', 'villain.test', 'rsa:2048', 365,
                '/C=AU/ST=Some-State/O=Internet Widgits Pty Ltd')


def beef():
    # beefproject/beef beef_cert.pem@64c12bd83 (the default of config.yaml
    # https.cert, the same file in every install; read at 4380a2c4): CN=
    # localhost, RSA-3072, 10 years, the `openssl req -x509` v3_ca shape.
    openssl_req('beef', 'localhost', 'rsa:3072', 3650, '/CN=localhost')


# --- benign controls: odd, but no tool's --------------------------------

def write_anchor(case, der):
    with open(os.path.join(OUT, case + '.ca.pem'), 'w') as f:
        f.write(pem(der))


def corp_ca():
    # An enterprise PKI as AD CS or EJBCA runs it: a root and an issuing
    # CA (ordinary names, key identifiers), a web server leaf of two years
    # with an ordinary subject and a 19-octet serial; the server sends leaf
    # and issuing CA; the root is the anchor (--ca-file).
    rk = key('p384', 'corp-root')
    ik = key('p256', 'corp-issuing')
    k = key('rsa2048', 'corp-leaf')
    root = name([('C', 'US'), ('O', 'Example Corp'),
                 ('CN', 'Example Corp Root CA')])
    issuing = name([('C', 'US'), ('O', 'Example Corp'),
                    ('CN', 'Example Corp Issuing CA 01')])
    host = 'intranet.corp.example'
    rder = cert(root, root, rk, rk, rand_serial(128), NOW - 2000 * DAY,
                NOW + 5000 * DAY,
                [(bc(True), True), (ku('key_cert_sign', 'crl_sign',
                                       'digital_signature'), True),
                 (ski(rk), False)])
    ider = cert(issuing, root, ik, rk, rand_serial(128), NOW - 1000 * DAY,
                NOW + 2000 * DAY,
                [(bc(True), True), (ku('key_cert_sign', 'crl_sign',
                                       'digital_signature'), True),
                 (ski(ik), False), (aki(rk), False)])
    leaf = cert(name([('C', 'US'), ('ST', 'Illinois'), ('L', 'Springfield'),
                      ('O', 'Example Corp'), ('OU', 'IT'), ('CN', host)]),
                issuing, k, ik, rand_serial(152), NOW - 100 * DAY,
                NOW + 630 * DAY,
                [(bc(False), True), (ku('digital_signature',
                                        'key_encipherment'), True),
                 (eku(SERVER), False), (ski(k), False), (aki(ik), False),
                 (san(host, 'corp.test'), False)])
    write_anchor('corp_ca', rder)
    write('corp_ca', host, [leaf, ider], k)


def le_empty_subject():
    # A Let's Encrypt-style leaf of the profiles without a subject: an empty
    # subject and a critical subjectAltName (RFC 5280 4.2.1.6), 90 days,
    # ECDSA P-256, KU digitalSignature, EKU serverAuth, embedded SCTs (an
    # empty list here), issued by an intermediate of a root the test trusts.
    rk = key('p384', 'le-root')
    ik = key('p384', 'le-int')
    k = key('p256', 'le-leaf')
    root = name([('C', 'US'), ('O', 'Internet Security Research Group'),
                 ('CN', 'certguard test ISRG Root')])
    inter = name([('C', 'US'), ('O', "Let's Encrypt"), ('CN', 'E7')])
    host = 'empty.example.test'
    sct = x509.UnrecognizedExtension(
        x509.ObjectIdentifier('1.3.6.1.4.1.11129.2.4.2'), b'\x04\x00')
    rder = cert(root, root, rk, rk, rand_serial(128), NOW - 2000 * DAY,
                NOW + 5000 * DAY,
                [(bc(True), True), (ku('key_cert_sign', 'crl_sign'), True),
                 (ski(rk), False)])
    ider = cert(inter, root, ik, rk, rand_serial(128), NOW - 300 * DAY,
                NOW + 800 * DAY,
                [(bc(True), True), (ku('key_cert_sign', 'crl_sign',
                                       'digital_signature'), True),
                 (eku(SERVER, CLIENT), False), (ski(ik), False),
                 (aki(rk), False)])
    leaf = cert(x509.Name([]), inter, k, ik, rand_serial(128),
                NOW - 10 * DAY, NOW + 80 * DAY,
                [(ku('digital_signature'), True), (eku(SERVER), False),
                 (bc(False), True), (ski(k), False), (aki(ik), False),
                 (san(host), True), (sct, False)])
    write_anchor('le_empty_subject', rder)
    write('le_empty_subject', host, [leaf, ider], k)


CONTROLS = [corp_ca, le_empty_subject]

CASES = [cobaltstrike, sliver_https, sliver_mtls, metasploit_rex,
         metasploit_msf, havoc, mythic_ui, mythic_http, mythic_docker,
         covenant, empire, poshc2, merlin, merlin_testcert, pupy, caldera,
         responder, asyncrat, quasar, dcrat, venomrat, evilginx, gophish,
         modlishka, mitmproxy, burp, deimos, frp, frp_old, ligolo,
         go_generate_cert, villain, beef]


def main():
    global OUT
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    want = set(sys.argv[2:])
    for c in CASES + CONTROLS:
        if not want or c.__name__ in want:
            c()


if __name__ == '__main__':
    main()
