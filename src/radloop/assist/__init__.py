"""The assist tasks: ``draft`` a report, ``ask`` a question, ``compare`` with a prior.

Each works with every model backend (``radloop.models``): MLLMs are prompted (JSON output where
the backend supports it, free text read by ``radloop.report.parse`` otherwise); a
``FindingsPredictor`` such as the reference model is used through its structured output.
Every result is assistant output for review by a qualified reader, not a diagnosis.
"""

from radloop.assist.ask import ask, question_finding, question_kind
from radloop.assist.compare import compare, diff_findings
from radloop.assist.draft import draft, read_findings, unavailable_draft
from radloop.assist.prompts import ASK_VERSION, COMPARE_VERSION, DRAFT_VERSION
from radloop.assist.sampling import Sampling, can_sample
from radloop.assist.schema import answer_schema, changes_schema, findings_schema
from radloop.assist.types import (
    ASSISTANT_LABEL,
    Answer,
    Change,
    Comparison,
    DraftReport,
    OutputMode,
    QuestionKind,
)

__all__ = [
    "ASK_VERSION",
    "ASSISTANT_LABEL",
    "COMPARE_VERSION",
    "DRAFT_VERSION",
    "Answer",
    "Change",
    "Comparison",
    "DraftReport",
    "OutputMode",
    "QuestionKind",
    "Sampling",
    "answer_schema",
    "ask",
    "can_sample",
    "changes_schema",
    "compare",
    "diff_findings",
    "draft",
    "findings_schema",
    "question_finding",
    "question_kind",
    "read_findings",
    "unavailable_draft",
]
