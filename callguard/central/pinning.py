"""Trusting the central server: one certificate, pinned by its SHA-256 fingerprint.

A call centre rarely has a certificate authority for an internal server; a self-signed
certificate whose fingerprint the admin gives each desk at enrolment is as strong (the desk
trusts that one certificate and nothing else) and needs no outside party. The server makes
it with ``callguard server init`` (:mod:`callguard.server.tls`).
"""

from __future__ import annotations

import hashlib
import socket
import ssl

from callguard.errors import ResourceError


class TlsError(ResourceError):
    """The server's certificate cannot be made or read, or a fingerprint does not match."""


def fingerprint_of_der(der: bytes) -> str:
    """``AB:CD:...``: the SHA-256 of a DER certificate, as browsers and OpenSSL print it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fingerprint_of_pem(pem: str) -> str:
    return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(pem))


def normalise_fingerprint(text: str) -> str:
    """Accept ``ab:cd:..``, ``ABCD..`` or ``sha256:abcd..``; return the ``AB:CD:..`` form."""
    digest = text.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise TlsError(f"not a SHA-256 fingerprint: {text!r}")
    digest = digest.upper()
    return ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def fetch_pinned(host: str, port: int, fingerprint: str, timeout: float = 10) -> str:
    """The server's certificate (PEM), fetched and checked against ``fingerprint``.

    The first connection trusts nothing: it takes whatever certificate the server shows and
    accepts it only if its fingerprint is the one the admin gave."""
    want = normalise_fingerprint(fingerprint)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        raise TlsError(f"cannot reach the central server at {host}:{port}: {exc}") from exc
    if not der:
        raise TlsError(f"{host}:{port} showed no certificate")
    got = fingerprint_of_der(der)
    if got != want:
        raise TlsError(f"the central server at {host}:{port} shows a certificate whose "
                       f"fingerprint is {got}, not the pinned {want}: refusing to talk to it")
    return ssl.DER_cert_to_PEM_cert(der)


def pinned_context(cert_pem: str) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate (host names not checked: the
    pin is stronger than a name)."""
    ctx = ssl.create_default_context(cadata=cert_pem)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
