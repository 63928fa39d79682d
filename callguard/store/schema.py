"""The call store's SQLite schema and its migrations.

``MIGRATIONS`` is append-only: entry *n* (1-based) turns a schema at version *n - 1* into
version *n*, and the database's ``PRAGMA user_version`` records how many have been applied.
Never edit a released migration; add a new one.

Units and formats (also in the SQL comments, which SQLite keeps in ``sqlite_master``):

- ``calls.started_at``/``ended_at``: wall clock, unix epoch seconds.
- ``utterances.start_s``/``end_s``, ``verdicts.t_s``, ``actions.t_s``: call time, seconds
  from the moment the call was answered.
- ``audio_chunks.pcm``: PCM16 little-endian mono at ``calls.sample_rate`` Hz, starting at
  sample ``start_sample`` of the call (sample 0 = answer). Appended in ~1 s chunks while
  the call runs, so a crash loses at most the last chunk.
- ``hits.start``/``end``: character offsets into ``utterances.text`` (end exclusive).
- ``rulesets.version``: SHA-256 hex digest of the rules file's UTF-8 bytes.

``calls.remote``, ``utterances.text``, ``hits.matched`` and ``calls.note`` are personal data.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import suppress

import aiosqlite

from callguard.store.records import StoreError
from callguard.vocabulary import (
    ActionKind,
    Cause,
    Direction,
    EndReason,
    HungUpBy,
    Leg,
    ReviewVerdict,
    Role,
    Source,
    Stage,
    UtteranceStatus,
    VerdictKind,
)

log = logging.getLogger(__name__)

# Values the store accepts. Enumerations that identify evidence (direction, leg) are also
# CHECKed in SQL; the others are checked in Python so adding a value needs no table rebuild.
DIRECTIONS = tuple(Direction)
SOURCES = tuple(Source)
LEGS = tuple(Leg)
STAGES = tuple(Stage)  # in escalation order
UTTERANCE_STATUSES = tuple(UtteranceStatus)
VERDICT_KINDS = tuple(VerdictKind)
CAUSES = tuple(Cause)
# end_reason and actions.kind are open sets; these are the values the agent writes today.
END_REASONS = tuple(EndReason)
ACTION_KINDS = tuple(ActionKind)
HUNG_UP_BY = tuple(HungUpBy)
REVIEW_VERDICTS = tuple(ReviewVerdict)
ROLES = tuple(Role)
AGENT_ROLE = "agent"  # the audit log's role for entries the agent itself writes

_V1 = """
CREATE TABLE rulesets (
    version       TEXT PRIMARY KEY,   -- sha256 hex of the rules file's bytes
    path          TEXT NOT NULL,      -- where the file was loaded from
    text          TEXT NOT NULL,      -- the exact rules in force, kept as evidence
    first_used_at REAL NOT NULL       -- unix epoch seconds
);

CREATE TABLE calls (
    id            INTEGER PRIMARY KEY,
    direction     TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    remote        TEXT NOT NULL,      -- phone number / SIP URI: personal data
    source        TEXT NOT NULL,      -- 'sip', 'simulate', 'demo'
    started_at    REAL NOT NULL,      -- unix epoch seconds, wall clock
    ended_at      REAL,               -- unix epoch seconds; NULL while the call runs
    duration_s    REAL CHECK (duration_s >= 0),
    end_reason    TEXT,               -- 'caller_hangup', 'final_notice', 'interrupted', ...
    rules_version TEXT REFERENCES rulesets (version),
    sample_rate   INTEGER NOT NULL CHECK (sample_rate > 0),  -- Hz, both audio legs
    flagged       INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
    stage         TEXT NOT NULL DEFAULT 'none',  -- highest: none, notice, warned, final
    note          TEXT                -- supervisor's note
);
CREATE INDEX calls_started ON calls (started_at);
-- Partial index: the supervisor's "flagged calls" list reads only these rows.
CREATE INDEX calls_flagged ON calls (started_at) WHERE flagged = 1;

