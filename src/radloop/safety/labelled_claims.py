"""Labelled claims on disk: the rows ``radloop calibrate --data`` fits on (CSV or JSONL).

Columns: ``study_id``, ``code``, ``claim`` (present, absent or uncertain), then each evidence
source of the claim, empty where it is missing — ``verifier_probability``,
``sample_agreement``, ``mean_token_logprob``, ``contradicted`` (1 or 0), ``p_ask_yes``,
``p_ask_side``, ``token_probability``, ``p_second_opinion`` — and ``label`` (1: the finding is
present, 0: absent). Files written before the ask-back, token and second-opinion columns
existed read unchanged: those sources are missing.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radloop.errors import UnknownFindingError
from radloop.safety.errors import CalibrationDataError
from radloop.vocabulary import finding

if TYPE_CHECKING:
    from radloop.safety.calibration import LabelledClaim

__all__ = ["COLUMNS", "read_labelled_claims", "write_labelled_claims"]

COLUMNS = (
    "study_id",
    "code",
    "claim",
    "verifier_probability",
    "sample_agreement",
    "mean_token_logprob",
    "contradicted",
    "p_ask_yes",
    "p_ask_side",
    "token_probability",
    "p_second_opinion",
    "label",
)
_TRUE = {"1", "true", "yes", "present"}
_FALSE = {"0", "false", "no", "absent"}


def _optional_float(value: Any, name: str, *, probability: bool) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = float(value)
    if math.isnan(number) or (probability and not 0.0 <= number <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if not probability and number > 0:
        raise ValueError(f"{name} must be a log-probability (<= 0), got {value!r}")
    return number


def _optional_bool(value: Any, name: str) -> bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be 1 or 0 (or empty), got {value!r}")
    return text in _TRUE


def _row_claim(row: dict[str, Any]) -> LabelledClaim:
    from radloop.safety.calibration import ClaimSignals, LabelledClaim

    code = str(row.get("code", "")).strip()
    finding(code)
    claim = str(row.get("claim") or "present").strip().lower()
    if claim not in ("present", "absent", "uncertain"):
        raise ValueError(f"claim must be present, absent or uncertain, got {claim!r}")
    label = str(row.get("label", "")).strip().lower()
    if label not in _TRUE | _FALSE:
        raise ValueError(f"label must be 1 or 0, got {row.get('label')!r}")

    def probability(name: str) -> float | None:
        return _optional_float(row.get(name), name, probability=True)

    signals = ClaimSignals(
        positive=claim != "absent",
        verifier_probability=_optional_float(
            row.get("verifier_probability"), "verifier_probability", probability=True
        ),
        sample_agreement=_optional_float(
            row.get("sample_agreement"), "sample_agreement", probability=True
        ),
        mean_token_logprob=_optional_float(
            row.get("mean_token_logprob"), "mean_token_logprob", probability=False
        ),
        contradicted=_optional_bool(row.get("contradicted"), "contradicted"),
        p_ask_yes=probability("p_ask_yes"),
        p_ask_side=probability("p_ask_side"),
        token_probability=probability("token_probability"),
        p_second_opinion=probability("p_second_opinion"),
    )
    return LabelledClaim(str(row.get("study_id", "")), code, signals, label in _TRUE)


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            yield from enumerate(csv.DictReader(handle), start=2)
            return
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, json.loads(line)


def read_labelled_claims(path: str | Path) -> list[LabelledClaim]:
    """Labelled claims from a ``.csv`` or ``.jsonl`` file, or every such file in a folder."""
    path = Path(path)
    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".csv", ".jsonl"))
        if path.is_dir()
        else [path]
    )
    if not files or not all(f.is_file() and f.suffix in (".csv", ".jsonl") for f in files):
        raise CalibrationDataError(
            "a .csv or .jsonl file of labelled claims, or a folder of them", "none", source=path
        )
    claims = []
    for file in files:
        try:
            for number, row in _rows(file):
                try:
                    claims.append(_row_claim(row))
                except (ValueError, TypeError, UnknownFindingError) as error:
                    raise CalibrationDataError(
                        f"a row with the columns {', '.join(COLUMNS)}",
                        str(error),
                        source=f"{file}:{number}",
                    ) from None
        except json.JSONDecodeError as error:
            raise CalibrationDataError(
                "one JSON object per line", str(error), source=file
            ) from None
    return claims


def _cell(value: float | bool | None) -> str | float | int:
    if value is None:
        return ""
    return int(value) if isinstance(value, bool) else value


def write_labelled_claims(path: str | Path, claims: Iterable[LabelledClaim]) -> Path:
    """Write claims as CSV in the format :func:`read_labelled_claims` reads."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for c in claims:
            s = c.signals
            writer.writerow(
                [
                    c.study_id,
                    c.code,
                    "present" if s.positive else "absent",
                    *(
                        _cell(v)
                        for v in (
                            s.verifier_probability,
                            s.sample_agreement,
                            s.mean_token_logprob,
                            s.contradicted,
                            s.p_ask_yes,
                            s.p_ask_side,
                            s.token_probability,
                            s.p_second_opinion,
                        )
                    ),
                    int(c.present),
                ]
            )
    return path
