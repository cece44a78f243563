"""Drafting jobs that survive crashes: each claim's token, lease and heartbeat, the time a
retry may start, and the draft's revision (how often it was written).

Plain ``ALTER TABLE ... ADD COLUMN`` on both databases (see 0002). Jobs left ``running`` by
an older version have no lease: the first worker to start requeues them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_JOB_COLUMNS = ("token", "lease_until", "heartbeat_at", "not_before")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("token", sa.String(32), nullable=True))
    for name in _JOB_COLUMNS[1:]:
        op.add_column("jobs", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_jobs_state_lease", "jobs", ["state", "lease_until"])
    op.add_column(
        "drafts",
        sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    op.drop_column("drafts", "revision")
    op.drop_index("ix_jobs_state_lease", table_name="jobs")
    for name in reversed(_JOB_COLUMNS):
        op.drop_column("jobs", name)
