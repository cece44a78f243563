"""Structured findings: ``parse(text) -> list[Finding]`` and ``write(findings) -> text``."""

from radloop.report.types import (
    Change,
    Evidence,
    Finding,
    Presence,
    Report,
    ReportStatus,
    Severity,
    Verdict,
)

__all__ = [
    "Change",
    "Evidence",
    "Finding",
    "Presence",
    "Report",
    "ReportStatus",
    "Severity",
    "Verdict",
]
