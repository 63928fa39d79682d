"""Indexes for the supervisors' lists, from EXPLAIN on 1,000,000 calls
(callguard.bench.central_bench): flagged calls of one desk (7.7 ms → 1.3 ms), and the
``before`` cursor as part of the index scan (1.46 ms → 0.14 ms); ``uuid DESC`` as the lists
order, so no sort step remains.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE INDEX calls_desk_flagged ON calls (desk_id, started_at DESC, uuid DESC) WHERE flagged;
CREATE INDEX calls_flagged_desc ON calls (started_at DESC, uuid DESC) WHERE flagged;
DROP INDEX calls_flagged;
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    raise NotImplementedError("the central schema is only migrated forward; restore a backup")