CREATE TABLE audio_chunks (
    call_id      INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    leg          TEXT NOT NULL CHECK (leg IN ('caller', 'counselor')),
    start_sample INTEGER NOT NULL CHECK (start_sample >= 0),  -- samples from answer
    pcm          BLOB NOT NULL CHECK (length(pcm) % 2 = 0),  -- PCM16 LE mono
    PRIMARY KEY (call_id, leg, start_sample)
);

CREATE TABLE utterances (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    leg     TEXT NOT NULL CHECK (leg IN ('caller', 'counselor')),
    start_s REAL NOT NULL,            -- call time, seconds
    end_s   REAL NOT NULL,            -- call time, seconds
    text    TEXT NOT NULL,            -- transcript: personal data
    status  TEXT NOT NULL,            -- 'ok', 'rejected', 'deferred', 'failed'
    reason  TEXT,                     -- why rejected, e.g. 'stock_phrase'
    asr_s   REAL,                     -- recognition wall time, seconds
    lag_s   REAL                      -- end of speech to result, seconds
);
CREATE INDEX utterances_call ON utterances (call_id, start_s);

CREATE TABLE hits (
    id           INTEGER PRIMARY KEY,
    utterance_id INTEGER NOT NULL REFERENCES utterances (id) ON DELETE CASCADE,
    rule_id      TEXT NOT NULL,
    category     TEXT NOT NULL,
    severity     INTEGER NOT NULL,
    term         TEXT NOT NULL,       -- the rule's term that matched
    start        INTEGER NOT NULL CHECK (start >= 0),   -- char offset into utterance text
    end          INTEGER NOT NULL CHECK (end >= start), -- exclusive
    matched      TEXT NOT NULL        -- the caller's words: personal data
);
CREATE INDEX hits_utterance ON hits (utterance_id);

CREATE TABLE verdicts (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    t_s     REAL NOT NULL,            -- call time, seconds
    kind    TEXT NOT NULL,            -- notice, warn, final, alert, duration_*
    prompt  TEXT,                     -- prompt key played to the caller, if any
    hangup  INTEGER NOT NULL CHECK (hangup IN (0, 1)),
    reason  TEXT NOT NULL             -- never quotes the transcript
);
CREATE INDEX verdicts_call ON verdicts (call_id, t_s);

CREATE TABLE actions (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    t_s     REAL NOT NULL,            -- call time, seconds
    kind    TEXT NOT NULL,            -- play_prompt, hangup, alert, ...
    detail  TEXT NOT NULL,
    ok      INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error   TEXT
);
CREATE INDEX actions_call ON actions (call_id, t_s);
"""

# Version 2: evidence and review. The recording's hash at close, who hung up and which
# counselor took the call; the supervisors' verdicts (append-only), an audit log
# (append-only), the app's users (passwords hashed), and the history of saved rules files.
_V2 = """
ALTER TABLE calls ADD COLUMN recording_sha256 TEXT;  -- SHA-256 hex of the stereo WAV at close
ALTER TABLE calls ADD COLUMN hung_up_by TEXT;        -- remote, counselor, agent; NULL if unknown
ALTER TABLE calls ADD COLUMN counselor TEXT NOT NULL DEFAULT '';  -- the line's account name
CREATE INDEX calls_counselor ON calls (counselor, started_at);

