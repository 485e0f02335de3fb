"""A throwaway PKI for testing TLS and ``tls_client_auth`` (RFC 8705) on loopback."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class TestPKI:
    """PEM files of a test CA, a server certificate and a client certificate.

    Attributes:
        ca_cert: the CA certificate, which signed both others.
        server_cert: certificate for ``127.0.0.1`` and ``localhost``.
        server_key: its private key (unencrypted PKCS#8).
        client_cert: client certificate whose subject CN is ``client_cn``.
        client_key: its private key.
        client_cn: the client certificate's subject common name.
        server_ssl_context: for ``DevAuthServer(ssl_context=...)``; asks clients for a
            certificate signed by the CA (required unless ``require_client_cert=False``).
        client_ssl_context: trusts the CA and presents the client certificate.
        ca_key: the CA's private key, to issue more certificates (`issue_client_cert`).
    """

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_cn: str
    server_ssl_context: ssl.SSLContext
    client_ssl_context: ssl.SSLContext
    ca_key: Path | None = None

    def client_context(self, *, with_certificate: bool = True) -> ssl.SSLContext:
        """A new client context trusting the CA, with or without the client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        if with_certificate:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def issue_client_cert(self, cn: str | None = None) -> tuple[bytes, bytes]:
        """A new client certificate and key (PEM), signed by the CA, e.g. to rotate one.

        Args:
            cn: its subject CN; ``client_cn`` by default.
        """
        if self.ca_key is None:
            raise ValueError("this TestPKI has no CA key")
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key is not an EC key")
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key, cert = _leaf(ca_cert, ca_key, cn or self.client_cn, server=False)
        return _cert_pem(cert), _key_pem(key)


def make_test_pki(
    directory: str | Path, client_cn: str = "dev-client", *, require_client_cert: bool = True
) -> TestPKI:
    """Create a CA, a server and a client certificate in ``directory`` (EC P-256).

    Args:
        directory: where the PEM files go (created if missing).
        client_cn: the client certificate's subject CN, i.e. the ``tls_client_auth`` identity.
        require_client_cert: False lets clients connect without a certificate.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("tokenfleet test CA")
    ca = _builder(ca_name, ca_name, ca_key.public_key()).add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True
    )
    ca_cert = ca.sign(ca_key, hashes.SHA256())
    server_key, server_cert = _leaf(ca_cert, ca_key, "127.0.0.1", server=True)
    client_key, client_cert = _leaf(ca_cert, ca_key, client_cn, server=False)
    paths = {
        "ca_cert": _write(out / "ca.pem", _cert_pem(ca_cert)),
        "server_cert": _write(out / "server.pem", _cert_pem(server_cert)),
        "server_key": _write(out / "server-key.pem", _key_pem(server_key)),
        "client_cert": _write(out / "client.pem", _cert_pem(client_cert)),
        "client_key": _write(out / "client-key.pem", _key_pem(client_key)),
        "ca_key": _write(out / "ca-key.pem", _key_pem(ca_key)),
    }
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(paths["server_cert"], paths["server_key"])
    server_context.load_verify_locations(cafile=str(paths["ca_cert"]))
    server_context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    client_context = ssl.create_default_context(cafile=str(paths["ca_cert"]))
    client_context.load_cert_chain(paths["client_cert"], paths["client_key"])
    return TestPKI(
        **paths,
        client_cn=client_cn,
        server_ssl_context=server_context,
        client_ssl_context=client_context,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _leaf(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(cn), ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
