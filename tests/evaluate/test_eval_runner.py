"""The runner and the report: predictions cached per case, resume without inference, the
safety layer applied, a folder holding another run refused, HTML and JSON written."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from radloop.evaluate import RunFolderError, open_dataset
from radloop.evaluate.pipeline import score_run
from radloop.evaluate.runner import RunSettings, draft_scores, run_evaluation
from radloop.models.mock import MockModel, MockRequest
from radloop.report import Finding, Presence, Verdict
from radloop.safety import TableVerifier


def _dataset_folder(root: Path, n: int = 12) -> Path:
    rows = []
    for i in range(n):
        name = f"{'eff' if i % 3 == 0 else 'clear'}{i:02d}.png"
        pixels = np.random.default_rng(i).integers(40, 200, (64, 64)).astype(np.uint8)
        Image.fromarray(pixels).save(root / name)
        rows.append(
            {
                "image": name,
                "pleural_effusion": str(int(i % 3 == 0)),
                "pneumothorax": "0",
                "sex": "FM"[i % 2],
                "site": f"site{i % 2}",
                "age": str(30 + 4 * i),
                "view": "PA",
                "modality": "DX",
            }
        )
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def _reply(request: MockRequest) -> str:
    """Effusion on the 'eff' images, and a made-up pneumothorax on the fourth clear one."""
    source = request.images[0].source.name
    if source.startswith("eff"):
        return "FINDINGS: Small right pleural effusion. No pneumothorax."
    if source == "clear04.png":
        return "FINDINGS: Left pneumothorax. No pleural effusion."
    return "FINDINGS: The lungs are clear. No pleural effusion. No pneumothorax."


class _Counting(MockModel):
    calls = 0

    def _generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super()._generate(*args, **kwargs)


def _settings() -> RunSettings:
    return RunSettings("mock", "folder:fixture", "table", None, None)


def test_draft_scores_follow_the_stated_presence_and_probability() -> None:
    scores = draft_scores(
        [
            Finding("pneumothorax", probability=0.8),
            Finding("edema", presence=Presence.UNCERTAIN),
            Finding("pleural_effusion", presence=Presence.ABSENT, probability=0.9),
            Finding("nodule"),
        ]
    )
    assert scores == pytest.approx(
        {"pneumothorax": 0.8, "edema": 0.5, "pleural_effusion": 0.1, "nodule": 1.0}
    )


def test_a_run_caches_each_case_and_resumes_without_inference(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data')}")
    out = tmp_path / "run"
    _Counting.calls = 0
    model = _Counting(_reply)
    cases, predictions = run_evaluation(
        dataset, model, out, _settings(), verifier=TableVerifier({})
    )
    assert _Counting.calls == len(cases) == 12
    assert len(list((out / "cache").glob("*.json"))) == 12
    claims = {p.case_id: [f.code for f in p.draft if f.is_positive] for p in predictions}
    assert claims[cases[0].case_id] == ["pleural_effusion"]
    # The table declares no validated domain: the check runs, and no claim is checked.
    assert predictions[0].checked and predictions[0].checked[0].verdict is Verdict.NOT_CHECKED
    assert predictions[0].domain is not None and predictions[0].domain["in_domain"] is False
    # Resume: nothing left to run; a second call does no inference.
    run_evaluation(dataset, model, out, _settings(), verifier=TableVerifier({}))
    assert _Counting.calls == 12
    # A deleted cache file is the only case run again.
    next((out / "cache").glob("*.json")).unlink()
    run_evaluation(dataset, model, out, _settings(), verifier=TableVerifier({}), concurrency=3)
    assert _Counting.calls == 13


def test_a_folder_holding_another_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data', n=3)}")
    run_evaluation(dataset, MockModel(_reply), tmp_path / "run", _settings())
    other = RunSettings("openai/other", "folder:fixture", "table", None, None)
    with pytest.raises(RunFolderError, match="expected an empty folder or one holding the same"):
        run_evaluation(dataset, MockModel(_reply), tmp_path / "run", other)


def test_scoring_a_run_writes_a_self_contained_report_and_json(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data')}")
    out = tmp_path / "run"
    run_evaluation(dataset, MockModel(_reply), out, _settings(), verifier=TableVerifier({}))
    outcome = score_run(out, resamples=50, subgroup_resamples=20, min_group=4)
    table = json.loads(outcome.json_path.read_text())
    effusion = table["per_finding"]["pleural_effusion"]["draft"]
    assert effusion["sensitivity"]["value"] == 1.0 and effusion["specificity"]["value"] == 1.0
    # Four effusions claimed and one made-up pneumothorax: 5 claims, 1 false.
    assert table["summary"]["draft"]["hallucination_rate"]["value"] == pytest.approx(1 / 5)
    assert table["fairness"]["draft"]["sex"]["groups"].keys() == {"F", "M"}
    page = outcome.html_path.read_text()
    assert len(re.findall(r"data:image/png;base64,", page)) >= 4
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched from outside
    assert "not a diagnosis" in page and "Model card" in page


def test_compare_states_the_gap_between_a_synthetic_and_a_real_run(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data')}")
    run_evaluation(dataset, MockModel(_reply), tmp_path / "real", _settings())
    synthetic = score_run(tmp_path / "real", resamples=20, subgroup_resamples=10).table
    synthetic["run"]["dataset"] = "synth:test"
    synthetic["summary"]["draft"]["macro_auroc"]["value"] = 0.95
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "metrics.json").write_text(json.dumps(synthetic))
    outcome = score_run(
        tmp_path / "real", resamples=20, subgroup_resamples=10, compare=tmp_path / "synth"
    )
    page = outcome.html_path.read_text()
    assert "Synthetic-to-real gap" in page
    gap = json.loads(outcome.json_path.read_text())["comparison"]["figures"]["macro_auroc"]
    assert gap["other"] == 0.95 and gap["gap"] == pytest.approx(gap["this"] - 0.95)


def test_eval_command_runs_a_model_over_a_folder_and_prints_json(tmp_path: Path) -> None:
    from radloop.cli import main

    (tmp_path / "data").mkdir()
    _dataset_folder(tmp_path / "data", n=6)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            "mock",
            "--data",
            f"folder:{tmp_path / 'data'}",
            "--out",
            str(out),
            "--verifier",
            "none",
            "--ood",
            "none",
            "--resamples",
            "20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["n_cases"] == 6 and (out / "report.html").is_file()
    # The mock's default reply says nothing is present: it misses every effusion.
    assert summary["draft"]["sensitivity"] == 0.0


def test_eval_command_refuses_a_bad_dataset_with_a_clear_error(tmp_path: Path) -> None:
    from radloop.cli import main

    result = CliRunner().invoke(main, ["eval", "--model", "mock", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "expected a dataset as KIND:PATH" in result.output


# --- claims not checked: their own category, never supported ---------------------------------


class _LabVerifier:
    """A verifier that declares the synthetic lab as its domain (for ``validated`` finding
    types) and says every study lies there: effusion seen on the 'eff' images, no
    pneumothorax anywhere."""

    def __init__(self, validated: list[str]) -> None:
        from radloop.models.competence import Competence

        self.competence = Competence.from_dict(
            {"domains": [{"name": "synthetic-lab", "images": "test", "findings": validated}]},
            owner="lab",
        )

    @property
    def verifier_id(self) -> str:
        return "lab"

    def assess_domain(self, study, output=None):  # type: ignore[no-untyped-def]
        from radloop.models.competence import DomainDecision

        return DomainDecision("lab", "synthetic-lab", "test studies are lab studies")

    def verify(self, study):  # type: ignore[no-untyped-def]
        from radloop.safety import VerifierOutput

        effusion = Path(str(study.images[0].source)).name.startswith("eff")
        return VerifierOutput(
            "lab", presence={"pleural_effusion": 0.9 if effusion else 0.05, "pneumothorax": 0.01}
        )


def _scored(tmp_path: Path, verifier: object, name: str) -> dict:  # type: ignore[type-arg]
    if not (tmp_path / "data").is_dir():
        (tmp_path / "data").mkdir()
        _dataset_folder(tmp_path / "data")
    dataset = open_dataset(f"folder:{tmp_path / 'data'}")
    run_evaluation(dataset, MockModel(_reply), tmp_path / name, _settings(), verifier=verifier)
    outcome = score_run(tmp_path / name, resamples=30, subgroup_resamples=10, min_group=4)
    table = json.loads(outcome.json_path.read_text())
    table["page"] = outcome.html_path.read_text()
    return table


def test_a_verifier_without_a_validated_domain_checks_no_claim_and_supports_none(
    tmp_path: Path,
) -> None:
    table = _scored(tmp_path, TableVerifier({}), "nodomain")
    checks = table["claim_checks"]
    # 12 drafts, two statements each (effusion and pneumothorax, present or absent).
    assert checks["claims"] == 24 and checks["positive_claims"] == 5
    verdicts = checks["verdicts"]
    assert verdicts["not_checked"]["n"] == 24 and verdicts["not_checked"]["n_positive"] == 5
    assert verdicts["not_checked"]["share"]["value"] == 1.0
    for verdict in ("supported", "unsupported", "contradicted", "unverifiable"):
        assert verdicts[verdict]["n"] == 0, verdict
    assert checks["drafts"]["all_claims_not_checked"] == 12
    assert checks["drafts"]["verifier_out_of_domain"] == 12
    safety = table["summary"]["safety"]
    assert safety["claims_not_checked"]["value"] == 1.0
    assert safety["claims_supported"]["value"] == 0.0
    # Unchecked claims stay as the model wrote them: the effusions are still found, and the
    # made-up pneumothorax reaches the reader unflagged, not checked.
    effusion = table["per_finding"]["pleural_effusion"]["safety"]
    assert effusion["sensitivity"]["value"] == 1.0
    assert safety["hallucination_rate"]["value"] == pytest.approx(1 / 5)
    assert safety["hallucination_rate_not_checked"]["value"] == pytest.approx(1 / 5)
    assert "24 of 24 claims were not checked" in table["page"]
    assert "not checked (no evidence valid for the film)" in table["page"]


def test_a_verifier_in_its_domain_speaks_only_for_the_finding_types_it_was_validated_for(
    tmp_path: Path,
) -> None:
    table = _scored(tmp_path, _LabVerifier(["pleural_effusion"]), "effusion-only")
    verdicts = table["claim_checks"]["verdicts"]
    # Effusion statements are checked (and supported); pneumothorax ones are not checked.
    assert (verdicts["supported"]["n"], verdicts["not_checked"]["n"]) == (12, 12)
    assert (verdicts["supported"]["n_positive"], verdicts["not_checked"]["n_positive"]) == (4, 1)
    assert table["summary"]["safety"]["claims_not_checked"]["value"] == pytest.approx(1 / 5)
    assert table["summary"]["safety"]["hallucination_rate"]["value"] == pytest.approx(1 / 5)

    both = _scored(tmp_path, _LabVerifier(["pleural_effusion", "pneumothorax"]), "both")
    verdicts = both["claim_checks"]["verdicts"]
    assert verdicts["not_checked"]["n"] == 0
    # Validated for pneumothorax, it flags the made-up one: no hallucination reaches the reader.
    assert verdicts["unsupported"]["n_positive"] == 1
    assert both["summary"]["safety"]["hallucination_rate"]["value"] == 0.0
    assert both["summary"]["safety"]["hallucination_rate_not_checked"]["value"] == 0.0


def test_failed_drafts_are_counted_and_never_read_as_normal(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    dataset = open_dataset(f"folder:{_dataset_folder(tmp_path / 'data')}")

    def reply(request: MockRequest) -> str:
        source = request.images[0].source.name
        return "" if source in ("eff00.png", "clear01.png") else _reply(request)

    out = tmp_path / "run"
    _, predictions = run_evaluation(
        dataset, MockModel(reply), out, _settings(), verifier=TableVerifier({})
    )
    failed = {p.case_id: p.failure for p in predictions if p.failure}
    assert len(failed) == 2 and all("empty" in m for m in failed.values())
    table = score_run(out, resamples=20, subgroup_resamples=10, min_group=4).table
    assert table["claim_checks"]["drafts"]["failed"] == 2
    assert table["summary"]["draft"]["drafts_failed"]["value"] == pytest.approx(2 / 12)
    effusion = table["per_finding"]["pleural_effusion"]["draft"]
    # The failed effusion draft is a miss; the failed clear one is not a true negative.
    assert effusion["sensitivity"]["value"] == pytest.approx(3 / 4)
    assert effusion["specificity"]["value"] == 1.0
    assert table["per_finding"]["pneumothorax"]["n_negative"] == 12
    pneumothorax_tn = 12 - 2 - 1  # two failed drafts left out, one false pneumothorax
    assert table["per_finding"]["pneumothorax"]["draft"]["specificity"]["value"] == (
        pytest.approx(pneumothorax_tn / (pneumothorax_tn + 1))
    )
