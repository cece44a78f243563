"""The parser benchmark on real reports (Indiana University chest X-ray collection).

Protocol: ``docs/benchmarks.md``, section "parser". In short:

- text of a report = FINDINGS + " " + IMPRESSION;
- gold labels = the report's MeSH ``major`` tags; a tag's head (the text before the first
  ``/``) maps to a label through the labels file, case-insensitively; unmapped heads are
  ignored; ``normal`` is gold only when a tag says ``normal``;
- predicted labels = the labels of parsed findings that are present or uncertain, through
  :data:`CODE_LABELS`; the prediction is ``{normal}`` only when no finding of any code is
  present or uncertain;
- micro-F1 over every label of the labels file.

Laterality and location accuracy are scored per gold tag whose modifiers (the parts after the
head, split at ``/`` and ``,``) name a side (``left``, ``right``, ``bilateral``) or a lobe
(``upper lobe``, ``middle lobe``, ``lower lobe``, ``lingula``). A tag counts as correct when
the parser reported a present or uncertain finding of the tag's label that states the same
side / lobe; a tag whose label the parser missed counts as wrong. How a finding "states" one:

- side: its ``side``, or, with no side, the side its zones and lobes imply (zones in the right
  lung only count as right). Gold ``bilateral`` is also met by two findings of the label, one
  on each side; gold ``left`` or ``right`` by any finding of the label on that side, or by a
  bilateral one that names a zone or lobe on that side ("left apical and right basilar").
- lobe: the kind of lobe, either side ("upper lobe" is met by the right or the left upper lobe,
  and by the lingula, which is part of the left upper lobe); ``lingula`` only by the lingula.
  A zone states the lobes that project onto it on a frontal radiograph (``Lobe.zones``, the
  projection radloop uses everywhere): the MeSH indexers of the collection tag a reader's
  "right midlung" as middle lobe and "left upper lung" as upper lobe, and a zone is what a
  frontal film shows. A tag naming several lobes needs them all. ``named_lobe_accuracy`` is the
  stricter figure where only a lobe named in the text counts.

The reports are read with :mod:`tarfile` in memory; nothing is extracted to disk.
"""

from __future__ import annotations

import json
import os
import statistics
import tarfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radloop.errors import InputError
from radloop.report import Finding, parse
from radloop.vocabulary import FINDING_CODES, Lobe, Side, side_of

__all__ = [
    "CODE_LABELS",
    "LabelScore",
    "ParserBenchmark",
    "ReportCase",
    "format_parser_benchmark",
    "gold_tags",
    "load_label_map",
    "predicted_labels",
    "read_reports",
    "run_parser_benchmark",
    "score_reports",
]

NORMAL = "normal"


# radloop codes → benchmark labels. Codes not listed (scarring, degenerative change, ...)
# have no benchmark label: they count as findings (the report is then not "normal") but
# predict no label.
CODE_LABELS: dict[str, str] = {
    "cardiomegaly": "cardiomegaly",
    "lung_opacity": "lung_opacity",
    "consolidation": "lung_opacity",
    "pneumonia": "lung_opacity",
    "interstitial_opacity": "lung_opacity",
    "atelectasis": "atelectasis",
    "pleural_effusion": "pleural_effusion",
    "pneumothorax": "pneumothorax",
    "edema": "edema",
    "nodule": "nodule_mass",
    "mass": "nodule_mass",
    "lung_lesion": "nodule_mass",
    "fracture": "fracture",
    "rib_fracture": "fracture",
    "emphysema": "emphysema",
    "calcified_granuloma": "granuloma",
    "hiatal_hernia": "hiatal_hernia",
    "scoliosis": "scoliosis",
    **{code: "support_device" for code, entry in FINDING_CODES.items() if entry.device},
}

_SIDES = {"left": Side.LEFT, "right": Side.RIGHT, "bilateral": Side.BILATERAL}
_LOBE_KINDS: dict[str, frozenset[Lobe]] = {
    "upper lobe": frozenset({Lobe.RIGHT_UPPER, Lobe.LEFT_UPPER, Lobe.LINGULA}),
    "middle lobe": frozenset({Lobe.RIGHT_MIDDLE}),
    "lower lobe": frozenset({Lobe.RIGHT_LOWER, Lobe.LEFT_LOWER}),
    "lingula": frozenset({Lobe.LINGULA}),
}


@dataclass(frozen=True, slots=True)
class GoldTag:
    """One mapped MeSH major tag: its label, and the side and lobes its modifiers name."""

    label: str
    side: Side | None
    lobes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportCase:
    """One report of the benchmark: its id, text and gold tags."""

    report_id: str
    text: str
    tags: tuple[GoldTag, ...]

    @property
    def gold(self) -> frozenset[str]:
        return frozenset(t.label for t in self.tags)


