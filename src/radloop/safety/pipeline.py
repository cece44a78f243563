"""``check(draft, study, verifier)``: verify → calibrate → write with certainty → triage.

Nothing a draft claims is dropped: every finding stays in the checked report with its
probability and verdict, and each unsupported or contradicted claim becomes a reviewer flag
with its reasons. Findings the verifier sees but the draft omits are flagged too. Each stage's
wall time is recorded, so the safety layer's overhead can be set against model inference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from radloop.assist import DraftReport, read_findings
from radloop.report import Finding, Presence, Verdict
from radloop.safety.calibration import Calibrator, ClaimSignals
from radloop.safety.certainty import write_with_certainty
from radloop.safety.scope import ScopeDecision
from radloop.safety.triage import TriageDecision, critical_reason, triage
from radloop.safety.verify import ClaimCheck, Thresholds, Verifier, verify_claims
from radloop.study import Study

__all__ = ["CheckedReport", "ReviewerFlag", "check", "sampled_findings"]


@dataclass(frozen=True)
class ReviewerFlag:
    """A claim the reviewer must look at, with the reasons."""

    finding: Finding
    verdict: str
    reasons: tuple[str, ...]
    possible_omission: bool

    def to_json(self) -> dict[str, Any]:
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

    @property
    def flags(self) -> tuple[ReviewerFlag, ...]:
        return tuple(
            ReviewerFlag(c.finding, c.verdict.value, c.reasons, c.possible_omission)
            for c in self.checks
            if c.flagged
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.draft.label,
            "study_instance_uid": self.draft.report.study_instance_uid,
            "model": self.draft.model_id,
            "verifier": self.verifier,
            "text": self.text,
            "findings": [f.to_dict() for f in self.findings],
            "checks": [c.to_json() for c in self.checks],
            "flags": [f.to_json() for f in self.flags],
            "triage": self.triage.to_json(),
            "scope": self.scope.to_json() if self.scope is not None else None,
            "timings_s": {k: round(v, 6) for k, v in self.timings_s.items()},
        }


def sampled_findings(draft: DraftReport) -> list[tuple[Finding, ...]] | None:
    """The findings of each sampled generation when the backend sampled more than one."""
    if len(draft.generations) < 2:
        return None
    structured = draft.output_mode.value == "json"
    return [read_findings(g.text, expected_json=structured)[0] for g in draft.generations]


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
    )


def _probability(
    check: ClaimCheck, calibrator: Calibrator | None, logprob: float | None
) -> float | None:
    signals = claim_signals(check, logprob)
    if calibrator is None:
        # Uncalibrated: the verifier's probability as it is, or nothing to state.
        return check.numbers.p_claim
    return calibrator.presence_probability(signals) if signals.has_signal else None


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
) -> CheckedReport:
    """Check a draft of ``study`` against ``verifier``; see the module docstring.

    With ``prior`` (the prior study the draft was compared with) the verifier reads it too
    and every claimed change is checked against its two readings.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    output = verifier.verify(study)
    prior_output = verifier.verify(prior) if prior is not None else None
    timings["verifier_inference"] = time.perf_counter() - start

    start = time.perf_counter()
    if samples is None:
        samples = sampled_findings(draft)
    if calibrator is not None:
        # Fitted per-finding omission thresholds apply unless the caller set its own.
        thresholds = (thresholds or Thresholds()).with_omissions(calibrator.omission_thresholds)
    checks = verify_claims(draft.findings, output, samples, thresholds, prior_output)
    timings["verify"] = time.perf_counter() - start

    start = time.perf_counter()
    logprob = draft.generations[0].mean_logprob if draft.generations else None
    findings = list(draft.findings)
    for claim in checks:
        if claim.index is None:
            continue
        p = _probability(claim, calibrator, logprob)
        findings[claim.index] = findings[claim.index].with_(probability=p, verdict=claim.verdict)
    timings["calibrate"] = time.perf_counter() - start

    start = time.perf_counter()
    text = write_with_certainty(findings)
    timings["write"] = time.perf_counter() - start

    start = time.perf_counter()
    # A critical finding the verifier sees makes the study urgent whether the draft left it
    # out or denied it.
    omitted = [
        c.finding.with_(presence=Presence.UNCERTAIN, probability=c.numbers.p_claim)
        for c in checks
        if c.possible_omission and critical_reason(c.finding.with_(presence=Presence.UNCERTAIN))
    ]
    flagged = sum(c.flagged for c in checks)
    out_of_scope = scope is not None and scope.outcome.value != "accepted"
    decision = triage([*findings, *omitted], flagged_claims=flagged, out_of_scope=out_of_scope)
    if omitted:
        decision = TriageDecision(
            decision.urgent,
            tuple(
                f"possible omission: {r}"
                if any(r.startswith(o.name) for o in omitted)
                and not any(r.startswith(f.name) for f in findings if f.is_positive)
                else r
                for r in decision.reasons
            ),
            decision.flagged_claims,
            decision.out_of_scope,
        )
    timings["triage"] = time.perf_counter() - start
    return CheckedReport(
        draft, tuple(findings), tuple(checks), text, decision, output.verifier, timings, scope
    )