CREATE TABLE reviews (
    id       INTEGER PRIMARY KEY,
    call_id  INTEGER NOT NULL REFERENCES calls (id),
    at       REAL NOT NULL,           -- unix epoch seconds
    reviewer TEXT NOT NULL,           -- user name
    verdict  TEXT NOT NULL CHECK (verdict IN ('abuse_confirmed', 'wrongful_cutoff', 'note')),
    note     TEXT NOT NULL DEFAULT '' -- the reviewer's words: may name people
);
CREATE INDEX reviews_call ON reviews (call_id, at);
CREATE TRIGGER reviews_append_only_u BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are an audit trail: they cannot be changed'); END;
CREATE TRIGGER reviews_append_only_d BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are an audit trail: they cannot be deleted'); END;

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,            -- unix epoch seconds
    actor   TEXT NOT NULL,            -- user name, or 'agent'
    role    TEXT NOT NULL,            -- counselor, supervisor, admin, agent
    kind    TEXT NOT NULL,            -- rules_saved, rules_pushed, rest_started, export, ...
    call_id INTEGER,                  -- the call concerned, if any
    detail  TEXT NOT NULL DEFAULT ''  -- never a transcript or a phone number
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_append_only_u BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log cannot be changed'); END;
CREATE TRIGGER audit_log_append_only_d BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log cannot be deleted'); END;

CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('supervisor', 'admin')),
    pw_hash    TEXT NOT NULL,         -- scrypt$n$r$p$salt_hex$hash_hex
    created_at REAL NOT NULL          -- unix epoch seconds
);

CREATE TABLE rules_history (
    id       INTEGER PRIMARY KEY,
    version  TEXT NOT NULL REFERENCES rulesets (version),
    saved_at REAL NOT NULL,           -- unix epoch seconds
    saved_by TEXT NOT NULL,
    note     TEXT NOT NULL DEFAULT ''
);
"""

# Version 3: what each supervisor/admin has seen of the notifications (the counselors'
# rests and "notify supervisor" entries in the audit log), so a reopened review window does
# not show them all as new again. A watermark: entries up to (at, id) are seen.
_V3 = """
ALTER TABLE users ADD COLUMN notes_seen_at REAL;     -- audit_log.at of the newest seen entry
ALTER TABLE users ADD COLUMN notes_seen_id INTEGER;  -- and its id (ties on at)
"""

# Version 4: the values a dry-run needs, kept as values instead of being parsed back from
# text: when a result was acted on, why each verdict was given, which prompt an action
# played and for how long. Older rows are filled from what they recorded (the reason of a
# protect press and the "<key> (<seconds> s)" detail of a played prompt).
_V4 = """
ALTER TABLE utterances ADD COLUMN at_s REAL;  -- call time the live call acted on the result
ALTER TABLE verdicts ADD COLUMN cause TEXT;   -- rules, duration, protect, crisis
ALTER TABLE actions ADD COLUMN prompt TEXT;   -- play_prompt: the prompt's key
ALTER TABLE actions ADD COLUMN seconds REAL;  -- play_prompt: its length (0 = failed)
UPDATE verdicts SET cause = CASE
    WHEN kind = 'final' AND reason = 'counselor pressed protect' THEN 'protect'
    WHEN kind IN ('duration_notice', 'duration_final') THEN 'duration'
    WHEN kind = 'alert' THEN 'crisis'
    ELSE 'rules' END;
UPDATE actions SET prompt = substr(detail, 1, instr(detail, ' (') - 1),
    seconds = CAST(substr(detail, instr(detail, ' (') + 2,
                          length(detail) - instr(detail, ' (') - 4) AS REAL)
    WHERE kind = 'play_prompt' AND ok = 1 AND detail LIKE '% (% s)';
