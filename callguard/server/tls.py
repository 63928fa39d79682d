"""The server's TLS key and self-signed certificate (``callguard server init``); desks pin
its fingerprint (:mod:`callguard.central.pinning`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from callguard.central.pinning import TlsError, fingerprint_of_pem

__all__ = ["TlsError", "fingerprint_of_pem", "make_certificate"]


def make_certificate(cert_path: Path, key_path: Path, names: list[str],
                     days: int = 3650) -> str:
    """Write a new EC P-256 key (0600) and a self-signed certificate for ``names`` (host
    names or IP addresses; 127.0.0.1 and localhost are always added). Return the
    certificate's fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    all_names = list(dict.fromkeys([*names, socket.gethostname(), "localhost", "127.0.0.1"]))
    alt: list[x509.GeneralName] = []
    for name in all_names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, all_names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "callguard server")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    key_path.chmod(0o600)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(cert_pem)
    return fingerprint_of_pem(cert_pem.decode("ascii"))


