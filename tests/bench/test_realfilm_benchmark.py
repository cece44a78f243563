"""``radloop bench realfilm``: on real films nothing unvalidated speaks, and model output fails
closed. The bench must also be able to fail: with the domain gate broken it counts what an
unvalidated verifier supports, flags and triages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from radloop.lab.bench.realfilm import MALFORMED, run_realfilm_benchmark
from radloop.models.competence import DomainDecision


@pytest.mark.parametrize("collection", ["realcxr-dev", "hannover-dev"])
def test_nothing_unvalidated_speaks_on_real_films(
    collection: str, shared: Callable[[str], Path]
) -> None:
    result = run_realfilm_benchmark(shared(f"data/{collection}"), limit=24, progress=False)
    figures = result.to_dict()
    assert all(figures["bars"].values()), figures
    assert result.claims > 0 and result.not_checked == result.claims  # nothing could check them
    assert result.builtin_abstained == result.drafted["radloop-reference-0.6.0"] > 0
    assert result.reference_in_domain == 0
    assert set(result.malformed) == {name for name, _ in MALFORMED}
    assert set(result.malformed.values()) == {"failed closed"}


def test_the_bench_counts_an_unvalidated_verifier_that_speaks(
    monkeypatch: pytest.MonkeyPatch, shared: Callable[[str], Path]
) -> None:
    """A broken gate (every film declared inside the synthetic lab) shows in the figures."""
    import radloop.safety.pipeline as pipeline

    def everywhere(verifier: object, study: object, output: object = None) -> DomainDecision:
        return DomainDecision("reference", "synthetic-lab", "forced in domain by the test")

    monkeypatch.setattr(pipeline, "verifier_domain", everywhere)
    result = run_realfilm_benchmark(shared("data/realcxr-dev"), limit=24, progress=False)
    assert result.supported_by_unvalidated > 0
    assert result.omission_flags_by_unvalidated > 0
    assert not all(result.bars.values())
