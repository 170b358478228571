"""TLS for the test harness, the way the project's clients do it: the pin of a certificate's key
("sha256//BASE64" of its DER SubjectPublicKeyInfo, as curl, kubeadm and src/shared/tls.c spell it),
a client context that trusts exactly one pinned key, and throwaway certificates made with the
openssl command (for the broker's TLS listener)."""

import base64
import hashlib
import socket
import ssl
import subprocess
from pathlib import Path

PIN_PREFIX = "sha256//"


def _tlv(der: bytes, i: int):
    """(tag, start of value, end of value) of the DER element at i."""
    tag = der[i]
    n = der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    return tag, i, i + n


def spki_der(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a DER certificate (the 7th element of tbsCertificate, or the 6th
    in a version-1 certificate without the [0] version)."""
    _, cert_start, _ = _tlv(cert_der, 0)          # Certificate SEQUENCE
    _, tbs_start, tbs_end = _tlv(cert_der, cert_start)  # tbsCertificate SEQUENCE
    i = tbs_start
    fields = []
    while i < tbs_end and len(fields) < 7:
        tag, vs, ve = _tlv(cert_der, i)
        fields.append((tag, i, ve))
        i = ve
    if fields[0][0] != 0xA0:  # no explicit version: everything shifts by one
        fields.insert(0, None)
    _, start, end = fields[6]
    return cert_der[start:end]


def pin_of_der(cert_der: bytes) -> str:
    return PIN_PREFIX + base64.b64encode(hashlib.sha256(spki_der(cert_der)).digest()).decode()


def pin_of_pem(pem: str) -> str:
    return pin_of_der(ssl.PEM_cert_to_DER_cert(pem))


def pin_of_file(path) -> str:
    return pin_of_pem(Path(path).read_text())


class PinMismatch(ssl.SSLError):
    pass


def unverified_context() -> ssl.SSLContext:
    """A client context that takes any certificate: the caller checks the pin itself."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check_pin(sock: ssl.SSLSocket, pin: str, what="the server"):
    got = pin_of_der(sock.getpeercert(binary_form=True))
    if got != pin:
        raise PinMismatch(f"{what} presents the key {got}, not the pinned {pin}")


def probe_pin(host, port, timeout=5.0) -> str:
    """The pin of the key a TLS server presents (no verification: for checks and assertions)."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with unverified_context().wrap_socket(raw, server_hostname=host) as s:
            return pin_of_der(s.getpeercert(binary_form=True))


def make_self_signed(directory, name="nmtest", sans=("IP:127.0.0.1", "DNS:localhost"), days=30):
    """(certificate path, key path) of a new ECDSA P-256 self-signed certificate in `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=" + ",".join(sans)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    key.chmod(0o600)
    return cert, key


def make_certificate(directory, name="nmtest", not_before_days=-1, not_after_days=30,
                     sans=("127.0.0.1",)):
    """(certificate path, key path) of an ECDSA P-256 self-signed certificate valid from
    `not_before_days` to `not_after_days` from now (both may be negative: an expired one)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() or ":" in s else x509.DNSName(s) for s in sans]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=not_before_days))
            .not_valid_after(now + datetime.timedelta(days=not_after_days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / f"{name}.crt", d / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def make_ca_signed(directory, name="server", sans=("127.0.0.1", "localhost"), days=30):
    """(CA certificate path, leaf certificate path, leaf key path): a throwaway CA and a server
    certificate it issued, as a CA-issued deployment has them."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() or ":" in s else x509.DNSName(s) for s in sans]
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = d / f"{name}-ca.crt", d / f"{name}.crt", d / f"{name}.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path
