"""The reviewer's worksheet: a decision per finding, the report text, and sign-off.

Each draft finding is accepted, rejected or edited (replaced by a sentence the reader types,
read back with :func:`radloop.report.parse`); a possible omission the verifier raised is added
or dismissed. Each claim shows its state: verified, contradicted, unsupported, unverifiable or
not checked (no evidence valid for the film spoke about it), with the reasons. The text starts
as the draft's own (certainty phrases where the probabilities are calibrated for the study's
domain, the model's words otherwise); once the reader decides on a finding, and until the text
is edited by hand, it is rewritten from the kept findings, with certainty phrases only where
calibrated and the sections the model did not comment on as "Not commented.". A failed or
abstained draft starts from an empty report, never from a normal one. Flagged claims
(unsupported, contradicted, invalidly stated by the model, possible omissions) must be decided
before signing. What is signed is the text and the reviewed findings it was written from; only
a text the reader typed by hand, the one statement of what they meant, is read back by the
parser. A signed report is never changed: later changes are addenda.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from radloop.errors import InputError
from radloop.report import Finding
from radloop.review.db import Draft, SignedReport, StudyRow, Worksheet, utcnow
from radloop.vocabulary import Category

__all__ = [
    "DECISIONS",
    "NotSignableError",
    "ReviewItem",
    "add_addendum",
    "claim_state",
    "current_text",
    "decide",
    "review_items",
    "reviewed_findings",
    "set_text",
    "sign",
]

DECISIONS = ("accepted", "rejected", "edited")
MAIN_SECTIONS = tuple(
    c.value for c in (Category.LUNGS, Category.PLEURA, Category.HEART_MEDIASTINUM, Category.BONES)
)
"""The sections every report addresses; an empty draft commented on none of them."""


def claim_state(verdict: str | None) -> str:
    """What the reader sees for a stored verdict, in the words of
    :func:`radloop.safety.answers.state`: verified, contradicted, unsupported, unverifiable or
    not checked (also for a claim that carries no verdict at all)."""
    if verdict is None or verdict == "not_checked":
        return "not checked"
    return "verified" if verdict == "supported" else verdict


class NotSignableError(InputError):
    """A study that cannot be signed (or changed) in its present state."""


@dataclass(frozen=True)
class ReviewItem:
    """One row of the review panel: a draft finding or a possible omission."""

    key: str
    finding: dict[str, Any]
    verdict: str | None
    reasons: tuple[str, ...]
    flagged: bool
    omission: bool
    heatmap_code: str | None
    decision: str | None
    replacement: str | None
    state: str = "not checked"
    invalid_output: bool = False


class DraftContent(Protocol):
    """What the review reads of a draft: a :class:`Draft` row or a read model of one."""

    @property
    def findings(self) -> list[Any]: ...

    @property
    def checks(self) -> list[Any]: ...

    @property
    def text(self) -> str: ...

    @property
    def calibrated(self) -> bool: ...

    @property
    def failure(self) -> dict[str, Any] | None: ...

    @property
    def abstained(self) -> str | None: ...

    @property
    def unaddressed(self) -> list[Any]: ...


class SheetContent(Protocol):
    """What the review reads of a worksheet: a :class:`Worksheet` row or a read model."""

    @property
    def decisions(self) -> dict[str, Any]: ...

    @property
    def text(self) -> str | None: ...

    @property
    def text_edited(self) -> bool: ...


def review_items(draft: DraftContent | None, sheet: SheetContent | None) -> list[ReviewItem]:
    """The draft's findings (``f<i>``) then its possible omissions (``c<k>``), with decisions."""
    if draft is None:
        return []
    decisions = sheet.decisions if sheet is not None else {}
    by_index = {c["index"]: c for c in draft.checks if c.get("index") is not None}
    items = []
    for i, found in enumerate(draft.findings):
        check = by_index.get(i, {})
        items.append(_item(f"f{i}", found, check, decisions))
    for k, check in enumerate(draft.checks):
        if check.get("index") is None and check.get("possible_omission"):
            # The check holds the draft's implied "no X"; the reader is offered X itself, so
            # adding a possible omission states the finding, never its absence.
            seen = {**check["finding"], "presence": "present"}
            items.append(_item(f"c{k}", seen, check, decisions, omission=True))
    return items


