"""What the assist tasks return: a draft report, an answer, a comparison.

Each keeps the prompt, its version, the raw generations and any warnings about the model's
output, so a reviewer (and the audit log) can see how the result was made. Each is labelled
as assistant output: nothing here is a diagnosis until a qualified reader signs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from radloop.assist.schema import finding_to_json
from radloop.models import Generation
from radloop.models.base import Cost
from radloop.report import Change as Direction
from radloop.report import Finding, Report
from radloop.vocabulary import Lobe, Side, Zone, finding

__all__ = [
    "ASSISTANT_LABEL",
    "DEGENERATE",
    "Answer",
    "Change",
    "Comparison",
    "DraftReport",
    "OutputMode",
    "OutputWarning",
    "QuestionKind",
    "WarningKind",
]

ASSISTANT_LABEL = "assistant output — not a diagnosis"


class OutputMode(StrEnum):
    """How findings were obtained from the model."""

    JSON = "json"  # the reply was the requested JSON
    TEXT = "text"  # free text, read by radloop.report.parse
    STRUCTURED = "structured"  # a FindingsPredictor (the reference model), no text involved


class WarningKind(StrEnum):
    """What was wrong with a model's output (each kind fails closed, never open)."""

    INVALID_PRESENCE = "invalid_presence"  # held as uncertain and flagged, never present
    INVALID_FIELD = "invalid_field"  # a field or finding broke the schema and was left out
    NOT_JSON = "not_json"  # JSON was asked for, prose came back: read as free text
    UNADDRESSED_SECTION = "unaddressed_section"  # shown as not commented, never as normal
    EMPTY = "empty_reply"
    TRUNCATED = "truncated"
    REPETITION = "repetition_loop"
    SCHEMA_BROKEN = "schema_broken"
    NO_STATEMENT = "no_recognised_statement"
    ABSTAINED = "abstained"  # the model declined: the study is outside its validated domain
    MODEL_UNAVAILABLE = "model_unavailable"  # no reply at all: the model failed every attempt


DEGENERATE = frozenset({
    WarningKind.EMPTY, WarningKind.TRUNCATED, WarningKind.REPETITION,
    WarningKind.SCHEMA_BROKEN, WarningKind.NO_STATEMENT, WarningKind.MODEL_UNAVAILABLE,
})  # fmt: skip
"""Warning kinds that fail the draft: nothing of such a reply is read as a finding or as normal."""


@dataclass(frozen=True)
class OutputWarning:
    """A typed warning about a model's output; ``index`` is the finding it concerns."""

    kind: WarningKind
    message: str
    index: int | None = None

    def __str__(self) -> str:
        return self.message

    @property
    def degenerate(self) -> bool:
        return self.kind in DEGENERATE

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputWarning:
        return cls(WarningKind(data["kind"]), str(data["message"]), data.get("index"))


class QuestionKind(StrEnum):
    """What a question asks for."""

    PRESENCE = "presence"  # is there ...?
    SIDE = "side"  # which side ...?
    LOCATION = "location"  # where ...?
    SIZE = "size"  # how large ...?
    PLACEMENT = "placement"  # is the tube well placed?
    OPEN = "open"


def _generations_json(generations: tuple[Generation, ...]) -> list[dict[str, Any]]:
    return [
        {
            "text": g.text,
            "model": g.model,
            "latency_s": round(g.latency_s, 4),
            "finish_reason": g.finish_reason,
            "mean_logprob": g.mean_logprob,
        }
        for g in generations
    ]


