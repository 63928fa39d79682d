"""The central server's HTTP API (Starlette on uvicorn), over PostgreSQL and the blob store.

Routes (JSON unless said; every ``/api`` route needs ``Authorization: Bearer <token>``,
a desk's token or a session token from ``POST /api/v1/login``):

- ``GET /healthz``: 200 ``{"ok": true}`` when PostgreSQL answers, else 503.
- ``GET /metrics``: Prometheus text (desks online, calls ingested, sync lag, outbox depth).
- desk: ``HEAD|PATCH /api/v1/blobs/{sha256}`` (resumable upload: ``Upload-Offset`` and
  ``Upload-Length`` headers, as tus), ``POST /api/v1/calls`` (an ended call, idempotent by
  its UUID; accepted only when its audio is here and checks out), ``POST /api/v1/alerts``
  (idempotent by its key).
- people: ``POST /api/v1/login``, ``GET /api/v1/calls`` (filters: ``flagged``, ``desk``,
  ``counselor``, ``since``, ``until``, ``before`` (a cursor), ``limit``),
  ``GET /api/v1/calls/{uuid}`` (logged as a view), ``GET /api/v1/calls/{uuid}/audio``
  (logged as a playback), ``POST /api/v1/calls/{uuid}/export`` (logged as an export),
  ``GET /api/v1/alerts`` and ``GET /api/v1/alerts/stream`` (server-sent events),
  ``GET /api/v1/access-log`` (admin).

Errors are ``{"error": "..."}`` with 400 (bad input), 401 (no or bad token), 403 (not
allowed), 404, 409 (upload offset), 422 (audio does not verify), 503 (database down).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from callguard.audio.compress import AudioCodecError, ogg_opus_frames, seal_of
from callguard.central.callers import caller_key, repeat_key
from callguard.central.wire import WireError, check_alert, check_call, check_uuid
from callguard.errors import CallguardError
from callguard.server import database
from callguard.server.auth import (
    PEOPLE_ROLES,
    SESSION_PREFIX,
    Principal,
    new_token,
    token_hash,
)
from callguard.server.blobs import BlobError, BlobRejected, BlobStore, FileBlobStore
from callguard.server.settings import ServerSettings
from callguard.store.store import verify_password

log = logging.getLogger(__name__)

ALERT_CHANNEL = "callguard_alerts"
MAX_BODY = 64 * 1024 * 1024  # bytes: one request (a call's JSON or a piece of audio)
ONLINE_S = 120  # a desk seen within this many seconds counts as online


class ApiError(CallguardError):
    """A request the server refuses: ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.desks_online = Gauge("callguard_desks_online", "desks seen in the last 2 min",
                                  registry=self.registry)
        self.calls = Counter("callguard_calls_ingested", "calls accepted (new)",
                             registry=self.registry)
        self.alerts = Counter("callguard_alerts_received", "alerts accepted (new)",
                              registry=self.registry)
        self.lag = Histogram("callguard_sync_lag_seconds",
                             "call end on the desk to accepted on the server",
                             buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400),
                             registry=self.registry)
        self.outbox = Gauge("callguard_desk_outbox_depth",
                            "items waiting in the desks' outboxes (as last reported)",
                            registry=self.registry)


