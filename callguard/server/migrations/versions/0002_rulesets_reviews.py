"""Rules texts by version (every version a desk ran, not only the published ones: a call's
evidence package carries the rules in force), and what a review list filters on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE rulesets (
    version  text PRIMARY KEY,               -- SHA-256 hex of the text's UTF-8 bytes
    text     text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rulesets (version, text) SELECT version, text FROM rules_versions
    ON CONFLICT DO NOTHING;
ALTER TABLE calls ADD COLUMN reviewed boolean NOT NULL DEFAULT false;
CREATE INDEX calls_unreviewed_flagged ON calls (started_at DESC, uuid)
    WHERE flagged AND NOT reviewed;
CREATE INDEX calls_categories ON calls USING gin (categories);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    raise NotImplementedError("the central schema is only migrated forward; restore a backup")