UPDATE actions SET prompt = detail, seconds = 0 WHERE kind = 'play_prompt' AND ok = 0;
"""

# Version 5: store faults. A random id naming this database (a spool journal bound to a
# call of one database is never applied to a call of another), and the spooled records
# already written (journal, sequence number): replaying a journal twice, or after a crash
# half way, writes each record once.
_V5 = """
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
CREATE TABLE spool_applied (
    journal TEXT NOT NULL,            -- the spool journal's id
    seq     INTEGER NOT NULL,         -- the record's sequence number in it
    call_id INTEGER,                  -- the call it was written to
    PRIMARY KEY (journal, seq)
);
"""

# Version 6: the central server. Every call gets a globally unique id made on the desk
# (a UUIDv7: milliseconds of its start, then random bits), so a call delivered twice is
# one call on the server. The outbox lists what must reach the server: an ended call, and
# each alert (an alert action such as a crisis, a protect press, a supervisor notified, a
# rest started). Triggers write it in the same transaction as the rows it describes,
# whichever code path writes them (live call, spool replay, recovery after a crash), so
# nothing can be stored without being queued. Calls that ended before this version are
# queued too: a desk enrolled later uploads its history. ``calls.synced_at`` is set when
# the server has verified the call's audio against the desk's seal. Reviews accept the
# crisis verdict (the table is rebuilt: SQLite cannot alter a CHECK).
_UUID7 = """substr(printf('%012x', CAST(NEW.started_at * 1000 AS INTEGER)), 1, 8) || '-' ||
    substr(printf('%012x', CAST(NEW.started_at * 1000 AS INTEGER)), 9, 4) || '-7' ||
    substr(lower(hex(randomblob(2))), 2, 3) || '-' ||
    substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(2))), 2, 3) ||
    '-' || lower(hex(randomblob(6)))"""
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"  # unix epoch seconds, SQLite < 3.42
_V6 = f"""
ALTER TABLE calls ADD COLUMN uuid TEXT;       -- UUIDv7, made on the desk: the call's id everywhere
ALTER TABLE calls ADD COLUMN synced_at REAL;  -- unix epoch seconds: the server verified it
CREATE TRIGGER calls_uuid AFTER INSERT ON calls WHEN NEW.uuid IS NULL
BEGIN UPDATE calls SET uuid = {_UUID7} WHERE id = NEW.id; END;
UPDATE calls SET uuid = {_UUID7.replace("NEW.", "")};
CREATE UNIQUE INDEX calls_uuid_unique ON calls (uuid);

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('call', 'alert')),
    call_id    INTEGER REFERENCES calls (id) ON DELETE CASCADE,
    source     TEXT,                  -- alert: 'actions', 'verdicts' or 'audit_log'
    ref_id     INTEGER,               -- alert: the row's id in that table
    created_at REAL NOT NULL,         -- unix epoch seconds
    tries      INTEGER NOT NULL DEFAULT 0,
    next_at    REAL NOT NULL DEFAULT 0,  -- unix epoch seconds: not before (back-off)
    done_at    REAL,                  -- unix epoch seconds: the server acknowledged it
    error      TEXT                   -- the last failure, never personal data
);
CREATE INDEX outbox_pending ON outbox (next_at, id) WHERE done_at IS NULL;
CREATE TRIGGER outbox_call_ended AFTER UPDATE OF ended_at ON calls
    WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
BEGIN INSERT INTO outbox (kind, call_id, created_at) VALUES ('call', NEW.id, {_NOW}); END;
CREATE TRIGGER outbox_call_inserted_ended AFTER INSERT ON calls WHEN NEW.ended_at IS NOT NULL
BEGIN INSERT INTO outbox (kind, call_id, created_at) VALUES ('call', NEW.id, {_NOW}); END;
CREATE TRIGGER outbox_alert_action AFTER INSERT ON actions WHEN NEW.kind = 'alert'
BEGIN INSERT INTO outbox (kind, call_id, source, ref_id, created_at)
      VALUES ('alert', NEW.call_id, 'actions', NEW.id, {_NOW}); END;
CREATE TRIGGER outbox_alert_protect AFTER INSERT ON verdicts WHEN NEW.cause = 'protect'
BEGIN INSERT INTO outbox (kind, call_id, source, ref_id, created_at)
      VALUES ('alert', NEW.call_id, 'verdicts', NEW.id, {_NOW}); END;
