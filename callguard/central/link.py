"""A desk's whole link to the central server, on one thread of its own: the uploader
(:mod:`callguard.central.uploader`), the rules follower and the repeat-caller cache.

**Rules** (:class:`RulesFollower`): every ``poll_s`` the desk asks for the newest published
rules (by ETag). A new version is checked and compiled *here*, as this desk's engine would
load it (its own prompt files, its own Kiwi); errors, and prompts this desk cannot play,
refuse it. Only if it passes is it written, atomically,
to the desk's central rules file, which the running agent reloads on change (keeping its
last good rules if anything still fails); either way the server is told the outcome, so the
admin sees which desk runs which version and why a desk refused one.

**Repeat callers** (:class:`CallerCache`): the list of callers (keyed hashes) with flagged
calls in the last days, from every desk, kept in a file beside the store so it also works
while the server is down. :meth:`CallerCache.lookup` answers for a ringing number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callguard.central.callers import caller_key
from callguard.central.client import Central, CentralRefused, CentralUnavailable
from callguard.central.uploader import SyncStats, Uploader
from callguard.services.rules_admin import check_text, write_atomic
from callguard.store import Store
from callguard.store.records import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RulesPoll:
    """One poll's outcome: ``unchanged``, ``switched`` (written to the rules file) or
    ``refused`` (``error`` says why); ``version`` is the server's newest."""

    outcome: str
    version: str | None = None
    error: str | None = None


class RulesFollower:
    """Follows the server's published rules into ``target`` (the desk's central rules
    file). Prompt files are looked for in ``base_dir``."""

    def __init__(self, central: Central, target: Path, base_dir: Path) -> None:
        self.central = central
        self.target = target
        self.base_dir = base_dir
        self.version: str | None = None
        self.refused: str | None = None  # the newest version, when this desk refused it
        if target.is_file():
            from callguard.services.rules_admin import text_version

            self.version = text_version(target.read_text(encoding="utf-8"))

    async def poll(self) -> RulesPoll:
        got = await self.central.get_rules(self.version)
        if got is None:
            return RulesPoll("unchanged", self.version)
        version, text = got["version"], got["text"]
        if version == self.refused:
            return RulesPoll("refused", version, "already refused")
        check = await asyncio.to_thread(check_text, text, name=self.target.name,
                                        base_dir=self.base_dir)
        # Besides errors, a prompt this desk cannot play refuses the version: the desk
        # would warn and end calls with a chime in place of the words the admin chose.
        unplayable = [p for p in check.problems if "cannot be played" in p.message]
        if not check.ok or unplayable or check.version != version:
            error = ("; ".join(str(p) for p in [*check.errors, *unplayable])[:1500]
                     or "the text does not match its version")
            self.refused = version
            log.warning("central rules %s refused on this desk: %s", version[:12], error)
            await self.central.rules_status(version, error)
            return RulesPoll("refused", version, error)
        await asyncio.to_thread(write_atomic, self.target, text)
        self.version, self.refused = version, None
        log.info("central rules %s in force (published by the admin)", version[:12])
        await self.central.rules_status(version, None)
        return RulesPoll("switched", version)


@dataclass(frozen=True, slots=True)
class RepeatCaller:
    """A ringing caller's history: ``flagged`` calls in the last ``days`` days (any desk);
    ``last_at`` unix epoch seconds of the newest."""

    flagged: int
    days: int
    last_at: float | None


