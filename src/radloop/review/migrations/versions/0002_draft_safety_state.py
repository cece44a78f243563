"""What the safety layer says about each draft: domain, calibration, banner, failure or
abstention, typed output warnings, unaddressed sections; each study's count of claims not
checked.

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


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("not_checked", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("domain", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("calibrated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("banner", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("failure", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("abstained", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("warnings", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("unaddressed", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        for name in ("unaddressed", "warnings", "abstained", "failure", "banner", "calibrated"):
            batch_op.drop_column(name)
        batch_op.drop_column("domain")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("not_checked")