@dataclass(frozen=True, slots=True)
class LabelScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(slots=True)
class ParserBenchmark:
    """Figures of one benchmark run (see the module docstring for the protocol)."""

    micro_f1: float
    per_label: dict[str, LabelScore]
    laterality_accuracy: float
    laterality_n: int
    location_accuracy: float
    location_n: int
    named_lobe_accuracy: float
    reports_per_s: float
    n_reports: int
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def per_label_f1(self) -> dict[str, float]:
        return {label: score.f1 for label, score in self.per_label.items()}

    def to_dict(self) -> dict[str, object]:
        return {
            "micro_f1": self.micro_f1,
            "per_label_f1": self.per_label_f1,
            "per_label": {label: asdict(score) for label, score in self.per_label.items()},
            "laterality_accuracy": self.laterality_accuracy,
            "laterality_n": self.laterality_n,
            "location_accuracy": self.location_accuracy,
            "location_n": self.location_n,
            "named_lobe_accuracy": self.named_lobe_accuracy,
            "reports_per_s": self.reports_per_s,
            "n_reports": self.n_reports,
        }


def load_label_map(labels_json: Path) -> dict[str, str]:
    """MeSH head (lower case) → benchmark label, from the labels file."""
    try:
        data = json.loads(Path(labels_json).read_text(encoding="utf-8"))
        labels = data["labels"]
        return {head.strip().lower(): label for label, heads in labels.items() for head in heads}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(
            'a JSON object {"labels": {label: [MeSH head, ...]}}',
            f"{type(error).__name__}: {error}",
            source=labels_json,
        ) from None


def gold_tags(major_tags: Iterable[str], head_labels: dict[str, str]) -> tuple[GoldTag, ...]:
    """The mapped tags of a report; tags with an unmapped head are left out."""
    tags: list[GoldTag] = []
    for tag in major_tags:
        head, *rest = tag.split("/")
        label = head_labels.get(head.strip().lower())
        if label is None:
            continue
        modifiers = [m.strip().lower() for part in rest for m in part.split(",")]
        sides = {_SIDES[m] for m in modifiers if m in _SIDES}
        side = None
        if sides:
            side = sides.pop() if len(sides) == 1 else Side.BILATERAL
        lobes = tuple(m for m in modifiers if m in _LOBE_KINDS)
        tags.append(GoldTag(label, side, lobes))
    return tuple(tags)


def read_reports(reports_tgz: Path, head_labels: dict[str, str]) -> list[ReportCase]:
    """Reports of a ``.tgz`` of IU XML files, read in memory, in the archive's order."""
    try:
        with tarfile.open(reports_tgz, mode="r:*") as archive:
            return _read_members(archive, head_labels, reports_tgz)
    except (OSError, EOFError, tarfile.TarError) as error:
        raise InputError(
            "a .tgz archive of IU report XML files", str(error), source=reports_tgz
        ) from None


def _read_members(
    archive: tarfile.TarFile, head_labels: dict[str, str], source: Path
) -> list[ReportCase]:
    cases: list[ReportCase] = []
    for member in archive:
        if not member.isfile() or not member.name.endswith(".xml"):
            continue
        handle = archive.extractfile(member)
        if handle is None:
            continue
        try:
            root = ET.fromstring(handle.read())
        except ET.ParseError as error:
            raise InputError(
                "well-formed report XML", f"{member.name}: {error}", source=source
            ) from None
        sections = {node.get("Label", ""): (node.text or "") for node in root.iter("AbstractText")}
        text = sections.get("FINDINGS", "") + " " + sections.get("IMPRESSION", "")
        major = [node.text or "" for node in root.iter("major")]
        id_node = root.find("pmcId")
        report_id = id_node.get("id", member.name) if id_node is not None else member.name
        cases.append(ReportCase(report_id, text, gold_tags(major, head_labels)))
    return cases


def predicted_labels(findings: Sequence[Finding], labels: Iterable[str]) -> frozenset[str]:
    """Benchmark labels predicted by parsed findings (``{normal}`` when none is positive)."""
    positive = [f for f in findings if f.is_positive]
    if not positive:
        return frozenset({NORMAL}) if NORMAL in set(labels) else frozenset()
    return frozenset(CODE_LABELS[f.code] for f in positive if f.code in CODE_LABELS)


def _stated_sides(found: Finding) -> set[Side]:
    """Sides a finding states: its side (or the side its zones and lobes imply) and, when
    bilateral, each side where it names a zone or lobe."""
    side = found.side if found.side is not None else side_of(found.zones, found.lobes)
    if side is None:
        return set()
    stated = {side}
    if side is Side.BILATERAL:
        stated.update(z.side for z in found.zones)
        stated.update(lobe.side for lobe in found.lobes)
    return stated


def _side_met(tag: GoldTag, found: Sequence[Finding]) -> bool:
    sides = {s for f in found for s in _stated_sides(f)}
    if tag.side is Side.BILATERAL:
        return Side.BILATERAL in sides or {Side.LEFT, Side.RIGHT} <= sides
    return tag.side in sides


