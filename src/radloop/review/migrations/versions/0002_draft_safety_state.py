"""What the safety layer says about each draft: domain, calibration, banner, failure or
abstention, typed output warnings, unaddressed sections; each study's count of claims not
checked.

Plain ``ALTER TABLE ... ADD/DROP COLUMN`` on both databases, never a batch table copy: on
SQLite, copying ``studies`` would drop the old table, and with foreign keys on that deletes
every study's images, draft and worksheet by cascade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _draft_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("domain", sa.JSON(), nullable=True),
        sa.Column("calibrated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("banner", sa.Text(), nullable=True),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("abstained", sa.Text(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        sa.Column("unaddressed", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def upgrade() -> None:
    op.add_column(
        "studies",
        sa.Column("not_checked", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    for column in _draft_columns():
        op.add_column("drafts", column)


def downgrade() -> None:
    for column in reversed(_draft_columns()):
        op.drop_column("drafts", column.name)
    op.drop_column("studies", "not_checked")
