"""The PACS link (:mod:`radloop.pacs`): the studies taken from the PACS (fetched once), the
outbox of signed reports to send back as DICOM SR, and a log of polls.

New tables only; nothing existing changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "pacs_seen",
        sa.Column("study_instance_uid", sa.String(128), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("instances", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.Text(), nullable=True),
        _when("first_seen_at", nullable=False),
        _when("updated_at", nullable=False),
    )
    op.create_index("ix_pacs_seen_state", "pacs_seen", ["state"])
    op.create_table(
        "pacs_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "study_id",
            sa.String(32),
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        _when("created_at", nullable=False),
        _when("not_before"),
        _when("claimed_at"),
        _when("sent_at"),
        sa.Column("sop_instance_uid", sa.String(128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_pacs_outbox_state", "pacs_outbox", ["state", "not_before"])
    op.create_table(
        "pacs_polls",
        sa.Column("id", sa.Integer(), primary_key=True),
        _when("started_at", nullable=False),
        _when("finished_at"),
        sa.Column("since", sa.Date(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
            for name in ("found", "fetched", "refused", "failed")
        ),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_pacs_polls_started_at", "pacs_polls", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_pacs_polls_started_at", table_name="pacs_polls")
    op.drop_table("pacs_polls")
    op.drop_index("ix_pacs_outbox_state", table_name="pacs_outbox")
    op.drop_table("pacs_outbox")
    op.drop_index("ix_pacs_seen_state", table_name="pacs_seen")
    op.drop_table("pacs_seen")
