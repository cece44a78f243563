"""The real-film domain: declared from measured figures, and what the built-in model then says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lungfieldskit import FixedReader, film, model_with_domain, two_lungs
from radloop.errors import InputError
from radloop.models.builtin import NOTICE, ReferenceModel
from radloop.models.competence import REAL_FILMS
from radloop.models.reference import lungfields
from radloop.models.reference.lungfields import LungFields
from radloop.models.reference.realfilm import (
    CHANGE_TOLERANCE,
    REALFILM_DOMAIN,
    RealFilmDomain,
    declare_domain,
    findings_from_fields,
    zone_direction,
)
from radloop.report import Change, Presence
from radloop.study import Image, Series, Study
from radloop.vocabulary import Side, Zone


def _result(zone: float, side: float, dice: float) -> dict[str, Any]:
    return {
        "reader": "lungfields-test",
        "zone_auroc": {"value": zone, "ci95": [zone - 0.05, zone + 0.05], "n": 300},
        "opacity_side_accuracy": {"value": side, "ci95": [side - 0.05, side + 0.05], "n": 80},
        "lung_dice": {"value": dice, "ci95": [dice - 0.01, dice + 0.01], "n": 160},
    }


def test_a_type_enters_only_when_every_bar_is_met() -> None:
    met = declare_domain(_result(0.80, 0.90, 0.92), collection="dev", opacity_threshold=0.4)
    assert met["findings"] == ["lung_opacity"]
    assert met["types"]["lung_opacity"]["figures"]["zone_auroc"]["met"] is True
    for figures in ((0.74, 0.90, 0.92), (0.80, 0.79, 0.92), (0.80, 0.90, 0.89)):
        declared = declare_domain(_result(*figures), collection="dev", opacity_threshold=0.4)
        assert declared["findings"] == []
    missing = declare_domain({"reader": "x"}, collection="dev", opacity_threshold=0.4)
    assert missing["findings"] == [] and missing["types"]["lung_opacity"]["met"] is False


def test_a_broken_domain_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / REALFILM_DOMAIN
    path.write_text('{"findings": ["lung_opacity"]}')
    with pytest.raises(InputError, match="opacity_threshold"):
        RealFilmDomain.from_file(path)


def test_findings_from_fields_state_opacity_with_its_zones_and_side() -> None:
    domain = RealFilmDomain(("lung_opacity",), ("dev",), 0.5)
    (finding,) = findings_from_fields(two_lungs(slice(20, 60)), domain, "m")
    assert finding.code == "lung_opacity" and finding.presence is Presence.PRESENT
    assert finding.side is Side.RIGHT
    assert set(finding.zones) == {Zone.RIGHT_MIDDLE, Zone.RIGHT_LOWER}
    assert findings_from_fields(two_lungs(None), domain, "m") == ()
    closed = RealFilmDomain((), ("dev",), 0.5)
    assert findings_from_fields(two_lungs(slice(0, 60)), closed, "m") == ()


def test_a_declared_real_domain_lets_the_model_speak_only_for_its_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = FixedReader(two_lungs(slice(0, 60)))
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: reader)
    model = ReferenceModel(model_with_domain(tmp_path / "model", ["lung_opacity"]))
    assert model.competence.real
    images = [film()]
    decision = model.assess_domain(images)
    assert decision.domain == REAL_FILMS and "lung_opacity" in decision.reason
    findings = model.predict_findings(images)
    assert [f.code for f in findings] == ["lung_opacity"]  # never a device, never a nodule
    text = model.generate(images, "Describe.")[0].text
    assert text.startswith(NOTICE) and "opacity" in text.lower()
    assert "Not commented." in text and "Unremarkable." not in text
    assert reader.reads == 1  # one reading per study, shared by the check, draft and text


def test_a_film_outside_the_lung_fields_domain_still_abstains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    far = two_lungs(slice(0, 60), distance=9.0)  # outside the network's domain reference
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: FixedReader(far))
    model = ReferenceModel(model_with_domain(tmp_path / "model", ["lung_opacity"]))
    assert not model.assess_domain([film()]).in_domain
    assert "abstains" in model.generate([film()], "Describe.")[0].text


def test_without_an_admitted_type_there_is_no_real_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        lungfields, "load_lung_fields", lambda model_dir=None: FixedReader(two_lungs(None))
    )
    model = ReferenceModel(model_with_domain(tmp_path / "model", []))
    assert not model.competence.real
    assert not model.assess_domain([film()]).in_domain
    assert "abstains" in model.generate([film()], "Describe.")[0].text


def test_a_zone_is_stated_changed_only_past_the_tolerance() -> None:
    assert zone_direction(0.30, 0.30 + 1.2 * CHANGE_TOLERANCE) is Change.INCREASED
    assert zone_direction(0.30, 0.30 - 1.2 * CHANGE_TOLERANCE) is Change.DECREASED
    assert zone_direction(0.30, 0.30 + 0.8 * CHANGE_TOLERANCE) is Change.STABLE
    assert zone_direction(0.30, 0.30 - 0.8 * CHANGE_TOLERANCE) is Change.STABLE
    assert zone_direction(0.30, 0.50, tolerance=0.25) is Change.STABLE
    declared = declare_domain(
        _result(0.8, 0.9, 0.92), collection="dev", opacity_threshold=0.4, change_tolerance=0.1
    )
    assert declared["change_tolerance"] == 0.1


class _Readers:
    """A lung-fields reader that gives each film (told by its first pixel) its own reading."""

    def __init__(self, by_film: dict[float, LungFields]) -> None:
        self.by_film = by_film

    def read(self, pixels: np.ndarray) -> LungFields:
        return self.by_film[float(pixels.flat[0])]

    def on_scale_of(
        self, prior: np.ndarray, before: LungFields, current: np.ndarray, alone: LungFields
    ) -> LungFields:
        return alone  # each film's own reading: the pair's scale is the runtime's concern


def _study(images: list[Image], uid: str) -> Study:
    return Study(uid, (Series(f"{uid}.1", tuple(images)),))


def test_compare_states_opacity_zone_by_zone_on_films_in_the_real_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radloop.assist import compare

    prior, current = [film(5)], [film(6)]
    readers = _Readers(
        {
            float(prior[0].pixels.flat[0]): two_lungs(slice(40, 60)),  # right lower zone only
            float(current[0].pixels.flat[0]): two_lungs(slice(0, 60)),  # the whole right lung
        }
    )
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: readers)
    model = ReferenceModel(
        model_with_domain(tmp_path / "model", ["lung_opacity"], changes=["lung_opacity"])
    )
    zones = model.predict_zone_changes(current, prior)
    assert zones is not None
    stated = {z.zone: z.direction for z in zones}
    assert stated == {
        Zone.RIGHT_UPPER: Change.INCREASED,
        Zone.RIGHT_MIDDLE: Change.INCREASED,
        Zone.RIGHT_LOWER: Change.STABLE,
        Zone.LEFT_UPPER: Change.STABLE,
        Zone.LEFT_MIDDLE: Change.STABLE,
        Zone.LEFT_LOWER: Change.STABLE,
    }
    comparison = compare(_study(current, "2.1"), _study(prior, "2.2"), model)
    opacity = [c for c in comparison.changes if c.code == "lung_opacity"]
    assert len(opacity) == 6 and not comparison.warnings
    upper = next(c for c in opacity if "right upper zone" in c.details)
    assert upper.direction is Change.INCREASED and upper.side is Side.RIGHT
    assert "Brixia A" in upper.details and "0.00 on the prior, 0.95 now" in upper.details
    assert {c.code for c in comparison.changes} == {"lung_opacity"}  # nothing else is read
    # backwards in time, the same zones decrease
    reverse = {z.zone: z.direction for z in model.predict_zone_changes(prior, current) or ()}
    assert reverse[Zone.RIGHT_UPPER] is Change.DECREASED
    assert reverse[Zone.RIGHT_LOWER] is Change.STABLE


def test_compare_states_no_zone_change_outside_the_real_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radloop.assist import compare

    prior, current = [film(5)], [film(6)]
    near, far = two_lungs(slice(40, 60)), two_lungs(slice(0, 60), distance=9.0)
    readers = _Readers(
        {float(prior[0].pixels.flat[0]): near, float(current[0].pixels.flat[0]): far}
    )
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: readers)
    model = ReferenceModel(
        model_with_domain(tmp_path / "model", ["lung_opacity"], changes=["lung_opacity"])
    )
    assert model.predict_zone_changes(current, prior) is None
    comparison = compare(_study(current, "2.1"), _study(prior, "2.2"), model)
    assert comparison.changes == () and "abstains" in comparison.warnings[0]
    closed = ReferenceModel(model_with_domain(tmp_path / "closed" / "model", []))
    assert closed.predict_zone_changes(prior, prior) is None


def test_change_by_zone_needs_its_own_bar_as_well_as_the_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radloop.assist import compare

    change = {"change_zone_accuracy": {"value": 0.72, "ci95": [0.6, 0.8], "n": 58}}
    both = declare_domain({**_result(0.8, 0.9, 0.92), **change}, collection="dev",
                          opacity_threshold=0.4)  # fmt: skip
    assert both["changes"] == ["lung_opacity"]
    assert both["types"]["lung_opacity"]["change"]["figures"]["change_zone_accuracy"]["met"]
    weak = {"change_zone_accuracy": {"value": 0.62, "ci95": [0.5, 0.7], "n": 58}}
    assert declare_domain({**_result(0.8, 0.9, 0.92), **weak}, collection="dev",
                          opacity_threshold=0.4)["changes"] == []  # fmt: skip
    # a change that met its bar while the type did not: nothing is stated
    assert declare_domain({**_result(0.7, 0.9, 0.92), **change}, collection="dev",
                          opacity_threshold=0.4)["changes"] == []  # fmt: skip

    # lung opacity admitted, its change not: compare diffs the two readings' findings instead
    prior, current = [film(5)], [film(6)]
    readers = _Readers(
        {
            float(prior[0].pixels.flat[0]): two_lungs(slice(40, 60)),
            float(current[0].pixels.flat[0]): two_lungs(slice(0, 60)),
        }
    )
    monkeypatch.setattr(lungfields, "load_lung_fields", lambda model_dir=None: readers)
    model = ReferenceModel(model_with_domain(tmp_path / "model", ["lung_opacity"]))
    assert model.predict_zone_changes(current, prior) is None
    comparison = compare(_study(current, "2.1"), _study(prior, "2.2"), model)
    assert all("Brixia" not in c.details for c in comparison.changes)
    assert {c.code for c in comparison.changes} <= {"lung_opacity"}
