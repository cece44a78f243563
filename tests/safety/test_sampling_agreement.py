"""Self-consistency: agreement across sampled drafts, matched by finding, side and zone
(never by wording), and the reader's one line per source."""

from __future__ import annotations

import pytest
from safety_builders import make_draft, make_study

from radloop.assist import Sampling, draft
from radloop.errors import InputError
from radloop.models.mock import MockModel, MockRequest
from radloop.report import Finding, Presence
from radloop.safety import TableVerifier, check
from radloop.safety.agreement import repeats, sample_agreement
from radloop.safety.readings import claim_readings
from radloop.safety.verify import ClaimNumbers
from radloop.vocabulary import Side, Zone

LEFT_LOWER = Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_LOWER,))


def test_a_sample_agrees_by_finding_side_and_zone() -> None:
    assert repeats(LEFT_LOWER, Finding("pleural_effusion", side=Side.LEFT))
    assert repeats(LEFT_LOWER, Finding("pleural_effusion", side=Side.BILATERAL))
    assert not repeats(LEFT_LOWER, Finding("pleural_effusion", side=Side.RIGHT))
    assert not repeats(
        LEFT_LOWER, Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_UPPER,))
    )
    assert not repeats(LEFT_LOWER, Finding("pleural_effusion", presence=Presence.ABSENT))
    # A broader code states the claim again ("consolidation" within "lung opacity").
    assert repeats(Finding("consolidation"), Finding("lung_opacity"))
    assert not repeats(Finding("consolidation"), Finding("nodule"))


def test_agreement_is_the_share_of_samples_that_repeat_the_claim() -> None:
    samples = [
        [Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_LOWER,))],
        [Finding("pleural_effusion", side=Side.LEFT, zones=(Zone.LEFT_UPPER,))],
        [Finding("nodule")],
        [Finding("pleural_effusion")],
    ]
    assert sample_agreement(LEFT_LOWER, samples) == 0.5
    with pytest.raises(ValueError, match="at least one sampled draft"):
        sample_agreement(LEFT_LOWER, [])


def test_the_reader_sees_one_line_per_source_and_none_for_a_missing_one() -> None:
    numbers = ClaimNumbers(
        p_claim=0.82, sample_agreement=0.8, n_samples=5, p_ask_yes=0.91, p_ask_side=0.88,
        token_probability=0.64, p_second_opinion=0.77,
    )  # fmt: skip
    assert claim_readings(numbers, LEFT_LOWER) == [
        "Verifier: 0.82",
        "Samples: 4/5 agree",
        "Ask-back: P(yes) 0.91 · P(left) 0.88",
        "Token probability: 0.64",
        "Second opinion: 0.77",
    ]
    assert claim_readings(ClaimNumbers(sample_agreement=0.4, n_samples=5), LEFT_LOWER) == [
        "Samples: 2/5 agree"
    ]
    assert claim_readings(ClaimNumbers(), LEFT_LOWER) == []


def test_sampling_settings_refuse_bad_values_with_what_was_expected() -> None:
    assert Sampling().samples == 5 and Sampling().temperature == 0.7
    assert Sampling.off().samples == 0
    with pytest.raises(InputError, match="number of samples from 0"):
        Sampling(-1)
    with pytest.raises(InputError, match="temperature above 0"):
        Sampling(3, 0.0)


def test_sampled_drafts_travel_in_one_request_and_give_agreement_and_cost() -> None:
    def reply(request: MockRequest) -> str:
        if request.temperature == 0:
            return "Left pleural effusion. Small nodule."
        return "Left pleural effusion."

    model = MockModel(reply)
    drafted = draft(make_study(), model, output="text", sampling=Sampling(3, 0.7))
    assert sorted((r.n, r.temperature) for r in model.requests) == [(1, 0.0), (3, 0.7)]
    assert len(drafted.samples) == 3 and len(drafted.generations) == 1
    assert drafted.cost["draft"].requests == 1 and drafted.cost["samples"].requests == 1
    assert drafted.cost["samples"].completion_tokens == 9  # 3 words, 3 samples
    table = TableVerifier({"1.2.3": {"presence": {}}}, competence={"domains": []})
    checked = check(drafted, make_study(), table)
    effusion, nodule = checked.checks[0], checked.checks[1]
    assert (effusion.numbers.sample_agreement, effusion.numbers.n_samples) == (1.0, 3)
    assert nodule.numbers.sample_agreement == 0.0
    assert "Samples: 0/3 agree" in nodule.to_dict()["readings"]
    assert checked.to_dict()["cost"]["total"]["requests"] == 2


def test_a_model_that_cannot_sample_is_not_sampled() -> None:
    model = MockModel("Left pleural effusion.")
    model.supports_sampling = False
    drafted = draft(make_study(), model, output="text", sampling=Sampling(5, 0.7))
    assert drafted.samples == () and len(model.requests) == 1
    assert "samples" not in drafted.cost
    assert make_draft([LEFT_LOWER]).samples == ()


def test_the_study_page_items_carry_each_claims_readings() -> None:
    from types import SimpleNamespace

    from radloop.review.worksheet import review_items

    drafted = make_draft([LEFT_LOWER])
    table = TableVerifier({"1.2.3": {"presence": {"pleural_effusion": 0.82}}}, competence={
        "domains": [{"name": "synthetic-lab", "images": "phantom",
                     "findings": ["pleural_effusion"]}]})  # fmt: skip
    checked = check(drafted, make_study(), table, samples=[[LEFT_LOWER], [], [LEFT_LOWER]])
    stored = SimpleNamespace(
        findings=[f.to_dict() for f in checked.findings],
        checks=[c.to_dict() for c in checked.checks],
    )
    (item,) = review_items(stored, None)  # type: ignore[arg-type]
    assert item.readings == ("Verifier: 0.82", "Samples: 2/3 agree")
