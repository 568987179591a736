#!/usr/bin/python3
"""A test PKI with embedded SCTs, for t/sct.t: two test CT logs (ECDSA
P-256), a root, an intermediate and leaves whose SCTs are signed over the
RFC 6962 precertificate data (section 3.2: version, signature type,
timestamp, entry type precert_entry, SHA-256 of the issuer's
SubjectPublicKeyInfo, the leaf's TBSCertificate without the SCT list,
extensions), by the test logs' keys, as a log would sign them.

usage: sct_pki.py DIR NOW

Writes DIR/root.pem, DIR/int.pem, and for each leaf DIR/NAME.pem (the
leaf and the intermediate) and DIR/NAME.key; DIR/logs.cnf (the first log,
OpenSSL's CT log file format), DIR/other.cnf (the second log only) and
DIR/log1.b64, DIR/log2.b64 (the logs' keys, base64 DER SPKI).  Leaves are
valid from NOW - 30 days to NOW + 60 days; SCTs are dated NOW - 30 days
but "future", dated NOW + 1 day.
"""

import base64
import datetime
import hashlib
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
DAY = datetime.timedelta(days=1)


def spki_der(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca(cn, key, issuer_cn, issuer_key, now, serial):
    b = (x509.CertificateBuilder()
         .subject_name(name(cn)).issuer_name(name(issuer_cn))
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(now - 365 * DAY)
         .not_valid_after(now + 3650 * DAY)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                        critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False,
                                      True, True, False, False),
                        critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(
             key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer_key.public_key()), critical=False))
    return b.sign(issuer_key, hashes.SHA256())


def leaf_builder(host, key, issuer, issuer_key, now, serial):
    return (x509.CertificateBuilder()
            .subject_name(name(host)).issuer_name(issuer.subject)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - 30 * DAY)
            .not_valid_after(now + 60 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False,
                                         False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(host)]), critical=False))


def sct(log_key, tbs, issuer_key_hash, when):
    """One v1 SCT (RFC 6962 3.2, TLS encoding) of a precert_entry."""
    ts = int(when.timestamp() * 1000)
    signed = (struct.pack(">BBQH", 0, 0, ts, 1) + issuer_key_hash
              + struct.pack(">I", len(tbs))[1:] + tbs + struct.pack(">H", 0))
    sig = log_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    log_id = hashlib.sha256(spki_der(log_key)).digest()
    return (struct.pack(">B", 0) + log_id + struct.pack(">QH", ts, 0)
            + struct.pack(">BBH", 4, 3, len(sig)) + sig)


def sct_ext(scts):
    """The extension's value: an OCTET STRING holding the TLS list."""
    body = b"".join(struct.pack(">H", len(s)) + s for s in scts)
    tls = struct.pack(">H", len(body)) + body
    n = len(tls)
    if n < 128:
        hdr = bytes([0x04, n])
    elif n < 256:
        hdr = bytes([0x04, 0x81, n])
    else:
        hdr = bytes([0x04, 0x82, n >> 8, n & 0xff])
    return x509.UnrecognizedExtension(SCT_OID, hdr + tls)


def flip_last(s):
    """The SCT with the last byte of its signature changed: still a
    well-formed ECDSA signature, of other data."""
    return s[:-1] + bytes([s[-1] ^ 0x01])


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def main():
    out = sys.argv[1]
    now = datetime.datetime.fromtimestamp(int(sys.argv[2]),
                                          datetime.timezone.utc)
    now = now.replace(tzinfo=None)

    log1 = ec.generate_private_key(ec.SECP256R1())
    log2 = ec.generate_private_key(ec.SECP256R1())
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())

    root = ca("certguard sct test root", root_key, "certguard sct test root",
              root_key, now, 1)
    inter = ca("certguard sct test int", int_key, "certguard sct test root",
               root_key, now, 2)
    ikh = hashlib.sha256(spki_der(int_key)).digest()
    write(out + "/root.pem", pem(root))
    write(out + "/int.pem", pem(inter))

    serial = [100]

    def issue(label, host, make_scts, key=None):
        key = key or ec.generate_private_key(ec.SECP256R1())
        serial[0] += 1
        b = leaf_builder(host, key, inter, int_key, now, serial[0])
        # the precertificate's TBS is the leaf's without the SCT list: the
        # extension goes last, so removing it gives these exact bytes
        tbs = b.sign(int_key, hashes.SHA256()).tbs_certificate_bytes
        scts = make_scts(tbs)
        cert = b.add_extension(sct_ext(scts), critical=False).sign(
            int_key, hashes.SHA256())
        assert cert.tbs_certificate_bytes != tbs
        write(out + "/" + label + ".pem", pem(cert) + pem(inter))
        write(out + "/" + label + ".key", key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        return key, scts

    when = now - 30 * DAY
    good_key, good_scts = issue(
        "good", "good.test", lambda t: [sct(log1, t, ikh, when)])
    issue("badsig", "badsig.test",
          lambda t: [flip_last(sct(log1, t, ikh, when))])
    issue("unknown", "unknown.test", lambda t: [sct(log2, t, ikh, when)])
    issue("mixed", "mixed.test",
          lambda t: [sct(log2, t, ikh, when), sct(log1, t, ikh, when)])
    issue("mixedbad", "mixedbad.test",
          lambda t: [sct(log1, t, ikh, when),
                     flip_last(sct(log2, t, ikh, when)),
                     flip_last(sct(log1, t, ikh, when))])
    issue("future", "future.test",
          lambda t: [sct(log1, t, ikh, now + DAY)])
    # another key for the same name, with the SCTs of "good" copied
    issue("copied", "good.test", lambda t: good_scts)
    # the SCT over another issuer's key hash: the precertificate of
    # another CA
    other = hashlib.sha256(spki_der(root_key)).digest()
    issue("otherissuer", "otherissuer.test",
          lambda t: [sct(log1, t, other, when)])

    b64 = [base64.b64encode(spki_der(k)).decode() for k in (log1, log2)]
    write(out + "/log1.b64", b64[0].encode())
    write(out + "/log2.b64", b64[1].encode())
    write(out + "/logs.cnf", (
        "# the test's CT log, as scripts/ct-log-list writes them\n"
        "enabled_logs = test_log_1\n\n"
        "[test_log_1]\n"
        "description = certguard test log 1\n"
        "key = %s\n" % b64[0]).encode())
    write(out + "/other.cnf", (
        "enabled_logs = test_log_2\n\n"
        "[test_log_2]\n"
        "description = certguard test log 2\n"
        "key = %s\n" % b64[1]).encode())


if __name__ == "__main__":
    main()
