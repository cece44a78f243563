"""A study found by a PACS poll settles before it is taken.

``pacs_seen`` gains ``signature``: a hash of the study's series and their instance counts as
QIDO-RS last listed them. A poll that finds a study for the first time records it as
``settling``; a later poll takes it only when the signature is unchanged and at least
``RADLOOP_PACS_POLL_SETTLE_S`` has passed, so a study whose images are still arriving in the
PACS is not put on the worklist in part. Rows written before have none.

Plain ``ALTER TABLE ... ADD COLUMN`` on both databases (see 0002).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pacs_seen", sa.Column("signature", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("pacs_seen", "signature")
