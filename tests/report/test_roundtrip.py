"""``parse(write(findings))`` gives back the findings: a property over generated findings.

The generator is restricted to what the writer can express (see ``radloop.report.writer``):

- the side of a finding with zones or lobes is the side they imply; zones and lobes only on
  findings of the lungs and pleura, at most two of each and three in all;
- scoliosis and an elevated hemidiaphragm are right or left, never bilateral;
- sizes and severities on findings that are not devices, a size said once: a measured
  finding has no severity, but a finding critical only when large has a severity or a
  measurement, not both; sizes at the precision a report states them (whole mm from 10 mm,
  one decimal under); ``size_mm`` is the largest of ``dimensions_mm`` when two or three
  dimensions are given;
- tip positions on devices: a landmark with a non-zero distance, or a landmark alone;
- vertebral levels on bone findings;
- absent findings carry only a place and, optionally, the change ``resolved``;
- devices are present or absent (the writer has no hedged device sentence);
- no finding of one report subsumes another (the parser reports a finding mentioned twice once,
  with what both mentions say: ``radloop.report.parser.subsumes``).
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from radloop.report import Change, Finding, Presence, Severity, parse, write
from radloop.report.measure import TIP_REFERENCES
from radloop.report.parser import subsumes
from radloop.vocabulary import (
    FINDING_CODES,
    Category,
    Criticality,
    Lobe,
    Side,
    VertebralLevel,
    Zone,
    side_of,
)

CODES = sorted(code for code in FINDING_CODES if code != "no_finding")
LOCATED = {Category.LUNGS, Category.PLEURA}
ONE_SIDED = {"scoliosis", "elevated_hemidiaphragm"}
REFERENCES = sorted(set(TIP_REFERENCES.values()))
millimetres = st.integers(min_value=2, max_value=300).map(lambda half: half / 2)
# Sizes as a report states them: 0.1 to 9.9 mm by tenths, then whole mm.
reported_sizes = st.integers(min_value=1, max_value=99).map(lambda tenth: tenth / 10) | st.integers(
    min_value=10, max_value=150
).map(float)


def _ordered(items: set[Zone] | set[Lobe], kind: type[Zone] | type[Lobe]) -> tuple:  # type: ignore[type-arg]
    return tuple(x for x in kind if x in items)


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    code = draw(st.sampled_from(CODES))
    entry = FINDING_CODES[code]
    presences = [Presence.PRESENT, Presence.ABSENT]
    if not entry.device:
        presences.append(Presence.UNCERTAIN)
    presence = draw(st.sampled_from(presences))
    positive = presence is not Presence.ABSENT

    zones: tuple[Zone, ...] = ()
    lobes: tuple[Lobe, ...] = ()
    side: Side | None = None
    if entry.lateral:
        if entry.category in LOCATED and draw(st.booleans()):
            zones = _ordered(draw(st.sets(st.sampled_from(list(Zone)), max_size=2)), Zone)
            lobes = _ordered(
                draw(st.sets(st.sampled_from(list(Lobe)), max_size=3 - len(zones) if zones else 2)),
                Lobe,
            )
        side = side_of(zones, lobes)
        if side is None:
            sides = [Side.RIGHT, Side.LEFT] if code in ONE_SIDED else list(Side)
            side = draw(st.none() | st.sampled_from(sides))

    severity = size = level = tip_distance = tip_reference = change = None
    dimensions: tuple[float, ...] = ()
    if positive and not entry.device:
        severity = draw(st.none() | st.sampled_from(list(Severity)))
        urgent_if_large = entry.critical is Criticality.IF_LARGE and severity is not None
        if not urgent_if_large and draw(st.booleans()):
            severity = None  # a size is said once: by the measurement
            dimensions = tuple(draw(st.lists(reported_sizes, min_size=1, max_size=3)))
            size = max(dimensions)
            if len(dimensions) == 1:
                dimensions = ()
    if positive and entry.category is Category.BONES:
        level = draw(st.none() | st.sampled_from(list(VertebralLevel)))
    if positive and entry.device and draw(st.booleans()):
        tip_reference = draw(st.sampled_from(REFERENCES))
        tip_distance = draw(st.none() | millimetres | millimetres.map(lambda d: -d))
    if positive:
        change = draw(
            st.none()
            | st.sampled_from([Change.NEW, Change.INCREASED, Change.DECREASED, Change.STABLE])
        )
    else:
        change = draw(st.none() | st.just(Change.RESOLVED))
    return Finding(
        code=code,
        presence=presence,
        side=side,
        zones=zones,
        lobes=lobes,
        vertebral_level=level,
        size_mm=size,
        dimensions_mm=dimensions,
        severity=severity,
        change=change,
        tip_distance_mm=tip_distance,
        tip_reference=tip_reference,
    )


def _distinct(found: list[Finding]) -> bool:
    return not any(
        i != j and subsumes(a, b) for i, a in enumerate(found) for j, b in enumerate(found)
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(findings(), max_size=8).filter(_distinct))
def test_parse_of_write_gives_back_the_findings(generated: list[Finding]) -> None:
    report = write(generated)
    assert Counter(parse(report)) == Counter(generated), report


@settings(max_examples=300, deadline=None)
@given(findings())
def test_each_finding_survives_the_round_trip_alone(generated: Finding) -> None:
    report = write([generated])
    assert parse(report) == [generated], report
