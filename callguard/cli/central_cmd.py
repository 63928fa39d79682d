"""``callguard central ...``: a desk's link to the central server.

::

    callguard central check --url https://srv:8443 --fingerprint AB:CD:...   # pin test
    callguard central sync --once --store desk.db --url ... --token ... --fingerprint ...
    callguard central status --store desk.db
    callguard central export CALL_UUID --out call.zip --user kim --key site.key \
        --url https://srv:8443 --fingerprint AB:CD:...   # a call of any desk, as evidence

``sync`` delivers the store's outbox (ended calls with their recordings, alerts) and, with
``--once``, returns when nothing is due (exit 1 if something could not be delivered);
without it, it runs until stopped. ``status`` prints the outbox counts as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from callguard.central.settings import CentralSettings
from callguard.config import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    cen = sub.add_parser("central", help="this desk's link to the central server")
    csub = cen.add_subparsers(dest="central_command", metavar="ACTION", required=True)

    check = csub.add_parser("check", help="fetch the server's certificate and check its pin")
    check.add_argument("--url", required=True)
    check.add_argument("--fingerprint", required=True)
    check.set_defaults(func=cmd_check)

    sync = csub.add_parser("sync", help="deliver the outbox to the central server")
    sync.add_argument("--once", action="store_true",
                      help="return when nothing is due (exit 1 if something failed)")
    sync.add_argument("--audio", choices=("opus", "flac"), default="opus")
    for p in (sync, csub.add_parser("status", help="the outbox's counts (JSON)")):
        p.add_argument("--store", type=Path, help="the call store (default: settings)")
        p.add_argument("--config", type=Path, help="settings file")
    sync.add_argument("--url", required=True)
    sync.add_argument("--token", required=True)
    sync.add_argument("--fingerprint", required=True)
    sync.set_defaults(func=cmd_sync)
    csub.choices["status"].set_defaults(func=cmd_status)

    export = csub.add_parser(
        "export", help="export a call from the central server as an evidence package",
        description="Sign in with a server account and export one call (any desk's, as the "
                    "account may) as an evidence package, checked at once. Only a lossless "
                    "(FLAC) recording can be: it still matches the desk's seal. The export is "
                    "in the server's access log. The password is asked (or --password-stdin).")
    export.add_argument("call_uuid", metavar="CALL_UUID")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--user", required=True, help="a server account")
    export.add_argument("--password-stdin", action="store_true")
    export.add_argument("--key", type=Path, help="the site key that signs the package "
                                                  "(created if missing); default: unsigned")
    export.add_argument("--url", required=True)
    export.add_argument("--fingerprint", required=True)
    export.set_defaults(func=cmd_export)

    publish = csub.add_parser(
        "publish", help="publish a rules file to every desk (admin account on the server)",
        description="Check the rules file here, then publish it on the central server (which "
                    "checks it again and keeps who, when and the note). Every desk takes it "
                    "within its poll interval if it checks and compiles there too, or keeps "
                    "its rules and reports why (see `callguard central desks`).")
    publish.add_argument("rules", type=Path)
    publish.add_argument("--note", default="")
    desks = csub.add_parser("desks", help="every desk: last seen, rules in force, refusals")
    for p in (publish, desks):
        p.add_argument("--user", required=True, help="a server account")
        p.add_argument("--password-stdin", action="store_true")
        p.add_argument("--url", required=True)
        p.add_argument("--fingerprint", required=True)
    publish.set_defaults(func=cmd_publish)
    desks.set_defaults(func=cmd_desks)


def _store_path(args: argparse.Namespace) -> Path:
    return args.store or load_settings(args.config).store_path


def cmd_check(args: argparse.Namespace) -> int:
    from callguard.central.pinning import fetch_pinned, fingerprint_of_pem

    parts = urlsplit(args.url)
    pem = fetch_pinned(parts.hostname or "", parts.port or 443, args.fingerprint)
    print(f"ok: {args.url} shows the pinned certificate {fingerprint_of_pem(pem)}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from callguard.central.client import HttpCentral
    from callguard.central.uploader import Uploader
    from callguard.store import Store

    store_path = _store_path(args)
    settings = CentralSettings(args.url, args.token, args.fingerprint, audio=args.audio,
                               cert_cache=store_path.with_name("central.pem"))

    async def go() -> int:
        central = HttpCentral(settings)
        try:
            async with Store.open(store_path) as store:
                uploader = Uploader(store, central, audio=args.audio)
                while True:
                    delivered = await uploader.run_once()
                    if args.once and delivered == 0:
                        counts = await store.outbox_counts()
                        print(json.dumps({**counts, "calls": uploader.stats.calls,
                                          "alerts": uploader.stats.alerts,
                                          "bytes": uploader.stats.bytes_uploaded,
                                          "last_error": uploader.stats.last_error}))
                        return 1 if counts["failing"] else 0
                    if delivered == 0:
                        await asyncio.sleep(1.0)
        finally:
            await central.aclose()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0


def cmd_status(args: argparse.Namespace) -> int:
    from callguard.store import Store

    async def go() -> dict[str, int]:
        async with Store.open(_store_path(args)) as store:
            return await store.outbox_counts()

    print(json.dumps(asyncio.run(go())))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import getpass

    from callguard.central.review import CentralReviewStore
    from callguard.evidence import export_package, load_or_create_key, verify_package

    password = (sys.stdin.readline().rstrip("\r\n") if args.password_stdin
                else getpass.getpass("password: "))
    key = load_or_create_key(args.key) if args.key else None
    folder = args.out.resolve().parent

    async def go() -> Path:
        store = await CentralReviewStore.sign_in(args.url, args.fingerprint, args.user,
                                                 password, folder=folder)
        try:
            call_id = store.id_of(args.call_uuid)
            return await export_package(store, call_id, args.out, store.name, key,
                                        role=store.role)
        finally:
            await store.close()

    out = asyncio.run(go())
    report = verify_package(out, key)
    print(f"call {args.call_uuid} exported to {out}")
    print(report.summary)
    return 0 if report.ok else 1


def _signed_in(args: argparse.Namespace):  # -> httpx.Client with a session
    import getpass

    import httpx

    from callguard.central.client import CentralRefused
    from callguard.central.review import client_context

    password = (sys.stdin.readline().rstrip("\r\n") if args.password_stdin
                else getpass.getpass("password: "))
    ssl = client_context(args.url, args.fingerprint, None)
    client = httpx.Client(base_url=args.url.rstrip("/"), verify=ssl, timeout=60)
    r = client.post("/api/v1/login", json={"name": args.user, "password": password})
    if r.status_code != 200:
        client.close()
        raise CentralRefused(f"sign-in refused ({r.status_code}): "
                             f"{r.json().get('error', '')}")
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return client


def cmd_publish(args: argparse.Namespace) -> int:
    from callguard.central.client import CentralRefused
    from callguard.rules.loader import load_rules

    text = args.rules.read_text(encoding="utf-8")
    load_rules(args.rules)  # a RulesError (exit 2) here: nothing is sent
    client = _signed_in(args)
    try:
        r = client.post("/api/v1/rules", json={"text": text, "note": args.note})
    finally:
        client.close()
    if r.status_code != 201:
        body = r.json()
        for line in body.get("problems", []):
            print(line, file=sys.stderr)
        raise CentralRefused(f"not published ({r.status_code}): {body.get('error', '')}")
    print(f"published {r.json()['version'][:12]}: every desk takes it at its next poll")
    return 0


def cmd_desks(args: argparse.Namespace) -> int:
    import datetime as dt

    from callguard.central.client import CentralRefused

    client = _signed_in(args)
    try:
        r = client.get("/api/v1/desks")
    finally:
        client.close()
    if r.status_code != 200:
        raise CentralRefused(f"refused ({r.status_code}): {r.json().get('error', '')}")
    for d in r.json()["desks"]:
        seen = (dt.datetime.fromtimestamp(d["last_seen"]).strftime("%Y-%m-%d %H:%M:%S")
                if d["last_seen"] else "never")
        state = "online" if d["online"] else "offline"
        rules = (d["rules_version"] or "-")[:12]
        refused = f"  refused {d['rules_error']}" if d["rules_error"] else ""
        print(f"{d['name']:20} {state:8} last seen {seen}  rules {rules}{refused}")
    return 0

