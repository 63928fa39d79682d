"""Repeat callers: a caller's number as a keyed hash, the same on every desk and the server.

Numbers arrive as SIP URIs or digits in many spellings (``sip:010-1234-5678@pbx``,
``+821012345678``). :func:`normalise_number` reduces them to national digits, and
:func:`caller_key` hashes those with HMAC-SHA-256 under the site secret, so the history can
be kept and shared with desks without spreading the numbers themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_URI = re.compile(r"^(?:sips?:|tel:)?([^@;]*)")


def normalise_number(remote: str) -> str:
    """National digits of a number or SIP URI (``+82`` → ``0``); other users' names kept
    lower-cased when there are no digits."""
    user = _URI.match(remote.strip()).group(1)  # type: ignore[union-attr]
    digits = re.sub(r"[^0-9+]", "", user)
    if digits.startswith("+82"):
        digits = "0" + digits[3:]
    elif digits.startswith("0082"):
        digits = "0" + digits[4:]
    digits = digits.replace("+", "")
    return digits or user.lower()


def repeat_key(site_secret: bytes) -> bytes:
    """The key of the callers' hash, derived from the site secret for this one purpose:
    desks receive it (they must hash a ringing number themselves, also while the server is
    down), never the site secret."""
    return hmac.new(site_secret, b"callguard repeat callers v1", hashlib.sha256).digest()


def caller_key(key: bytes, remote: str) -> str:
    """The keyed hash (hex) naming this caller in the repeat-caller history; ``key`` is
    :func:`repeat_key`."""
    return hmac.new(key, normalise_number(remote).encode("utf-8"),
                    hashlib.sha256).hexdigest()
