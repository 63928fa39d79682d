"""A desk's ``[central]`` settings: where the central server is and how to trust it::

    [central]
    url = "https://callguard.example.local:8443"
    token = "cgd_..."          # from `callguard server desk add NAME` (keep the file private)
    fingerprint = "AB:CD:..."  # from `callguard server init`: the certificate desks pin
    audio = "opus"             # "opus" (about 3 kB/s) or "flac" (lossless, seal checked
                               # by the server)
    poll_s = 30                # how often to ask for new rules
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CentralSettings:
    url: str
    token: str
    fingerprint: str
    audio: str = "opus"
    poll_s: float = 30.0
    #: Where the pinned certificate is cached after its fingerprint checked out (default:
    #: ``central.pem`` beside the call store).
    cert_cache: Path | None = None
