"""Monitoring after deployment: how drafts compare with what radiologists sign, by patient
group and over time, and drift alerts.

- :class:`SignedCase`: one signed study (the review store's ``signed_cases`` schema);
- :func:`radloop.monitor.agreement.agreement`: added, removed and changed findings,
  precision/recall/F1, edit distance, significant revision, the fate of each flagged claim;
- :func:`summarise`: windows and subgroups with confidence intervals, kappa per finding;
- :func:`detect_drift`: input, output and agreement drift against a reference window, alerts;
- :func:`analyse`: all of it at once; :mod:`radloop.monitor.dashboard`: the FastAPI router;
- :mod:`radloop.lab.monitor_simulation`: a simulated deployment on the synthetic lab.

See docs/monitor.md. Importing this package imports nothing heavy: names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radloop.monitor.aggregate import CaseTable, FindingKappa, GroupMetrics, summarise
    from radloop.monitor.agreement import Agreement, FindingChange
    from radloop.monitor.analysis import Analysis, MonitorSettings, analyse
    from radloop.monitor.cases import FlagOutcome, ImageStats, SignedCase, read_cases
    from radloop.monitor.drift import DriftAlert, DriftConfig, DriftReport, detect_drift

__all__ = [
    "Agreement",
    "Analysis",
    "CaseTable",
    "DriftAlert",
    "DriftConfig",
    "DriftReport",
    "FindingChange",
    "FindingKappa",
    "FlagOutcome",
    "GroupMetrics",
    "ImageStats",
    "MonitorSettings",
    "SignedCase",
    "analyse",
    "detect_drift",
    "read_cases",
    "summarise",
]

_LAZY = {
    **dict.fromkeys(("CaseTable", "FindingKappa", "GroupMetrics", "summarise"),
                    "radloop.monitor.aggregate"),
    **dict.fromkeys(("Agreement", "FindingChange"), "radloop.monitor.agreement"),
    **dict.fromkeys(("Analysis", "MonitorSettings", "analyse"), "radloop.monitor.analysis"),
    **dict.fromkeys(("FlagOutcome", "ImageStats", "SignedCase", "read_cases"),
                    "radloop.monitor.cases"),
    **dict.fromkeys(("DriftAlert", "DriftConfig", "DriftReport", "detect_drift"),
                    "radloop.monitor.drift"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'radloop.monitor' has no attribute {name!r}")
