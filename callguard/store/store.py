"""The call store: every call's audio, transcript, rule hits, verdicts and actions in SQLite.

One :class:`Store` per process, used from one asyncio loop. aiosqlite runs the connection
on its own thread and executes requests in the order they were queued, so that thread is
the single owner of the database. An :class:`asyncio.Lock` keeps each multi-statement
transaction whole when several tasks write at once (an utterance and its hits must not be
split by an audio chunk committing in between).

Every write commits before it returns: durability over throughput, as a call produces a
few rows per second. The file runs in WAL mode with ``synchronous=NORMAL``: a crash of the
agent loses nothing committed, a power cut at most the last transactions.

Units: wall-clock times are unix epoch seconds, call times are seconds from answer, audio
is PCM16 little-endian mono at the call's ``sample_rate`` with positions in samples.

Privacy: remote numbers and transcripts never reach a log. SQL parameters are wrapped so
that aiosqlite's own DEBUG log of each request shows only how many there are.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import logging
import os
import sqlite3
import sys
import time
import wave
from collections.abc import AsyncIterator, Generator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from callguard.store.records import (
    ActionRecord,
    AuditRecord,
    CallNotFoundError,
    CallRecord,
    CallSummary,
    HitRecord,
    OutboxItem,
    ReviewRecord,
    RulesVersion,
    StoreError,
    UtteranceRecord,
    VerdictRecord,
)
from callguard.store.schema import (
    AGENT_ROLE,
    CAUSES,
    DIRECTIONS,
    HUNG_UP_BY,
    LEGS,
    REVIEW_VERDICTS,
    ROLES,
    SOURCES,
    STAGES,
    UTTERANCE_STATUSES,
    VERDICT_KINDS,
    check_version,
    migrate,
    user_version,
)
from callguard.vocabulary import Role, Stage

log = logging.getLogger(__name__)

BYTES_PER_SAMPLE = 2  # PCM16

# (rule_id, category, severity, term, start, end, matched): one rule hit as add_utterance
# takes it; start/end are character offsets into the utterance text.
HitRow = tuple[str, str, int, str, int, int, str]

_SUMMARY_COLUMNS = ("id, direction, source, started_at, duration_s, end_reason, flagged, "
                    "stage, remote, counselor, hung_up_by, recording_sha256, "
                    "EXISTS (SELECT 1 FROM reviews r WHERE r.call_id = calls.id) AS reviewed")

# Password hashing for the app's supervisor and admin accounts: scrypt (RFC 7914) from the
# standard library, parameters kept in the stored string so they can be raised later.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class _Params(tuple):
    """SQL parameters whose repr hides the values (aiosqlite logs each request at DEBUG)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} SQL parameter(s)>"


