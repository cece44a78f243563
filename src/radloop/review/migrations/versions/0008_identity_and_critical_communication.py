"""Patient identity on the worklist, and the record of communicating a critical result.

``studies`` gains the patient's name, birth date and the accession number, read at ingest
from the DICOM header (Patient's Name (0010,0010), Patient's Birth Date (0010,0030),
Accession Number (0008,0050)); the Patient ID was already kept as ``patient_key``. Studies
stored before have none: the pages say "not recorded".

``critical_communications`` keeps, per study, to whom, when and how a critical result was
communicated, or why the communication was waived (ACR Practice Parameter for Communication
of Diagnostic Imaging Findings). Rows are only ever added.

Plain ``ALTER TABLE ... ADD COLUMN`` and ``CREATE TABLE`` on both databases (see 0002).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("studies", sa.Column("patient_name", sa.String(200), nullable=True))
    op.add_column("studies", sa.Column("birth_date", sa.Date(), nullable=True))
    op.add_column("studies", sa.Column("accession_number", sa.String(64), nullable=True))
    op.create_index("ix_studies_accession_number", "studies", ["accession_number"])
    op.create_table(
        "critical_communications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "study_id",
            sa.String(32),
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("recipient", sa.String(200), nullable=True),
        sa.Column("method", sa.String(32), nullable=True),
        sa.Column("communicated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waived_reason", sa.Text(), nullable=True),
        sa.Column("finding", sa.Text(), nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_by_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("critical_communications")
    op.drop_index("ix_studies_accession_number", table_name="studies")
    op.drop_column("studies", "accession_number")
    op.drop_column("studies", "birth_date")
    op.drop_column("studies", "patient_name")