class CallerCache:
    """The repeat-caller list, kept in ``path`` (JSON, 0600: keyed hashes only, never a
    number) so it survives restarts and a server that is down."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.key: bytes | None = None
        self.days = 30
        self.callers: dict[str, tuple[int, float | None]] = {}
        self.fetched_at: float | None = None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text(encoding="utf-8"))
            self._apply(bytes.fromhex(data["key"]), data["days"], data["callers"],
                        data.get("fetched_at"))

    def _apply(self, key: bytes, days: int, callers: list[dict], fetched_at: float | None,
               ) -> None:
        table = {c["key"]: (int(c["flagged"]), c.get("last_at")) for c in callers}
        with self._lock:
            self.key, self.days, self.callers, self.fetched_at = key, days, table, fetched_at

    def lookup(self, remote: str) -> RepeatCaller | None:
        """The history of ``remote`` (a number or SIP URI), ``None`` if none is known."""
        with self._lock:
            if self.key is None or not remote:
                return None
            hit = self.callers.get(caller_key(self.key, remote))
            days = self.days
        if hit is None:
            return None
        return RepeatCaller(hit[0], days, hit[1])

    async def refresh(self, central: Central, now: float) -> int:
        config = await central.desk_config()
        listing = await central.flagged_callers()
        key = bytes.fromhex(config["repeat_key"])
        self._apply(key, int(listing["days"]), listing["callers"], now)
        data = {"key": key.hex(), "days": listing["days"], "callers": listing["callers"],
                "fetched_at": now}
        await asyncio.to_thread(_write_private_json, self.path, data)
        return len(self.callers)


def _write_private_json(path: Path, data: dict) -> None:
    import os

    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    tmp.replace(path)


class CentralLink:
    """The uploader, the rules follower and the caller cache on one thread with its own
    event loop and its own store connection. Nothing here ever blocks a call; every
    failure is logged, kept in :attr:`state` for the status line, and retried."""

    def __init__(self, store_path: Path, make_central: Callable[[], Central], *,
                 rules_target: Path | None, rules_base: Path, audio: str = "opus",
                 poll_s: float = 30.0, idle_s: float = 1.0) -> None:
        self.store_path = store_path
        self.make_central = make_central
        self.rules_target = rules_target
        self.rules_base = rules_base
        self.audio = audio
        self.poll_s = poll_s
        self.idle_s = idle_s
        self.stats = SyncStats()
        self.callers = CallerCache(store_path.with_name("central-callers.json"))
        self.state: dict[str, object] = {"server": "unknown", "rules": None,
                                         "rules_error": None, "pending": None}
        #: Called (from the link's thread) with the rules file a new published version
        #: was written to; the engine sets it to put the rules into force.
        self.on_rules: Callable[[Path], object] | None = None
        #: Called (from the link's thread) with a copy of :attr:`state` when it changes:
        #: ``server`` ("ok", "unreachable", "unknown"), ``pending`` (items waiting),
        #: ``rules`` (the version in force from the server), ``rules_error``.
        self.on_state: Callable[[dict[str, object]], object] | None = None
        self._reported: dict[str, object] | None = None
        #: Called (from the link's thread) when the server has an alert of this desk:
        #: ``{"kind", "call_uuid", "recipients"}`` (see :class:`Uploader`).
        self.on_alert: Callable[[dict[str, Any]], object] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._main, name="callguard-central",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Deliver now: a call just ended or an alert was raised."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        central = self.make_central()
        follower = (RulesFollower(central, self.rules_target, self.rules_base)
                    if self.rules_target is not None else None)
        next_poll = 0.0
        try:
            async with Store.open(self.store_path) as store:
                uploader = Uploader(store, central, audio=self.audio)
                uploader.stats = self.stats
                uploader.on_alert = self.on_alert
                while not self._stop.is_set():
                    delivered = 0
                    try:
                        delivered = await uploader.run_once()
                        self.state["pending"] = (await store.outbox_counts())["pending"]
                        if time.monotonic() >= next_poll:
                            next_poll = time.monotonic() + self.poll_s
                            await self._poll(central, follower)
                        self.state["server"] = ("unreachable" if self.stats.last_error and
                                                delivered == 0 and self.state["pending"]
                                                else "ok")
                    except CentralUnavailable as exc:
                        self.state["server"] = "unreachable"
                        log.warning("central server unreachable: %s", exc)
                    except (CentralRefused, StoreError) as exc:
                        log.warning("central link: %s", exc)
                    self._report()
                    if delivered == 0:
                        await asyncio.to_thread(self._wake.wait, self.idle_s)
                        self._wake.clear()
        finally:
            await central.aclose()

    def _report(self) -> None:
        if self.on_state is None or self.state == self._reported:
            return
        self._reported = dict(self.state)
        try:
            self.on_state(dict(self.state))
        except Exception:
            log.exception("reporting the central link's state failed")

    async def _poll(self, central: Central, follower: RulesFollower | None) -> None:
        await self.callers.refresh(central, time.time())
        if follower is not None:
            result = await follower.poll()
            self.state["rules"] = follower.version
            self.state["rules_error"] = result.error if result.outcome == "refused" else None
            if result.outcome == "switched" and self.on_rules is not None:
                try:
                    self.on_rules(follower.target)
                except Exception:
                    log.exception("putting the central rules into force failed")
