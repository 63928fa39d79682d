"""Store faults: what the call store cannot take now is spooled and written when it can.

:class:`SpooledStore` is the store a live call writes to (the session's ``CallStore``). It
writes straight into the :class:`~callguard.store.store.Store` while that works. When a
write fails (disk full, read-only, I/O error, the file unreachable), that call's writes from
then on go to a **journal**: one file per call in the spool directory (a second location,
by default under the user's state directory, not beside the store), append-only, each
record framed and fsynced. If the spool cannot be written either, records are kept in
memory up to a bound. A background task replays the journals into the store as soon as it
takes writes again (retried about once a second, and at the next start for journals a
crash left): every record carries ``(journal, seq)``, which the store remembers in the
same transaction as the record's rows, so a replay writes each record exactly once.

It also watches the file: the store's device and inode are compared with the path's at
each write and on a schedule. A deleted or replaced file is reported, a new store is opened
at the path, and the calls in progress are copied from the old (still open) file into a
journal and replayed into the new one. At open, and hourly when no call is active,
``PRAGMA quick_check`` runs; a damaged file is moved aside (``<name>.corrupt-<UTC time>``,
kept for recovery) and a new one started.

Health is reported through ``on_health(ok, problem)`` on each change; logs are limited to
one line per kind of problem a minute.

Journal file format: records of ``>II`` (body length, CRC-32 of the body) then the body:
``>I`` header length, the header (UTF-8 JSON: ``seq``, ``kind``, ``f`` the fields) and the
record's binary payload (audio PCM). A torn or damaged tail (a crash mid-write) ends the
journal there. Kinds: ``call`` (the call's ``create_call`` values and rules, and the store
id and call id it is bound to, if any), ``audio`` (``leg``, ``start`` sample; PCM16 LE),
``utterance``, ``verdict``, ``action``, ``update``, ``end``. Journals hold personal data
(transcripts, numbers): the directory is 0700 and the files 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import sqlite3
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callguard import paths
from callguard.store.records import StoreError
from callguard.store.schema import DIRECTIONS, LEGS, SOURCES
from callguard.store.store import Store, is_corruption, move_aside

log = logging.getLogger(__name__)

_FRAME = struct.Struct(">II")  # body length, crc32(body)
_HEADER = struct.Struct(">I")  # header length
MEMORY_LIMIT = 64 * 1024 * 1024  # bytes of records kept in memory when the spool fails too
LOG_EVERY_S = 60.0  # one log line per kind of problem per minute


def default_spool_dir(store_path: Path) -> Path:
    """``$XDG_STATE_HOME/callguard/spool/<hash of the store's path>`` (default
    ``~/.local/state``; on Windows ``%LOCALAPPDATA%\\callguard\\spool\\...``): a second place,
    one folder per store."""
    tag = hashlib.sha256(str(Path(store_path).absolute()).encode()).hexdigest()[:16]
    return paths.state_dir() / "spool" / tag


def quick_check_file(path: Path) -> list[str]:
    """``PRAGMA quick_check`` on a connection of its own (read-only; in a thread, so the
    store's connection and the calls never wait for it): ``[]`` if sound, else findings."""
    try:
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True,
                               timeout=10.0)
    except sqlite3.Error:
        return []  # cannot open it read-only: the writes will say what is wrong
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA quick_check(10)")]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)] if is_corruption(exc) else ["ok"]
    finally:
        conn.close()
    return [] if found == ["ok"] else found


@dataclass
class Record:
    seq: int
    kind: str
    fields: dict[str, Any]
    blob: bytes = b""

    def encode(self) -> bytes:
        head = json.dumps({"seq": self.seq, "kind": self.kind, "f": self.fields},
                          ensure_ascii=False).encode("utf-8")
        body = _HEADER.pack(len(head)) + head + self.blob
        return _FRAME.pack(len(body), zlib.crc32(body)) + body