def _item(
    key: str,
    found: dict[str, Any],
    check: dict[str, Any],
    decisions: dict[str, Any],
    *,
    omission: bool = False,
) -> ReviewItem:
    verdict = check.get("verdict") or found.get("verdict")
    invalid = bool(check.get("invalid_output"))
    decided = decisions.get(key, {})
    return ReviewItem(
        key=key,
        finding=found,
        verdict=verdict,
        reasons=tuple(check.get("reasons", ())),
        flagged=verdict in ("unsupported", "contradicted") or omission or invalid,
        omission=omission,
        heatmap_code=(check.get("numbers") or {}).get("verifier_code"),
        decision=decided.get("decision"),
        replacement=decided.get("sentence"),
        state=claim_state(verdict),
        invalid_output=invalid,
    )


def kept_findings(items: list[ReviewItem], sheet: SheetContent | None) -> list[Finding]:
    """The findings the report states now: accepted or undecided, edits, added omissions."""
    decisions = sheet.decisions if sheet is not None else {}
    kept: list[Finding] = []
    for item in items:
        if item.decision == "rejected" or (item.omission and item.decision != "accepted"):
            continue
        if item.decision == "edited":
            kept += [Finding.from_dict(f) for f in decisions[item.key].get("findings", [])]
        else:
            kept.append(Finding.from_dict(item.finding))
    return kept


def reviewed_findings(draft: DraftContent | None, sheet: SheetContent | None) -> list[Finding]:
    """The findings the report states as reviewed, as the text is written from them.

    The kept findings (:func:`kept_findings`), without probabilities where they are not
    calibrated for the study's domain and without evidence spans (those point into the
    draft's text or the reader's edit, not into the report).
    """
    if draft is None:
        return []
    kept = kept_findings(review_items(draft, sheet), sheet)
    if not draft.calibrated:
        kept = [f.with_(probability=None) for f in kept]
    return [f.with_(evidence=None) for f in kept]


def current_text(draft: DraftContent | None, sheet: SheetContent | None) -> str:
    """The report text as it would be signed now.

    Text edited by hand stands. Before any decision the draft's own text stands (the checked
    text: certainty phrases where calibrated, the model's words otherwise); once the reader
    decides, the text is written from the kept findings, with certainty phrases only from
    calibrated probabilities and the draft's unaddressed sections as "Not commented.". A
    failed or abstained draft gives an empty text until the reader keeps a finding (then
    every section without one reads "Not commented."): never a normal report.
    """
    from radloop.safety import write_with_certainty

    if sheet is not None and sheet.text_edited and sheet.text is not None:
        return sheet.text
    if draft is None:
        return ""
    empty = draft.failure is not None or draft.abstained is not None
    if not empty and not (sheet is not None and sheet.decisions):
        return draft.text
    kept = reviewed_findings(draft, sheet)
    if empty and not kept:
        return ""
    unaddressed = MAIN_SECTIONS if empty else tuple(draft.unaddressed or ())
    return write_with_certainty(kept, unaddressed=unaddressed)


def _open_sheet(session: Session, study_id: str) -> tuple[StudyRow, Draft | None, Worksheet]:
    row = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    if row.status in ("signed", "amended"):
        raise NotSignableError(
            "a study that is not yet signed",
            f"status {row.status}",
            source=study_id,
            fix="Add an addendum instead.",
        )
    if row.status not in ("ready", "failed"):
        raise NotSignableError(
            "a drafted study", f"status {row.status}", source=study_id, fix="Wait for the draft."
        )
    sheet = session.get(Worksheet, study_id)
    if sheet is None:
        sheet = Worksheet(study_id=study_id, decisions={}, text=None, text_edited=False)
        session.add(sheet)
    return row, session.get(Draft, study_id), sheet


