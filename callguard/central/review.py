"""The central server as a call store for review: every desk's calls, read over HTTPS.

:class:`CentralReviewStore` answers the part of :class:`~callguard.store.Store`'s interface
the review use cases, the review window and evidence export use (list, open, play, export,
record verdicts, notifications), with the same record types, so the faces need no second
code path: a supervisor PC with no phone line reviews the whole centre with the window it
knows. It signs in as a person (a server account); the server enforces who may read what
and writes every view, playback and export to its access log.

Calls are named by UUID on the server; the window works with integer ids, so this store
hands out small integers for the UUIDs it has listed (:meth:`uuid_of`). Recordings come as
the compressed file the desk uploaded; FLAC decodes to exactly the sealed WAV (an evidence
package can be made from it), Opus to a close copy (playable; its export is refused, since
it no longer matches the desk's seal: export such a call on the desk).

Alerts are shown as notifications: each alert is an :class:`~callguard.store.AuditRecord`
whose ``kind`` is the alert's (``crisis``, ``protect``, ``supervisor_notified``,
``rest_started``) and whose ``actor`` is the counselor.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx

from callguard.audio.compress import decode, stereo_wav
from callguard.central.client import CentralRefused, CentralUnavailable
from callguard.central.pinning import (
    fetch_pinned,
    fingerprint_of_pem,
    normalise_fingerprint,
    pinned_context,
)
from callguard.errors import InputError
from callguard.store.records import (
    ActionRecord,
    AuditRecord,
    CallNotFoundError,
    CallRecord,
    CallSummary,
    HitRecord,
    ReviewRecord,
    StoreError,
    UtteranceRecord,
    VerdictRecord,
)
from callguard.vocabulary import Leg


class SignInRefused(InputError):
    """Wrong name or password (or the account is disabled) on the central server."""


def client_context(url: str, fingerprint: str, cache: Path | None) -> Any:
    """An SSL context trusting only the pinned server certificate (fetched and checked on
    first use, then cached in ``cache``)."""
    from urllib.parse import urlsplit

    want = normalise_fingerprint(fingerprint)
    if cache is not None and cache.is_file():
        text = cache.read_text(encoding="ascii")
        if fingerprint_of_pem(text) == want:
            return pinned_context(text)
    parts = urlsplit(url)
    pem = fetch_pinned(parts.hostname or "", parts.port or 443, want)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(pem, encoding="ascii")
    return pinned_context(pem)


class CentralReviewStore:
    """A signed-in session on the central server, with the review part of the Store API.
    Open it with :meth:`sign_in`; ``path`` is a local folder (the evidence key lives
    there)."""

    def __init__(self, client: httpx.AsyncClient, name: str, role: str, path: Path) -> None:
        self._client = client
        self.name = name
        self.role = role
        self.path = path / "central-review"
        self._ids: dict[str, int] = {}
        self._uuids: dict[int, str] = {}

    @classmethod
    async def sign_in(cls, url: str, fingerprint: str, name: str, password: str, *,
                      folder: Path, transport: httpx.AsyncBaseTransport | None = None,
                      ) -> CentralReviewStore:
        verify: Any = True
        if transport is None:
            verify = await asyncio.to_thread(client_context, url, fingerprint,
                                             folder / "central.pem")
        client = httpx.AsyncClient(base_url=url.rstrip("/"), verify=verify, timeout=30,
                                   transport=transport)
        try:
            r = await client.post("/api/v1/login", json={"name": name, "password": password})
        except httpx.TransportError as exc:
            await client.aclose()
            raise CentralUnavailable(f"the central server cannot be reached: {exc}") from exc
        if r.status_code != 200:
            await client.aclose()
            if r.status_code == 401:
                raise SignInRefused("wrong name or password on the central server")
            raise CentralUnavailable(f"sign-in failed ({r.status_code})")
        body = r.json()
        client.headers["Authorization"] = f"Bearer {body['token']}"
        return cls(client, body["name"], body["role"], folder)

    @property
    def token(self) -> str:
        return self._client.headers["Authorization"].removeprefix("Bearer ")

    async def close(self) -> None:
        await self._client.aclose()

    # -- plumbing -------------------------------------------------------------------------------
    async def _get(self, url: str, **params: Any) -> Any:
        try:
            r = await self._client.get(url, params={k: v for k, v in params.items()
                                                    if v is not None})
        except httpx.TransportError as exc:
            raise CentralUnavailable(f"the central server cannot be reached: {exc}") from exc
        return self._check(r)

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        try:
            r = await self._client.post(url, json=body)
        except httpx.TransportError as exc:
            raise CentralUnavailable(f"the central server cannot be reached: {exc}") from exc
        return self._check(r)

    @staticmethod
    def _check(r: httpx.Response) -> Any:
        if r.status_code >= 500:
            raise CentralUnavailable(f"the central server answered {r.status_code}")
        if r.status_code == 404:
            raise StoreError(r.json().get("error", "not found"))
        if r.status_code in (401, 403):
            raise PermissionError(r.json().get("error", "not allowed"))
        if r.status_code >= 400:
            raise CentralRefused(r.json().get("error", f"refused ({r.status_code})"))
        return r.json() if r.headers.get("content-type", "").startswith(
            "application/json") else r.content

    def _id(self, call_uuid: str) -> int:
        if call_uuid not in self._ids:
            n = len(self._ids) + 1
            self._ids[call_uuid], self._uuids[n] = n, call_uuid
        return self._ids[call_uuid]

    def id_of(self, call_uuid: str) -> int:
        """The integer this store uses for the call named ``call_uuid`` on the server."""
        from callguard.central.wire import check_uuid

        return self._id(check_uuid(call_uuid, "call"))

    def uuid_of(self, call_id: int) -> str:
        try:
            return self._uuids[call_id]
        except KeyError:
            raise CallNotFoundError(call_id) from None

    def _summary(self, c: dict[str, Any]) -> CallSummary:
        return CallSummary(self._id(c["uuid"]), c["direction"], c.get("source", "sip"),
                           c["started_at"], c["duration_s"], c["end_reason"], c["flagged"],
                           c["stage"], "", c["counselor"], c["hung_up_by"],
                           c.get("recording_sha256"), c["reviewed"])

    # -- the Store interface the review faces use ------------------------------------------------
    async def list_calls(self, flagged_only: bool = False, limit: int = 100, *,
                         since: float | None = None, until: float | None = None,
                         counselor: str | None = None, direction: str | None = None,
                         category: str | None = None, action: str | None = None,
                         reviewed: bool | None = None, desk: str | None = None,
                         team: str | None = None) -> list[CallSummary]:
        body = await self._get(
            "/api/v1/calls", flagged="1" if flagged_only else None, limit=limit, since=since,
            until=until, counselor=counselor, direction=direction, category=category,
            action=action, desk=desk, team=team,
            reviewed=None if reviewed is None else ("1" if reviewed else "0"))
        return [self._summary(c) for c in body["calls"]]

    async def counselors(self) -> list[str]:
        return (await self._get("/api/v1/choices"))["counselors"]

    async def categories(self) -> list[str]:
        return (await self._get("/api/v1/choices"))["categories"]

    async def desks(self) -> list[str]:
        return (await self._get("/api/v1/choices"))["desks"]

    async def teams(self) -> list[str]:
        return (await self._get("/api/v1/choices"))["teams"]

    async def get_call(self, call_id: int) -> CallRecord:
        d = await self._get(f"/api/v1/calls/{self.uuid_of(call_id)}")
        utterances = []
        for n, u in enumerate(d["utterances"]):
            hits = tuple(HitRecord(k, n, h["rule_id"], h["category"], h["severity"], h["term"],
                                   h["start"], h["end"], h["matched"])
                         for k, h in enumerate(u["hits"]))
            utterances.append(UtteranceRecord(n, call_id, u["leg"], u["start_s"], u["end_s"],
                                              u["text"], u["status"], u["reason"],
                                              hits=hits, at_s=u["at_s"]))
        s = self._summary(d)
        return CallRecord(
            s.id, s.direction, s.source, s.started_at, s.duration_s, s.end_reason, s.flagged,
            s.stage, d["remote"], s.counselor, s.hung_up_by, d["recording_sha256"], s.reviewed,
            ended_at=d["ended_at"], sample_rate=d["sample_rate"],
            rules_version=d["rules_version"], uuid=d["uuid"],
            utterances=tuple(utterances),
            verdicts=tuple(VerdictRecord(n, call_id, v["t_s"], v["kind"], v["prompt"],
                                         v["hangup"], v["reason"], cause=v["cause"])
                           for n, v in enumerate(d["verdicts"])),
            actions=tuple(ActionRecord(n, call_id, a["t_s"], a["kind"], a["detail"], a["ok"],
                                       a["error"], prompt=a["prompt"], seconds=a["seconds"])
                          for n, a in enumerate(d["actions"])))

    async def _frames(self, call_id: int) -> tuple[Any, int]:
        call_uuid = self.uuid_of(call_id)
        detail = await self._get(f"/api/v1/calls/{call_uuid}")  # logged as a view
        data = await self._get(f"/api/v1/calls/{call_uuid}/audio")  # logged as a playback
        rate = detail["sample_rate"]
        return await asyncio.to_thread(decode, data, rate), rate

    async def read_audio(self, call_id: int, leg: str) -> bytes:
        frames, _ = await self._frames(call_id)
        column = 0 if leg == Leg.CALLER else 1
        return frames[:, column].astype("<i2").tobytes()

    async def wav_bytes(self, call_id: int) -> bytes:
        frames, rate = await self._frames(call_id)
        return await asyncio.to_thread(stereo_wav, frames, rate)

    async def check_recording(self, call_id: int) -> tuple[str | None, str]:
        call = await self.get_call(call_id)
        current = hashlib.sha256(await self.wav_bytes(call_id)).hexdigest()
        return call.recording_sha256, current

    async def ruleset(self, version: str) -> tuple[str, str]:
        body = await self._get(f"/api/v1/rulesets/{version}")
        return f"central:{version[:12]}", body["text"]

    async def reviews(self, call_id: int) -> list[ReviewRecord]:
        body = await self._get(f"/api/v1/calls/{self.uuid_of(call_id)}/reviews")
        return [ReviewRecord(r["id"], call_id, r["at"], r["reviewer"], r["verdict"], r["note"])
                for r in body["reviews"]]

    async def add_review(self, call_id: int, reviewer: str, verdict: str, note: str = "",
                         at: float | None = None) -> int:
        body = await self._post(f"/api/v1/calls/{self.uuid_of(call_id)}/reviews",
                                {"verdict": verdict, "note": note})
        return body["reviews"][-1]["id"]

    async def delete_recording(self, call_id: int, actor: str, role: str,
                               at: float | None = None) -> None:
        raise PermissionError("recordings on the central server are deleted by its retention "
                              "policy, not from a review window")

    async def audit(self, actor: str, role: str, kind: str, detail: str = "",
                    call_id: int | None = None, at: float | None = None) -> None:
        """Evidence exports are written to the server's access log; other local audit
        kinds have no meaning here and are dropped."""
        if kind == "evidence_exported" and call_id is not None:
            await self._post(f"/api/v1/calls/{self.uuid_of(call_id)}/access",
                             {"action": "export", "detail": detail})

    async def audit_log(self, kind: str | None = None, call_id: int | None = None,
                        limit: int = 100) -> list[AuditRecord]:
        """Alerts as notification entries (see the module docstring); nothing for a call."""
        if call_id is not None or self.role not in ("supervisor", "admin"):
            return []
        body = await self._get("/api/v1/alerts", after=0)
        # The actor shown is "counselor · desk": a supervisor must know where to go.
        out = [AuditRecord(a["id"], a["raised_at"], f"{a['counselor']} · {a['desk']}",
                           "counselor", a["kind"],
                           self._ids.get(a["call_uuid"]) if a["call_uuid"] else None,
                           f"{a['desk']}: {a['detail']}" if a["detail"] else a["desk"])
               for a in body["alerts"] if kind is None or a["kind"] == kind]
        return out[-limit:]

    async def notes_seen(self, name: str) -> tuple[float, int] | None:
        body = await self._get("/api/v1/alerts", after=0)
        seen = body["seen"]
        at = next((a["raised_at"] for a in body["alerts"] if a["id"] == seen), None)
        return None if not seen else (at or 0.0, seen)

    async def set_notes_seen(self, name: str, at: float, entry_id: int) -> bool:
        await self._post("/api/v1/alerts/seen", {"upto": entry_id})
        return True

    async def now(self) -> float:
        return time.time()