def read_records(path: Path, start: int = 0) -> Iterator[tuple[Record, int]]:
    """The records of a journal file from byte ``start``, each with the offset just after
    it, up to a torn or damaged tail. Streams: a long journal is never read whole."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(start)
        pos = start
        while True:
            frame = f.read(_FRAME.size)
            if len(frame) < _FRAME.size:
                return
            size, crc = _FRAME.unpack(frame)
            body = f.read(size)
            if len(body) < size or zlib.crc32(body) != crc or size < _HEADER.size:
                log.warning("spool journal %s: damaged tail at byte %d ignored", path.name,
                            pos)
                return
            (hlen,) = _HEADER.unpack_from(body)
            head = json.loads(body[_HEADER.size : _HEADER.size + hlen].decode("utf-8"))
            pos += _FRAME.size + size
            yield Record(head["seq"], head["kind"], head["f"], body[_HEADER.size + hlen :]), pos


class Journal:
    """One call's spooled records: a file in ``directory`` (``None``: memory only), or
    memory once the file cannot be written. Sequence numbers are given on the event loop
    (:meth:`add`), the bytes written in a thread (:meth:`write`)."""

    def __init__(self, directory: Path | None, journal_id: str | None = None,
                 memory_limit: int = MEMORY_LIMIT) -> None:
        self.id = journal_id or uuid.uuid4().hex
        self.path = directory / f"{self.id}.journal" if directory is not None else None
        self.last_seq = -1
        self.lost = 0  # audio records dropped: the spool failed and memory was full
        self._memory: list[Record] = []
        self._memory_bytes = 0
        self._memory_limit = memory_limit
        self._to_file = self.path is not None
        self._lock = threading.Lock()
        self._hint = (-1, 0)  # (seq, file offset just after that record): where to read on

    def add(self, kind: str, fields: dict[str, Any], blob: bytes = b"") -> Record:
        self.last_seq += 1
        return Record(self.last_seq, kind, fields, blob)

    def write(self, rec: Record) -> None:
        """Append and fsync ``rec`` (thread); on a spool failure keep it in memory."""
        data = rec.encode()
        with self._lock:
            if self._to_file and self.path is not None:
                try:
                    self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    try:
                        os.write(fd, data)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    return
                except OSError as exc:
                    # From here on this journal lives in memory (its order stays whole).
                    log.error("spool %s cannot be written (%s): keeping the call's records"
                              " in memory", self.path.parent, exc.strerror or exc)
                    self._to_file = False
            if rec.kind == "audio" and self._memory_bytes + len(data) > self._memory_limit:
                self.lost += 1  # its place is kept: the replay knows nothing is missing
                rec = Record(rec.seq, "lost", {"leg": rec.fields.get("leg"),
                                               "start": rec.fields.get("start")})
                data = rec.encode()
            self._memory.append(rec)
            self._memory_bytes += len(data)

    def records(self) -> list[Record]:
        """Every record written so far, in order (thread)."""
        with self._lock:
            on_file = ([r for r, _ in read_records(self.path)] if self.path is not None
                       else [])
            return on_file + list(self._memory)

    def batch(self, after_seq: int, limit: int = 64) -> list[Record]:
        """Up to ``limit`` records after sequence number ``after_seq``, in order (thread);
        reading on from where the last batch left off, so a long journal is read once."""
        with self._lock:
            out: list[Record] = []
            if self.path is not None:
                start = self._hint[1] if self._hint[0] <= after_seq else 0
                for rec, end in read_records(self.path, start):
                    if rec.seq > after_seq:
                        out.append(rec)
                        if len(out) >= limit:
                            return out
                    else:
                        self._hint = (rec.seq, end)
            return out + [r for r in self._memory if r.seq > after_seq][: limit - len(out)]

    def remove(self) -> None:
        with self._lock:
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            self._memory.clear()
            self._memory_bytes = 0

    @classmethod
    def leftovers(cls, directory: Path) -> list[Journal]:
        """Journals a previous run left in ``directory`` (a crash, or a store that never
        came back), oldest first."""
        try:
            files = sorted(directory.glob("*.journal"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return []
        out = []
        for path in files:
            j = cls(directory, path.stem)
            j.last_seq = max((r.seq for r, _ in read_records(path)), default=-1)
            out.append(j)
        return out


@dataclass
class _Call:
    key: int  # the id the session holds
    create: dict[str, Any]  # create_call's values and the rules (for a journal's "call")
    store_id: int | None = None  # its id in the store it is bound to
    store: str = ""  # that store's identity
    journal: Journal | None = None
    applied: int = -1  # the journal's last record written to the store
    ended: bool = False
    leftover: bool = False  # a previous run's journal
    extra: dict[str, Any] = field(default_factory=dict)


def _classify(exc: BaseException) -> str:
    """``full``, ``readonly``, ``io``, ``unavailable``, ``corrupt`` or ``error``."""
    if is_corruption(exc):
        return "corrupt"
    for e in (exc, exc.__cause__):
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None:
            return {13: "full", 8: "readonly", 10: "io", 14: "unavailable"}.get(
                code & 0xFF, "error")
        if isinstance(e, OSError):
            return {errno.ENOSPC: "full", errno.EROFS: "readonly"}.get(e.errno or 0, "io")
    text = str(exc).lower()
    if "full" in text:
        return "full"
    if "readonly" in text or "read-only" in text:
        return "readonly"
    return "error"


class SpooledStore:
    """The call store a live call writes to: :class:`Store` when it works, the spool when
    it does not (see the module). ``await open()`` (never raises for a store fault; only
    for a store newer than this code), then use the session's ``CallStore`` methods;
    ``await tick()`` about once a second off the call path; ``await close()``.

    ``on_health(ok, problem)``: called on the event loop at each change (``problem`` a
    plain sentence, ``None`` when ok). ``now``: wall clock (unix seconds) for stored times
    and file names; ``monotonic``: for the retry schedule."""

    def __init__(self, path: Path, spool_dir: Path | None = None, *,
                 on_health: Callable[[bool, str | None], None] | None = None,
                 now: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 retry_s: float = 1.0, reopen_s: float = 5.0, check_every_s: float = 3600.0,
                 memory_limit: int = MEMORY_LIMIT) -> None:
        self.path = Path(path)
        self.spool_dir = spool_dir if spool_dir is not None else default_spool_dir(self.path)
        self.on_health = on_health
        self._now, self._mono = now, monotonic
        self.retry_s, self.reopen_s, self.check_every_s = retry_s, reopen_s, check_every_s
        self.memory_limit = memory_limit
        self.store: Store | None = None
        self.recovered: list[int] = []  # calls a crash left open, closed as interrupted
        self.moved_aside: list[Path] = []  # damaged stores renamed, kept for recovery
        self.problem: str | None = None  # what is wrong now, in a sentence
        self.problem_kind: str | None = None
        self.replayed = 0  # spooled records written to the store
        self._calls: dict[int, _Call] = {}
        self._ids: dict[int, int | None] = {}  # key -> store id, also after the call
        self._rules: dict[str, tuple[str, str]] = {}
        self._next_key = -1
        self._last_open = -1e18
        self._last_fail = -1e18
        self._last_check = monotonic()
        self._logged: dict[str, float] = {}
        self._lock = asyncio.Lock()  # one drain, reopen or file check at a time
        self._drainer: asyncio.Task[None] | None = None
        self._recover_pending = False

    # --- open, close, schedule ------------------------------------------------------------

    async def open(self) -> None:
        async with self._lock:
            await self._open_store(check=True)
            for j in await asyncio.to_thread(Journal.leftovers, self.spool_dir):
                call = _Call(self._new_key(), {}, journal=j, leftover=True, ended=True)
                self._calls[call.key] = call
            self._recover_pending = True
            if self.store is not None:
                await self._drain_all()

    async def close(self) -> None:
        """Write what can still be written; journals left stay for the next start."""
        if self._drainer is not None:
            with contextlib.suppress(BaseException):
                await self._drainer
        async with self._lock:
            if self.store is not None:
                with contextlib.suppress(StoreError):
                    await self._drain_all()
                with contextlib.suppress(Exception):
                    await self.store.close()
                self.store = None

    async def tick(self) -> None:
        """The schedule (about once a second, never on the call path): is the file still
        there, can spooled records be written, and (hourly, between calls) is it sound."""
        await self._check_file()
        if self.store is None or self.pending or self._recover_pending:
            await self._retry()
        if (self._mono() - self._last_check >= self.check_every_s and self.store is not None
                and not any(not c.ended for c in self._calls.values())):
            self._last_check = self._mono()
            found = await asyncio.to_thread(quick_check_file, self.path)
            if found and not any(not c.ended for c in self._calls.values()):
                async with self._lock:
                    await self._integrity_check()

    @property
    def pending(self) -> int:
        """Calls with records waiting in the spool."""
        return sum(1 for c in self._calls.values() if c.journal is not None)

    def store_id(self, key: int | None) -> int | None:
        """The store's id of the call the session knows as ``key`` (``None`` while it
        exists only in the spool)."""
        if key is None:
            return None
        call = self._calls.get(key)
        return call.store_id if call is not None else self._ids.get(key)

    # --- the session's CallStore ----------------------------------------------------------

    async def ensure_ruleset(self, version: str, path: str | None, text: str,
                             used_at: float | None = None) -> None:
        self._rules[version] = (str(path or ""), text)
        if self.store is not None and self.problem is None:
            try:
                await self.store.ensure_ruleset(version, str(path or ""), text, used_at)
            except StoreError as exc:
                self._fault(exc)  # the call's record carries the rules into the spool

    async def create_call(self, direction: str, remote: str | None, source: str,
                          started_at: float, rules_version: str | None, sample_rate: int = 8000,
                          counselor: str = "") -> int:
        if direction not in DIRECTIONS or source not in SOURCES or sample_rate <= 0:
            raise ValueError(f"bad call values: {direction!r}, {source!r}, {sample_rate}")
        rules = None
        if rules_version is not None and rules_version in self._rules:
            rules = [rules_version, *self._rules[rules_version]]
        create = {"direction": str(direction), "remote": remote or "", "source": str(source),
                  "started_at": started_at, "sample_rate": sample_rate,
                  "counselor": counselor, "rules": rules}
        await self._check_file()
        call: _Call | None = None
        if self.store is not None:
            try:
                sid = await self.store.create_call(direction, remote or "", source,
                                                   started_at, rules_version, sample_rate,
                                                   counselor)
                key = sid if sid not in self._calls and sid not in self._ids else self._new_key()
                call = _Call(key, create, sid, self.store.identity)
            except StoreError as exc:
                self._fault(exc)
        if call is None:
            call = _Call(self._new_key(), create)
            self._calls[call.key] = call
            await self._spool(call, None)
            self._kick()
        self._calls[call.key] = call
        self._ids[call.key] = call.store_id
        return call.key

    async def append_audio(self, call_id: int, leg: str, start_sample: int, pcm: bytes) -> None:
        if leg not in LEGS or not pcm or len(pcm) % 2 or start_sample < 0:
            raise ValueError(f"bad audio chunk: {leg!r}, {start_sample}, {len(pcm)} bytes")
        await self._write(call_id, "audio", {"leg": str(leg), "start": start_sample},
                          bytes(pcm), lambda s, i: s.append_audio(i, leg, start_sample, pcm))

    async def add_utterance(self, call_id: int, leg: str, start_s: float, end_s: float,
                            text: str, status: str, reason: str | None = None,
                            asr_s: float | None = None, lag_s: float | None = None,
                            hits=(), at_s: float | None = None) -> int | None:
        hits = [list(h) for h in hits]
        f = {"leg": str(leg), "start_s": start_s, "end_s": end_s, "text": text,
             "status": str(status), "reason": reason, "asr_s": asr_s, "lag_s": lag_s,
             "at_s": at_s, "hits": hits}
        return await self._write(call_id, "utterance", f, b"", lambda s, i: s.add_utterance(
            i, leg, start_s, end_s, text, status, reason, asr_s, lag_s,
            [tuple(h) for h in hits], at_s))

    async def add_verdict(self, call_id: int, t_s: float, kind: str, prompt: str | None,
                          hangup: bool, reason: str, cause: str | None = None) -> int | None:
        f = {"t_s": t_s, "kind": str(kind), "prompt": prompt, "hangup": bool(hangup),
             "reason": reason, "cause": None if cause is None else str(cause)}
        return await self._write(call_id, "verdict", f, b"", lambda s, i: s.add_verdict(
            i, t_s, kind, prompt, hangup, reason, cause=cause))

    async def add_action(self, call_id: int, t_s: float, kind: str, detail: str,
                         ok: bool = True, error: str | None = None,
                         prompt: str | None = None, seconds: float | None = None) -> int | None:
        f = {"t_s": t_s, "kind": str(kind), "detail": detail, "ok": bool(ok), "error": error,
             "prompt": prompt, "seconds": seconds}
        return await self._write(call_id, "action", f, b"", lambda s, i: s.add_action(
            i, t_s, kind, detail, ok, error, prompt=prompt, seconds=seconds))

    async def update_call(self, call_id: int, flagged: bool | None = None,
                          stage: str | None = None) -> None:
        f = {"flagged": flagged, "stage": None if stage is None else str(stage)}
        await self._write(call_id, "update", f, b"",
                          lambda s, i: s.update_call(i, flagged=flagged, stage=stage))

    async def end_call(self, call_id: int, ended_at: float, duration_s: float,
                       end_reason: str, hung_up_by: str | None = None) -> str | None:
        f = {"ended_at": ended_at, "duration_s": duration_s, "end_reason": str(end_reason),
             "hung_up_by": None if hung_up_by is None else str(hung_up_by)}
        call = self._calls.get(call_id)
        try:
            return await self._write(call_id, "end", f, b"", lambda s, i: s.end_call(
                i, ended_at, duration_s, end_reason, hung_up_by))
        finally:
            if call is not None:
                call.ended = True
                self._forget_if_done(call)

    # --- writing and spooling -------------------------------------------------------------

    def _new_key(self) -> int:
        self._next_key -= 1
        return self._next_key

    async def _write(self, key: int, kind: str, f: dict[str, Any], blob: bytes,
                     direct: Callable[[Store, int], Any]) -> Any:
        call = self._calls.get(key)
        if call is None:
            raise StoreError(f"call {key} is not open in this call store")
        await self._check_file()
        store = self.store
        if (call.journal is None and store is not None and call.store_id is not None
                and call.store == store.identity):
            try:
                result = await direct(store, call.store_id)
            except StoreError as exc:
                self._fault(exc)
            else:
                if self.problem is not None and not self.pending and not self._lock.locked():
                    self._healthy()
                return result
        await self._spool(call, (kind, f, blob))
        self._kick()
        return None

    async def _spool(self, call: _Call, rec: tuple[str, dict[str, Any], bytes] | None) -> None:
        """Append to the call's journal (opening it with the call's record first)."""
        if call.journal is None:
            call.journal = Journal(self.spool_dir, memory_limit=self.memory_limit)
            call.applied = -1
            head = call.journal.add("call", {**call.create, "store": call.store,
                                             "call_id": call.store_id})
            await asyncio.to_thread(call.journal.write, head)
        if rec is not None:
            r = call.journal.add(*rec)
            await asyncio.to_thread(call.journal.write, r)

    def _kick(self) -> None:
        """Start a background replay unless one runs: the call path never waits for it."""
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        if self._lock.locked() or self._mono() - self._last_fail < self.retry_s:
            return  # a store that just refused is tried again a second later, not per write
        async with self._lock:
            if self.store is None:
                if self._mono() - self._last_open < self.reopen_s:
                    return
                await self._open_store(check=False)
                if self.store is None:
                    return
            try:
                await self._drain_all()
            except StoreError as exc:
                self._last_fail = self._mono()
                self._fault(exc)
                if self._mono() - self._last_open >= self.reopen_s:
                    # A connection that met a read-only or failing disk may stay broken
                    # after the disk is back: start a new one.
                    await self._reopen()

    async def _drain_all(self) -> None:
        """Replay every journal (raises StoreError at the first record refused); then
        close the calls a crash left open, once; then report health."""
        assert self.store is not None
        for call in list(self._calls.values()):
            if call.journal is not None:
                await self._drain(call)
        if self._recover_pending:
            keep = [c.store_id for c in self._calls.values()
                    if not c.ended and c.store_id is not None]
            self.recovered += await self.store.recover_interrupted(self._now(), keep=keep)
            self._recover_pending = False
        if self.problem is not None and not self.pending:
            self._healthy()

    async def _drain(self, call: _Call) -> None:
        store = self.store
        assert store is not None and call.journal is not None
        cid = call.store_id if call.store == store.identity else None
        while call.journal is not None:
            journal = call.journal
            batch = await asyncio.to_thread(journal.batch, call.applied)
            for rec in batch:
                if rec.kind == "lost":  # dropped at the memory bound: nothing to write
                    call.applied = rec.seq
                    continue
                cid = await store.apply_spooled(journal.id, rec.seq, rec.kind, rec.fields,
                                                rec.blob, cid)
                call.store_id, call.store, call.applied = cid, store.identity, rec.seq
                self.replayed += 1
                if rec.kind == "end":
                    call.ended = True
            if batch:
                continue
            if call.applied >= journal.last_seq:  # nothing appended meanwhile
                call.journal = None
                self._ids[call.key] = cid
                if journal.lost:
                    self._report("lost", f"{journal.lost} second(s) of audio could not be "
                                 "kept (the spool and its memory bound were full)")
                await asyncio.to_thread(journal.remove)
            else:
                await asyncio.sleep(0.01)  # a record still on its way to the journal
        self._forget_if_done(call)

    def _forget_if_done(self, call: _Call) -> None:
        if call.ended and call.journal is None:
            self._calls.pop(call.key, None)
            if not call.leftover:
                self._ids[call.key] = call.store_id

    # --- the file: opened, checked, replaced ----------------------------------------------

    async def _open_store(self, check: bool) -> None:
        self._last_open = self._mono()
        try:
            store = await Store.open(self.path)
        except StoreError as exc:
            if "newer than this callguard" in str(exc):
                raise
            if not is_corruption(exc):
                self._fault(exc, "unavailable")
                return
            store = await self._replace_corrupt(str(exc))
            if store is None:
                return
        self.store = store
        if check:
            await self._integrity_check()

    async def _integrity_check(self) -> None:
        """quick_check the open store; a damaged one is moved aside and a new one started."""
        assert self.store is not None
        try:
            found = await self.store.quick_check()
        except StoreError as exc:
            if not is_corruption(exc):
                self._fault(exc)
                return
            found = [str(exc)]
        if not found:
            return
        with contextlib.suppress(Exception):
            await self.store.close()
        self.store = await self._replace_corrupt("; ".join(found[:3]))

    async def _replace_corrupt(self, detail: str) -> Store | None:
        aside = await asyncio.to_thread(move_aside, self.path, self._now())
        self.moved_aside.append(aside)
        # Calls bound to the damaged file are copied from nowhere: their spooled records
        # (if any) replay into a new call; rows written before are in the file kept aside.
        for call in self._calls.values():
            call.store, call.store_id = "", None
        self._report("corrupt", f"the call store {self.path} is damaged ({detail}); it was "
                     f"moved aside to {aside.name} (kept for recovery) and a new store was "
                     "started", force=True)
        try:
            store = await Store.open(self.path)
        except StoreError as exc:
            self._fault(exc, "unavailable")
            return None
        return store

    async def _reopen(self) -> None:
        old, self.store = self.store, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        await self._open_store(check=False)

    async def _check_file(self) -> None:
        """A deleted or replaced store file: report it, open a new store at the path, and
        copy the calls in progress from the old file into the spool to replay there."""
        store = self.store
        if store is None or self._lock.locked():
            return
        what = await asyncio.to_thread(store.replaced)
        if what is None:
            return
        async with self._lock:
            if self.store is not store:
                return
            self._report(what, f"the call store file {self.path} was {what} while callguard "
                         "was running; a new store was started there and the calls in "
                         "progress are kept (calls that had ended are not in it)", force=True)
            for call in list(self._calls.values()):
                if call.store == store.identity and call.store_id is not None:
                    await self._respool_from(store, call)
            with contextlib.suppress(Exception):
                await store.close()
            self.store = None
            await self._open_store(check=False)
            if self.store is not None:
                with contextlib.suppress(StoreError):
                    await self._drain_all()

    async def _respool_from(self, old: Store, call: _Call) -> None:
        """A new journal for ``call``: what ``old`` holds of it, then its pending records."""
        pending = []
        if call.journal is not None:
            pending = [r for r in await asyncio.to_thread(call.journal.records)
                       if r.seq > call.applied and r.kind != "call"]
        try:
            rec = await old.get_call(call.store_id)
            chunks = await old.audio_chunks(call.store_id)
        except StoreError as exc:
            self._report("copy", f"the calls in progress could not be read back from the "
                         f"old store file: {exc}")
            rec, chunks = None, {}
        old_journal = call.journal
        call.journal, call.store, call.store_id = None, "", None
        await self._spool(call, None)
        rows: list[tuple[str, dict[str, Any], bytes]] = []
        for leg, leg_chunks in chunks.items():
            rows += [("audio", {"leg": leg, "start": s}, pcm) for s, pcm in leg_chunks]
        if rec is not None:
            for u in rec.utterances:
                rows.append(("utterance", {
                    "leg": u.leg, "start_s": u.start_s, "end_s": u.end_s, "text": u.text,
                    "status": u.status, "reason": u.reason, "asr_s": u.asr_s,
                    "lag_s": u.lag_s, "at_s": u.at_s,
                    "hits": [[h.rule_id, h.category, h.severity, h.term, h.start, h.end,
                              h.matched] for h in u.hits]}, b""))
            rows += [("verdict", {"t_s": v.t_s, "kind": v.kind, "prompt": v.prompt,
                                  "hangup": v.hangup, "reason": v.reason, "cause": v.cause},
                      b"") for v in rec.verdicts]
            rows += [("action", {"t_s": a.t_s, "kind": a.kind, "detail": a.detail,
                                 "ok": a.ok, "error": a.error, "prompt": a.prompt,
                                 "seconds": a.seconds}, b"") for a in rec.actions]
            rows.append(("update", {"flagged": rec.flagged, "stage": rec.stage}, b""))
        rows += [(r.kind, r.fields, r.blob) for r in pending]
        for row in rows:
            await self._spool(call, row)
        if old_journal is not None:
            await asyncio.to_thread(old_journal.remove)

    # --- health ---------------------------------------------------------------------------

    def _fault(self, exc: BaseException, kind: str | None = None) -> None:
        kind = kind or _classify(exc)
        where = self.path
        text = {
            "full": f"the disk holding the call store {where} is full",
            "readonly": f"the call store {where} cannot be written (read-only)",
            "io": f"the call store {where} cannot be written (I/O error: read-only or "
                  "failing disk?)",
            "unavailable": f"the call store {where} cannot be opened",
            "corrupt": f"the call store {where} is damaged",
        }.get(kind, f"the call store {where} refused a write")
        self._report(kind, f"{text}: calls go on and what they record is kept in the spool "
                     f"({self.spool_dir}) until it can be written [{exc}]")

    def _report(self, kind: str, message: str, force: bool = False) -> None:
        changed = kind != self.problem_kind or force
        self.problem, self.problem_kind = message, kind
        now = self._mono()
        if now - self._logged.get(kind, -1e18) >= LOG_EVERY_S or force:
            self._logged[kind] = now
            log.error("%s", message)
        if changed and self.on_health is not None:
            self.on_health(False, message)

    def _healthy(self) -> None:
        if self.problem is None:
            return
        self.problem, self.problem_kind = None, None
        log.warning("call store %s writable again: every spooled record is written "
                    "(%d so far)", self.path, self.replayed)
        if self.on_health is not None:
            self.on_health(True, None)
