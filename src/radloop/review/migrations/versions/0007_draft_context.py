"""The clinical context each draft's model was given (``drafts.context``).

A JSON record per draft (:meth:`radloop.assist.prompts.ContextSection.record`): the prompt's
context section exactly as the model read it, the items given (the order's history, the prior
report, lab values, active conditions, each with its provenance and age), the items left out
and why (after the film, the size budget), and notes on sources that could not be used. The
study page shows it as "What the model was given".

A plain ``ALTER TABLE ... ADD COLUMN`` (see 0002). Drafts made before have none: the page
says the context was not recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("drafts", sa.Column("context", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("drafts", "context")
