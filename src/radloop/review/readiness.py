"""What stands between a worksheet and a signature, said in the reader's words.

The study page shows these before the reader confirms a signature (so the confirmation is
never the first place an error appears), and sign-off refuses with the same sentences: a
flagged claim without a decision names the finding ("Decide the flagged finding “Mass in the
right upper lobe.” first"), not its key; an urgent study without a record of communicating
its critical result says what to record (:mod:`radloop.review.communication`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from radloop.errors import InputError
from radloop.review.communication import communications, needs_communication, report_line
from radloop.review.db import StudyRow
from radloop.review.worksheet import NotSignableError, ReviewItem

__all__ = [
    "Blocker",
    "SignBlockedError",
    "blockers_for",
    "finding_words",
    "flag_records",
    "sign_blockers",
    "signed_text",
]


@dataclass(frozen=True)
class Blocker:
    """One reason the study cannot be signed yet: ``kind`` is ``undecided`` (with the
    finding's ``key``) or ``communication``."""

    kind: str
    message: str
    key: str | None = None


def finding_words(found: dict[str, Any]) -> str:
    """The finding as the report would say it (its code if it cannot be written)."""
    from radloop.report import Finding
    from radloop.report.writer import describe

    try:
        return describe(Finding.from_dict(found))
    except (InputError, ValueError, KeyError):
        return str(found.get("code", "?")).replace("_", " ")


def sign_blockers(
    items: Sequence[ReviewItem],
    *,
    urgent: bool = False,
    triage_reasons: Sequence[str] = (),
    records: list[dict[str, Any]] | None = None,
) -> list[Blocker]:
    """Everything that must be done before signing, in the order of the page."""
    blockers = []
    for item in items:
        if not item.flagged or item.decision is not None:
            continue
        words = finding_words(item.finding)
        if item.omission:
            message = f"Decide the possible omission “{words}” first: add or dismiss it."
        else:
            message = f"Decide the flagged finding “{words}” first: accept, reject or edit it."
        blockers.append(Blocker("undecided", message, item.key))
    if needs_communication(urgent, records or []):
        what = "; ".join(triage_reasons) or "the critical finding"
        blockers.append(
            Blocker(
                "communication",
                f"Record to whom, when and how the critical result ({what}) was communicated, "
                "or waive it with a reason, before signing.",
            )
        )
    return blockers


def blockers_for(session: Session, row: StudyRow, items: Sequence[ReviewItem]) -> list[Blocker]:
    """:func:`sign_blockers` of a stored study, with its communication records."""
    records = communications(session, row.id) if row.urgent else []
    reasons = [str(r) for r in row.triage_reasons or []]
    return sign_blockers(items, urgent=row.urgent, triage_reasons=reasons, records=records)


def signed_text(session: Session, row: StudyRow, text: str) -> str:
    """The report text as signed: an urgent study's ends with its communication record
    (:func:`radloop.review.communication.report_line`), so the FHIR and SR exports carry it."""
    line = report_line(communications(session, row.id)) if row.urgent else None
    return f"{text}\n\nCOMMUNICATION:\n{line}" if line else text


def flag_records(items: Sequence[ReviewItem]) -> list[dict[str, str]]:
    """What the signed report keeps of each flagged claim: its code, why it was flagged and
    the reader's decision (kept, rejected or edited; an omission not added is rejected)."""
    mapping = {"accepted": "kept", "rejected": "rejected", "edited": "edited"}
    records = []
    for item in items:
        if not item.flagged:
            continue
        reason = "; ".join(item.reasons) or (
            "possible omission" if item.omission else str(item.verdict)
        )
        decision = (
            "kept"
            if item.omission and item.decision == "accepted"
            else (mapping.get(item.decision or "", "kept"))
        )
        if item.omission and item.decision != "accepted":
            decision = "rejected"
        records.append(
            {
                "code": str(item.finding.get("code")),
                "reason": reason,
                "decision": decision,
                "key": item.key,
            }
        )
    return records


class SignBlockedError(NotSignableError):
    """Sign-off refused while :func:`sign_blockers` lists anything; the message is those
    sentences, the 409 answer lists them under ``blockers``."""

    def __init__(self, study_id: str, blockers: list[Blocker]) -> None:
        undecided = [b.key for b in blockers if b.key]
        received = f"no decision on {', '.join(undecided)}" if undecided else "none"
        expected = (
            "a decision on every flagged claim"
            if undecided
            else "a record of communicating the critical result"
        )
        super().__init__(expected, received, source=study_id)
        self.blockers = blockers
        # The reader reads this sentence, not the expected/received form.
        self.args = (" ".join(b.message for b in blockers),)

    def details(self) -> dict[str, Any]:
        return {"blockers": [asdict(b) for b in self.blockers]}
