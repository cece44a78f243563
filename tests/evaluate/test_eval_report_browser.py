"""axe-core (the npm package, run in Debian's headless Chromium) finds no serious or critical
accessibility violation on the eval report (a small simulated run, scored and rendered).

axe-core is installed by the CI script (``npm install --prefix tests/artifacts/npm
axe-core@4.14.1``) or found at ``RADLOOP_AXE_CORE``; nothing is downloaded here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browserkit import AXE, AXE_MISSING, CHROMIUM, chromium, serious_violations
from radloop.evaluate.arrays import build_arrays
from radloop.evaluate.report import write_report
from radloop.evaluate.scoring import ScoringOptions, score_arrays
from radloop.evaluate.simulate import PREVALENCE, simulate_run

SHOTS = Path(__file__).resolve().parents[1] / "artifacts/evaluate"
pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE.is_file(), reason=AXE_MISSING),
]


def test_no_serious_accessibility_violation_on_the_eval_report(tmp_path: Path) -> None:
    cases, predictions = simulate_run(160, seed=5)
    options = ScoringOptions(resamples=20, subgroup_resamples=10, seed=1, min_group=10)
    table = score_arrays(build_arrays(cases, predictions, tuple(PREVALENCE)), options)
    table["run"] = {"model": "mock", "dataset": "sim:160", "model_id": "mock-1"}
    _, report = write_report(tmp_path, table)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(report.as_uri())
        # The contents link to each section: following one scrolls to its heading.
        page.click('nav a[href="#shift-across-sites"]')
        assert page.evaluate("location.hash") == "#shift-across-sites"
        assert (
            page.evaluate(
                "document.getElementById('shift-across-sites').getBoundingClientRect().top"
            )
            < 50
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "eval-report-sites.png"))
        found = serious_violations(page)
    assert found == []
