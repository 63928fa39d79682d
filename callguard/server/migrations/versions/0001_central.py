"""The central schema: desks, accounts, calls and their transcripts, alerts, reviews, rules
versions and the append-only access log.

Units: timestamps are ``timestamptz``; call times (``start_s``, ``t_s``...) are seconds from
the answer, as on the desk. ``calls.remote`` (the caller's number), transcripts, matched
words and review notes are personal data; ``calls.remote_key`` is an HMAC-SHA-256 of the
normalised number under the site secret, for the repeat-caller history.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE desks (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    token_hash  text NOT NULL UNIQUE,        -- SHA-256 hex of the desk's bearer token
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked     boolean NOT NULL DEFAULT false,
    last_seen   timestamptz,
    rules_version text,                      -- the rules version the desk runs
    rules_error   text,                      -- why it refused the newest version, if it did
    rules_checked_at timestamptz
);

CREATE TABLE users (
    name        text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('counselor', 'supervisor', 'admin')),
    pw_hash     text NOT NULL,               -- scrypt$n$r$p$salt$hash
    team        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled    boolean NOT NULL DEFAULT false,
    alerts_seen bigint NOT NULL DEFAULT 0    -- alerts.id of the newest alert seen
);

CREATE TABLE sessions (
    token_hash  text PRIMARY KEY,            -- SHA-256 hex of the session token
    user_name   text NOT NULL REFERENCES users (name),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE TABLE rules_versions (
    id           serial PRIMARY KEY,
    version      text NOT NULL UNIQUE,       -- SHA-256 hex of the file's UTF-8 bytes
    text         text NOT NULL,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    note         text NOT NULL DEFAULT ''
);

CREATE TABLE calls (
    uuid          uuid PRIMARY KEY,          -- made on the desk (UUIDv7)
    desk_id       integer NOT NULL REFERENCES desks (id),
    desk_call_id  bigint NOT NULL,           -- the call's id in the desk's store
    counselor     text NOT NULL,
    direction     text NOT NULL,
    source        text NOT NULL,
    remote        text NOT NULL,             -- personal data
    remote_key    text NOT NULL,             -- HMAC of the normalised number
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    duration_s    double precision NOT NULL,
    end_reason    text NOT NULL,
    hung_up_by    text,
    flagged       boolean NOT NULL,
    crisis        boolean NOT NULL DEFAULT false,
    stage         text NOT NULL,
    categories    text[] NOT NULL DEFAULT '{}',
    rules_version text,
    sample_rate   integer NOT NULL,
    recording_sha256 text,                   -- the desk's seal: SHA-256 of the stereo WAV
    audio_sha256  text,                      -- the compressed recording's name in the blobs
    audio_codec   text,
    audio_bytes   bigint,
    audio_frames  bigint,                    -- samples per leg
    audio_verified text,                     -- 'seal' (lossless, seal re-computed) or 'blob'
    received_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (desk_id, desk_call_id)
);
CREATE INDEX calls_started ON calls (started_at DESC, uuid);
CREATE INDEX calls_flagged ON calls (started_at DESC, uuid) WHERE flagged;
CREATE INDEX calls_desk ON calls (desk_id, started_at DESC);
CREATE INDEX calls_counselor ON calls (counselor, started_at DESC);
CREATE INDEX calls_remote_key ON calls (remote_key, started_at DESC);

CREATE TABLE utterances (
    call_uuid uuid NOT NULL REFERENCES calls (uuid) ON DELETE CASCADE,
    seq       bigint NOT NULL,               -- the utterance's id on the desk
    leg       text NOT NULL,
    start_s   double precision NOT NULL,
    end_s     double precision NOT NULL,
    at_s      double precision,
    text      text NOT NULL,                 -- personal data
    status    text NOT NULL,
    reason    text,
    PRIMARY KEY (call_uuid, seq)
);

CREATE TABLE hits (
    call_uuid     uuid NOT NULL,
    seq           bigint NOT NULL,           -- the hit's id on the desk
    utterance_seq bigint NOT NULL,
    rule_id       text NOT NULL,
    category      text NOT NULL,
    severity      integer NOT NULL,
    term          text NOT NULL,
    start_ch      integer NOT NULL,
    end_ch        integer NOT NULL,
    matched       text NOT NULL,             -- personal data
    PRIMARY KEY (call_uuid, seq),
    FOREIGN KEY (call_uuid, utterance_seq) REFERENCES utterances ON DELETE CASCADE
);

CREATE TABLE verdicts (
    call_uuid uuid NOT NULL REFERENCES calls (uuid) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    t_s       double precision NOT NULL,
    kind      text NOT NULL,
    prompt    text,
    hangup    boolean NOT NULL,
    reason    text NOT NULL,
    cause     text,
    PRIMARY KEY (call_uuid, seq)
);

CREATE TABLE actions (
    call_uuid uuid NOT NULL REFERENCES calls (uuid) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    t_s       double precision NOT NULL,
    kind      text NOT NULL,
    detail    text NOT NULL,
    ok        boolean NOT NULL,
    error     text,
    prompt    text,
    seconds   double precision,
    PRIMARY KEY (call_uuid, seq)
);

-- Alerts may arrive before their call (which is uploaded when it ends): no foreign key.
CREATE TABLE alerts (
    id         bigserial PRIMARY KEY,
    key        text NOT NULL UNIQUE,         -- made on the desk: delivered twice = once
    desk_id    integer NOT NULL REFERENCES desks (id),
    call_uuid  uuid,
    counselor  text NOT NULL,
    kind       text NOT NULL,                -- crisis, protect, supervisor_notified, rest_started
    detail     text NOT NULL DEFAULT '',     -- never a transcript or a number
    raised_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reviews (
    id        bigserial PRIMARY KEY,
    call_uuid uuid NOT NULL REFERENCES calls (uuid),
    at        timestamptz NOT NULL DEFAULT now(),
    reviewer  text NOT NULL,
    verdict   text NOT NULL,
    note      text NOT NULL DEFAULT ''
);
CREATE INDEX reviews_call ON reviews (call_uuid, at);

-- Who read which call, when: every transcript view, playback and export (the Personal
-- Information Protection Act's access record, kept at least two years). Append-only.
CREATE TABLE access_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    role      text NOT NULL,
    action    text NOT NULL,                 -- view, playback, export, login, ...
    call_uuid uuid,
    detail    text NOT NULL DEFAULT ''
);
CREATE INDEX access_log_at ON access_log (at);
CREATE INDEX access_log_call ON access_log (call_uuid, at);

CREATE FUNCTION callguard_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows cannot be changed or deleted', TG_TABLE_NAME;
END $$;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION callguard_append_only();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION callguard_append_only();
CREATE TRIGGER reviews_append_only BEFORE UPDATE OR DELETE ON reviews
    FOR EACH ROW EXECUTE FUNCTION callguard_append_only();
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    raise NotImplementedError("the central schema is only migrated forward; restore a backup")
