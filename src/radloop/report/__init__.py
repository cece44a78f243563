"""Structured findings: ``parse(text) -> list[Finding]`` and ``write(findings) -> text``."""

from radloop.report.parser import parse
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
from radloop.report.writer import write

__all__ = [
    "Change",
    "Evidence",
    "Finding",
    "Presence",
    "Report",
    "ReportStatus",
    "Severity",
    "Verdict",
    "parse",
    "write",
]
