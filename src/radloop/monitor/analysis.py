"""One call from signed cases to everything monitoring shows: agreement, aggregates, drift."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from radloop.monitor.aggregate import CLAIM_VERDICTS, CaseTable, MonitorSummary, summarise
from radloop.monitor.agreement import DEFAULT_F1_THRESHOLD, Agreement, agreement
from radloop.monitor.calibration import CalibrationConfig, CalibrationReport, calibration_over_time
from radloop.monitor.cases import SignedCase
from radloop.monitor.drift import DriftConfig, DriftReport, detect_drift

__all__ = [
    "NOTICE",
    "Analysis",
    "MonitorSettings",
    "analyse",
    "clear_caches",
    "csv_table",
    "neutralise_csv_cell",
]

NOTICE = (
    "Agreement measures how often readers changed the assistant's drafts; it is not a measure "
    "of diagnostic accuracy. Drafts are assistant output for review by a qualified reader."
)
CSV_TABLES = ("cases", "windows", "subgroups", "kappa", "drift", "calibration")


@dataclass(frozen=True)
class MonitorSettings:
    """What ``analyse`` needs: the revision threshold, the window length and drift settings."""

    f1_threshold: float = DEFAULT_F1_THRESHOLD
    window_days: int = 7
    drift: DriftConfig = field(default_factory=DriftConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)


@dataclass(frozen=True)
class Analysis:
    """Per-case agreement, the aggregate summary and the drift report of a set of cases."""

    agreements: list[Agreement]
    table: CaseTable
    summary: MonitorSummary
    drift: DriftReport
    calibration: CalibrationReport | None = None
    """ECE of the drafts' probabilities per finding type over time (None: not computed)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "schema": "radloop.monitor/analysis-v1",
            "notice": NOTICE,
            "summary": self.summary.to_dict(),
            "drift": self.drift.to_dict(),
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        return out


def analyse(cases: Iterable[SignedCase], settings: MonitorSettings | None = None) -> Analysis:
    """Agreement of every case, then the summary and drift over the cases in received order."""
    settings = settings or MonitorSettings()
    items = list(cases)
    agreements = [agreement(c, f1_threshold=settings.f1_threshold) for c in items]
    table = CaseTable.build(items, agreements=agreements, f1_threshold=settings.f1_threshold)
    summary = summarise(table, window_days=settings.window_days,
                        models=dict(Counter(c.model for c in items)))  # fmt: skip
    calibration = calibration_over_time(items, settings.calibration)
    return Analysis(agreements, table, summary, detect_drift(table, settings.drift), calibration)


def csv_table(analysis: Analysis, name: str) -> str:
    """One of ``cases``, ``windows``, ``subgroups``, ``kappa``, ``drift`` as CSV text."""
    rows: list[dict[str, Any]]
    if name == "cases":
        table = analysis.table
        where = {str(s): i for i, s in enumerate(table.study_id)}
        rows = []
        for a in analysis.agreements:
            row = _case_row(a)
            i = where.get(a.study_id)
            stored = table.verdicts[i] if i is not None and table.verdicts.size else None
            row["claims"] = int(stored.sum()) if stored is not None else 0
            for k, verdict in enumerate(CLAIM_VERDICTS):
                row[f"claims_{verdict}"] = int(stored[k]) if stored is not None else 0
            rows.append(row)
    elif name == "windows":
        rows = [w.to_dict() for w in analysis.summary.windows]
    elif name == "subgroups":
        rows = [
            {"subgroup": group, **metrics.to_dict()}
            for group, levels in analysis.summary.subgroups.items()
            for metrics in levels
        ]
    elif name == "kappa":
        rows = [k.to_dict() for k in analysis.summary.kappas]
    elif name == "drift":
        rows = [
            {"window_start": w.start, "window_end": w.end, "first_received": w.first_received,
             "last_received": w.last_received, "threshold": w.threshold, **t.to_dict()}
            for w in analysis.drift.windows
            for t in w.tests
        ]  # fmt: skip
    elif name == "calibration":
        report = analysis.calibration
        rows = [w.to_dict() for w in report.windows] if report is not None else []
    else:
        raise ValueError(f"expected a table among {', '.join(CSV_TABLES)}, got {name!r}")
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, list | tuple):
        value = " ".join("" if v is None else str(v) for v in value)
    if isinstance(value, str):
        return neutralise_csv_cell(value)
    return "" if value is None else value


def neutralise_csv_cell(text: str) -> str:
    """``text`` with a leading quote if a spreadsheet would read it as a formula.

    Cells starting with ``= + - @``, a tab or a carriage return are run as formulas by Excel,
    LibreOffice and Google Sheets (CSV injection, OWASP); the quote makes them text.
    """
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _case_row(a: Agreement) -> dict[str, Any]:
    return {
        "study_id": a.study_id,
        "precision": round(a.precision, 4),
        "recall": round(a.recall, 4),
        "f1": round(a.f1, 4),
        "added": " ".join(f.code for f in a.added),
        "removed": " ".join(f.code for f in a.removed),
        "changed": " ".join(c.code for c in a.changed),
        "edit_distance": a.edit_distance,
        "edit_rate": round(a.edit_rate, 4),
        "critical_changed": a.critical_changed,
        "significantly_revised": a.significantly_revised,
        "flags_kept": a.flags_kept,
        "flags_rejected": a.flags_rejected,
        "flags_edited": a.flags_edited,
    }


def clear_caches() -> None:
    """Empty the memos that speed up repeated work (parsed findings, critical-finding rules,
    drift rate tests), so a benchmark run starts as cold as a new process."""
    from radloop.monitor.agreement import _is_critical
    from radloop.monitor.cases import _FINDING_MEMO
    from radloop.monitor.drift import _rate_test

    _FINDING_MEMO.clear()
    _is_critical.cache_clear()
    _rate_test.cache_clear()
