"""The simulated deployment: the reader's corrections, streams, shifts and pool caching."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from monitor_builders import hand_pools, pool_study

from radloop.errors import InputError
from radloop.lab.monitor_simulation import ReaderConfig, StreamConfig, read_as_reader, simulate
from radloop.monitor.agreement import agreement
from radloop.vocabulary import Side

PERFECT = ReaderConfig(miss_rate=0.0, accept_rate=0.0, flagged_accept_rate=0.0, correct_rate=1.0)
CARELESS = ReaderConfig(miss_rate=1.0, accept_rate=1.0, flagged_accept_rate=1.0, correct_rate=0.0)


def test_a_perfect_reader_signs_the_truth_and_rejects_the_flagged_false_claim() -> None:
    study = pool_study("a")
    signed, flags = read_as_reader(study, PERFECT, np.random.default_rng(0))
    positive = {(f.code, f.side) for f in signed if f.is_positive}
    assert positive == {("pleural_effusion", Side.RIGHT), ("pneumothorax", Side.LEFT)}
    assert [(f.code, f.decision) for f in flags] == [("nodule", "rejected")]
    # The pertinent negative stays; nothing signed carries a model probability.
    assert any(f.code == "consolidation" and not f.is_positive for f in signed)
    assert all(f.probability is None and f.verdict is None for f in signed)


def test_a_careless_reader_signs_the_draft_as_it_is() -> None:
    study = pool_study("a")
    signed, flags = read_as_reader(study, CARELESS, np.random.default_rng(0))
    assert {(f.code, f.side) for f in signed if f.is_positive} == {
        ("pleural_effusion", Side.LEFT), ("nodule", None)}  # fmt: skip
    assert [f.decision for f in flags] == ["kept"]


def test_stream_switches_profile_at_the_shift_and_keeps_the_site() -> None:
    stream = StreamConfig(n=40, seed=3, shift_profile="portable", shift_at=25)
    cases = list(simulate(hand_pools(), stream, PERFECT))
    assert len(cases) == 40 and len({c.study_id for c in cases}) == 40
    assert {c.manufacturer for c in cases[:25]} == {"Vendor standard"}
    assert {c.manufacturer for c in cases[25:]} == {"Vendor portable"}
    assert {c.site for c in cases} == {"site-A"}
    assert all(c.ood_score is not None and c.ood_score >= 30 for c in cases[25:])
    assert all(a.received_at < b.received_at for a, b in itertools.pairwise(cases))
    assert all(c.signed_at > c.received_at for c in cases)
    # The perfect reader corrected each draft: removed the nodule, moved the effusion, added
    # the pneumothorax (critical) — every case is significantly revised.
    result = agreement(cases[0])
    assert [f.code for f in result.removed] == ["nodule"]
    assert [f.code for f in result.added] == ["pneumothorax"]
    assert [c.fields for c in result.changed] == [("side", "zones")] or [
        c.fields for c in result.changed] == [("side",)]  # fmt: skip
    assert result.significantly_revised and result.flags_rejected == 1


def test_the_same_seed_gives_the_same_stream() -> None:
    stream = StreamConfig(n=20, seed=11)
    first = [c.to_dict() for c in simulate(hand_pools(), stream)]
    assert first == [c.to_dict() for c in simulate(hand_pools(), stream)]


def test_bad_stream_settings_are_refused() -> None:
    with pytest.raises(InputError, match="shift_profile and shift_at together"):
        StreamConfig(shift_profile="portable")
    with pytest.raises(InputError, match="reader miss_rate in"):
        ReaderConfig(miss_rate=1.5)
    with pytest.raises(InputError, match="pools for standard, enhanced"):
        list(simulate(hand_pools(), StreamConfig(n=5, shift_profile="enhanced", shift_at=2)))


def test_pools_are_rendered_drafted_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sklearn")
    from radloop.lab.synth.anatomy import AnatomySourceMissingError, find_source

    try:
        find_source()
    except AnatomySourceMissingError as error:
        pytest.skip(f"needs the synthetic lab's CT ({error})")
    from radloop.lab import monitor_simulation as module

    pools = module.load_pools(["portable"], cache=tmp_path, n=2, ood_fit_n=3, size=128, workers=1)
    pool = pools["portable"]
    assert len(pool.studies) == 2 and len(pool.ood_scores) == 2
    study = pool.studies[0]
    assert study.view == "AP" and study.manufacturer == "Synthetic Mobile B"
    assert study.model.startswith("radloop-reference") and study.draft_text
    assert 0.0 <= study.image_stats.p05 <= study.image_stats.p95 <= 1.0
    assert len(list(tmp_path.glob("pool-*.json"))) == 2

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached pool was rendered again")

    monkeypatch.setattr(module, "_render_and_draft", no_rendering)
    again = module.load_pools(["portable"], cache=tmp_path, n=2, ood_fit_n=3, size=128)
    assert again["portable"].studies == pool.studies


def test_a_partial_shift_mixes_the_new_profile_in() -> None:
    stream = StreamConfig(n=400, seed=2, shift_profile="portable", shift_at=100,
                          shift_fraction=0.25)  # fmt: skip
    cases = list(simulate(hand_pools(), stream))
    after = [c.manufacturer == "Vendor portable" for c in cases[100:]]
    assert not any(c.manufacturer == "Vendor portable" for c in cases[:100])
    assert 0.15 < sum(after) / len(after) < 0.35
    with pytest.raises(InputError, match="shift_fraction in"):
        StreamConfig(shift_profile="portable", shift_at=1, shift_fraction=0.0)
