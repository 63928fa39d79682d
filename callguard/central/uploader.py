"""The desk's uploader: delivers the outbox to the central server, off the call path.

The outbox (schema 6) is filled by triggers in the same transactions as the rows it names,
so whatever is stored is queued. The uploader takes due items (alerts first), and for each:

- an **alert**: posts it (its key, made on the desk, makes a second delivery harmless);
- an **ended call**: checks the recording against the call's seal, compresses it
  (:mod:`callguard.audio.compress`; bit-exact, so a retry produces the same file and resumes
  its upload), uploads it in pieces by its SHA-256, then posts the call. The server answers
  only after it has the whole recording and it checks out; only then is the item done and
  the call marked synced, in one transaction.

A failure leaves the item queued with an exponential back-off (1 s doubling to 5 min): at
least once delivery, idempotent on the server.
:class:`~callguard.central.link.CentralLink` runs it on its own thread with its own event
loop and its own connection to the store, so no network wait or compression ever delays a
call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callguard.audio.compress import encode
from callguard.central.client import Central, CentralRefused, CentralUnavailable
from callguard.central.wire import AudioRef, call_payload
from callguard.errors import CallguardError
from callguard.store import Store
from callguard.store.records import OutboxItem, StoreError

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 300.0
IDLE_S = 1.0  # how often an idle uploader looks at the outbox


def backoff(tries: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``tries``-th failure: doubling from 1 s up to 5 min, with
    up to 20 % jitter so desks that lost the server together do not return together."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** max(0, tries))
    return base * (1 + 0.2 * (rng or random).random())


@dataclass
class SyncStats:
    """What one uploader has done since it started (for the status line and tests)."""

    calls: int = 0
    alerts: int = 0
    failures: int = 0
    bytes_uploaded: int = 0
    last_error: str | None = None
    lags_s: list[float] = field(default_factory=list)  # call end → verified, seconds


_ALERT_KIND = {"supervisor_notified": "supervisor_notified", "rest_started": "rest_started"}


class Uploader:
    """Delivers one store's outbox to one :class:`~callguard.central.client.Central`."""

    def __init__(self, store: Store, central: Central, *, audio: str = "opus",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.central = central
        self.audio = audio
        self.clock = clock
        self.stats = SyncStats()
        #: Called with ``{"kind", "call_uuid", "recipients"}`` when the server has an alert
        #: (``recipients``: the supervisors who had it on screen at once).
        self.on_alert: Callable[[dict[str, Any]], object] | None = None

    async def run_once(self, limit: int = 20) -> int:
        """Deliver the items due now (at most ``limit``); return how many were delivered.
        Stops at the first unreachable-server failure (the rest wait for the back-off)."""
        items = await self.store.outbox_due(self.clock(), limit)
        counts = await self.store.outbox_counts()
        self.central.outbox_depth = counts["pending"]  # type: ignore[attr-defined]
        delivered = 0
        for item in items:
            try:
                if item.kind == "alert":
                    await self._alert(item)
                else:
                    await self._call(item)
            except CentralUnavailable as exc:
                await self._failed(item, exc)
                break
            except (CentralRefused, CallguardError) as exc:
                await self._failed(item, exc)
                continue
            await self.store.outbox_done(item, self.clock())
            delivered += 1
        return delivered

    async def _failed(self, item: OutboxItem, exc: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        log.warning("central sync: %s %d not delivered (try %d): %s", item.kind, item.id,
                    item.tries + 1, exc)
        with contextlib.suppress(StoreError):
            await self.store.outbox_retry(item, self.clock() + backoff(item.tries),
                                          f"{type(exc).__name__}: {exc}")

    async def _alert(self, item: OutboxItem) -> None:
        if item.source is None or item.ref_id is None:
            raise StoreError(f"outbox item {item.id} names no alert")
        row = await self.store.alert_source(item.source, item.ref_id)
        if row is None:
            return  # its call was deleted: nothing left to tell
        if item.source == "audit_log":
            kind = _ALERT_KIND.get(row["kind"], "alert")
            raised_at = row["at"]
        else:
            kind = "protect" if item.source == "verdicts" else "crisis"
            raised_at = row["started_at"] + row["t_s"]
        payload: dict[str, Any] = {
            "key": f"{row['uuid'] or 'desk'}/{item.source}/{item.ref_id}",
            "kind": kind, "raised_at": raised_at, "counselor": row["counselor"] or "",
            "call_uuid": row["uuid"], "detail": row["detail"] or ""}
        answer = await self.central.post_alert(payload)
        self.stats.alerts += 1
        if self.on_alert is not None:
            try:
                self.on_alert({"kind": kind, "call_uuid": row["uuid"],
                               "recipients": list(answer.get("recipients") or [])})
            except Exception:
                log.exception("reporting a delivered alert failed")

    async def _call(self, item: OutboxItem) -> None:
        if item.call_id is None:
            raise StoreError(f"outbox item {item.id} names no call")
        call = await self.store.get_call(item.call_id)
        if call.uuid is None:
            raise StoreError(f"call {call.id} has no uuid")
        wav = await self.store.wav_bytes(call.id)
        audio: AudioRef | None = None
        if len(wav) > 44:
            if call.recording_sha256 and hashlib.sha256(wav).hexdigest() != call.recording_sha256:
                raise StoreError(f"call {call.id}: the recording no longer matches its seal")
            encoded = await asyncio.to_thread(encode, wav, self.audio)
            await self.central.upload_blob(encoded.sha256, encoded.data)
            self.stats.bytes_uploaded += len(encoded.data)
            audio = AudioRef(encoded.sha256, encoded.codec, len(encoded.data), encoded.frames)
        rules_text = None
        if call.rules_version is not None:
            with contextlib.suppress(StoreError):
                rules_text = (await self.store.ruleset(call.rules_version))[1]
        answer = await self.central.post_call(call_payload(call, call.uuid, audio, rules_text))
        if not answer.get("verified"):
            raise CentralUnavailable("the server did not confirm the call")
        self.stats.calls += 1
        if call.ended_at is not None:
            self.stats.lags_s.append(self.clock() - call.ended_at)