def decide(
    session: Session,
    study_id: str,
    key: str,
    decision: str,
    username: str,
    sentence: str | None = None,
) -> dict[str, Any]:
    """Record a decision on one item; an edit is a sentence the parser must read."""
    from radloop.report import parse

    if decision not in DECISIONS:
        raise InputError(
            f"a decision among {', '.join(DECISIONS)}", repr(decision)[:40], source="decision"
        )
    _, draft, sheet = _open_sheet(session, study_id)
    keys = {item.key for item in review_items(draft, sheet)}
    if key not in keys:
        raise InputError(f"a finding key among {sorted(keys)}", repr(key)[:40], source="key")
    entry: dict[str, Any] = {"decision": decision}
    if decision == "edited":
        findings = parse(sentence or "")
        if not findings:
            raise InputError(
                "a sentence stating a finding (e.g. 'Small left pleural effusion.')",
                repr((sentence or "")[:80]),
                source="sentence",
            )
        entry |= {"sentence": sentence, "findings": [f.to_dict() for f in findings]}
    sheet.decisions = {**sheet.decisions, key: entry}
    sheet.updated_at, sheet.updated_by = utcnow(), username
    session.commit()
    return entry


def set_text(session: Session, study_id: str, text: str | None, username: str) -> None:
    """Replace the report text by hand (None: back to the text written from the findings)."""
    _, _, sheet = _open_sheet(session, study_id)
    if text is not None and len(text) > 20_000:
        raise InputError("a report of at most 20,000 characters", f"{len(text)}", source="text")
    sheet.text, sheet.text_edited = text, text is not None
    sheet.updated_at, sheet.updated_by = utcnow(), username
    session.commit()


def _flag_records(items: list[ReviewItem]) -> list[dict[str, str]]:
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


def sign(session: Session, study_id: str, username: str, full_name: str) -> SignedReport:
    """Sign the study's report as it stands; the caller has checked the radiologist role.

    The signed findings are the reviewed ones (:func:`reviewed_findings`), exactly as the
    reader left them; a text edited by hand is read back by the parser instead.
    """
    from radloop.report import parse

    row, draft, sheet = _open_sheet(session, study_id)
    items = review_items(draft, sheet)
    undecided = [i.key for i in items if i.flagged and i.decision is None]
    if undecided:
        raise NotSignableError(
            "a decision on every flagged claim",
            f"no decision on {', '.join(undecided)}",
            source=study_id,
            fix="Accept, reject or edit each flagged finding.",
        )
    text = current_text(draft, sheet).strip()
    if not text:
        raise NotSignableError("a report text", "an empty report", source=study_id)
    by_hand = sheet.text_edited and sheet.text is not None
    findings = parse(text) if by_hand else reviewed_findings(draft, sheet)
    signed = SignedReport(
        study_id=study_id,
        kind="final",
        text=text,
        findings=[f.to_dict() for f in findings],
        flags=_flag_records(items),
        signed_by=username,
        signed_by_name=full_name,
        signed_at=utcnow(),
    )
    session.add(signed)
    row.status, row.pending = "signed", False
    session.commit()
    return signed


def add_addendum(
    session: Session, study_id: str, text: str, username: str, full_name: str
) -> SignedReport:
    """Append a signed addendum to a signed report (the report itself never changes)."""
    from radloop.report import parse

    row = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    if row.status not in ("signed", "amended"):
        raise NotSignableError(
            "a signed study",
            f"status {row.status}",
            source=study_id,
            fix="Sign the report first; addenda follow a signature.",
        )
    text = text.strip()
    if not text or len(text) > 20_000:
        raise InputError(
            "an addendum of 1 to 20,000 characters", f"{len(text)} characters", source="text"
        )
    addendum = SignedReport(
        study_id=study_id,
        kind="addendum",
        text=text,
        findings=[f.to_dict() for f in parse(text)],
        flags=[],
        signed_by=username,
        signed_by_name=full_name,
        signed_at=utcnow(),
    )
    session.add(addendum)
    row.status, row.pending = "amended", False
    session.commit()
    return addendum


def signed_reports(session: Session, study_id: str) -> list[SignedReport]:
    """The study's signed report and addenda, oldest first."""
    return list(
        session.execute(
            select(SignedReport).where(SignedReport.study_id == study_id).order_by(SignedReport.id)
        ).scalars()
    )
