"""``callguard server ...``: the central server, run on the server machine by its admin.

::

    callguard server init --dir /etc/callguard --name callguard.example.local \\
        --database postgresql://callguard@/callguard --blobs /srv/callguard/blobs
    callguard server migrate --config /etc/callguard/server.toml
    callguard server user add boss --role admin --config ...   # password asked twice
    callguard server desk add desk-01 --config ...             # prints the desk's token
    callguard server run --config /etc/callguard/server.toml

``init`` prints the TLS certificate's fingerprint; each desk pins it (``[central]
fingerprint``) together with the URL and its token.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

MIN_PASSWORD = 8


def register(sub: argparse._SubParsersAction) -> None:
    srv = sub.add_parser("server", help="the central server (on the server machine)")
    ssub = srv.add_subparsers(dest="server_command", metavar="ACTION", required=True)

    init = ssub.add_parser("init", help="make the TLS certificate, site secret and settings")
    init.add_argument("--dir", type=Path, required=True, help="folder for the files")
    init.add_argument("--name", action="append", default=[],
                      help="a host name or IP address desks use (repeatable)")
    init.add_argument("--database", default="postgresql://callguard@/callguard",
                      help="PostgreSQL connection URL")
    init.add_argument("--blobs", type=Path, default=Path("/var/lib/callguard/blobs"),
                      help="folder for the recordings (a NAS mount in production)")
    init.add_argument("--port", type=int, default=8443)
    init.set_defaults(func=cmd_init)

    for name, func, text in (("migrate", cmd_migrate, "bring the database schema up to date"),
                             ("run", cmd_run, "run the server (HTTPS) until stopped")):
        p = ssub.add_parser(name, help=text)
        p.add_argument("--config", type=Path, required=True, help="server.toml")
        p.set_defaults(func=func)

    desk = ssub.add_parser("desk", help="enrol or revoke a desk")
    dsub = desk.add_subparsers(dest="desk_command", metavar="ACTION", required=True)
    for name, func in (("add", cmd_desk_add), ("revoke", cmd_desk_revoke)):
        p = dsub.add_parser(name)
        p.add_argument("name")
        p.add_argument("--config", type=Path, required=True, help="server.toml")
        p.set_defaults(func=func)

    user = ssub.add_parser("user", help="accounts of counselors, supervisors and admins")
    usub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = usub.add_parser("add", help="make an account or set its password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("counselor", "supervisor", "admin"))
    add.add_argument("--team", default="")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.add_argument("--config", type=Path, required=True, help="server.toml")
    add.set_defaults(func=cmd_user_add)


def _settings(args: argparse.Namespace):
    from callguard.server.settings import load_server_settings

    return load_server_settings(args.config)


def cmd_init(args: argparse.Namespace) -> int:
    from callguard.server.admin import init

    path, fingerprint = init(args.dir, args.name, args.database, args.blobs, args.port)
    print(f"settings: {path}")
    print(f"fingerprint: {fingerprint}")
    print("Give each desk the URL, its token (callguard server desk add NAME) and this "
          "fingerprint.")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from callguard.server.database import migrate

    print(f"schema at revision {migrate(_settings(args).database)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from callguard.server.admin import serve

    serve(_settings(args))
    return 0


def cmd_desk_add(args: argparse.Namespace) -> int:
    from callguard.server.admin import add_desk

    token = add_desk(_settings(args), args.name)
    print(token)
    print(f"(the token of desk {args.name}: shown once, put it in the desk's [central] "
          "token)", file=sys.stderr)
    return 0


def cmd_desk_revoke(args: argparse.Namespace) -> int:
    from callguard.server.admin import revoke_desk

    revoke_desk(_settings(args), args.name)
    print(f"desk {args.name} revoked")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from callguard.server.admin import AdminError, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise AdminError("the two passwords differ")
    add_user(_settings(args), args.name, args.role, password, args.team)
    print(f"account {args.name} ({args.role}) set")
    return 0
