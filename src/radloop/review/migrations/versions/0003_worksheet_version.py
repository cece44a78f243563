"""Sign-off and decisions that cannot race: the worksheet's version and last change, and at
most one final report per study.

Plain ``ALTER TABLE ... ADD COLUMN`` on both databases, never a batch table copy (see 0002).
The unique partial index ``uq_signed_reports_final`` (``WHERE kind = 'final'``) works on
SQLite and PostgreSQL alike; addenda stay unlimited.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "worksheets",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("worksheets", sa.Column("last_change", sa.String(64), nullable=True))
    op.create_index(
        "uq_signed_reports_final",
        "signed_reports",
        ["study_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'final'"),
        postgresql_where=sa.text("kind = 'final'"),
    )


def downgrade() -> None:
    op.drop_index("uq_signed_reports_final", table_name="signed_reports")
    op.drop_column("worksheets", "last_change")
    op.drop_column("worksheets", "version")
