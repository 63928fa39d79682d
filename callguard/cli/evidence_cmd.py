"""``callguard export`` and ``callguard verify``: evidence packages of stored calls.

``callguard export CALL_ID --out FILE [--store DB] [--key FILE | --unsigned] [--by NAME]``
writes the package and checks it. It is signed with the site key beside the store
(``evidence.key``, created on first use, as the review window does), or with the existing key
file ``--key`` names (never created: a mistyped path must not mint a new key), or not at all
with ``--unsigned``. Exit 0 written, 1 the call cannot be exported, 2 bad arguments (no
store, no such key).

``callguard verify PACKAGE [--key FILE]`` prints one line per check and a final sentence.
Exit 0 intact, 1 altered, 2 unreadable (not a zip, no manifest, or an unreadable key).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from callguard.cli.failure import failed, say
from callguard.config import ConfigError, load_settings
from callguard.errors import CallguardError
from callguard.evidence import (
    DEFAULT_KEY_NAME,
    KeyFileError,
    export_package,
    key_id,
    load_or_create_key,
    read_key,
    verify_package,
)
from callguard.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export", help="export a stored call as an evidence package (zip)",
        description="Export one call (recording, transcript, events, rules in force) as a "
                    "zip whose files are hashed in a signed manifest. The package holds "
                    "personal data (the caller's words and number): handle it as evidence.")
    export.add_argument("call_id", type=int, metavar="CALL_ID")
    export.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the zip to write (replaced if it exists)")
    export.add_argument("--store", type=Path, metavar="DB",
                        help="the call store (default: from the settings file)")
    export.add_argument("--config", type=Path, help="settings file (for the default store)")
    keys = export.add_mutually_exclusive_group()
    keys.add_argument("--key", type=Path, metavar="FILE",
                      help=f"an existing site key to sign with (default: {DEFAULT_KEY_NAME} "
                           "beside the store, created on first use)")
    keys.add_argument("--unsigned", action="store_true", help="do not sign the package")
    export.add_argument("--by", metavar="NAME", default=None,
                        help="who exports, for the manifest and the audit log "
                             "(default: the login name)")
    export.set_defaults(func=cmd_export)

    verify = sub.add_parser(
        "verify", help="check an evidence package: intact or altered",
        description="Check every file of an evidence package against its manifest, the "
                    "recording against the hash sealed when the call ended, the rules file "
                    "against its version and, with --key, the signature. "
                    "Exit 0 intact, 1 altered, 2 unreadable.")
    verify.add_argument("package", type=Path, metavar="PACKAGE")
    verify.add_argument("--key", type=Path, metavar="FILE",
                        help="the site key: also check the signature (never created here)")
    verify.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    key = None
    if args.key is not None:
        try:
            key = read_key(args.key)
        except KeyFileError as exc:
            return failed(exc)  # 2
    report = verify_package(args.package, key)
    print("\n".join(report.lines))
    return report.exit_code


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


async def _export(store_path: Path, call_id: int, out: Path, by: str,
                  key: bytes | None) -> Path:
    async with Store.open(store_path) as store:
        # Whoever can read the store file directly acts as an administrator.
        return await export_package(store, call_id, out, by, key, role="admin")


def cmd_export(args: argparse.Namespace) -> int:
    store_path = args.store
    if store_path is None:
        try:
            store_path = load_settings(args.config).store_path
        except ConfigError as exc:
            return failed(exc)  # 2
    # Opening a store creates a missing file: a mistyped path must not become an empty store.
    if not store_path.is_file():
        print(f"callguard export: no call store at {store_path}", file=sys.stderr)
        return 2
    key = None
    key_path = None
    if not args.unsigned:
        key_path = args.key or store_path.parent / DEFAULT_KEY_NAME
        try:
            key = read_key(key_path) if args.key else load_or_create_key(key_path)
        except (KeyFileError, OSError) as exc:  # OSError: the new key cannot be written
            say(exc)
            return 2
    try:
        out = asyncio.run(_export(store_path, args.call_id, args.out, args.by or _login(), key))
    except CallguardError as exc:  # EvidenceError, StoreError (CallNotFoundError): 1
        return failed(exc)
    except OSError as exc:  # the package cannot be written
        say(exc)
        return 1
    how = f"signed with {key_path} (key id {key_id(key)})" if key else "unsigned"
    print(f"call {args.call_id} exported to {out}, {how}")
    report = verify_package(out, key)
    print(report.summary)
    return 0 if report.ok else 1
