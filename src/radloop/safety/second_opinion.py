"""A second opinion: another classifier's probability of each claimed finding, as evidence.

The second opinion (typically the ``onnx`` verifier with a classifier trained on real films)
reads the study beside the main verifier. It passes the same fail-safe gate: outside its
validated domain, or for a finding type it was not validated for, it gives no reading and the
claim's ``p_second_opinion`` stays missing. It changes no verdict by itself; its probability is
one of the sources the combiner (``radloop.safety.combine``) weighs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from radloop.models.competence import DomainDecision, competence_of
from radloop.safety.verifiers import verifier_domain
from radloop.safety.verify import ClaimCheck, Verifier, VerifierOutput
from radloop.study import Study
from radloop.vocabulary import finding

__all__ = ["second_opinion_output", "with_second_opinion"]


def second_opinion_output(
    verifier: Verifier, study: Study
) -> tuple[VerifierOutput, DomainDecision]:
    """The second opinion's reading of ``study`` restricted to what it may say there: nothing
    outside its validated domain, only its validated finding types inside it."""
    raw = verifier.verify(study)
    domain = verifier_domain(verifier, study, raw)
    valid = competence_of(verifier, raw.verifier).findings_in(domain.domain)
    return raw.restricted_to(valid), domain


def with_second_opinion(
    checks: Sequence[ClaimCheck], verifier: Verifier, study: Study
) -> list[ClaimCheck]:
    """``checks`` with ``numbers.p_second_opinion`` filled where the second opinion (gated to
    its domain) assesses the claim's finding (or a broader code), and its reading as one line
    among the claim's reasons for the reader; missing elsewhere."""
    output, _ = second_opinion_output(verifier, study)
    out = []
    for check in checks:
        code = output.code_for(check.finding.code)
        if code is None:
            out.append(check)
            continue
        p = output.presence[code]
        numbers = replace(check.numbers, p_second_opinion=p)
        line = f"second opinion ({output.verifier}): {finding(code).name} {p:.2f}"
        out.append(replace(check, numbers=numbers, reasons=(*check.reasons, line)))
    return out