@dataclass(frozen=True)
class DraftReport:
    """A drafted report: its text and findings, and how the model produced them.

    ``failure`` is set when the reply was degenerate (empty, cut off, a repetition loop, a
    schema-breaking JSON, long text with no recognised statement): the draft then holds no
    finding and no text, and says why. ``abstained`` holds the reason when the model declined
    to read a study outside its validated domain. ``unaddressed`` names the report sections
    the model did not comment on (shown as not commented, never as normal). ``context`` is
    the record of the clinical context the model was given (the section's exact text, the
    items given and those left out, with why: ``radloop.assist.prompts.ContextSection``);
    None when the model was given none (a structured model reads the images only).
    """

    report: Report
    generations: tuple[Generation, ...]
    prompt: str
    prompt_version: str
    model_id: str
    latency_s: float
    output_mode: OutputMode
    warnings: tuple[OutputWarning, ...] = ()
    label: str = ASSISTANT_LABEL
    failure: OutputWarning | None = None
    abstained: str | None = None
    unaddressed: tuple[str, ...] = ()
    context: Mapping[str, Any] | None = None
    samples: tuple[Generation, ...] = ()
    """Drafts sampled at a temperature for self-consistency (none: the model was not sampled)."""
    cost: Mapping[str, Cost] = field(default_factory=dict)
    """What the model work cost, by part (``draft``, ``samples``; ``ask_back`` is added by the
    safety layer's questions)."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.report.findings

    @property
    def total_cost(self) -> Cost:
        return sum(self.cost.values(), Cost())

    def cost_dict(self) -> dict[str, Any]:
        """The cost by part and in total, JSON-ready (stored with each draft)."""
        return {
            **{part: c.to_dict() for part, c in self.cost.items()},
            "total": self.total_cost.to_dict(),
        }

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def invalid_indices(self) -> frozenset[int]:
        """Findings whose presence the model stated invalidly (held as uncertain)."""
        return frozenset(
            w.index
            for w in self.warnings
            if w.kind is WarningKind.INVALID_PRESENCE and w.index is not None
        )

    @property
    def text(self) -> str:
        return self.report.text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json`` and storage)."""
        return {
            "label": self.label,
            "study_instance_uid": self.report.study_instance_uid,
            "status": self.report.status.value,
            "text": self.report.text,
            "findings": [finding_to_json(f) for f in self.findings],
            "model": self.model_id,
            "output_mode": self.output_mode.value,
            "prompt_version": self.prompt_version,
            "latency_s": round(self.latency_s, 4),
            "warnings": [str(w) for w in self.warnings],
            "output_warnings": [w.to_dict() for w in self.warnings],
            "failure": self.failure.to_dict() if self.failure is not None else None,
            "abstained": self.abstained,
            "unaddressed": list(self.unaddressed),
            "context": dict(self.context) if self.context is not None else None,
            "generations": _generations_json(self.generations),
            "samples": _generations_json(self.samples),
            "cost": self.cost_dict(),
        }


@dataclass(frozen=True)
class Answer:
    """An answer to one question, with the finding it rests on.

    ``answer`` is True (yes), False (no) or None (not a yes/no question, or no clear answer).
    """

    question: str
    kind: QuestionKind
    text: str
    answer: bool | None
    finding: Finding | None
    generations: tuple[Generation, ...]
    prompt: str
    prompt_version: str
    model_id: str
    latency_s: float
    warnings: tuple[str, ...] = ()
    label: str = ASSISTANT_LABEL

    @property
    def finding_code(self) -> str | None:
        return self.finding.code if self.finding else None

    @property
    def side(self) -> Side | None:
        return self.finding.side if self.finding else None

    @property
    def zones(self) -> tuple[Zone, ...]:
        return self.finding.zones if self.finding else ()

    @property
    def lobes(self) -> tuple[Lobe, ...]:
        return self.finding.lobes if self.finding else ()

    @property
    def size_mm(self) -> float | None:
        return self.finding.size_mm if self.finding else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "question": self.question,
            "kind": self.kind.value,
            "text": self.text,
            "answer": self.answer,
            "finding": finding_to_json(self.finding) if self.finding else None,
            "model": self.model_id,
            "prompt_version": self.prompt_version,
            "latency_s": round(self.latency_s, 4),
            "warnings": list(self.warnings),
            "generations": _generations_json(self.generations),
        }


@dataclass(frozen=True)
class Change:
    """How one finding changed from the prior study to the current one."""

    code: str
    direction: Direction
    details: str = ""
    side: Side | None = None
    current: Finding | None = None
    prior: Finding | None = None

    def __post_init__(self) -> None:
        finding(self.code)  # raises UnknownFindingError with the expectation

    @property
    def name(self) -> str:
        return finding(self.code).name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "direction": self.direction.value}
        if self.side is not None:
            out["side"] = self.side.value
        if self.details:
            out["details"] = self.details
        return out


@dataclass(frozen=True)
class Comparison:
    """The changes between two studies, and how the model produced them."""

    changes: tuple[Change, ...]
    current_uid: str
    prior_uid: str
    generations: tuple[Generation, ...]
    prompt: str
    prompt_version: str
    model_id: str
    latency_s: float
    output_mode: OutputMode
    warnings: tuple[str, ...] = ()
    label: str = ASSISTANT_LABEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "current_study_instance_uid": self.current_uid,
            "prior_study_instance_uid": self.prior_uid,
            "changes": [c.to_dict() for c in self.changes],
            "model": self.model_id,
            "output_mode": self.output_mode.value,
            "prompt_version": self.prompt_version,
            "latency_s": round(self.latency_s, 4),
            "warnings": list(self.warnings),
            "generations": _generations_json(self.generations),
        }
