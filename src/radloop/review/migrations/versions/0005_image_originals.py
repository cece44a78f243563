"""Each image's kept original (relative to the data directory), so that drafting a study
reads its own files, not every file of the upload it arrived in.

A plain ``ALTER TABLE ... ADD COLUMN`` (see 0002). Images stored before it have none: their
studies are read from the whole upload as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("original", sa.String(1000), nullable=True))


def downgrade() -> None:
    op.drop_column("images", "original")
