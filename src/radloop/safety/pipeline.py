"""``check(draft, study, verifier)``: verify → calibrate → write with certainty → triage.

Nothing a draft claims is dropped: every finding stays in the checked report with its
probability and verdict, and each unsupported or contradicted claim becomes a reviewer flag
with its reasons. Findings the verifier sees but the draft omits are flagged too. Each stage's
wall time is recorded, so the safety layer's overhead can be set against model inference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from radloop.assist import DraftReport, read_findings
from radloop.models.competence import DomainDecision, competence_of, covers
from radloop.report import Finding, Presence, Verdict
from radloop.safety.askback import AskBack, with_ask_back
from radloop.safety.calibration import Calibrator, ClaimSignals
from radloop.safety.certainty import write_with_certainty
from radloop.safety.scope import ScopeDecision
from radloop.safety.second_opinion import with_second_opinion
from radloop.safety.triage import TriageDecision, critical_reason, triage
from radloop.safety.verifiers import verifier_domain
from radloop.safety.verify import ClaimCheck, Thresholds, Verifier, VerifierOutput, verify_claims
from radloop.study import Study

__all__ = [
    "CheckedReport",
    "ReviewerFlag",
    "check",
    "gate_output",
    "sampled_findings",
    "silence_reasons",
]


@dataclass(frozen=True)
class ReviewerFlag:
    """A claim the reviewer must look at, with the reasons."""

    finding: Finding
    verdict: str
    reasons: tuple[str, ...]
    possible_omission: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding.to_dict(),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "possible_omission": self.possible_omission,
        }


@dataclass(frozen=True)
class CheckedReport:
    """A draft after the safety layer: findings with probability and verdict, the rewritten
    text, reviewer flags, triage and per-stage timings."""

    draft: DraftReport
    findings: tuple[Finding, ...]
    checks: tuple[ClaimCheck, ...]
    text: str
    triage: TriageDecision
    verifier: str
    timings_s: dict[str, float] = field(default_factory=dict)
    scope: ScopeDecision | None = None
    domain: DomainDecision | None = None
    calibrated: bool = False

    @property
    def not_checked(self) -> int:
        """Claims of the draft that no evidence valid for this film spoke about."""
        return sum(1 for c in self.checks if c.index is not None and not c.checked)

    @property
    def all_unchecked(self) -> bool:
        """The draft makes claims and none of them could be checked."""
        claims = [c for c in self.checks if c.index is not None]
        return bool(claims) and all(not c.checked for c in claims)

    @property
    def banner(self) -> str | None:
        """What the top of the draft must say, if anything: a failed or abstained draft, or
        one whose claims are all unchecked."""
        if self.draft.failure is not None:
            return f"Draft failed: {self.draft.failure.message}. No finding was read from it."
        if self.draft.abstained is not None:
            return f"The model abstained: {self.draft.abstained}."
        if self.all_unchecked:
            why = (
                self.domain.reason
                if self.domain is not None and not self.domain.in_domain
                else ("no verifier is validated for these finding types")
            )
            return f"Not checked: no claim of this draft could be checked ({why})."
        return None

    @property
    def flags(self) -> tuple[ReviewerFlag, ...]:
        return tuple(
            ReviewerFlag(c.finding, c.verdict.value, c.reasons, c.possible_omission)
            for c in self.checks
            if c.flagged
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.draft.label,
            "study_instance_uid": self.draft.report.study_instance_uid,
            "model": self.draft.model_id,
            "verifier": self.verifier,
            "text": self.text,
            "findings": [f.to_dict() for f in self.findings],
            "checks": [c.to_dict() for c in self.checks],
            "flags": [f.to_dict() for f in self.flags],
            "triage": self.triage.to_dict(),
            "scope": self.scope.to_dict() if self.scope is not None else None,
            "domain": self.domain.to_dict() if self.domain is not None else None,
            "calibrated": self.calibrated,
            "not_checked": self.not_checked,
            "banner": self.banner,
            "failure": self.draft.failure.to_dict() if self.draft.failure else None,
            "abstained": self.draft.abstained,
            "timings_s": {k: round(v, 6) for k, v in self.timings_s.items()},
            "cost": self.draft.cost_dict(),
        }


def sampled_findings(draft: DraftReport) -> list[tuple[Finding, ...]] | None:
    """The findings of each sampled draft (``draft.samples``, else the generations when the
    backend was asked for more than one), or None when it was not sampled."""
    generations = draft.samples or (draft.generations if len(draft.generations) > 1 else ())
    if not generations:
        return None
    structured = draft.output_mode.value == "json"
    # A degenerate sample states nothing (read_findings fails closed).
    return [read_findings(g.text, expected_json=structured)[0] for g in generations]


def claim_signals(check: ClaimCheck, mean_token_logprob: float | None = None) -> ClaimSignals:
    """The calibrator's inputs for one checked claim.

    ``contradicted`` holds when the verifier sees a positive claim's finding but contradicts a
    detail of it (side, zone, size, tube tip, change, an internal contradiction).
    """
    return ClaimSignals(
        positive=check.finding.is_positive,
        verifier_probability=check.numbers.p_claim,
        sample_agreement=check.numbers.sample_agreement,
        mean_token_logprob=mean_token_logprob,
        contradicted=check.finding.is_positive and check.verdict is Verdict.CONTRADICTED,
        code=check.finding.code,
        p_ask_yes=check.numbers.p_ask_yes,
        p_ask_side=check.numbers.p_ask_side,
        token_probability=check.numbers.token_probability,
        p_second_opinion=check.numbers.p_second_opinion,
    )


def _probability(
    check: ClaimCheck, calibrator: Calibrator | None, logprob: float | None
) -> float | None:
    signals = claim_signals(check, logprob)
    if calibrator is None:
        # Uncalibrated: the verifier's probability as it is, or nothing to state.
        return check.numbers.p_claim
    return calibrator.presence_probability(signals) if signals.has_signal else None


def silence_reasons(
    findings: Sequence[Finding], valid: frozenset[str], domain: DomainDecision, verifier: str
) -> dict[str, str]:
    """Why the verifier may not speak about each claimed code it is not validated for here."""
    reasons = {}
    for found in findings:
        if covers(valid, found.code):
            continue
        if not domain.in_domain:
            reasons[found.code] = f"not checked: {domain.reason}"
        else:
            reasons[found.code] = (
                f"not checked: the verifier {verifier!r} is not validated for {found.name} "
                f"on {domain.domain}"
            )
    return reasons


def gate_output(
    verifier: Verifier, study: Study, output: VerifierOutput
) -> tuple[VerifierOutput, DomainDecision, frozenset[str]]:
    """The evidence the verifier may give about ``study``: none outside its validated domain,
    only its validated finding types inside it."""
    domain = verifier_domain(verifier, study, output)
    valid = competence_of(verifier, output.verifier).findings_in(domain.domain)
    return output.restricted_to(valid), domain, valid


def check(
    draft: DraftReport,
    study: Study,
    verifier: Verifier,
    calibrator: Calibrator | None = None,
    *,
    thresholds: Thresholds | None = None,
    scope: ScopeDecision | None = None,
    samples: Sequence[Sequence[Finding]] | None = None,
    prior: Study | None = None,
    second_opinion: Verifier | None = None,
    asked: AskBack | None = None,
) -> CheckedReport:
    """Check a draft of ``study`` against ``verifier``; see the module docstring.

    With ``prior`` (the prior study the draft was compared with) the verifier reads it too
    and every claimed change is checked against its two readings. With ``second_opinion``
    (e.g. the ``onnx`` verifier), its gated probability of each claimed finding is stored as
    ``numbers.p_second_opinion`` (:func:`radloop.safety.second_opinion.with_second_opinion`).

    The verifier speaks only where it was shown to work: outside its validated domain
    (:func:`radloop.safety.verifier_domain`), or about a finding type it was not validated
    for, it changes nothing, supports nothing, raises no omission and sets no triage; such a
    claim is ``not_checked`` with the reason. Certainty words are written only from a
    calibrator fitted on the study's domain; otherwise the model's own text stands and the
    probabilities are marked uncalibrated.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    raw = verifier.verify(study)
    raw_prior = verifier.verify(prior) if prior is not None else None
    timings["verifier_inference"] = time.perf_counter() - start

    start = time.perf_counter()
    output, domain, valid = gate_output(verifier, study, raw)
    prior_output = None
    if prior is not None and raw_prior is not None:
        gated_prior, prior_domain, _ = gate_output(verifier, prior, raw_prior)
        prior_output = gated_prior if prior_domain.in_domain else None
    if samples is None:
        samples = sampled_findings(draft)
    # A calibrator speaks only on studies of the domain its labelled claims came from.
    calibrated = calibrator is not None and domain.in_domain and calibrator.domain == domain.domain
    if calibrated and calibrator is not None:
        # Fitted per-finding omission thresholds apply unless the caller set its own.
        thresholds = (thresholds or Thresholds()).with_omissions(calibrator.omission_thresholds)
    silent = silence_reasons(draft.findings, valid, domain, raw.verifier)
    checks = verify_claims(draft.findings, output, samples, thresholds, prior_output, silent)
    if second_opinion is not None:
        checks = with_second_opinion(checks, second_opinion, study)
    invalid = draft.invalid_indices()
    checks = [
        replace(
            c,
            invalid_output=True,
            reasons=(*c.reasons, "the model's output was invalid: held as uncertain"),
        )
        if c.index in invalid
        else c
        for c in checks
    ]
    # The drafting model's own readings: ask-back answers (their cost joins the draft's).
    checks = with_ask_back(checks, draft, asked)
    if asked is not None:
        draft = replace(draft, cost={**draft.cost, "ask_back": asked.cost})
    timings["verify"] = time.perf_counter() - start

    start = time.perf_counter()
    logprob = draft.generations[0].mean_logprob if draft.generations else None
    findings = list(draft.findings)
    for claim in checks:
        if claim.index is None:
            continue
        p = _probability(claim, calibrator if calibrated else None, logprob)
        findings[claim.index] = findings[claim.index].with_(probability=p, verdict=claim.verdict)
    timings["calibrate"] = time.perf_counter() - start

    start = time.perf_counter()
    if calibrated and not draft.failed and draft.abstained is None:
        text = write_with_certainty(findings, unaddressed=draft.unaddressed)
    else:
        text = draft.text  # the model's own words stand
    timings["write"] = time.perf_counter() - start

    start = time.perf_counter()
    decision = _triage(findings, checks, scope)
    timings["triage"] = time.perf_counter() - start
    return CheckedReport(
        draft, tuple(findings), tuple(checks), text, decision, raw.verifier, timings, scope,
        domain, calibrated,
    )  # fmt: skip


