"""What each draft's model work cost: requests, prompt and completion tokens, seconds.

``drafts`` gains ``cost``, a JSON object by part (``draft``, ``samples``, ``ask_back``) and
in total, each with ``requests``, ``prompt_tokens``, ``completion_tokens`` and ``seconds``.
Drafts stored before have none.

Plain ``ALTER TABLE ... ADD COLUMN`` on both databases (see 0002).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("drafts", sa.Column("cost", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("drafts", "cost")