CREATE TRIGGER outbox_alert_note AFTER INSERT ON audit_log
    WHEN NEW.kind IN ('supervisor_notified', 'rest_started')
BEGIN INSERT INTO outbox (kind, call_id, source, ref_id, created_at)
      VALUES ('alert', NEW.call_id, 'audit_log', NEW.id, {_NOW}); END;
INSERT INTO outbox (kind, call_id, created_at)
    SELECT 'call', id, {_NOW} FROM calls WHERE ended_at IS NOT NULL ORDER BY id;

CREATE TABLE reviews_v6 (
    id       INTEGER PRIMARY KEY,
    call_id  INTEGER NOT NULL REFERENCES calls (id),
    at       REAL NOT NULL,           -- unix epoch seconds
    reviewer TEXT NOT NULL,           -- user name
    verdict  TEXT NOT NULL CHECK (verdict IN
        ('abuse_confirmed', 'wrongful_cutoff', 'crisis_response', 'note')),
    note     TEXT NOT NULL DEFAULT '' -- the reviewer's words: may name people
);
INSERT INTO reviews_v6 (id, call_id, at, reviewer, verdict, note)
    SELECT id, call_id, at, reviewer, verdict, note FROM reviews;
DROP TABLE reviews;
ALTER TABLE reviews_v6 RENAME TO reviews;
CREATE INDEX reviews_call ON reviews (call_id, at);
CREATE TRIGGER reviews_append_only_u BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are an audit trail: they cannot be changed'); END;
CREATE TRIGGER reviews_append_only_d BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are an audit trail: they cannot be deleted'); END;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION = len(MIGRATIONS)


def split_statements(script: str) -> list[str]:
    """Split an SQL script into single statements.

    Uses SQLite's own tokenizer (:func:`sqlite3.complete_statement`), so semicolons inside
    strings, comments or trigger bodies do not split. We cannot hand the script to
    ``executescript``: it commits first, and a migration must run inside our transaction.
    """
    statements: list[str] = []
    start = 0
    for i, ch in enumerate(script):
        if ch == ";" and sqlite3.complete_statement(script[start : i + 1]):
            statements.append(script[start : i + 1].strip())
            start = i + 1
    rest = "\n".join(line for line in script[start:].splitlines()
                     if not line.strip().startswith("--"))
    if rest.strip():
        raise ValueError(f"incomplete SQL statement at the end of the script: {rest.strip()!r}")
    return statements


async def user_version(conn: aiosqlite.Connection) -> int:
    """The number of migrations applied to the database behind ``conn``."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def check_version(version: int, name: str) -> None:
    """Raise :class:`StoreError` if the database is newer than this code understands."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{name}: call store schema version {version} is newer than this callguard "
            f"understands (version {SCHEMA_VERSION}); upgrade callguard to open it")


async def migrate(conn: aiosqlite.Connection, name: str = "call store") -> int:
    """Apply the missing migrations, each in its own transaction; return the new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the explicit
    transactions here are the only ones. ``name`` (the file) is used in error messages.
    Each step takes the write lock (``BEGIN IMMEDIATE``) and re-reads ``user_version``
    under it, so two processes opening a new file at once apply every migration once.
    """
    version = await user_version(conn)
    check_version(version, name)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            current = await user_version(conn)
            check_version(current, name)
            if current >= target:  # another process got here first
                await conn.execute("COMMIT")
                continue
            for statement in split_statements(MIGRATIONS[target - 1]):
                await conn.execute(statement)
            # PRAGMA takes no parameters; target is an int we computed.
            await conn.execute(f"PRAGMA user_version = {int(target)}")
            await conn.execute("COMMIT")
        except BaseException as exc:
            with suppress(sqlite3.Error):  # SQLite may have rolled back already
                await conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(
                    f"{name}: migration to schema version {target} failed: {exc}") from exc
            raise
        log.info("%s: call store schema migrated to version %d", name, target)
    return SCHEMA_VERSION