class _ParamRows(list):
    """Rows of :class:`_Params` for ``executemany``, with the same discreet repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} SQL parameter row(s)>"


def _one_of(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


class _Opening:
    """``Store.open(...)``: await it for a Store, or use it as ``async with``."""

    def __init__(self, path: Path, recover: bool, now: float | None) -> None:
        self._args = (path, recover, now)
        self._store: Store | None = None

    def __await__(self) -> Generator[Any, None, Store]:
        return Store._open(*self._args).__await__()

    async def __aenter__(self) -> Store:
        self._store = await Store._open(*self._args)
        return self._store

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._store is not None:
            await self._store.close()


class Store:
    """The SQLite call store. Create with ``await Store.open(path)``.

    Writes raise :class:`ValueError` for arguments outside the schema's values,
    :class:`CallNotFoundError` for an unknown call id and :class:`StoreError` for anything
    the database refuses.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        # Use Store.open(); this only wires an already migrated connection.
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._closed = False
        self.recovered: tuple[int, ...] = ()  # ids of calls recovered by open(recover=True)
        self.identity = ""  # this database's random id (store_meta), set by open()
        self.file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened

    # -- opening and closing ---------------------------------------------------------------
    @staticmethod
    def open(path: str | os.PathLike[str], *, recover: bool = False,
             now: float | None = None) -> _Opening:
        """Open (creating it and its parent directory if needed) and migrate a store.

        ``await Store.open(p)`` or ``async with Store.open(p) as store``. With ``recover``,
        calls left open by a crash are closed as ``interrupted`` (see
        :meth:`recover_interrupted`; ``now`` defaults to the wall clock) and their ids kept
        in :attr:`recovered`. Raises :class:`StoreError` naming the file if it is not a
        database or its schema is newer than this code.
        """
        return _Opening(Path(path), recover, now)

    @classmethod
    async def _open(cls, path: Path, recover: bool, now: float | None) -> Store:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        # Autocommit mode: we issue BEGIN/COMMIT ourselves, so the Python sqlite3 module's
        # implicit transactions can never leave one open or commit half of ours.
        try:
            conn = await aiosqlite.connect(path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:  # e.g. the directory is not writable
            raise StoreError(f"{path}: cannot open the call store: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            # Check the version before touching the file: a newer callguard's database must
            # not even be switched to WAL by an older one.
            check_version(await user_version(conn), str(path))
            await _enable_wal(conn, path)
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            version = await migrate(conn, str(path))
        except sqlite3.DatabaseError as exc:
            await conn.close()
            raise StoreError(f"{path}: cannot open the call store: {exc}") from exc
        except BaseException:
            await conn.close()
            raise
        store = cls(conn, path)
        try:
            # store_meta came with schema 5 (an older callguard's schema has no identity).
            rows = (await store._all("SELECT value FROM store_meta WHERE key = 'store_id'")
                    if version >= 5 else [])
            store.identity = rows[0][0] if rows else ""
            st = await asyncio.to_thread(os.stat, path)
            store.file_id = (st.st_dev, st.st_ino)
        except (sqlite3.Error, OSError) as exc:
            await conn.close()
            raise StoreError(f"{path}: cannot open the call store: {exc}") from exc
        log.info("call store %s open (schema version %d)", path, version)
        if recover:
            try:
                store.recovered = tuple(await store.recover_interrupted(
                    time.time() if now is None else now))
            except BaseException:
                await store.close()
                raise
        return store

    async def close(self) -> None:
        """Close the database. Safe to call twice."""
        async with self._lock:  # let a running transaction finish first
            self._closed = True
            await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # -- transactions ----------------------------------------------------------------------
    @asynccontextmanager
    async def _transaction(self, what: str, write: bool = True) -> AsyncIterator[None]:
        """One transaction, alone on the connection; sqlite3 errors become StoreError.

        ``what`` names the operation in error messages (never personal data). Writes take
        the write lock at BEGIN so they cannot fail half way for a busy database.
        """
        async with self._lock:
            if self._closed:
                raise StoreError(f"{self.path}: {what}: the call store is closed")
            try:
                await self._exec("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:  # e.g. another process held the lock too long
                raise StoreError(f"{self.path}: {what}: {exc}") from exc
            try:
                yield
                await self._exec("COMMIT")
            except BaseException as exc:
                # Queued after whatever is still running, so it always lands (even when we
                # are being cancelled); nothing to roll back if SQLite already did.
                with suppress(sqlite3.Error):
                    await self._exec("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: {what}: {exc}") from exc
                raise

    async def _exec(self, sql: str, *params: Any) -> int:
        """Run a statement; return the number of rows it changed."""
        async with self._conn.execute(sql, _Params(params)) as cur:
            return cur.rowcount

    async def _insert(self, sql: str, *params: Any) -> int:
        """Run an INSERT; return the new row's id."""
        async with self._conn.execute(sql, _Params(params)) as cur:
            rowid = cur.lastrowid
        if rowid is None:  # cannot happen for a successful INSERT into a rowid table
            raise StoreError(f"{self.path}: no row id after insert")
        return rowid

    async def _all(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        async with self._conn.execute(sql, _Params(params)) as cur:
            return list(await cur.fetchall())

    async def _require_call(self, call_id: int) -> sqlite3.Row:
        rows = await self._all("SELECT * FROM calls WHERE id = ?", call_id)
        if not rows:
            raise CallNotFoundError(call_id)
        return rows[0]

    # -- writes ----------------------------------------------------------------------------
    async def ensure_ruleset(self, version: str, path: str, text: str,
                             used_at: float | None = None) -> None:
        """Keep the exact rules file in force, once per version.

        ``version`` must be the SHA-256 hex digest of ``text`` encoded as UTF-8 (the rules
        loader's version), so the stored text is verifiable evidence. ``used_at`` (unix
        epoch seconds, default now) is recorded the first time only.
        """
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != version:
            raise ValueError(f"rules text does not hash to version {version[:12]}")
        when = time.time() if used_at is None else used_at
        async with self._transaction("ensure_ruleset"):
            await self._exec("INSERT OR IGNORE INTO rulesets (version, path, text, first_used_at)"
                             " VALUES (?, ?, ?, ?)", version, str(path), text, when)

    async def create_call(self, direction: str, remote: str, source: str, started_at: float,
                          rules_version: str | None, sample_rate: int = 8000,
                          counselor: str = "") -> int:
        """Record a new call and return its id.

        ``started_at`` is unix epoch seconds; ``remote`` the other party's number or SIP
        URI; ``rules_version`` must already be stored (:meth:`ensure_ruleset`) or ``None``;
        ``sample_rate`` (Hz) applies to both audio legs; ``counselor`` names the line's
        account (who took the call).
        """
        _one_of("direction", direction, DIRECTIONS)
        _one_of("source", source, SOURCES)
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, not {sample_rate}")
        async with self._transaction("create_call"):
            call_id = await self._insert(
                "INSERT INTO calls (direction, remote, source, started_at, rules_version,"
                " sample_rate, counselor) VALUES (?, ?, ?, ?, ?, ?, ?)",
                direction, remote, source, started_at, rules_version, sample_rate, counselor)
        log.debug("call %d created", call_id)
        return call_id

    async def append_audio(self, call_id: int, leg: str, start_sample: int, pcm: bytes) -> None:
        """Store one chunk of ``leg``'s audio starting at sample ``start_sample`` of the call.

        ``pcm`` is PCM16 little-endian mono at the call's sample rate (an even, non-zero
        number of bytes). A chunk may not start where another of the same leg does.
        """
        _one_of("leg", leg, LEGS)
        if len(pcm) % BYTES_PER_SAMPLE or not pcm:
            raise ValueError(f"pcm must be PCM16 (an even, non-zero number of bytes), "
                             f"got {len(pcm)} bytes")
        if start_sample < 0:
            raise ValueError(f"start_sample must be >= 0, not {start_sample}")
        async with self._transaction(f"append_audio(call {call_id}, {leg}, {start_sample})"):
            await self._require_call(call_id)
            await self._exec("INSERT INTO audio_chunks (call_id, leg, start_sample, pcm)"
                             " VALUES (?, ?, ?, ?)", call_id, leg, start_sample, bytes(pcm))

    async def add_utterance(self, call_id: int, leg: str, start_s: float, end_s: float,
                            text: str, status: str, reason: str | None = None,
                            asr_s: float | None = None, lag_s: float | None = None,
                            hits: Iterable[HitRow] = (), at_s: float | None = None) -> int:
        """Record one utterance and its rule hits in one transaction; return its id.

        ``start_s``/``end_s`` are call time in seconds, ``at_s`` the call time the live
        call acted on the result (``None``: not known); ``hits`` holds
        ``(rule_id, category, severity, term, start, end, matched)`` tuples with character
        offsets into ``text``. Either the utterance and all its hits are stored or nothing.
        """
        _one_of("leg", leg, LEGS)
        _one_of("status", status, UTTERANCE_STATUSES)
        if end_s < start_s:
            raise ValueError(f"end_s ({end_s}) is before start_s ({start_s})")
        hit_rows = [tuple(h) for h in hits]
        for h in hit_rows:
            if len(h) != 7:
                raise ValueError("each hit must be (rule_id, category, severity, term, start, "
                                 f"end, matched), got {len(h)} values")
        async with self._transaction(f"add_utterance(call {call_id})"):
            await self._require_call(call_id)
            utterance_id = await self._put_utterance(call_id, leg, start_s, end_s, text,
                                                     status, reason, asr_s, lag_s, at_s,
                                                     hit_rows)
        log.debug("call %d: utterance %d stored with %d hit(s)", call_id, utterance_id,
                  len(hit_rows))
        return utterance_id

    async def _put_utterance(self, call_id: int, leg: str, start_s: float, end_s: float,
                             text: str, status: str, reason: str | None, asr_s: float | None,
                             lag_s: float | None, at_s: float | None,
                             hit_rows: Sequence[Sequence[Any]]) -> int:
        utterance_id = await self._insert(
            "INSERT INTO utterances (call_id, leg, start_s, end_s, text, status, reason,"
            " asr_s, lag_s, at_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            call_id, leg, start_s, end_s, text, status, reason, asr_s, lag_s, at_s)
        if hit_rows:
            await self._conn.executemany(
                "INSERT INTO hits (utterance_id, rule_id, category, severity, term, start,"
                " end, matched) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                _ParamRows(_Params((utterance_id, *h)) for h in hit_rows))
        return utterance_id

    async def add_verdict(self, call_id: int, t_s: float, kind: str, prompt: str | None,
                          hangup: bool, reason: str, cause: str | None = None) -> int:
        """Record a policy verdict at call time ``t_s`` (seconds) given for ``cause``
        (:class:`~callguard.vocabulary.Cause`); return its id."""
        _one_of("kind", kind, VERDICT_KINDS)
        if cause is not None:
            _one_of("cause", cause, CAUSES)
        async with self._transaction(f"add_verdict(call {call_id})"):
            await self._require_call(call_id)
            return await self._insert(
                "INSERT INTO verdicts (call_id, t_s, kind, prompt, hangup, reason, cause)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", call_id, t_s, kind, prompt, int(bool(hangup)),
                reason, cause)

    async def add_action(self, call_id: int, t_s: float, kind: str, detail: str,
                         ok: bool = True, error: str | None = None,
                         prompt: str | None = None, seconds: float | None = None) -> int:
        """Record what the agent did at call time ``t_s`` (seconds) and whether it worked;
        for a played prompt also its key and length in seconds (0 when it failed)."""
        async with self._transaction(f"add_action(call {call_id})"):
            await self._require_call(call_id)
            return await self._insert(
                "INSERT INTO actions (call_id, t_s, kind, detail, ok, error, prompt, seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", call_id, t_s, kind, detail, int(bool(ok)),
                error, prompt, seconds)

    async def update_call(self, call_id: int, flagged: bool | None = None,
                          stage: str | None = None, note: str | None = None) -> None:
        """Change a call's flag, stage or note; ``None`` leaves a field as it is.

        ``stage`` only ever rises (none < notice < warned < final): it records the highest
        stage the call reached, so a late or repeated update cannot lower it.
        """
        if stage is not None:
            _one_of("stage", stage, STAGES)
        async with self._transaction(f"update_call(call {call_id})"):
            await self._put_update(await self._require_call(call_id), flagged, stage, note)

    async def _put_update(self, row: sqlite3.Row, flagged: bool | None, stage: str | None,
                          note: str | None = None) -> None:
        call_id = row["id"]
        if flagged is not None:
            await self._exec("UPDATE calls SET flagged = ? WHERE id = ?",
                             int(bool(flagged)), call_id)
        if stage is not None and STAGES.index(stage) > STAGES.index(row["stage"]):
            await self._exec("UPDATE calls SET stage = ? WHERE id = ?", stage, call_id)
        if note is not None:
            await self._exec("UPDATE calls SET note = ? WHERE id = ?", note, call_id)

    async def end_call(self, call_id: int, ended_at: float, duration_s: float,
                       end_reason: str, hung_up_by: str | None = None) -> str:
        """Close a call: ``ended_at`` unix epoch seconds, ``duration_s`` seconds from answer,
        ``hung_up_by`` one of remote, counselor, agent (or ``None`` if nobody did).

        The recording is sealed in the same write: the SHA-256 of its stereo WAV
        (:meth:`wav_bytes`) is stored with the call and returned, so an exported WAV can be
        checked against it. Write all audio first. A call ends once; ending it again raises
        :class:`StoreError`.
        """
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, not {duration_s}")
        if hung_up_by is not None:
            _one_of("hung_up_by", hung_up_by, HUNG_UP_BY)
        digest = await self._recording_digest(call_id)  # also: CallNotFoundError
        async with self._transaction(f"end_call(call {call_id})"):
            row = await self._require_call(call_id)
            if row["ended_at"] is not None:
                raise StoreError(f"call {call_id} has already ended ({row['end_reason']})")
            await self._exec("UPDATE calls SET ended_at = ?, duration_s = ?, end_reason = ?,"
                             " hung_up_by = ?, recording_sha256 = ? WHERE id = ?",
                             ended_at, duration_s, end_reason, hung_up_by, digest, call_id)
        log.debug("call %d ended: %s", call_id, end_reason)
        return digest

    async def _recording_digest(self, call_id: int) -> str:
        return hashlib.sha256(await self.wav_bytes(call_id)).hexdigest()

    # -- store faults: spooled records, file identity, integrity -------------------------
    def replaced(self) -> str | None:
        """``"deleted"`` if nothing is at :attr:`path` any more, ``"replaced"`` if another
        file is (its device and inode differ from the file opened), else ``None``. The
        connection goes on writing into the file it opened, which nobody will see again."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None  # cannot tell (e.g. the directory is unreadable): not evidence
        if self.file_id is not None and (st.st_dev, st.st_ino) != self.file_id:
            return "replaced"
        return None

    async def quick_check(self) -> list[str]:
        """``PRAGMA quick_check`` on this connection: ``[]`` if the file is sound, else
        SQLite's findings (at most 10). A damaged file may also raise :class:`StoreError`."""
        async with self._transaction("quick_check", write=False):
            rows = await self._all("PRAGMA quick_check(10)")
        found = [str(r[0]) for r in rows]
        return [] if found == ["ok"] else found

    async def apply_spooled(self, journal: str, seq: int, kind: str, f: dict[str, Any],
                            blob: bytes, call_id: int | None) -> int:
        """Write one record of a spool journal (:mod:`callguard.store.spool`) once.

        ``(journal, seq)`` is remembered in the same transaction, so a record already
        written is skipped: a journal replayed twice, or after a crash half way, writes
        every record exactly once. ``kind`` ``call`` names the journal's call: the call
        ``f["call_id"]`` if ``f["store"]`` is this database's :attr:`identity` and it holds
        that call, else the call this journal created before, else a new one from ``f``'s
        ``create_call`` values. Other kinds (``audio``, ``utterance``, ``verdict``,
        ``action``, ``update``, ``end``) go to ``call_id``. Returns the call's id here."""
        async with self._transaction(f"apply_spooled({kind} {seq})"):
            done = await self._all("SELECT call_id FROM spool_applied WHERE journal = ?"
                                   " AND seq = ?", journal, seq)
            if done:
                return done[0][0] if done[0][0] is not None else call_id
            if kind == "call":
                call_id = await self._spooled_call(journal, f)
            elif call_id is None:
                raise StoreError(f"spool journal {journal}: record {seq} before its call")
            else:
                row = await self._require_call(call_id)
                await self._put_spooled(row, kind, f, blob)
            await self._exec("INSERT INTO spool_applied (journal, seq, call_id)"
                             " VALUES (?, ?, ?)", journal, seq, call_id)
        return call_id

    async def _spooled_call(self, journal: str, f: dict[str, Any]) -> int:
        bound = f.get("call_id")
        if (bound is not None and f.get("store") == self.identity
                and await self._all("SELECT 1 FROM calls WHERE id = ?", bound)):
            return int(bound)
        earlier = await self._all("SELECT call_id FROM spool_applied WHERE journal = ?"
                                  " AND call_id IS NOT NULL LIMIT 1", journal)
        if earlier:
            return int(earlier[0][0])
        rules = f.get("rules")
        if rules:
            version, rpath, text = rules
            await self._exec("INSERT OR IGNORE INTO rulesets (version, path, text,"
                             " first_used_at) VALUES (?, ?, ?, ?)",
                             version, rpath, text, f["started_at"])
        return await self._insert(
            "INSERT INTO calls (direction, remote, source, started_at, rules_version,"
            " sample_rate, counselor) VALUES (?, ?, ?, ?, ?, ?, ?)",
            f["direction"], f["remote"], f["source"], f["started_at"],
            rules[0] if rules else None, f["sample_rate"], f.get("counselor", ""))

    async def _put_spooled(self, row: sqlite3.Row, kind: str, f: dict[str, Any],
                           blob: bytes) -> None:
        call_id = row["id"]
        if kind == "audio":
            # A chunk already there (written before the journal began) stays as it is.
            await self._exec("INSERT OR IGNORE INTO audio_chunks (call_id, leg, start_sample,"
                             " pcm) VALUES (?, ?, ?, ?)", call_id, f["leg"], f["start"], blob)
        elif kind == "utterance":
            await self._put_utterance(call_id, f["leg"], f["start_s"], f["end_s"], f["text"],
                                      f["status"], f.get("reason"), f.get("asr_s"),
                                      f.get("lag_s"), f.get("at_s"),
                                      [tuple(h) for h in f.get("hits", ())])
        elif kind == "verdict":
            await self._insert("INSERT INTO verdicts (call_id, t_s, kind, prompt, hangup,"
                               " reason, cause) VALUES (?, ?, ?, ?, ?, ?, ?)", call_id,
                               f["t_s"], f["kind"], f.get("prompt"), int(bool(f["hangup"])),
                               f["reason"], f.get("cause"))
        elif kind == "action":
            await self._insert("INSERT INTO actions (call_id, t_s, kind, detail, ok, error,"
                               " prompt, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", call_id,
                               f["t_s"], f["kind"], f["detail"], int(bool(f.get("ok", True))),
                               f.get("error"), f.get("prompt"), f.get("seconds"))
        elif kind == "update":
            await self._put_update(row, f.get("flagged"), f.get("stage"))
        elif kind == "lost":
            return  # audio the spool could not keep: a gap (silence) in the recording
        elif kind == "end":
            if row["ended_at"] is not None:
                return  # closed already (e.g. as interrupted): the first end stands
            chunks = []
            for leg in LEGS:
                rows = await self._all("SELECT start_sample, pcm FROM audio_chunks"
                                       " WHERE call_id = ? AND leg = ? ORDER BY start_sample",
                                       call_id, leg)
                chunks.append([(r[0], r[1]) for r in rows])
            wav = await asyncio.to_thread(_wav_bytes, row["sample_rate"], *chunks)
            await self._exec("UPDATE calls SET ended_at = ?, duration_s = ?, end_reason = ?,"
                             " hung_up_by = ?, recording_sha256 = ? WHERE id = ?",
                             f["ended_at"], f["duration_s"], f["end_reason"],
                             f.get("hung_up_by"), hashlib.sha256(wav).hexdigest(), call_id)
        else:
            raise StoreError(f"unknown spooled record {kind!r}")

    async def audio_chunks(self, call_id: int) -> dict[str, list[tuple[int, bytes]]]:
        """Each leg's stored ``(start_sample, pcm)`` chunks, in order (one snapshot)."""
        _, chunks = await self._audio(call_id, LEGS)
        return dict(zip(LEGS, chunks, strict=True))

    async def recover_interrupted(self, now: float, keep: Iterable[int] = ()) -> list[int]:
        """Close the calls a crash left open (``ended_at`` NULL) as ``interrupted``, sealing
        the recording kept.

        Their duration is the length of the audio kept (the longer leg, in seconds; 0 with
        no audio) and ``ended_at`` the start plus that duration, capped at ``now`` (unix
        epoch seconds): the recording shows when the call stopped being kept, while ``now``
        only says when we noticed. Only call this while no call is being recorded into the
        file (at start-up), or name the calls being recorded in ``keep``. Returns the ids,
        oldest first.
        """
        kept = set(keep)
        async with self._transaction("recover_interrupted: find", write=False):
            rows = await self._all(
                "SELECT c.id, c.started_at, c.sample_rate,"
                " (SELECT MAX(a.start_sample + length(a.pcm) / 2) FROM audio_chunks a"
                "  WHERE a.call_id = c.id) AS samples"
                " FROM calls c WHERE c.ended_at IS NULL ORDER BY c.id")
        rows = [row for row in rows if row["id"] not in kept]
        digests = [await self._recording_digest(row["id"]) for row in rows]
        async with self._transaction("recover_interrupted"):
            for row, digest in zip(rows, digests, strict=True):
                duration = (row["samples"] or 0) / row["sample_rate"]
                ended_at = min(now, row["started_at"] + duration)
                await self._exec("UPDATE calls SET ended_at = ?, duration_s = ?,"
                                 " end_reason = 'interrupted', recording_sha256 = ?"
                                 " WHERE id = ? AND ended_at IS NULL",
                                 ended_at, duration, digest, row["id"])
        ids = [row["id"] for row in rows]
        if ids:
            log.warning("%d call(s) left open by a crash closed as interrupted", len(ids))
            log.debug("interrupted calls: %s", ids)
        return ids

    # -- reads -----------------------------------------------------------------------------
    async def list_calls(self, flagged_only: bool = False, limit: int = 100, *,
                         since: float | None = None, until: float | None = None,
                         counselor: str | None = None, direction: str | None = None,
                         category: str | None = None, action: str | None = None,
                         reviewed: bool | None = None) -> list[CallSummary]:
        """The latest ``limit`` calls matching every filter given, newest first.

        ``since``/``until``: unix epoch seconds, on ``started_at`` (``until`` exclusive).
        ``category``: a rule category with at least one hit in the call. ``action``: the
        escalation the agent took — ``warned`` (a warning or final prompt played),
        ``cut_off`` (the agent hung up), ``none`` (neither) — or an ``actions.kind``.
        ``reviewed``: whether a supervisor has recorded a verdict.
        """
        where: list[str] = []
        params: list[Any] = []
        if flagged_only:
            where.append("flagged = 1")  # matches the partial index
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("started_at < ?")
            params.append(until)
        if counselor is not None:
            where.append("counselor = ?")
            params.append(counselor)
        if direction is not None:
            _one_of("direction", direction, DIRECTIONS)
            where.append("direction = ?")
            params.append(direction)
        if category is not None:
            where.append("EXISTS (SELECT 1 FROM hits h JOIN utterances u"
                         " ON u.id = h.utterance_id WHERE u.call_id = calls.id"
                         " AND h.category = ?)")
            params.append(category)
        if action == "cut_off":
            where.append("hung_up_by = 'agent'")
        elif action == Stage.WARNED:
            where.append("stage IN ('warned', 'final')")
        elif action == Stage.NONE:
            where.append("stage IN ('none', 'notice') AND COALESCE(hung_up_by, '') != 'agent'")
        elif action is not None:
            where.append("EXISTS (SELECT 1 FROM actions a WHERE a.call_id = calls.id"
                         " AND a.kind = ?)")
            params.append(action)
        if reviewed is not None:
            where.append(("" if reviewed else "NOT ")
                         + "EXISTS (SELECT 1 FROM reviews r WHERE r.call_id = calls.id)")
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        async with self._transaction("list_calls", write=False):
            rows = await self._all(f"SELECT {_SUMMARY_COLUMNS} FROM calls {clause}"
                                   " ORDER BY started_at DESC, id DESC LIMIT ?", *params, limit)
        return [_summary(row) for row in rows]

    async def ended_calls(self, limit: int = 100) -> tuple[list[CallRecord], int]:
        """The whole records of the latest ``limit`` calls that have ended (newest first),
        and how many of those ``limit`` are still going on (left out: no outcome yet)."""
        summaries = await self.list_calls(limit=limit)
        ended = [s for s in summaries if s.duration_s is not None]
        return [await self.get_call(s.id) for s in ended], len(summaries) - len(ended)

    async def counselors(self) -> list[str]:
        """Every counselor name that has calls, sorted."""
        async with self._transaction("counselors", write=False):
            rows = await self._all("SELECT DISTINCT counselor FROM calls ORDER BY counselor")
        return [r[0] for r in rows]

    async def categories(self) -> list[str]:
        """Every rule category with a stored hit, sorted."""
        async with self._transaction("categories", write=False):
            rows = await self._all("SELECT DISTINCT category FROM hits ORDER BY category")
        return [r[0] for r in rows]

    async def get_call(self, call_id: int) -> CallRecord:
        """Everything recorded about one call (not its audio: see :meth:`read_audio`)."""
        async with self._transaction(f"get_call({call_id})", write=False):
            call = (await self._all(f"SELECT {_SUMMARY_COLUMNS}, ended_at, sample_rate,"
                                    " rules_version, note, uuid, synced_at FROM calls"
                                    " WHERE id = ?", call_id)
                    or [None])[0]
            if call is None:
                raise CallNotFoundError(call_id)
            utterances = await self._all(
                "SELECT * FROM utterances WHERE call_id = ? ORDER BY start_s, id", call_id)
            hits = await self._all(
                "SELECT h.* FROM hits h JOIN utterances u ON u.id = h.utterance_id"
                " WHERE u.call_id = ? ORDER BY h.utterance_id, h.start, h.id", call_id)
            verdicts = await self._all(
                "SELECT * FROM verdicts WHERE call_id = ? ORDER BY t_s, id", call_id)
            actions = await self._all(
                "SELECT * FROM actions WHERE call_id = ? ORDER BY t_s, id", call_id)
        by_utterance: dict[int, list[HitRecord]] = {}
        for h in hits:
            by_utterance.setdefault(h["utterance_id"], []).append(HitRecord(
                h["id"], h["utterance_id"], h["rule_id"], h["category"], h["severity"],
                h["term"], h["start"], h["end"], h["matched"]))
        summary = _summary(call)
        return CallRecord(
            summary.id, summary.direction, summary.source, summary.started_at,
            summary.duration_s, summary.end_reason, summary.flagged, summary.stage,
            summary.remote, summary.counselor, summary.hung_up_by, summary.recording_sha256,
            summary.reviewed,
            ended_at=call["ended_at"], sample_rate=call["sample_rate"],
            rules_version=call["rules_version"], note=call["note"],
            uuid=call["uuid"], synced_at=call["synced_at"],
            utterances=tuple(UtteranceRecord(
                u["id"], u["call_id"], u["leg"], u["start_s"], u["end_s"], u["text"],
                u["status"], u["reason"], u["asr_s"], u["lag_s"],
                tuple(by_utterance.get(u["id"], ())), at_s=u["at_s"]) for u in utterances),
            verdicts=tuple(VerdictRecord(
                v["id"], v["call_id"], v["t_s"], v["kind"], v["prompt"], bool(v["hangup"]),
                v["reason"], cause=v["cause"]) for v in verdicts),
            actions=tuple(ActionRecord(
                a["id"], a["call_id"], a["t_s"], a["kind"], a["detail"], bool(a["ok"]),
                a["error"], prompt=a["prompt"], seconds=a["seconds"]) for a in actions),
        )

    async def read_audio(self, call_id: int, leg: str) -> bytes:
        """One leg's audio from sample 0: PCM16 little-endian mono at the call's rate.

        Chunks are laid at their ``start_sample``; gaps (lost or unsent audio) become
        silence so that byte offset / 2 / sample_rate is always the call time in seconds.
        Where chunks overlap, the later-starting one wins.
        """
        _one_of("leg", leg, LEGS)
        _, (chunks,) = await self._audio(call_id, (leg,))
        # A long call is tens of MB: assemble it off the event loop.
        return await asyncio.to_thread(_assemble, chunks)

    async def export_wav(self, call_id: int, path: str | os.PathLike[str]) -> int:
        """Write the call as a stereo WAV: caller left, counselor right; return its frames.

        The bytes are exactly :meth:`wav_bytes`, so the file's SHA-256 equals the hash stored
        at close. Written next to ``path`` and renamed into place, never seen half written.
        """
        data = await self.wav_bytes(call_id)
        return await asyncio.to_thread(_write_file, Path(path), data)

    async def wav_bytes(self, call_id: int) -> bytes:
        """The call's recording as one canonical stereo WAV file (PCM16 LE at the call's
        rate; caller left, counselor right; the shorter leg padded with silence)."""
        sample_rate, (caller, counselor) = await self._audio(call_id, LEGS)
        return await asyncio.to_thread(_wav_bytes, sample_rate, caller, counselor)

    async def check_recording(self, call_id: int) -> tuple[str | None, str]:
        """``(stored, current)``: the SHA-256 sealed at close (``None`` if the call has not
        ended) and the hash of the recording as it is now. They differ if it was altered."""
        async with self._transaction(f"check_recording({call_id})", write=False):
            row = await self._require_call(call_id)
        current = hashlib.sha256(await self.wav_bytes(call_id)).hexdigest()
        return row["recording_sha256"], current

    async def delete_recording(self, call_id: int, actor: str, role: str,
                               at: float | None = None) -> None:
        """Delete a call's audio (its rows and transcript stay), logged in the audit log.
        Counselors may not: :class:`PermissionError`."""
        _one_of("role", role, ROLES)
        if role == Role.COUNSELOR:
            raise PermissionError("a counselor cannot delete recordings")
        async with self._transaction(f"delete_recording({call_id})"):
            await self._require_call(call_id)
            await self._exec("DELETE FROM audio_chunks WHERE call_id = ?", call_id)
            await self._exec("INSERT INTO audit_log (at, actor, role, kind, call_id, detail)"
                             " VALUES (?, ?, ?, 'recording_deleted', ?, '')",
                             time.time() if at is None else at, actor, role, call_id)

    async def _audio(self, call_id: int, legs: Sequence[str],
                     ) -> tuple[int, list[list[tuple[int, bytes]]]]:
        """The call's sample rate and each leg's ``(start_sample, pcm)`` chunks, one snapshot."""
        async with self._transaction(f"read audio of call {call_id}", write=False):
            call = await self._require_call(call_id)
            chunks = []
            for leg in legs:
                rows = await self._all("SELECT start_sample, pcm FROM audio_chunks"
                                       " WHERE call_id = ? AND leg = ? ORDER BY start_sample",
                                       call_id, leg)
                chunks.append([(r[0], r[1]) for r in rows])
        return call["sample_rate"], chunks

    # -- the outbox: what the central server must receive (schema 6) -----------------------
    async def outbox_due(self, now: float, limit: int = 50,
                         kinds: Sequence[str] = ("alert", "call")) -> list[OutboxItem]:
        """Undelivered items whose back-off has passed at ``now`` (unix epoch seconds):
        alerts first (a person waits for them), then oldest first."""
        marks = ", ".join("?" for _ in kinds)
        async with self._transaction("outbox_due", write=False):
            rows = await self._all(
                "SELECT id, kind, call_id, source, ref_id, created_at, tries FROM outbox"
                f" WHERE done_at IS NULL AND next_at <= ? AND kind IN ({marks})"
                " ORDER BY kind = 'call', id LIMIT ?", now, *kinds, limit)
        return [OutboxItem(r["id"], r["kind"], r["call_id"], r["source"], r["ref_id"],
                           r["created_at"], r["tries"]) for r in rows]

    async def outbox_done(self, item: OutboxItem, now: float) -> None:
        """The server has the item; for a call, it also verified the call's audio (the call
        is marked synced in the same transaction)."""
        async with self._transaction(f"outbox_done({item.id})"):
            await self._exec("UPDATE outbox SET done_at = ?, error = NULL WHERE id = ?",
                             now, item.id)
            if item.kind == "call" and item.call_id is not None:
                await self._exec("UPDATE calls SET synced_at = ? WHERE id = ?",
                                 now, item.call_id)

    async def outbox_retry(self, item: OutboxItem, next_at: float, error: str) -> None:
        """A delivery failed: try again at ``next_at`` (unix epoch seconds). ``error`` is
        kept for the status line; it never holds personal data."""
        async with self._transaction(f"outbox_retry({item.id})"):
            await self._exec("UPDATE outbox SET tries = tries + 1, next_at = ?, error = ?"
                             " WHERE id = ?", next_at, error[:300], item.id)

    async def outbox_counts(self) -> dict[str, int]:
        """``pending`` (calls and alerts not yet delivered), ``done``, ``failing`` (pending
        items whose last try failed)."""
        async with self._transaction("outbox_counts", write=False):
            rows = await self._all(
                "SELECT sum(done_at IS NULL), sum(done_at IS NOT NULL),"
                " sum(done_at IS NULL AND tries > 0) FROM outbox")
        pending, done, failing = rows[0] if rows else (0, 0, 0)
        return {"pending": pending or 0, "done": done or 0, "failing": failing or 0}

    async def call_uuid(self, call_id: int) -> str:
        async with self._transaction("call_uuid", write=False):
            rows = await self._all("SELECT uuid FROM calls WHERE id = ?", call_id)
        if not rows:
            raise CallNotFoundError(call_id)
        return str(rows[0][0])

    async def alert_source(self, source: str, ref_id: int) -> dict[str, Any] | None:
        """The row an alert outbox item names, as a plain dict (``None`` if it is gone):
        for ``actions`` and ``verdicts`` with the call's start (``started_at``) so the
        alert's wall-clock time can be told; never a transcript."""
        if source == "actions":
            sql = ("SELECT a.id, a.kind, a.detail, a.t_s, c.started_at, c.counselor, c.uuid"
                   " FROM actions a JOIN calls c ON c.id = a.call_id WHERE a.id = ?")
        elif source == "verdicts":
            sql = ("SELECT v.id, v.kind, v.reason AS detail, v.t_s, c.started_at,"
                   " c.counselor, c.uuid, v.cause FROM verdicts v JOIN calls c"
                   " ON c.id = v.call_id WHERE v.id = ?")
        elif source == "audit_log":
            sql = ("SELECT l.id, l.kind, l.detail, l.at, l.actor AS counselor, c.uuid"
                   " FROM audit_log l LEFT JOIN calls c ON c.id = l.call_id WHERE l.id = ?")
        else:
            raise StoreError(f"unknown outbox source {source!r}")
        async with self._transaction("alert_source", write=False):
            rows = await self._all(sql, ref_id)
        return dict(rows[0]) if rows else None

    # -- review, audit, users, rules history -----------------------------------------------
    async def add_review(self, call_id: int, reviewer: str, verdict: str, note: str = "",
                         at: float | None = None) -> int:
        """Append a supervisor's verdict (``abuse_confirmed``, ``wrongful_cutoff`` or
        ``note``) to the call's audit trail; ``at`` unix epoch seconds. Never changed."""
        _one_of("verdict", verdict, REVIEW_VERDICTS)
        if not reviewer:
            raise ValueError("a review needs the reviewer's name")
        async with self._transaction(f"add_review(call {call_id})"):
            await self._require_call(call_id)
            return await self._insert(
                "INSERT INTO reviews (call_id, at, reviewer, verdict, note)"
                " VALUES (?, ?, ?, ?, ?)",
                call_id, time.time() if at is None else at, reviewer, verdict, note)

    async def reviews(self, call_id: int) -> list[ReviewRecord]:
        """The call's verdicts, oldest first (the last one is the current verdict)."""
        async with self._transaction(f"reviews({call_id})", write=False):
            rows = await self._all("SELECT * FROM reviews WHERE call_id = ? ORDER BY at, id",
                                   call_id)
        return [ReviewRecord(r["id"], r["call_id"], r["at"], r["reviewer"], r["verdict"],
                             r["note"]) for r in rows]

    async def audit(self, actor: str, role: str, kind: str, detail: str = "",
                    call_id: int | None = None, at: float | None = None) -> int:
        """Append to the audit log. ``detail`` must not hold transcripts or numbers."""
        _one_of("role", role, (*ROLES, AGENT_ROLE))
        async with self._transaction(f"audit({kind})"):
            return await self._insert(
                "INSERT INTO audit_log (at, actor, role, kind, call_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                time.time() if at is None else at, actor, role, kind, call_id, detail)

    async def audit_log(self, kind: str | None = None, call_id: int | None = None,
                        limit: int = 1000) -> list[AuditRecord]:
        """The latest audit entries (optionally of one kind or call), oldest first."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if call_id is not None:
            where.append("call_id = ?")
            params.append(call_id)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        async with self._transaction("audit_log", write=False):
            rows = await self._all(f"SELECT * FROM (SELECT * FROM audit_log {clause}"
                                   " ORDER BY at DESC, id DESC LIMIT ?) ORDER BY at, id",
                                   *params, limit)
        return [AuditRecord(r["id"], r["at"], r["actor"], r["role"], r["kind"], r["call_id"],
                            r["detail"]) for r in rows]

    async def set_password(self, name: str, role: str, password: str) -> None:
        """Create or replace a supervisor/admin account; only a scrypt hash is stored."""
        _one_of("role", role, ROLES[1:])
        if not name or len(password) < 8:
            raise ValueError("a user name and a password of at least 8 characters are needed")
        pw_hash = await asyncio.to_thread(hash_password, password)
        async with self._transaction("set_password"):
            await self._exec("INSERT INTO users (name, role, pw_hash, created_at)"
                             " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
                             " SET role = excluded.role, pw_hash = excluded.pw_hash",
                             name, role, pw_hash, time.time())
        await self.audit(name, role, "password_set")

    async def check_password(self, name: str, password: str) -> str | None:
        """The user's role if the password is right, else ``None``."""
        async with self._transaction("check_password", write=False):
            rows = await self._all("SELECT role, pw_hash FROM users WHERE name = ?", name)
        if not rows:
            await asyncio.to_thread(hash_password, password)  # same time as a wrong password
            return None
        ok = await asyncio.to_thread(verify_password, password, rows[0]["pw_hash"])
        return rows[0]["role"] if ok else None

    async def users(self) -> list[tuple[str, str]]:
        """``(name, role)`` of every account, by name."""
        async with self._transaction("users", write=False):
            rows = await self._all("SELECT name, role FROM users ORDER BY name")
        return [(r[0], r[1]) for r in rows]

    async def notes_seen(self, name: str) -> tuple[float, int] | None:
        """The user's notifications watermark ``(at, id)``: audit entries up to it (in
        ``(at, id)`` order) are seen. ``None`` if nothing was seen or there is no account."""
        async with self._transaction("notes_seen", write=False):
            rows = await self._all("SELECT notes_seen_at, notes_seen_id FROM users"
                                   " WHERE name = ?", name)
        if not rows or rows[0][0] is None:
            return None
        return (float(rows[0][0]), int(rows[0][1]))

    async def set_notes_seen(self, name: str, at: float, entry_id: int) -> bool:
        """Move the user's watermark forward to ``(at, entry_id)``; never back (two windows
        of one user may report in any order). True if it moved."""
        async with self._transaction("set_notes_seen"):
            changed = await self._exec(
                "UPDATE users SET notes_seen_at = ?, notes_seen_id = ? WHERE name = ?"
                " AND (notes_seen_at IS NULL OR (notes_seen_at, notes_seen_id) < (?, ?))",
                at, entry_id, name, at, entry_id)
        return bool(changed)

    async def save_rules(self, path: str, text: str, saved_by: str, note: str = "",
                         at: float | None = None) -> str:
        """Keep a saved rules file in the version history; return its version (SHA-256)."""
        version = hashlib.sha256(text.encode("utf-8")).hexdigest()
        when = time.time() if at is None else at
        await self.ensure_ruleset(version, path, text, when)
        async with self._transaction("save_rules"):
            await self._insert("INSERT INTO rules_history (version, saved_at, saved_by, note)"
                               " VALUES (?, ?, ?, ?)", version, when, saved_by, note)
        return version

    async def rules_history(self, limit: int = 100) -> list[RulesVersion]:
        """Saved rules versions, newest first."""
        async with self._transaction("rules_history", write=False):
            rows = await self._all("SELECT * FROM rules_history ORDER BY saved_at DESC,"
                                   " id DESC LIMIT ?", limit)
        return [RulesVersion(r["id"], r["version"], r["saved_at"], r["saved_by"], r["note"])
                for r in rows]

    async def ruleset(self, version: str) -> tuple[str, str]:
        """The ``(path, text)`` of a stored rules file; StoreError if unknown or altered."""
        async with self._transaction("ruleset", write=False):
            rows = await self._all("SELECT path, text FROM rulesets WHERE version = ?", version)
        if not rows:
            raise StoreError(f"no rules version {version[:12]} in the call store")
        path, text = rows[0]["path"], rows[0]["text"]
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != version:
            raise StoreError(f"stored rules {version[:12]} do not match their hash")
        return path, text

    # -- the rules the agent ran on (kept for a restart with a broken rules file) ----------
    async def note_rules_in_force(self, version: str, path: str, text: str,
                                  at: float | None = None) -> bool:
        """The agent put these rules in force (at start, or a reload): keep their text
        (:meth:`ensure_ruleset`) and note it in the append-only audit log as
        ``rules_in_force`` (detail: the version), unless they already were the last noted.
        True if noted. :meth:`last_good_rules` reads it back."""
        when = time.time() if at is None else at
        await self.ensure_ruleset(version, path, text, when)
        async with self._transaction("note_rules_in_force"):
            rows = await self._all("SELECT detail FROM audit_log WHERE kind = ?"
                                   " ORDER BY at DESC, id DESC LIMIT 1", RULES_IN_FORCE)
            if rows and rows[0]["detail"] == version:
                return False
            await self._insert("INSERT INTO audit_log (at, actor, role, kind, call_id, detail)"
                               " VALUES (?, ?, ?, ?, NULL, ?)", when, AGENT_ROLE, AGENT_ROLE,
                               RULES_IN_FORCE, version)
        return True

    async def last_good_rules(self) -> LastGoodRules | None:
        """The rules the agent last put in force (see :meth:`note_rules_in_force`), with
        when; ``None`` if it never ran on any. StoreError if their stored text was altered."""
        async with self._transaction("last_good_rules", write=False):
            rows = await self._all(
                "SELECT a.at, r.version, r.path, r.text FROM audit_log a"
                " JOIN rulesets r ON r.version = a.detail WHERE a.kind = ?"
                " ORDER BY a.at DESC, a.id DESC LIMIT 1", RULES_IN_FORCE)
        if not rows:
            return None
        row = rows[0]
        if hashlib.sha256(row["text"].encode("utf-8")).hexdigest() != row["version"]:
            raise StoreError(f"stored rules {row['version'][:12]} do not match their hash")
        return LastGoodRules(row["version"], row["path"], row["text"], row["at"])


RULES_IN_FORCE = "rules_in_force"  # audit_log.kind: the agent put rules in force


@dataclass(frozen=True)
class LastGoodRules:
    """Rules the agent ran on: ``version`` (SHA-256 of ``text``), the file they were loaded
    from, their exact text, and when they went into force (unix epoch seconds)."""

    version: str
    path: str
    text: str
    in_force_since: float


def secure_store_files(path: str | os.PathLike[str]) -> list[str]:
    """Make the store private to its owner: its directory 0700 (when this user owns it) and
    the database and its ``-wal``/``-shm`` files 0600. Recordings and transcripts are
    personal data; a umask of 022 would leave them readable by every local user. Returns a
    line for each change made or that failed (a file this user does not own). On Windows,
    where modes are not permissions, nothing: the store is in the user's own
    %LOCALAPPDATA%, which only that user (and administrators) can read."""
    if os.name == "nt":
        return []
    p = Path(path)
    out: list[str] = []

    def fix(target: Path, mode: int) -> None:
        try:
            st = target.stat()
        except FileNotFoundError:
            return
        if st.st_mode & 0o777 == mode:
            return
        try:
            if target.is_dir() and st.st_uid != os.getuid():
                raise PermissionError("owned by another user")
            target.chmod(mode)
            out.append(f"{target}: mode {st.st_mode & 0o777:o} -> {mode:o}")
        except OSError as exc:
            out.append(f"{target}: cannot make it private ({mode:o}): {exc}")

    fix(p.parent, 0o700)
    for suffix in ("", "-wal", "-shm", "-journal"):
        fix(p.with_name(p.name + suffix), 0o600)
    return out


async def _pragma(conn: aiosqlite.Connection, sql: str) -> str:
    async with conn.execute(sql) as cur:
        row = await cur.fetchone()
    return str(row[0]).lower() if row else ""


async def _enable_wal(conn: aiosqlite.Connection, path: Path, tries: int = 50) -> None:
    """Switch the file to WAL (it stays so); retry while another opener holds the lock.

    Changing the journal mode needs the file to ourselves and SQLite reports "locked"
    without waiting for the busy timeout, so two processes opening a new file at once
    would otherwise fail. Once in WAL, nothing needs to change on later opens.
    """
    mode = await _pragma(conn, "PRAGMA journal_mode")
    for attempt in range(tries):
        if mode == "wal":
            return
        try:
            mode = await _pragma(conn, "PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.1)
    if mode != "wal":  # e.g. a file system without shared memory: still correct, slower
        log.warning("%s: WAL journal not available, using %s", path, mode)


_CORRUPTION_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` (a StoreError or sqlite3 error) says the file itself is damaged, as
    opposed to unreachable (permissions, a read-only disk) or newer than this code."""
    for e in (exc, exc.__cause__):
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _CORRUPTION_CODES:
            return True
        text = str(e or "").lower()
        if "malformed" in text or "not a database" in text:
            return True
    return False


def move_aside(path: Path, now: float, why: str = "corrupt") -> Path:
    """Rename a damaged store (and its ``-wal``/``-shm`` files) to
    ``<name>.<why>-<UTC timestamp>``, kept for recovery; return the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{why}-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{target}{suffix}"))
    return target


def _summary(row: sqlite3.Row) -> CallSummary:
    return CallSummary(row["id"], row["direction"], row["source"], row["started_at"],
                       row["duration_s"], row["end_reason"], bool(row["flagged"]), row["stage"],
                       row["remote"], row["counselor"], row["hung_up_by"],
                       row["recording_sha256"], bool(row["reviewed"]))


def _assemble(chunks: Sequence[tuple[int, bytes]]) -> bytes:
    """Lay PCM16 chunks ``(start_sample, pcm)`` on one timeline, zeros (silence) in gaps."""
    if not chunks:
        return b""
    size = max(start * BYTES_PER_SAMPLE + len(pcm) for start, pcm in chunks)
    out = bytearray(size)
    for start, pcm in chunks:
        offset = start * BYTES_PER_SAMPLE
        out[offset : offset + len(pcm)] = pcm
    return bytes(out)


def _wav_bytes(sample_rate: int, left_chunks: Sequence[tuple[int, bytes]],
               right_chunks: Sequence[tuple[int, bytes]]) -> bytes:
    """Interleave two PCM16 LE mono legs into one stereo WAV file's bytes."""
    if sys.byteorder == "big":  # wave assumes native-order samples and would swap ours
        raise StoreError("WAV export is only supported on little-endian machines")
    left, right = _assemble(left_chunks), _assemble(right_chunks)
    n = max(len(left), len(right))
    left, right = left.ljust(n, b"\0"), right.ljust(n, b"\0")
    frames = bytearray(2 * n)
    # Frame layout: L lo, L hi, R lo, R hi. Extended slices copy in C, no per-sample loop.
    frames[0::4], frames[1::4] = left[0::2], left[1::2]
    frames[2::4], frames[3::4] = right[0::2], right[1::2]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(BYTES_PER_SAMPLE)
        w.setframerate(sample_rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


def _write_file(path: Path, data: bytes) -> int:
    """Write a WAV's bytes atomically (temporary file, then rename); return its frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return (len(data) - 44) // (2 * BYTES_PER_SAMPLE)


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) for a password: slow on purpose (~50 ms)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(digest) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)