def _triage(
    findings: Sequence[Finding], checks: Sequence[ClaimCheck], scope: ScopeDecision | None
) -> TriageDecision:
    """Urgent from the draft's critical claims and from critical possible omissions of a
    verifier in its domain (the only verifier evidence left after gating)."""
    # A critical finding the verifier sees makes the study urgent whether the draft left it
    # out or denied it.
    omitted = [
        c.finding.with_(presence=Presence.UNCERTAIN, probability=c.numbers.p_claim)
        for c in checks
        if c.possible_omission and critical_reason(c.finding.with_(presence=Presence.UNCERTAIN))
    ]
    unchecked = {findings[c.index].name for c in checks if c.index is not None and not c.checked}
    flagged = sum(c.flagged for c in checks)
    out_of_scope = scope is not None and scope.outcome.value != "accepted"
    decision = triage([*findings, *omitted], flagged_claims=flagged, out_of_scope=out_of_scope)
    reasons = []
    for r in decision.reasons:
        if any(r.startswith(o.name) for o in omitted) and not any(
            r.startswith(f.name) for f in findings if f.is_positive
        ):
            r = f"possible omission: {r}"
        elif any(r.startswith(name) for name in unchecked):
            r = f"{r} — the draft's claim, not checked"
        reasons.append(r)
    return TriageDecision(decision.urgent, tuple(reasons), flagged, out_of_scope)
