"""The site's evidence key: 32 random bytes that sign exported packages (HMAC-SHA256).

The key file holds the raw bytes, nothing else, readable by its owner only (mode 0600).
Whoever holds it can sign packages, so it stays on the site's machines; a court or a
counselor's lawyer gets it from the site to check a package, or checks the file hashes
only. To check a signature with standard tools::

    openssl dgst -sha256 -mac HMAC -macopt hexkey:$(xxd -p -c 64 evidence.key) manifest.json
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
from pathlib import Path

from callguard.errors import InputError

log = logging.getLogger(__name__)

KEY_BYTES = 32


class KeyFileError(InputError, ValueError):
    """The key file cannot be used; the message names the file."""


def read_key(path: str | os.PathLike[str]) -> bytes:
    """The key in ``path``; :class:`KeyFileError` if it is missing or not a key."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from None
    if len(data) != KEY_BYTES:
        raise KeyFileError(f"{path}: not a callguard evidence key "
                           f"(expected {KEY_BYTES} bytes, found {len(data)})")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("%s: the evidence key is readable by other users (chmod 600 it)", path)
    return data


def load_or_create_key(path: str | os.PathLike[str]) -> bytes:
    """The key in ``path``, created (32 random bytes, mode 0600) if the file does not exist.

    Creation is atomic: the key is written to a private temporary file and hard-linked to
    ``path``, which fails if another process created it first; then that key is used. So
    two exports starting at once never sign with two different keys, nor read half a file.
    """
    path = Path(path)
    if path.exists():
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd, tmp = tempfile.mkstemp(prefix=".evidence-key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_key(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("created a new evidence key at %s (key id %s)", path, key_id(key))
    return key


def key_id(key: bytes) -> str:
    """A short public name for a key (16 hex digits), written into signed manifests so a
    verifier can tell "signed with another key" from "altered". Reveals nothing of it."""
    return hashlib.sha256(b"callguard evidence key id\0" + key).hexdigest()[:16]
