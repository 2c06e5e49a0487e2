"""Certificates for the tests' HTTPS servers on 127.0.0.1 (fake Batch, fake Kubernetes API
server, the TES test server): one way to make them."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
PEM = serialization.Encoding.PEM


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key, issuer: str, signer, *, ca: bool, loopback: bool
) -> x509.Certificate:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
    )
    if loopback:
        builder = builder.add_extension(LOOPBACK, critical=False)
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    return builder.sign(signer, hashes.SHA256())


def key_pem(key) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def self_signed(directory: Path, name: str, common_name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (a client trusts it as its own CA) and its
    key, written to DIRECTORY/NAME.pem and NAME.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(common_name, key, common_name, key, ca=True, loopback=True)
    cert_path, key_path = Path(directory) / f"{name}.pem", Path(directory) / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(PEM))
    key_path.write_bytes(key_pem(key))
    return cert_path, key_path


def ca_and_server(ca_name: str = "fake-cluster-ca") -> tuple[bytes, bytes]:
    """(a CA's certificate PEM, a server key + certificate PEM for 127.0.0.1 that it
    signed), as a cluster's control plane has them."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True, loopback=False)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("127.0.0.1", key, ca_name, ca_key, ca=False, loopback=True)
    return ca.public_bytes(PEM), key_pem(key) + cert.public_bytes(PEM)
