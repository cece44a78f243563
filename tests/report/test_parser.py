"""The parser, specified by example. Report sentences here are made up for the tests."""

from __future__ import annotations

import pytest

from radloop.errors import UnknownFindingError
from radloop.report import Change, Finding, Presence, Severity, parse
from radloop.report.parser import sentences
from radloop.vocabulary import Lobe, Side, VertebralLevel, Zone


def only(text: str, code: str) -> Finding:
    """The one finding of a code that the parser reports for the text."""
    found = [f for f in parse(text) if f.code == code]
    assert len(found) == 1, found
    return found[0]


def presence(text: str, code: str) -> Presence:
    return only(text, code).presence


# --- sentences and evidence -----------------------------------------------------------------


def test_sentences_split_at_full_stops_but_not_inside_decimal_sizes() -> None:
    text = "A 2.3 cm nodule. No effusion."
    assert [text[s:e] for s, e in sentences(text)] == ["A 2.3 cm nodule", "No effusion"]


def test_sentences_drop_list_numbers_and_section_headers() -> None:
    text = "IMPRESSION:\n1. Small effusion. 2. No pneumothorax."
    assert [text[s:e] for s, e in sentences(text)] == ["Small effusion", "No pneumothorax"]


def test_each_finding_carries_its_sentence_with_offsets() -> None:
    text = "Heart size is normal. There is a small left pleural effusion."
    evidence = only(text, "pleural_effusion").evidence
    assert evidence is not None
    assert evidence.text == "There is a small left pleural effusion"
    assert text[evidence.start : evidence.end] == evidence.text


def test_an_empty_report_has_no_findings() -> None:
    assert parse("") == []


# --- negation -------------------------------------------------------------------------------


def test_negation_scopes_over_a_list() -> None:
    found = parse("No pneumothorax, effusion or consolidation.")
    assert {f.code: f.presence for f in found} == {
        "pneumothorax": Presence.ABSENT,
        "pleural_effusion": Presence.ABSENT,
        "consolidation": Presence.ABSENT,
    }


@pytest.mark.parametrize(
    "text",
    [
        "Without pleural effusion.",
        "Negative for pleural effusion.",
        "The lungs are free of pleural effusion.",
        "The lungs are clear of pleural effusion.",
        "There is no evidence of pleural effusion.",
        "Pleural effusion is not seen.",
        "Pleural effusions are absent.",
    ],
)
def test_negation_cues_before_and_after_the_finding(text: str) -> None:
    assert presence(text, "pleural_effusion") is Presence.ABSENT


def test_negation_stops_at_but() -> None:
    text = "No pleural effusion, but there is a small pneumothorax."
    assert presence(text, "pleural_effusion") is Presence.ABSENT
    assert presence(text, "pneumothorax") is Presence.PRESENT


def test_negation_does_not_cross_sentences() -> None:
    assert presence("No effusion. Right lower lobe opacity.", "lung_opacity") is Presence.PRESENT


@pytest.mark.parametrize(
    "text", ["No change in the left lower lobe opacity.", "No increase in the opacity."]
)
def test_pseudo_negations_do_not_negate(text: str) -> None:
    assert presence(text, "lung_opacity") is Presence.PRESENT


def test_no_change_marks_the_finding_stable() -> None:
    assert only("No change in the left lower lobe opacity.", "lung_opacity").change is Change.STABLE


def test_rather_than_negates_what_follows() -> None:
    text = "Findings may represent atelectasis rather than pneumonia."
    assert presence(text, "pneumonia") is Presence.ABSENT
    assert presence(text, "atelectasis") is Presence.UNCERTAIN


# --- uncertainty ----------------------------------------------------------------------------


def test_cannot_exclude_is_uncertain() -> None:
    assert presence("Cannot exclude pneumonia.", "pneumonia") is Presence.UNCERTAIN
    assert presence("Pneumonia cannot be excluded.", "pneumonia") is Presence.UNCERTAIN


@pytest.mark.parametrize(
    "text",
    [
        "The opacity may represent pneumonia.",
        "Possible pneumonia.",
        "Questionable pneumonia.",
        "Findings suggestive of pneumonia.",
        "Findings concerning for pneumonia.",
        "Likely pneumonia.",
        "Atelectasis versus pneumonia.",
    ],
)
def test_hedging_words_make_a_finding_uncertain(text: str) -> None:
    assert presence(text, "pneumonia") is Presence.UNCERTAIN


