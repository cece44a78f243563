"""The reference model never reports finding types it cannot see (validation AUROC < 0.9)."""

from __future__ import annotations

from radloop.models.reference.predictor import MIN_RELIABLE_AUROC, reliable_findings
from radloop.models.reference.spec import FINDINGS


def test_near_chance_finding_types_are_not_reportable() -> None:
    sidecar = {"validation": {"auroc": {code: 0.99 for code in FINDINGS} | {"nodule": 0.6}}}
    reliable = reliable_findings(sidecar)
    assert "nodule" not in reliable
    assert reliable == frozenset(FINDINGS) - {"nodule"}


def test_a_model_without_validation_figures_reports_every_type() -> None:
    assert reliable_findings({}) == frozenset(FINDINGS)


def test_the_shipped_model_reports_only_types_above_the_floor() -> None:
    import json

    from radloop.models.builtin import SIDECAR_NAME, shipped_model_dir

    sidecar = json.loads((shipped_model_dir() / SIDECAR_NAME).read_text(encoding="utf-8"))
    for code in reliable_findings(sidecar):
        assert sidecar["validation"]["auroc"][code] >= MIN_RELIABLE_AUROC