class Server:
    """The app's state: settings, the pool, the blob store, the alert fan-out."""

    def __init__(self, settings: ServerSettings, blobs: BlobStore | None = None) -> None:
        self.settings = settings
        self.blobs: BlobStore = blobs or FileBlobStore(settings.blobs)
        self.repeat_key = repeat_key(settings.secret())
        self.pool: Any = None
        self.metrics = Metrics()
        #: The open alert streams of this process: queue → the signed-in user's name.
        self.listeners: dict[asyncio.Queue[int], str] = {}
        self.outbox_depth: dict[int, int] = {}
        self.desk_seen: dict[int, float] = {}
        self._listen_task: asyncio.Task[None] | None = None
        self.check_lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.pool = await database.open_pool(self.settings.database, self.settings.pool_size)
        self._listen_task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listen_task:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listen_task
        if self.pool is not None:
            await self.pool.close()

    async def _listen(self) -> None:
        """Fan PostgreSQL's alert notifications out to this process's SSE streams. With
        several server processes each gets every alert (LISTEN/NOTIFY), so any of them can
        serve a supervisor."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.settings.database, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {ALERT_CHANNEL}")
                    for q in list(self.listeners):  # catch up whatever was missed
                        q.put_nowait(0)
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            alert_id = int(note.payload)
                            for q in list(self.listeners):
                                q.put_nowait(alert_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL restarted: listen again
                log.warning("alert listener lost PostgreSQL (%s); retrying", exc)
                await asyncio.sleep(1.0)

    # -- helpers -----------------------------------------------------------------------------
    async def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise ApiError(401, "sign in first (Authorization: Bearer <token>)")
        token = header[7:].strip()
        h = token_hash(token)
        async with self.pool.connection() as conn:
            if token.startswith(SESSION_PREFIX):
                cur = await conn.execute(
                    "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user_name"
                    " WHERE s.token_hash = %s AND s.expires_at > now() AND NOT u.disabled",
                    (h,))
                row = await cur.fetchone()
                if row is None:
                    raise ApiError(401, "the session has expired or is unknown: sign in again")
                return Principal(row["role"], row["name"])
            cur = await conn.execute(
                "UPDATE desks SET last_seen = now() WHERE token_hash = %s AND NOT revoked"
                " RETURNING id, name", (h,))
            row = await cur.fetchone()
            await conn.commit()
        if row is None:
            raise ApiError(401, "unknown or revoked desk token")
        self.desk_seen[row["id"]] = time.time()
        depth = request.headers.get("x-callguard-outbox")
        if depth and depth.isdigit():
            self.outbox_depth[row["id"]] = int(depth)
        return Principal("desk", row["name"], desk_id=row["id"])

    async def require(self, request: Request, *roles: str) -> Principal:
        who = await self.principal(request)
        if who.role not in roles:
            raise ApiError(403, f"a {who.role} may not do this")
        return who

    async def log_access(self, conn: Any, who: Principal, action: str,
                         call_uuid: str | None, detail: str = "") -> None:
        await conn.execute("INSERT INTO access_log (actor, role, action, call_uuid, detail)"
                           " VALUES (%s, %s, %s, %s, %s)",
                           (who.name, who.role, action, call_uuid, detail))


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "request too large")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None


Handler = Callable[[Server, Request], Awaitable[Response]]


def _route(server: Server, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(server, request)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)
        except (WireError, AudioCodecError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except BlobRejected as exc:
            return JSONResponse({"error": str(exc)}, 409,
                                headers={"Upload-Offset": str(exc.offset)})
        except BlobError as exc:
            log.error("blob store: %s", exc)
            return JSONResponse({"error": "the blob store is failing"}, 503)
        except (psycopg.OperationalError, TimeoutError) as exc:
            log.warning("database unavailable: %s", exc)
            return JSONResponse({"error": "the database is unavailable; try again"}, 503)
    return endpoint


# -- health and metrics -----------------------------------------------------------------------
async def healthz(server: Server, request: Request) -> Response:
    async with server.pool.connection() as conn:
        await conn.execute("SELECT 1")
    return JSONResponse({"ok": True})


async def metrics(server: Server, request: Request) -> Response:
    now = time.time()
    server.metrics.desks_online.set(sum(1 for t in server.desk_seen.values()
                                        if now - t < ONLINE_S))
    server.metrics.outbox.set(sum(server.outbox_depth.values()))
    return Response(generate_latest(server.metrics.registry),
                    media_type="text/plain; version=0.0.4")


# -- desk uploads ------------------------------------------------------------------------------
async def blob_head(server: Server, request: Request) -> Response:
    await server.require(request, "desk")
    sha = request.path_params["sha256"]
    size = await asyncio.to_thread(server.blobs.size, sha)
    if size is not None:
        return Response(status_code=200, headers={"Upload-Offset": str(size),
                                                  "Content-Length": "0"})
    offset = await asyncio.to_thread(server.blobs.offset, sha)
    return Response(status_code=404, headers={"Upload-Offset": str(offset)})


async def blob_patch(server: Server, request: Request) -> Response:
    await server.require(request, "desk")
    sha = request.path_params["sha256"]
    try:
        offset = int(request.headers["upload-offset"])
        total = int(request.headers["upload-length"])
    except (KeyError, ValueError):
        raise ApiError(400, "Upload-Offset and Upload-Length headers are required") from None
    data = await request.body()
    if len(data) > MAX_BODY:
        raise ApiError(413, "send the recording in smaller pieces")
    done = await asyncio.to_thread(server.blobs.append, sha, offset, data, total)
    return Response(status_code=201 if done else 204,
                    headers={"Upload-Offset": str(offset + len(data))})


async def post_call(server: Server, request: Request) -> Response:
    who = await server.require(request, "desk")
    p = check_call(await _json(request))
    audio = p.get("audio")
    verified = None
    if audio is not None:
        if await asyncio.to_thread(server.blobs.size, audio["sha256"]) != audio["bytes"]:
            raise ApiError(422, "the call's audio is not (all) here yet: upload it first")
        data = await asyncio.to_thread(server.blobs.read, audio["sha256"])
        if audio["codec"] == "flac":
            seal = await asyncio.to_thread(seal_of, data, "flac", p["sample_rate"])
            if seal != p["recording_sha256"]:
                raise ApiError(422, "the audio does not match the desk's seal")
            verified = "seal"
        else:
            # The length from the Ogg pages' granule positions: decoding would cost ~1 CPU-s
            # a call (measured by callguard.bench.central_bench); the content is the blob
            # whose SHA-256 the desk computed from its sealed samples.
            frames = ogg_opus_frames(data, p["sample_rate"])
            if abs(frames - audio["frames"]) > p["sample_rate"] // 50:  # one 20 ms packet
                raise ApiError(422, f"the audio holds {frames} samples per leg, the desk "
                                    f"says {audio['frames']}")
            verified = "blob"
    categories = sorted({h["category"] for u in p["utterances"] for h in u["hits"]})
    crisis = any(v.get("cause") == "crisis" for v in p["verdicts"])
    async with server.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO calls (uuid, desk_id, desk_call_id, counselor, direction, source,"
            " remote, remote_key, started_at, ended_at, duration_s, end_reason, hung_up_by,"
            " flagged, crisis, stage, categories, rules_version, sample_rate,"
            " recording_sha256, audio_sha256, audio_codec, audio_bytes, audio_frames,"
            " audio_verified) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (uuid) DO NOTHING RETURNING uuid",
            (p["uuid"], who.desk_id, p["desk_call_id"], p["counselor"], p["direction"],
             p["source"], p["remote"], caller_key(server.repeat_key, p["remote"]),
             _ts(p["started_at"]), _ts(p["ended_at"]), p["duration_s"], p["end_reason"],
             p["hung_up_by"], p["flagged"], crisis, p["stage"], categories,
             p["rules_version"], p["sample_rate"], p["recording_sha256"],
             audio and audio["sha256"], audio and audio["codec"], audio and audio["bytes"],
             audio and audio["frames"], verified))
        created = await cur.fetchone() is not None
        text = p.get("rules_text")
        if created and text and p["rules_version"] == hashlib.sha256(
                text.encode("utf-8")).hexdigest():
            await conn.execute("INSERT INTO rulesets (version, text) VALUES (%s, %s)"
                               " ON CONFLICT DO NOTHING", (p["rules_version"], text))
        if not created:
            cur = await conn.execute("SELECT desk_id FROM calls WHERE uuid = %s", (p["uuid"],))
            row = await cur.fetchone()
            await conn.rollback()
            if row is None or row["desk_id"] != who.desk_id:
                raise ApiError(403, "that call belongs to another desk")
            return JSONResponse({"uuid": p["uuid"], "created": False, "verified": True})
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO utterances (call_uuid, seq, leg, start_s, end_s, at_s, text,"
                " status, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(p["uuid"], u["seq"], u["leg"], u["start_s"], u["end_s"], u.get("at_s"),
                  u["text"], u["status"], u.get("reason")) for u in p["utterances"]])
            await cur.executemany(
                "INSERT INTO hits (call_uuid, seq, utterance_seq, rule_id, category, severity,"
                " term, start_ch, end_ch, matched)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(p["uuid"], h["seq"], u["seq"], h["rule_id"], h["category"], h["severity"],
                  h["term"], h["start"], h["end"], h["matched"])
                 for u in p["utterances"] for h in u["hits"]])
            await cur.executemany(
                "INSERT INTO verdicts (call_uuid, seq, t_s, kind, prompt, hangup, reason, cause)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(p["uuid"], v["seq"], v["t_s"], v["kind"], v.get("prompt"), v["hangup"],
                  v["reason"], v.get("cause")) for v in p["verdicts"]])
            await cur.executemany(
                "INSERT INTO actions (call_uuid, seq, t_s, kind, detail, ok, error, prompt,"
                " seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(p["uuid"], a["seq"], a["t_s"], a["kind"], a["detail"], a["ok"],
                  a.get("error"), a.get("prompt"), a.get("seconds")) for a in p["actions"]])
        await conn.commit()
    server.metrics.calls.inc()
    server.metrics.lag.observe(max(0.0, time.time() - p["ended_at"]))
    return JSONResponse({"uuid": p["uuid"], "created": True, "verified": True}, 201)


async def post_alert(server: Server, request: Request) -> Response:
    who = await server.require(request, "desk")
    p = check_alert(await _json(request))
    async with server.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO alerts (key, desk_id, call_uuid, counselor, kind, detail, raised_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
            (f"{who.desk_id}/{p['key']}", who.desk_id, p["call_uuid"], p["counselor"],
             p["kind"], p["detail"], _ts(p["raised_at"])))
        row = await cur.fetchone()
        if row is not None:
            await conn.execute("SELECT pg_notify(%s, %s)", (ALERT_CHANNEL, str(row["id"])))
        await conn.commit()
    if row is not None:
        server.metrics.alerts.inc()
    # Who has it on screen now: the supervisors whose review window holds an alert stream
    # open on this server (told back to the counselor: "who was alerted").
    recipients = sorted(set(server.listeners.values()))
    return JSONResponse({"created": row is not None, "recipients": recipients},
                        201 if row else 200)


# -- people -------------------------------------------------------------------------------------
async def login(server: Server, request: Request) -> Response:
    body = await _json(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise ApiError(400, "name and password are required")
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT role, pw_hash FROM users WHERE name = %s"
                                 " AND NOT disabled", (name,))
        row = await cur.fetchone()
        ok = row is not None and await asyncio.to_thread(verify_password, password,
                                                         row["pw_hash"])
        who = Principal(row["role"] if ok else "unknown", name)
        await server.log_access(conn, who, "login" if ok else "login_failed", None)
        if not ok:
            await conn.commit()
            raise ApiError(401, "wrong name or password")
        token = new_token(SESSION_PREFIX)
        await conn.execute(
            "INSERT INTO sessions (token_hash, user_name, expires_at)"
            " VALUES (%s, %s, now() + make_interval(secs => %s))",
            (token_hash(token), name, server.settings.session_hours * 3600))
        await conn.commit()
    return JSONResponse({"token": token, "role": who.role, "name": name})


_SUMMARY = ("c.uuid, d.name AS desk, c.counselor, c.direction, c.source, c.started_at,"
            " c.duration_s, c.end_reason, c.hung_up_by, c.flagged, c.crisis, c.stage,"
            " c.categories, c.reviewed, c.recording_sha256")


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["uuid"] = str(row["uuid"])
    out["started_at"] = _epoch(row["started_at"])
    return out


async def list_calls(server: Server, request: Request) -> Response:
    who = await server.require(request, *PEOPLE_ROLES)
    q = request.query_params
    where, args = [], []
    if who.role == "counselor":
        where.append("c.counselor = %s")
        args.append(who.name)
    elif q.get("counselor"):
        where.append("c.counselor = %s")
        args.append(q["counselor"])
    if q.get("flagged") in ("1", "true"):
        where.append("c.flagged")
    if q.get("desk"):
        where.append("d.name = %s")
        args.append(q["desk"])
    if q.get("team") and who.role != "counselor":
        where.append("c.counselor IN (SELECT name FROM users WHERE team = %s)")
        args.append(q["team"])
    if q.get("direction"):
        where.append("c.direction = %s")
        args.append(q["direction"])
    if q.get("category"):
        where.append("c.categories @> ARRAY[%s]")
        args.append(q["category"])
    if q.get("reviewed") in ("0", "1", "true", "false"):
        where.append("c.reviewed" if q["reviewed"] in ("1", "true") else "NOT c.reviewed")
    action = q.get("action")
    if action == "cut_off":
        where.append("c.hung_up_by = 'agent'")
    elif action == "warned":
        where.append("c.stage IN ('warned', 'final')")
    elif action == "none":
        where.append("c.stage IN ('none', 'notice')")
    try:
        for key, op in (("since", ">="), ("until", "<")):
            if q.get(key):
                where.append(f"c.started_at {op} %s")
                args.append(_ts(float(q[key])))
        if q.get("before"):  # cursor: "<epoch>,<uuid>" of the last row of the previous page
            at, _, last = q["before"].partition(",")
            where.append("(c.started_at, c.uuid) < (%s, %s)")
            args += [_ts(float(at)), check_uuid(last, "before")]
        limit = min(max(int(q.get("limit", 100)), 1), 500)
    except ValueError as exc:
        raise ApiError(400, f"bad filter: {exc}") from None
    sql = (f"SELECT {_SUMMARY} FROM calls c JOIN desks d ON d.id = c.desk_id"
           f"{' WHERE ' + ' AND '.join(where) if where else ''}"
           " ORDER BY c.started_at DESC, c.uuid DESC LIMIT %s")
    async with server.pool.connection() as conn:
        cur = await conn.execute(sql, (*args, limit))
        rows = [_summary(r) for r in await cur.fetchall()]
    return JSONResponse({"calls": rows})


async def _call_row(conn: Any, who: Principal, call_uuid: str) -> dict[str, Any]:
    cur = await conn.execute(f"SELECT {_SUMMARY}, c.remote, c.ended_at, c.sample_rate,"
                             " c.rules_version, c.recording_sha256, c.audio_sha256,"
                             " c.audio_codec, c.audio_frames, c.audio_verified"
                             " FROM calls c JOIN desks d ON d.id = c.desk_id"
                             " WHERE c.uuid = %s", (call_uuid,))
    row = await cur.fetchone()
    if row is None or (not who.may_read_all_calls() and row["counselor"] != who.name):
        raise ApiError(404, "no such call (or not yours to read)")
    return row


async def get_call(server: Server, request: Request) -> Response:
    who = await server.require(request, *PEOPLE_ROLES)
    call_uuid = check_uuid(request.path_params["uuid"], "call")
    async with server.pool.connection() as conn:
        row = await _call_row(conn, who, call_uuid)
        out = _summary(row)
        out.update(remote=row["remote"], ended_at=_epoch(row["ended_at"]),
                   sample_rate=row["sample_rate"], rules_version=row["rules_version"],
                   recording_sha256=row["recording_sha256"],
                   audio={"sha256": row["audio_sha256"], "codec": row["audio_codec"],
                          "frames": row["audio_frames"], "verified": row["audio_verified"]})
        hits: dict[int, list[dict[str, Any]]] = {}
        cur = await conn.execute("SELECT utterance_seq, rule_id, category, severity, term,"
                                 " start_ch AS start, end_ch AS end, matched FROM hits"
                                 " WHERE call_uuid = %s ORDER BY seq", (call_uuid,))
        for h in await cur.fetchall():
            hits.setdefault(h.pop("utterance_seq"), []).append(h)
        cur = await conn.execute("SELECT seq, leg, start_s, end_s, at_s, text, status, reason"
                                 " FROM utterances WHERE call_uuid = %s ORDER BY start_s, seq",
                                 (call_uuid,))
        out["utterances"] = [{**u, "hits": hits.get(u["seq"], [])}
                             for u in await cur.fetchall()]
        cur = await conn.execute("SELECT t_s, kind, prompt, hangup, reason, cause FROM verdicts"
                                 " WHERE call_uuid = %s ORDER BY t_s, seq", (call_uuid,))
        out["verdicts"] = await cur.fetchall()
        cur = await conn.execute("SELECT t_s, kind, detail, ok, error, prompt, seconds"
                                 " FROM actions WHERE call_uuid = %s ORDER BY t_s, seq",
                                 (call_uuid,))
        out["actions"] = await cur.fetchall()
        await server.log_access(conn, who, "view", call_uuid)
        await conn.commit()
    return JSONResponse(out)


async def get_audio(server: Server, request: Request) -> Response:
    who = await server.require(request, *PEOPLE_ROLES)
    call_uuid = check_uuid(request.path_params["uuid"], "call")
    export = request.method == "POST"
    async with server.pool.connection() as conn:
        row = await _call_row(conn, who, call_uuid)
        if not row["audio_sha256"]:
            raise ApiError(404, "this call has no recording on the server")
        await server.log_access(conn, who, "export" if export else "playback", call_uuid)
        await conn.commit()
    data = await asyncio.to_thread(server.blobs.read, row["audio_sha256"])
    media = "audio/flac" if row["audio_codec"] == "flac" else "audio/ogg"
    return Response(data, media_type=media, headers={"X-Audio-SHA256": row["audio_sha256"]})


def _alert(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "desk": row["desk"], "counselor": row["counselor"],
            "kind": row["kind"], "detail": row["detail"],
            "call_uuid": None if row["call_uuid"] is None else str(row["call_uuid"]),
            "raised_at": _epoch(row["raised_at"]), "received_at": _epoch(row["received_at"])}


async def _alerts_after(server: Server, after: int, limit: int = 200) -> list[dict[str, Any]]:
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT a.*, d.name AS desk FROM alerts a JOIN desks d"
                                 " ON d.id = a.desk_id WHERE a.id > %s ORDER BY a.id LIMIT %s",
                                 (after, limit))
        return [_alert(r) for r in await cur.fetchall()]


async def list_alerts(server: Server, request: Request) -> Response:
    who = await server.require(request, "supervisor", "admin")
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        raise ApiError(400, "after must be an alert id") from None
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT alerts_seen FROM users WHERE name = %s", (who.name,))
        seen = (await cur.fetchone() or {"alerts_seen": 0})["alerts_seen"]
        cur = await conn.execute("SELECT count(*) AS n FROM alerts WHERE id > %s", (seen,))
        unseen = (await cur.fetchone())["n"]
    return JSONResponse({"alerts": await _alerts_after(server, after), "unseen": unseen,
                         "seen": seen})


async def mark_alerts_seen(server: Server, request: Request) -> Response:
    who = await server.require(request, "supervisor", "admin")
    body = await _json(request)
    upto = body.get("upto") if isinstance(body, dict) else None
    if not isinstance(upto, int) or isinstance(upto, bool):
        raise ApiError(400, "upto must be an alert id")
    async with server.pool.connection() as conn:
        await conn.execute("UPDATE users SET alerts_seen = greatest(alerts_seen, %s)"
                           " WHERE name = %s", (upto, who.name))
        await conn.commit()
    return JSONResponse({"seen": upto})


async def alert_stream(server: Server, request: Request) -> Response:
    """Server-sent events: one ``alert`` event per alert after ``?after=`` (or the
    ``Last-Event-ID`` header), then each new one as it arrives; a comment every 15 s keeps
    proxies from closing the stream."""
    who = await server.require(request, "supervisor", "admin")
    try:
        after = int(request.headers.get("last-event-id")
                    or request.query_params.get("after", "0"))
    except ValueError:
        raise ApiError(400, "after must be an alert id") from None
    queue: asyncio.Queue[int] = asyncio.Queue()
    server.listeners[queue] = who.name

    async def events() -> AsyncIterator[bytes]:
        last = after
        try:
            yield b": callguard alerts\n\n"
            while True:
                for alert in await _alerts_after(server, last):
                    last = alert["id"]
                    yield (f"id: {last}\nevent: alert\n"
                           f"data: {json.dumps(alert, ensure_ascii=False)}\n\n").encode()
                try:
                    await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                if await request.is_disconnected():
                    return
        finally:
            server.listeners.pop(queue, None)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def access_log(server: Server, request: Request) -> Response:
    await server.require(request, "admin")
    q = request.query_params
    where, args = [], []
    if q.get("call"):
        where.append("call_uuid = %s")
        args.append(check_uuid(q["call"], "call"))
    if q.get("actor"):
        where.append("actor = %s")
        args.append(q["actor"])
    sql = ("SELECT id, at, actor, role, action, call_uuid, detail FROM access_log"
           f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT 1000")
    async with server.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        rows = [{**r, "at": _epoch(r["at"]),
                 "call_uuid": None if r["call_uuid"] is None else str(r["call_uuid"])}
                for r in await cur.fetchall()]
    return JSONResponse({"entries": rows})


# -- central rules -----------------------------------------------------------------------------
def _check_rules(server: Server, text: str):  # -> callguard.services.rules_admin.Check
    from callguard.config import DEFAULT_RULES
    from callguard.services.rules_admin import check_text

    base = server.settings.rules_dir or DEFAULT_RULES.parent
    return check_text(text, name="rules.toml", base_dir=base)


async def publish_rules(server: Server, request: Request) -> Response:
    """An admin publishes a rules file: checked and compiled here first (as every desk will
    again before it switches), kept with who, when and why."""
    who = await server.require(request, "admin")
    body = await _json(request)
    text, note = (body.get("text"), body.get("note", "")) if isinstance(body, dict) else (
        None, "")
    if not isinstance(text, str) or not isinstance(note, str):
        raise ApiError(400, "text (the rules file) and note are required")
    async with server.check_lock:  # Kiwi: one check at a time
        check = await asyncio.to_thread(_check_rules, server, text)
    if not check.ok:
        return JSONResponse({"error": "the rules have errors: not published",
                             "problems": list(check.lines)}, 400)
    async with server.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO rules_versions (version, text, published_by, note)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (version) DO UPDATE SET"
            " published_by = EXCLUDED.published_by, published_at = now(), note = EXCLUDED.note",
            (check.version, text, who.name, note))
        await conn.execute("INSERT INTO rulesets (version, text) VALUES (%s, %s)"
                           " ON CONFLICT DO NOTHING", (check.version, text))
        await server.log_access(conn, who, "rules_published", None, check.version[:12])
        await conn.commit()
    return JSONResponse({"version": check.version, "warnings": list(check.lines)}, 201)


async def current_rules(server: Server, request: Request) -> Response:
    """The newest published rules (``ETag`` = version; ``If-None-Match`` → 304)."""
    await server.require(request, "desk", *PEOPLE_ROLES)
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT version, text, published_by, published_at, note"
                                 " FROM rules_versions ORDER BY published_at DESC, id DESC"
                                 " LIMIT 1")
        row = await cur.fetchone()
    if row is None:
        return JSONResponse({"error": "no rules have been published"}, 404)
    etag = f'"{row["version"]}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse({"version": row["version"], "text": row["text"],
                         "published_by": row["published_by"],
                         "published_at": _epoch(row["published_at"]), "note": row["note"]},
                        headers={"ETag": etag})


async def rules_history(server: Server, request: Request) -> Response:
    await server.require(request, "supervisor", "admin")
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT version, published_by, published_at, note"
                                 " FROM rules_versions ORDER BY published_at DESC, id DESC"
                                 " LIMIT 200")
        rows = [{**r, "published_at": _epoch(r["published_at"])} for r in await cur.fetchall()]
    return JSONResponse({"versions": rows})


async def desk_rules_status(server: Server, request: Request) -> Response:
    """A desk says which rules it runs, or why it refused the newest ones."""
    who = await server.require(request, "desk")
    body = await _json(request)
    version = body.get("version") if isinstance(body, dict) else None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(version, str) or (error is not None and not isinstance(error, str)):
        raise ApiError(400, "version (and optionally error) are required")
    async with server.pool.connection() as conn:
        if error:
            await conn.execute("UPDATE desks SET rules_error = %s, rules_checked_at = now()"
                               " WHERE id = %s", (f"{version[:12]}: {error}"[:2000],
                                                  who.desk_id))
        else:
            await conn.execute("UPDATE desks SET rules_version = %s, rules_error = NULL,"
                               " rules_checked_at = now() WHERE id = %s",
                               (version, who.desk_id))
        await conn.commit()
    return JSONResponse({"ok": True})


async def list_desks(server: Server, request: Request) -> Response:
    """Every desk: when it was last seen, which rules it runs, why it refused newer ones."""
    await server.require(request, "supervisor", "admin")
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT id, name, last_seen, rules_version, rules_error,"
                                 " rules_checked_at FROM desks WHERE NOT revoked ORDER BY name")
        rows = await cur.fetchall()
    now = time.time()
    return JSONResponse({"desks": [{
        "name": r["name"], "last_seen": _epoch(r["last_seen"]),
        "online": r["last_seen"] is not None and now - r["last_seen"].timestamp() < ONLINE_S,
        "rules_version": r["rules_version"], "rules_error": r["rules_error"],
        "outbox": server.outbox_depth.get(r["id"])} for r in rows]})


# -- repeat callers ----------------------------------------------------------------------------
async def desk_config(server: Server, request: Request) -> Response:
    """What a desk needs besides rules: the key of the callers' hash (hex), the repeat
    window."""
    await server.require(request, "desk")
    return JSONResponse({"repeat_key": server.repeat_key.hex(),
                         "repeat_days": server.settings.repeat_days})


async def flagged_callers(server: Server, request: Request) -> Response:
    """Callers (as keyed hashes) with flagged calls in the last ``repeat_days`` days, from
    any desk: each desk keeps this list so it knows a repeat caller before answering, also
    while the server is down."""
    await server.require(request, "desk", "supervisor", "admin")
    days = server.settings.repeat_days
    async with server.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT remote_key, count(*) AS flagged, max(started_at) AS last_at FROM calls"
            " WHERE flagged AND started_at > now() - make_interval(days => %s)"
            " GROUP BY remote_key ORDER BY max(started_at) DESC LIMIT 100000", (days,))
        rows = await cur.fetchall()
    return JSONResponse({"days": days, "callers": [
        {"key": r["remote_key"], "flagged": r["flagged"], "last_at": _epoch(r["last_at"])}
        for r in rows]})


# -- reviews and what the review window filters on -------------------------------------------
REVIEW_VERDICTS = ("abuse_confirmed", "wrongful_cutoff", "crisis_response", "note")


async def call_reviews(server: Server, request: Request) -> Response:
    who = await server.require(request, *PEOPLE_ROLES)
    call_uuid = check_uuid(request.path_params["uuid"], "call")
    async with server.pool.connection() as conn:
        await _call_row(conn, who, call_uuid)
        if request.method == "POST":
            if not who.may_read_all_calls():
                raise ApiError(403, "only supervisors and admins record verdicts")
            body = await _json(request)
            verdict = body.get("verdict") if isinstance(body, dict) else None
            note = (body.get("note") or "") if isinstance(body, dict) else ""
            if verdict not in REVIEW_VERDICTS or not isinstance(note, str):
                raise ApiError(400, f"verdict must be one of {', '.join(REVIEW_VERDICTS)}")
            if verdict in ("note", "wrongful_cutoff") and not note.strip():
                raise ApiError(400, f"a {verdict} verdict needs a note")
            await conn.execute("INSERT INTO reviews (call_uuid, reviewer, verdict, note)"
                               " VALUES (%s, %s, %s, %s)",
                               (call_uuid, who.name, verdict, note.strip()))
            await conn.execute("UPDATE calls SET reviewed = true WHERE uuid = %s", (call_uuid,))
            await server.log_access(conn, who, "review", call_uuid, verdict)
        cur = await conn.execute("SELECT id, at, reviewer, verdict, note FROM reviews"
                                 " WHERE call_uuid = %s ORDER BY at, id", (call_uuid,))
        rows = [{**r, "at": _epoch(r["at"])} for r in await cur.fetchall()]
        await conn.commit()
    return JSONResponse({"reviews": rows}, 201 if request.method == "POST" else 200)


async def call_access(server: Server, request: Request) -> Response:
    """A client says what it did with a call it read (an evidence export): logged."""
    who = await server.require(request, *PEOPLE_ROLES)
    call_uuid = check_uuid(request.path_params["uuid"], "call")
    body = await _json(request)
    action = body.get("action") if isinstance(body, dict) else None
    detail = (body.get("detail") or "") if isinstance(body, dict) else ""
    if action not in ("export", "print") or not isinstance(detail, str):
        raise ApiError(400, "action must be export or print")
    async with server.pool.connection() as conn:
        await _call_row(conn, who, call_uuid)
        await server.log_access(conn, who, action, call_uuid, detail[:500])
        await conn.commit()
    return JSONResponse({"ok": True})


async def choices(server: Server, request: Request) -> Response:
    """The review list's filter choices: counselors, categories and desks."""
    who = await server.require(request, *PEOPLE_ROLES)
    async with server.pool.connection() as conn:
        if who.may_read_all_calls():
            cur = await conn.execute("SELECT DISTINCT counselor FROM calls ORDER BY 1")
            counselors = [r["counselor"] for r in await cur.fetchall()]
        else:
            counselors = [who.name]
        cur = await conn.execute("SELECT DISTINCT unnest(categories) AS c FROM calls"
                                 " ORDER BY 1")
        categories = [r["c"] for r in await cur.fetchall()]
        cur = await conn.execute("SELECT name FROM desks WHERE NOT revoked ORDER BY name")
        desks = [r["name"] for r in await cur.fetchall()] if who.may_read_all_calls() else []
        cur = await conn.execute("SELECT DISTINCT team FROM users WHERE team <> ''"
                                 " ORDER BY 1")
        teams = [r["team"] for r in await cur.fetchall()] if who.may_read_all_calls() else []
    return JSONResponse({"counselors": counselors, "categories": categories, "desks": desks,
                         "teams": teams})


