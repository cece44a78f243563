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
before signing. Rejecting a critical finding the safety check verified takes a reason, kept
with the decision. What is signed is the text and the reviewed findings it was written from; only
a text the reader typed by hand, the one statement of what they meant, is read back by the
parser. A signed report is never changed: later changes are addenda.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radloop.errors import InputError
from radloop.report import Finding
from radloop.review.db import Draft, SignedReport, StudyRow, Worksheet, utcnow
from radloop.vocabulary import Category

__all__ = [
    "DECISIONS",
    "NotSignableError",
    "ReviewItem",
    "StaleWorksheetError",
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
    reason_required: bool = False
    """A critical finding the safety check verified: rejecting it takes a reason."""
    decision_reason: str | None = None
    readings: tuple[str, ...] = ()
    """Each evidence source's reading of the claim, one line each."""


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
    from radloop.safety.triage import critical_reason

    verdict = check.get("verdict") or found.get("verdict")
    invalid = bool(check.get("invalid_output"))
    decided = decisions.get(key, {})
    critical = (
        verdict == "supported"
        and not omission
        and critical_reason(Finding.from_dict(found)) is not None
    )
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
        reason_required=critical,
        decision_reason=decided.get("reason"),
        readings=tuple(check.get("readings", ())),
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


class StaleWorksheetError(NotSignableError):
    """A write or sign-off based on a version of the worksheet someone has since changed."""

    def __init__(self, study_id: str, seen: int | None, sheet: Worksheet) -> None:
        self.version = sheet.version
        self.changed_by = sheet.updated_by
        self.change = sheet.last_change
        self.changed_at = sheet.updated_at.isoformat() if sheet.updated_at else None
        what = sheet.last_change or "a change"
        when = f" at {self.changed_at[:19].replace('T', ' ')} UTC" if self.changed_at else ""
        super().__init__(
            "the worksheet as you saw it" + ("" if seen is None else f" (version {seen})"),
            f"version {sheet.version}: {what} by {sheet.updated_by or 'someone'}{when}",
            source=study_id,
            fix="Reload the study to see the change, then decide again.",
        )
        who = (
            f"{sheet.updated_by or 'Someone'} changed this study since you opened it ({what}{when})"
        )
        self.args = (f"{who}. Reload the study to see the change, then decide again.",)

    def details(self) -> dict[str, Any]:
        """What changed and by whom, for the 409 answer."""
        return {
            "version": self.version,
            "changed_by": self.changed_by,
            "change": self.change,
            "changed_at": self.changed_at,
        }


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _load_sheet(session: Session, study_id: str) -> Worksheet:
    return session.execute(
        select(Worksheet)
        .where(Worksheet.study_id == study_id)
        .execution_options(populate_existing=True)
    ).scalar_one()


def _open_sheet(session: Session, study_id: str) -> tuple[StudyRow, Draft | None, Worksheet]:
    row = session.get(StudyRow, study_id)
    if row is None:
        raise KeyError(study_id)
    _check_open(row, study_id)
    # Insert-or-get: readers opening a study for the first time at once never collide.
    session.execute(
        _insert(session)(Worksheet.__table__)
        .values(
            study_id=study_id,
            decisions={},
            text=None,
            text_edited=False,
            version=0,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["study_id"])
    )
    session.refresh(row)
    _check_open(row, study_id)
    return row, session.get(Draft, study_id), _load_sheet(session, study_id)


def _check_open(row: StudyRow, study_id: str) -> None:
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


def _bump(
    session: Session, study_id: str, seen: int, username: str, change: str, **values: Any
) -> bool:
    """Write ``values`` and the next version if the worksheet is still at version ``seen``."""
    result = session.execute(
        update(Worksheet)
        .where(Worksheet.study_id == study_id, Worksheet.version == seen)
        .execution_options(synchronize_session=False)
        .values(
            version=seen + 1,
            updated_at=utcnow(),
            updated_by=username,
            last_change=change[:64],
            **values,
        )
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _stale(session: Session, study_id: str, seen: int | None) -> StaleWorksheetError:
    error = StaleWorksheetError(study_id, seen, _load_sheet(session, study_id))
    session.rollback()
    return error


def _rolled_back(session: Session, error: Exception) -> Exception:
    session.rollback()
    return error


def decide(
    session: Session,
    study_id: str,
    key: str,
    decision: str,
    username: str,
    sentence: str | None = None,
    *,
    version: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Record a decision on one item; an edit is a sentence the parser must read.

    ``reason`` is kept with the decision; rejecting a critical finding the safety check
    verified (:attr:`ReviewItem.reason_required`) needs one. ``version`` is the worksheet
    version the reader saw: a decision on another finding made since is kept (decisions merge
    per finding), one on the same finding made since is a :class:`StaleWorksheetError`.
    """
    from radloop.report import parse

    if decision not in DECISIONS:
        raise InputError(
            f"a decision among {', '.join(DECISIONS)}", repr(decision)[:40], source="decision"
        )
    try:
        _, draft, sheet = _open_sheet(session, study_id)
    except NotSignableError as error:
        raise _rolled_back(session, error) from None
    items = {item.key: item for item in review_items(draft, sheet)}
    if key not in items:
        session.rollback()
        raise InputError(f"a finding key among {sorted(items)}", repr(key)[:40], source="key")
    reason = (reason or "").strip() or None
    if decision == "rejected" and items[key].reason_required and reason is None:
        session.rollback()
        raise InputError(
            "a reason for rejecting a critical finding the safety check verified",
            "no reason",
            source=key,
            fix="Say why in 'reason' (e.g. 'skin fold, not a pneumothorax').",
        )
    entry: dict[str, Any] = {"decision": decision}
    if reason is not None:
        entry["reason"] = reason
    if decision == "edited":
        findings = parse(sentence or "")
        if not findings:
            session.rollback()
            raise InputError(
                "a sentence stating a finding (e.g. 'Small left pleural effusion.')",
                repr((sentence or "")[:80]),
                source="sentence",
            )
        entry |= {"sentence": sentence, "findings": [f.to_dict() for f in findings]}
    for _ in range(20):
        prior = sheet.decisions.get(key)
        if version is not None and prior is not None and int(prior.get("version", 0)) > version:
            raise _stale(session, study_id, version)
        stored = entry | {"by": username, "version": sheet.version + 1}
        merged = {**sheet.decisions, key: stored}
        if _bump(
            session, study_id, sheet.version, username, f"decision on {key}", decisions=merged
        ):
            session.commit()
            return entry | {"version": sheet.version + 1}
        sheet = _load_sheet(session, study_id)
    raise _stale(session, study_id, version)


def set_text(
    session: Session,
    study_id: str,
    text: str | None,
    username: str,
    *,
    version: int | None = None,
) -> int:
    """Replace the report text by hand (None: back to the text written from the findings).

    ``version`` is the worksheet version the reader saw; a change since is a
    :class:`StaleWorksheetError`. Returns the new version.
    """
    if text is not None and len(text) > 20_000:
        raise InputError("a report of at most 20,000 characters", f"{len(text)}", source="text")
    try:
        _, _, sheet = _open_sheet(session, study_id)
    except NotSignableError as error:
        raise _rolled_back(session, error) from None
    seen = sheet.version if version is None else version
    change = "text edited" if text is not None else "text reset"
    if not _bump(
        session, study_id, seen, username, change, text=text, text_edited=text is not None
    ):
        raise _stale(session, study_id, version)
    session.commit()
    return seen + 1


def sign(
    session: Session,
    study_id: str,
    username: str,
    full_name: str,
    *,
    version: int | None = None,
) -> SignedReport:
    """Sign the study's report as it stands; the caller has checked the radiologist role.

    The signed findings are the reviewed ones (:func:`reviewed_findings`), exactly as the
    reader left them; a text edited by hand is read back by the parser instead. ``version``
    is the worksheet version the reader saw: a change since is a
    :class:`StaleWorksheetError`, so nobody signs text they have not seen. Of concurrent
    signers one wins; the others get :class:`NotSignableError` (one final report per study).
    """
    from radloop.report import parse

    try:
        row, draft, sheet = _open_sheet(session, study_id)
    except NotSignableError as error:
        raise _rolled_back(session, error) from None
    if version is not None and version != sheet.version:
        raise _stale(session, study_id, version)
    items = review_items(draft, sheet)
    from radloop.review.readiness import SignBlockedError, blockers_for, flag_records, signed_text

    if blockers := blockers_for(session, row, items):
        raise _rolled_back(session, SignBlockedError(study_id, blockers))
    text = current_text(draft, sheet).strip()
    if not text:
        raise _rolled_back(
            session, NotSignableError("a report text", "an empty report", source=study_id)
        )
    by_hand = sheet.text_edited and sheet.text is not None
    findings = parse(text) if by_hand else reviewed_findings(draft, sheet)
    text = signed_text(session, row, text)  # read as findings before the record is added
    # What is signed is this version: a write since (or a concurrent signer) makes this fail.
    if not _bump(session, study_id, sheet.version, username, "signed"):
        raise _stale(session, study_id, version)
    moved = session.execute(
        update(StudyRow)
        .where(StudyRow.id == study_id, StudyRow.status.in_(("ready", "failed")))
        .execution_options(synchronize_session=False)
        .values(status="signed", pending=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        raise _rolled_back(session, _already_signed(study_id))
    signed = SignedReport(
        study_id=study_id,
        kind="final",
        text=text,
        findings=[f.to_dict() for f in findings],
        flags=flag_records(items),
        signed_by=username,
        signed_by_name=full_name,
        signed_at=utcnow(),
    )
    session.add(signed)
    try:
        session.commit()
    except IntegrityError:
        raise _rolled_back(session, _already_signed(study_id)) from None
    row.status, row.pending = "signed", False
    return signed


def _already_signed(study_id: str) -> NotSignableError:
    return NotSignableError(
        "a study that is not yet signed",
        "a report signed by someone else a moment ago",
        source=study_id,
        fix="Reload the study; add an addendum instead.",
    )


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
