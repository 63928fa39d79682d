"""The desk's connection to the central server: a small interface, HTTPS with a pinned
certificate behind it, and an in-memory fake beside it (:mod:`callguard.central.fake`).

Errors say what to do next: :class:`CentralUnavailable` (network, server or database down:
try again later) and :class:`CentralRefused` (the server said no to this request: fix it;
retrying the same bytes will not help).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from callguard.central.pinning import (
    fetch_pinned,
    fingerprint_of_pem,
    normalise_fingerprint,
    pinned_context,
)
from callguard.central.settings import CentralSettings
from callguard.errors import InputError, ResourceError

CHUNK = 256 * 1024  # bytes per upload request: a dropped connection loses at most this


class CentralUnavailable(ResourceError):
    """The central server cannot be reached or is failing now; the desk retries later."""


class CentralRefused(InputError):
    """The central server refused a request (bad token, bad payload, audio that does not
    verify); the message is the server's."""


class Central(Protocol):
    """What a desk asks of the central server."""

    async def blob_offset(self, sha256: str) -> tuple[bool, int]: ...
    async def upload_blob(self, sha256: str, data: bytes) -> None: ...
    async def post_call(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    async def post_alert(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    async def get_rules(self, have: str | None) -> dict[str, Any] | None: ...
    async def rules_status(self, version: str, error: str | None) -> None: ...
    async def desk_config(self) -> dict[str, Any]: ...
    async def flagged_callers(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class HttpCentral:
    """:class:`Central` over HTTPS. The server's certificate is fetched once, accepted only
    if its SHA-256 fingerprint is the configured one, cached, and from then on the only
    certificate trusted. ``transport`` replaces the network in tests."""

    def __init__(self, settings: CentralSettings, *, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.outbox_depth = 0  # reported to the server with every request (metrics)

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            verify: Any = True
            if self._transport is None and self.settings.url.startswith("https:"):
                verify = await asyncio.to_thread(self._pinned_context)
            self._client = httpx.AsyncClient(
                base_url=self.settings.url.rstrip("/"), verify=verify,
                transport=self._transport, timeout=self._timeout,
                headers={"Authorization": f"Bearer {self.settings.token}"})
        return self._client

    def _pinned_context(self):  # -> ssl.SSLContext
        want = normalise_fingerprint(self.settings.fingerprint)
        cache = self.settings.cert_cache
        pem = None
        if cache is not None and cache.is_file():
            text = cache.read_text(encoding="ascii")
            if fingerprint_of_pem(text) == want:
                pem = text
        if pem is None:
            parts = urlsplit(self.settings.url)
            try:
                pem = fetch_pinned(parts.hostname or "", parts.port or 443, want)
            except ResourceError as exc:
                raise CentralUnavailable(str(exc)) from exc
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(pem, encoding="ascii")
        return pinned_context(pem)

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        client = await self._http()
        headers = {"X-Callguard-Outbox": str(self.outbox_depth), **kw.pop("headers", {})}
        try:
            response = await client.request(method, url, headers=headers, **kw)
        except httpx.TransportError as exc:
            raise CentralUnavailable(f"the central server cannot be reached: "
                                     f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise CentralUnavailable(f"the central server answered {response.status_code}: "
                                     f"{_error_text(response)}")
        return response

    async def blob_offset(self, sha256: str) -> tuple[bool, int]:
        """Whether the server has the whole blob, and how many bytes of it."""
        r = await self._request("HEAD", f"/api/v1/blobs/{sha256}")
        if r.status_code not in (200, 404):
            raise CentralRefused(f"blob check refused ({r.status_code})")
        return r.status_code == 200, int(r.headers.get("upload-offset", "0"))

    async def upload_blob(self, sha256: str, data: bytes) -> None:
        """Upload ``data`` (named by its SHA-256), resuming where the server stands."""
        done, offset = await self.blob_offset(sha256)
        restarts = 0
        while not done:
            piece = data[offset:offset + CHUNK]
            r = await self._request("PATCH", f"/api/v1/blobs/{sha256}", content=piece,
                                    headers={"Upload-Offset": str(offset),
                                             "Upload-Length": str(len(data)),
                                             "Content-Type": "application/offset+octet-stream"})
            if r.status_code == 409:  # the server stands elsewhere: resume from there
                restarts += 1  # (another desk may be sending the same recording)
                if restarts > 20:
                    raise CentralUnavailable(f"the upload keeps moving: {_error_text(r)}")
                offset = int(r.headers.get("upload-offset", "0"))
                continue
            if r.status_code not in (201, 204):
                raise CentralRefused(f"upload refused ({r.status_code}): {_error_text(r)}")
            offset += len(piece)
            done = r.status_code == 201

    async def _post(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = await self._request("POST", url, json=payload)
        if r.status_code == 422:  # audio not complete or not verifying: redo the upload
            raise CentralUnavailable(f"the server did not verify it: {_error_text(r)}")
        if r.status_code not in (200, 201):
            raise CentralRefused(f"{url} refused ({r.status_code}): {_error_text(r)}")
        return r.json()

    async def post_call(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/api/v1/calls", payload)

    async def post_alert(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/api/v1/alerts", payload)

    async def get_rules(self, have: str | None) -> dict[str, Any] | None:
        """The newest published rules (``version``, ``text``, ``published_by``, ``note``),
        or ``None`` when they are the version ``have`` (or none are published)."""
        headers = {"If-None-Match": f'"{have}"'} if have else {}
        r = await self._request("GET", "/api/v1/rules", headers=headers)
        if r.status_code in (304, 404):
            return None
        if r.status_code != 200:
            raise CentralRefused(f"rules refused ({r.status_code}): {_error_text(r)}")
        return r.json()

    async def rules_status(self, version: str, error: str | None) -> None:
        await self._post("/api/v1/desk/rules-status", {"version": version, "error": error})

    async def desk_config(self) -> dict[str, Any]:
        r = await self._request("GET", "/api/v1/desk/config")
        if r.status_code != 200:
            raise CentralRefused(f"desk config refused ({r.status_code}): {_error_text(r)}")
        return r.json()

    async def flagged_callers(self) -> dict[str, Any]:
        r = await self._request("GET", "/api/v1/callers/flagged")
        if r.status_code != 200:
            raise CentralRefused(f"caller list refused ({r.status_code}): {_error_text(r)}")
        return r.json()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:300]
    except ValueError:
        return response.text[:300]