async def ruleset(server: Server, request: Request) -> Response:
    """The text of a rules version some call ran under."""
    await server.require(request, *PEOPLE_ROLES)
    async with server.pool.connection() as conn:
        cur = await conn.execute("SELECT text FROM rulesets WHERE version = %s",
                                 (request.path_params["version"],))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, "no such rules version on the server")
    return JSONResponse({"version": request.path_params["version"], "text": row["text"]})


def build_app(settings: ServerSettings, blobs: BlobStore | None = None) -> Starlette:
    """The ASGI app; the pool opens at startup (uvicorn's lifespan)."""
    server = Server(settings, blobs)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    def r(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, _route(server, handler), methods=methods)

    app = Starlette(routes=[
        r("/healthz", healthz, ["GET"]),
        r("/metrics", metrics, ["GET"]),
        r("/api/v1/blobs/{sha256}", blob_head, ["HEAD"]),
        r("/api/v1/blobs/{sha256}", blob_patch, ["PATCH"]),
        r("/api/v1/calls", post_call, ["POST"]),
        r("/api/v1/calls", list_calls, ["GET"]),
        r("/api/v1/calls/{uuid}", get_call, ["GET"]),
        r("/api/v1/calls/{uuid}/audio", get_audio, ["GET"]),
        r("/api/v1/calls/{uuid}/export", get_audio, ["POST"]),
        r("/api/v1/alerts", post_alert, ["POST"]),
        r("/api/v1/alerts", list_alerts, ["GET"]),
        r("/api/v1/alerts/seen", mark_alerts_seen, ["POST"]),
        r("/api/v1/alerts/stream", alert_stream, ["GET"]),
        r("/api/v1/login", login, ["POST"]),
        r("/api/v1/access-log", access_log, ["GET"]),
        r("/api/v1/rules", publish_rules, ["POST"]),
        r("/api/v1/rules", current_rules, ["GET"]),
        r("/api/v1/rules/history", rules_history, ["GET"]),
        r("/api/v1/desk/rules-status", desk_rules_status, ["POST"]),
        r("/api/v1/desk/config", desk_config, ["GET"]),
        r("/api/v1/desks", list_desks, ["GET"]),
        r("/api/v1/callers/flagged", flagged_callers, ["GET"]),
        r("/api/v1/calls/{uuid}/reviews", call_reviews, ["GET", "POST"]),
        r("/api/v1/calls/{uuid}/access", call_access, ["POST"]),
        r("/api/v1/choices", choices, ["GET"]),
        r("/api/v1/rulesets/{version}", ruleset, ["GET"]),
    ], lifespan=lifespan)
    app.state.server = server
    return app