def test_a_denial_wins_over_a_hedge_inside_it() -> None:
    assert presence("No findings suggestive of pneumonia.", "pneumonia") is Presence.ABSENT


def test_history_of_is_not_a_finding_of_this_study() -> None:
    assert parse("History of pneumonia.") == []


# --- normal statements ----------------------------------------------------------------------


def test_clear_lungs_state_no_finding() -> None:
    assert parse("The lungs are clear. Clear lungs.") == []


def test_no_acute_cardiopulmonary_abnormality_states_no_finding() -> None:
    assert parse("No acute cardiopulmonary abnormality.") == []


def test_heart_not_enlarged_denies_cardiomegaly() -> None:
    assert presence("The heart is not enlarged.", "cardiomegaly") is Presence.ABSENT


def test_upper_limits_of_normal_heart_size_is_not_cardiomegaly() -> None:
    found = parse("Heart size is at the upper limits of normal. The heart is top normal in size.")
    assert [f for f in found if f.is_positive] == []


def test_borderline_heart_size_is_uncertain_cardiomegaly() -> None:
    assert presence("Borderline heart size.", "cardiomegaly") is Presence.UNCERTAIN


def test_heart_mildly_enlarged_is_mild_cardiomegaly() -> None:
    found = only("The heart is mildly enlarged.", "cardiomegaly")
    assert (found.presence, found.severity) == (Presence.PRESENT, Severity.MILD)


# --- change ---------------------------------------------------------------------------------


def test_resolved_effusion_is_absent_with_change_resolved() -> None:
    for text in ["The left pleural effusion has resolved.", "Interval resolution of the effusion."]:
        found = only(text, "pleural_effusion")
        assert (found.presence, found.change) == (Presence.ABSENT, Change.RESOLVED)


@pytest.mark.parametrize(
    ("text", "change"),
    [
        ("New right pleural effusion.", Change.NEW),
        ("Increased right pleural effusion.", Change.INCREASED),
        ("Right pleural effusion, decreased since the prior study.", Change.DECREASED),
        ("Unchanged right pleural effusion.", Change.STABLE),
    ],
)
def test_change_words_relative_to_a_prior(text: str, change: Change) -> None:
    assert only(text, "pleural_effusion").change is change


def test_a_denied_finding_keeps_no_change_but_resolved() -> None:
    assert only("No new pleural effusion.", "pleural_effusion").change is None


# --- place ----------------------------------------------------------------------------------


def test_lobe_gives_the_side() -> None:
    found = only("Opacity in the right upper lobe.", "lung_opacity")
    assert (found.side, found.lobes) == (Side.RIGHT, (Lobe.RIGHT_UPPER,))


def test_lung_base_is_a_lower_zone() -> None:
    found = only("Left basilar atelectasis.", "atelectasis")
    assert (found.side, found.zones) == (Side.LEFT, (Zone.LEFT_LOWER,))


def test_bibasilar_is_both_lower_zones() -> None:
    found = only("Bibasilar atelectasis.", "atelectasis")
    assert (found.side, found.zones) == (Side.BILATERAL, (Zone.RIGHT_LOWER, Zone.LEFT_LOWER))


def test_each_finding_takes_its_own_side() -> None:
    found = {f.code: f.side for f in parse("Right lower lobe opacity and left pleural effusion.")}
    assert found == {"lung_opacity": Side.RIGHT, "pleural_effusion": Side.LEFT}


def test_a_place_after_a_list_applies_to_every_item() -> None:
    found = parse("Atelectasis or scarring in the left lower lobe.")
    assert {f.code: f.lobes for f in found} == {
        "atelectasis": (Lobe.LEFT_LOWER,),
        "scarring": (Lobe.LEFT_LOWER,),
    }


def test_an_explanation_takes_the_place_of_what_it_explains() -> None:
    found = only("Streaky opacity in the left base, likely atelectasis.", "atelectasis")
    assert found.side is Side.LEFT


def test_heart_chambers_are_not_sides() -> None:
    assert only("Pacemaker leads in the right atrium.", "pacemaker").side is None


