"""``callguard accounts add|list``: supervisor and admin accounts, made at install time.

Accounts are never made from the desktop app: whoever first opened the supervisor menu on
a counselor's PC would otherwise become its supervisor or admin. The person installing
callguard (or the site's administrator later) makes them here, on the PC whose call store
they belong to, as the user that runs ``callguard gui`` (the store is that user's private
file)::

    callguard accounts add kim --role supervisor        # the password is asked twice
    callguard accounts add boss --role admin --password-stdin < pw.txt
    callguard accounts list

``add`` refuses a name that exists unless ``--reset`` (a new password for it). The store keeps
only a scrypt hash; every change is in the audit log (``password_set``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from callguard.cli.failure import say
from callguard.config import load_settings
from callguard.services.accounts import ACCOUNT_ROLES
from callguard.store import Store

MIN_PASSWORD = 8


def register(sub: argparse._SubParsersAction) -> None:
    acc = sub.add_parser("accounts", help="supervisor and admin accounts (install time)")
    asub = acc.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    add = asub.add_parser("add", help="make a supervisor or admin account",
                          description="Make a supervisor or admin account in the call "
                          "store; the password is asked twice on the terminal.")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[str(r) for r in ACCOUNT_ROLES])
    add.add_argument("--reset", action="store_true",
                     help="the name exists: give it a new password (and this role)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input (scripts)")
    add.set_defaults(func=cmd_add)

    lst = asub.add_parser("list", help="the accounts (name and role)")
    lst.set_defaults(func=cmd_list)
    for p in (add, lst):
        p.add_argument("--config", type=Path,
                       help="settings file (default: ~/.config/callguard/config.toml)")
        p.add_argument("--store", type=Path, metavar="STORE",
                       help="the call store (default: [store] path of the settings)")


def _store_path(args: argparse.Namespace) -> Path:
    return args.store or load_settings(args.config).store_path


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("password: ")
    if getpass.getpass("the same password again: ") != first:
        say("the two passwords differ; nothing changed")
        return ""
    return first


async def _add(path: Path, name: str, role: str, password: str, reset: bool) -> str | None:
    async with Store.open(path) as store:
        users = dict(await store.users())
        if name in users and not reset:
            return (f"an account named {name!r} exists ({users[name]}); give --reset for a "
                    "new password")
        await store.set_password(name, role, password)
    return None


def cmd_add(args: argparse.Namespace) -> int:
    """Exit 0 when the account is made, 1 when refused, 2 without a usable password."""
    os.umask(0o077)  # a new store is the counselor's private file
    name = args.name.strip()
    if not name:
        say("an account needs a name")
        return 2
    password = _password(args.password_stdin)
    if password is None:
        say("no terminal to ask the password on: give it on standard input with "
            "--password-stdin")
        return 2
    if not password:
        return 2
    if len(password) < MIN_PASSWORD:
        say(f"the password needs at least {MIN_PASSWORD} characters; nothing changed")
        return 2
    path = _store_path(args)
    refused = asyncio.run(_add(path, name, args.role, password, args.reset))
    if refused:
        say(refused)
        return 1
    print(f"{args.role} account {name!r} {'reset' if args.reset else 'made'} in {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    path = _store_path(args)
    if not path.is_file():
        print(f"no call store at {path}: no accounts")
        return 0

    async def users() -> list[tuple[str, str]]:
        async with Store.open(path) as store:
            return await store.users()

    rows = asyncio.run(users())
    for name, role in rows:
        print(f"{name}\t{role}")
    if not rows:
        print(f"no accounts in {path}: make one with "
              "`callguard accounts add NAME --role admin`")
    return 0
