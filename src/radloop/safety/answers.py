"""Checks for the other two assist tasks: an answer to a question, and a comparison.

The same rule as :func:`radloop.safety.check`: each claim an answer or a comparison rests on is
verified against the evidence valid for the film (a verifier inside its validated domain, for
the finding types it was validated for); everything else is *not checked*, with the reason.
Nothing here rewrites the model's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radloop.assist import Answer, Comparison
from radloop.models.competence import DomainDecision
from radloop.report import Change as Direction
from radloop.report import Finding, Presence, Verdict
from radloop.safety.pipeline import gate_output, silence_reasons
from radloop.safety.verify import ClaimCheck, ClaimNumbers, Verifier, verify_claims
from radloop.study import Study

__all__ = ["CheckedAnswer", "CheckedComparison", "check_answer", "check_comparison", "state"]

UNCHECKED_LABEL = "unchecked: the safety check was not run"


def state(check: ClaimCheck | None) -> str:
    """What the reader sees for one claim: verified, contradicted, unsupported or not checked."""
    if check is None or check.verdict is Verdict.NOT_CHECKED:
        return "not checked"
    if check.verdict is Verdict.SUPPORTED:
        return "verified"
    return check.verdict.value


@dataclass(frozen=True)
class CheckedAnswer:
    """An answer with the check of the finding it rests on (None: it rests on none)."""

    answer: Answer
    check: ClaimCheck | None
    domain: DomainDecision | None
    verifier: str

    @property
    def state(self) -> str:
        return state(self.check)

    def to_dict(self) -> dict[str, Any]:
        return self.answer.to_dict() | {
            "checked": True,
            "state": self.state,
            "verifier": self.verifier,
            "check": self.check.to_dict() if self.check is not None else None,
            "domain": self.domain.to_dict() if self.domain is not None else None,
        }


@dataclass(frozen=True)
class CheckedComparison:
    """A comparison with one check per reported change."""

    comparison: Comparison
    checks: tuple[ClaimCheck, ...]
    domain: DomainDecision | None
    verifier: str

    def to_dict(self) -> dict[str, Any]:
        out = self.comparison.to_dict()
        for change, claim in zip(out["changes"], self.checks, strict=True):
            change["state"] = state(claim)
            change["reasons"] = list(claim.reasons)
        return out | {
            "checked": True,
            "verifier": self.verifier,
            "domain": self.domain.to_dict() if self.domain is not None else None,
        }


def _single(found: Finding, output: Any, silent: dict[str, str], prior: Any = None) -> ClaimCheck:
    return verify_claims([found], output, prior_output=prior, silent=silent)[0]


def check_answer(answer: Answer, study: Study, verifier: Verifier) -> CheckedAnswer:
    """Check the finding an answer rests on against the evidence valid for ``study``."""
    if answer.finding is None:
        return CheckedAnswer(answer, None, None, str(verifier.verifier_id))
    output, domain, valid = gate_output(verifier, study, verifier.verify(study))
    silent = silence_reasons([answer.finding], valid, domain, str(verifier.verifier_id))
    return CheckedAnswer(
        answer, _single(answer.finding, output, silent), domain, str(verifier.verifier_id)
    )


def _change_claim(code: str, direction: Direction, side: Any) -> Finding:
    presence = Presence.ABSENT if direction is Direction.RESOLVED else Presence.PRESENT
    return Finding(code, presence=presence, side=side, change=direction)


def check_comparison(
    comparison: Comparison, current: Study, prior: Study, verifier: Verifier
) -> CheckedComparison:
    """Check each reported change against the verifier's readings of both studies, where
    both lie in its validated domain; otherwise the change is not checked."""
    name = str(verifier.verifier_id)
    output, domain, valid = gate_output(verifier, current, verifier.verify(current))
    prior_output, prior_domain, _ = gate_output(verifier, prior, verifier.verify(prior))
    claims = [_change_claim(c.code, c.direction, c.side) for c in comparison.changes]
    silent = silence_reasons(claims, valid, domain, name)
    if not prior_domain.in_domain:
        silent = {c.code: f"not checked: the prior study: {prior_domain.reason}" for c in claims}
        output = output.restricted_to(frozenset())
    checks = []
    for claim in claims:
        check = _single(claim, output, silent, prior_output if prior_domain.in_domain else None)
        if check.verdict is Verdict.SUPPORTED and check.numbers.p_prior is None:
            # The verifier read the finding now but not its change: say so, not "verified".
            check = ClaimCheck(
                claim,
                Verdict.NOT_CHECKED,
                (f"not checked: the verifier {name!r} gives no reading of the change",),
                ClaimNumbers(),
                check.index,
            )
        checks.append(check)
    return CheckedComparison(comparison, tuple(checks), domain, name)