def test_dextroscoliosis_is_convex_to_the_right() -> None:
    assert only("Mild dextroscoliosis of the thoracic spine.", "scoliosis").side is Side.RIGHT


# --- sizes, severity, tips ------------------------------------------------------------------


def test_size_attaches_to_its_finding() -> None:
    found = parse("A 2.3 cm nodule in the right upper lobe and a small left pleural effusion.")
    sizes = {f.code: f.size_mm for f in found}
    assert sizes == {"nodule": 23.0, "pleural_effusion": None}


def test_size_after_its_finding() -> None:
    assert only("Nodule in the left lower lobe measuring 8 mm.", "nodule").size_mm == 8.0


def test_two_dimensions_give_the_largest_as_size() -> None:
    found = only("A 2 x 3 cm mass in the left upper lobe.", "mass")
    assert (found.size_mm, found.dimensions_mm) == (30.0, (20.0, 30.0))


def test_severity_word_attaches_to_the_next_finding() -> None:
    found = parse("Moderate cardiomegaly with small bilateral pleural effusions.")
    assert {f.code: f.severity for f in found} == {
        "cardiomegaly": Severity.MODERATE,
        "pleural_effusion": Severity.SMALL,
    }


def test_ett_tip_distance_above_carina() -> None:
    found = only("ETT tip 4 cm above the carina.", "endotracheal_tube")
    assert (found.tip_distance_mm, found.tip_reference) == (40.0, "carina")


def test_tip_below_a_landmark_is_negative() -> None:
    found = only("Endotracheal tube with tip 1 cm below the carina.", "endotracheal_tube")
    assert found.tip_distance_mm == -10.0


def test_tip_at_a_landmark_without_distance() -> None:
    found = only("Right PICC with tip in the SVC.", "central_venous_catheter")
    assert (found.side, found.tip_distance_mm, found.tip_reference) == (
        Side.RIGHT,
        None,
        "superior vena cava",
    )


def test_vertebral_level_attaches_to_a_bone_finding() -> None:
    assert only("Compression fracture of T7.", "fracture").vertebral_level is VertebralLevel.T7


# --- anonymised and misspelt text -----------------------------------------------------------


def test_anonymisation_tokens_are_tolerated() -> None:
    found = only("Right chest XXXX with tip at the cavoatrial junction.", "central_venous_catheter")
    assert found.tip_reference == "cavoatrial junction"


def test_misspellings_in_the_vocabulary_are_matched() -> None:
    assert only("Small pnuemothorax.", "pneumothorax").severity is Severity.SMALL


def test_identical_findings_are_reported_once() -> None:
    assert len(parse("Small left pleural effusion. 1. Small left pleural effusion.")) == 1


def test_findings_reject_unknown_codes() -> None:
    with pytest.raises(UnknownFindingError, match="expected a finding code"):
        Finding("pneumothorax_big")


def test_a_list_number_does_not_swallow_a_decimal_size() -> None:
    (nodule,) = parse("3. 1.2 cm right upper lobe nodule.")
    assert nodule.size_mm == 12.0


def test_indication_and_comparison_sections_are_not_findings() -> None:
    text = (
        "INDICATION: Check endotracheal tube position. Rule out pneumothorax.\n"
        "COMPARISON: None.\n"
        "FINDINGS: Small left pleural effusion.\n"
    )
    assert [f.code for f in parse(text)] == ["pleural_effusion"]


def test_a_finding_repeated_in_the_impression_is_reported_once_with_all_details() -> None:
    text = "FINDINGS: Left pleural effusion.\nIMPRESSION: Small left pleural effusion."
    (effusion,) = parse(text)
    assert effusion.severity is Severity.SMALL
    assert effusion.side is Side.LEFT


def test_effusions_on_different_sides_are_kept_apart() -> None:
    found = parse("Small right pleural effusion. Large left pleural effusion.")
    assert [(f.side, f.severity) for f in found] == [
        (Side.RIGHT, Severity.SMALL),
        (Side.LEFT, Severity.LARGE),
    ]


def test_normal_heart_size_states_that_cardiomegaly_is_absent() -> None:
    for text in ("Normal heart size.", "The heart size is normal.", "Heart is normal in size."):
        (heart,) = parse(text)
        assert (heart.code, heart.presence) == ("cardiomegaly", Presence.ABSENT), text
