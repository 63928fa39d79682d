"""An in-memory central server for fast unit tests of the desk's side (the real server
runs on PostgreSQL in the integration tests). It keeps what it receives, checks blobs by
their SHA-256, and can be told to fail like a down network."""

from __future__ import annotations

import hashlib
from typing import Any

from callguard.central.client import CentralRefused, CentralUnavailable
from callguard.central.wire import check_alert, check_call


class FakeCentral:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.partial: dict[str, bytes] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.down = False  # True: every request fails as unreachable
        self.deliveries = 0  # call posts received, duplicates included
        self.outbox_depth = 0
        self.rules: dict[str, Any] | None = None
        self.rules_reports: list[tuple[str, str | None]] = []
        self.repeat_key = b"k" * 32
        self.callers: list[dict[str, Any]] = []  # {"key", "flagged", "last_at"}
        self.recipients: list[str] = []  # supervisors "watching" (alert answers)

    def _up(self) -> None:
        if self.down:
            raise CentralUnavailable("the fake central server is down")

    async def blob_offset(self, sha256: str) -> tuple[bool, int]:
        self._up()
        if sha256 in self.blobs:
            return True, len(self.blobs[sha256])
        return False, len(self.partial.get(sha256, b""))

    async def upload_blob(self, sha256: str, data: bytes) -> None:
        self._up()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CentralRefused("the bytes do not hash to the blob's name")
        self.blobs[sha256] = data

    async def post_call(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._up()
        p = check_call(payload)
        audio = p.get("audio")
        if audio is not None and audio["sha256"] not in self.blobs:
            raise CentralUnavailable("the call's audio is not here yet")
        self.deliveries += 1
        created = p["uuid"] not in self.calls
        self.calls.setdefault(p["uuid"], p)
        return {"uuid": p["uuid"], "created": created, "verified": True}

    async def post_alert(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._up()
        p = check_alert(payload)
        created = p["key"] not in self.alerts
        self.alerts.setdefault(p["key"], p)
        return {"created": created, "recipients": list(self.recipients)}

    async def get_rules(self, have: str | None) -> dict[str, Any] | None:
        self._up()
        if self.rules is None or self.rules["version"] == have:
            return None
        return dict(self.rules)

    async def rules_status(self, version: str, error: str | None) -> None:
        self._up()
        self.rules_reports.append((version, error))

    async def desk_config(self) -> dict[str, Any]:
        self._up()
        return {"repeat_key": self.repeat_key.hex(), "repeat_days": 30}

    async def flagged_callers(self) -> dict[str, Any]:
        self._up()
        return {"days": 30, "callers": list(self.callers)}

    def publish(self, text: str) -> str:
        """Make ``text`` the newest published rules; return its version."""
        version = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.rules = {"version": version, "text": text, "published_by": "admin", "note": ""}
        return version

    async def aclose(self) -> None:
        pass