def _stated_lobes(found: Finding, *, zones_count: bool = True) -> set[Lobe]:
    """Lobes a finding names, and (``zones_count``) those whose projection holds one of its
    zones."""
    stated = set(found.lobes)
    if zones_count:
        stated.update(lobe for lobe in Lobe for zone in found.zones if zone in lobe.zones)
    return stated


def _lobes_met(tag: GoldTag, found: Sequence[Finding], *, zones_count: bool = True) -> bool:
    stated = {lobe for f in found for lobe in _stated_lobes(f, zones_count=zones_count)}
    return all(stated & _LOBE_KINDS[kind] for kind in tag.lobes)


def _f1(tp: int, fp: int, fn: int) -> LabelScore:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScore(precision, recall, f1, tp + fn)


def score_reports(
    cases: Sequence[ReportCase],
    labels: Sequence[str],
    parser: Callable[[str], list[Finding]] = parse,
) -> ParserBenchmark:
    """Scores of the parser on the cases (no timing: ``reports_per_s`` is 0)."""
    counts = {label: Counter[str]() for label in labels}
    side_right = side_total = lobe_right = lobe_total = named_right = 0
    for case in cases:
        findings = parser(case.text)
        predicted = predicted_labels(findings, labels)
        for label in labels:
            truth, guess = label in case.gold, label in predicted
            key = "tp" if truth and guess else "fn" if truth else "fp" if guess else "tn"
            counts[label][key] += 1
        by_label: dict[str, list[Finding]] = {}
        for found in findings:
            if found.is_positive and found.code in CODE_LABELS:
                by_label.setdefault(CODE_LABELS[found.code], []).append(found)
        for tag in case.tags:
            of_label = by_label.get(tag.label, [])
            if tag.side is not None:
                side_total += 1
                side_right += _side_met(tag, of_label)
            if tag.lobes:
                lobe_total += 1
                lobe_right += _lobes_met(tag, of_label)
                named_right += _lobes_met(tag, of_label, zones_count=False)
    per_label = {label: _f1(c["tp"], c["fp"], c["fn"]) for label, c in counts.items()}
    tp = sum(c["tp"] for c in counts.values())
    fp = sum(c["fp"] for c in counts.values())
    fn = sum(c["fn"] for c in counts.values())
    return ParserBenchmark(
        micro_f1=_f1(tp, fp, fn).f1,
        per_label=per_label,
        laterality_accuracy=side_right / side_total if side_total else 0.0,
        laterality_n=side_total,
        location_accuracy=lobe_right / lobe_total if lobe_total else 0.0,
        location_n=lobe_total,
        named_lobe_accuracy=named_right / lobe_total if lobe_total else 0.0,
        reports_per_s=0.0,
        n_reports=len(cases),
        confusion={label: dict(c) for label, c in counts.items()},
    )


def _reports_per_s(texts: Sequence[str], passes: int = 3) -> float:
    """Parse throughput on one core: the median of several passes over all texts."""
    pin = hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pin else set()
    if pin and before:
        os.sched_setaffinity(0, {min(before)})
    try:
        rates = []
        for _ in range(passes):
            started = time.perf_counter()
            for text in texts:
                parse(text)
            elapsed = time.perf_counter() - started
            rates.append(len(texts) / elapsed if elapsed > 0 else float("inf"))
        return statistics.median(rates)
    finally:
        if pin and before:
            os.sched_setaffinity(0, before)


def run_parser_benchmark(reports_tgz: Path, labels_json: Path) -> ParserBenchmark:
    """Run the parser benchmark on a ``.tgz`` of IU report XML files."""
    head_labels = load_label_map(labels_json)
    labels = sorted(set(head_labels.values()))
    cases = read_reports(reports_tgz, head_labels)
    if not cases:
        raise InputError(
            "a .tgz with at least one *.xml report", "no XML files", source=reports_tgz
        )
    result = score_reports(cases, labels)
    parse("warm-up: no pneumothorax.")
    result.reports_per_s = _reports_per_s([c.text for c in cases])
    return result


def format_parser_benchmark(result: ParserBenchmark) -> str:
    """A readable table of the figures."""
    lines = [
        f"parser benchmark: {result.n_reports} reports",
        f"{'label':<18}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}",
    ]
    for label, score in sorted(result.per_label.items()):
        lines.append(
            f"{label:<18}{score.precision:>10.3f}{score.recall:>8.3f}{score.f1:>8.3f}"
            f"{score.support:>9d}"
        )
    lines += [
        f"{'micro F1':<18}{result.micro_f1:>10.3f}",
        f"{'laterality acc.':<18}{result.laterality_accuracy:>10.3f}  (n={result.laterality_n})",
        f"{'location acc.':<18}{result.location_accuracy:>10.3f}  (n={result.location_n})",
        f"{'  named lobes':<18}{result.named_lobe_accuracy:>10.3f}  (a lobe word in the text only)",
        f"{'reports/s':<18}{result.reports_per_s:>10.0f}  (one core, median of 3 passes)",
    ]
    return "\n".join(lines)
