"""Evidence packages: one call exported as a zip that a third party can check.

Pure Python (no Qt)::

    key = load_or_create_key(store.path.parent / "evidence.key")   # 32 bytes, mode 0600
    await export_package(store, call_id, Path("call-12.zip"), "lee", key)
    report = verify_package(Path("call-12.zip"), key)   # .ok, .lines, .exit_code

The layout and what each check proves are described in :mod:`callguard.evidence.package`.
"""

from callguard.evidence.keys import KEY_BYTES, KeyFileError, key_id, load_or_create_key, read_key
from callguard.evidence.package import FORMAT, FORMAT_VERSION, EvidenceError, export_package
from callguard.evidence.verify import Finding, VerifyReport, verify_package

DEFAULT_KEY_NAME = "evidence.key"  # the site key's file name, beside the call store

__all__ = [
    "DEFAULT_KEY_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "KEY_BYTES",
    "EvidenceError",
    "Finding",
    "KeyFileError",
    "VerifyReport",
    "export_package",
    "key_id",
    "load_or_create_key",
    "read_key",
    "verify_package",
]
