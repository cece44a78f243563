"""Each source's reading of a claim, one line each, for the reader.

    Verifier: 0.82
    Samples: 4/5 agree
    Ask-back: P(yes) 0.91 · P(left) 0.88
    Token probability: 0.64
    Second opinion: 0.77

A source that gave nothing for the claim has no line: a missing reading is missing, never a
default value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radloop.report import Finding
    from radloop.safety.verify import ClaimNumbers

__all__ = ["claim_readings"]


def claim_readings(numbers: ClaimNumbers, claim: Finding) -> list[str]:
    """One line per source that read ``claim`` (see the module docstring)."""
    lines = []
    if numbers.p_claim is not None:
        lines.append(f"Verifier: {numbers.p_claim:.2f}")
    if numbers.sample_agreement is not None and numbers.n_samples:
        agree = round(numbers.sample_agreement * numbers.n_samples)
        lines.append(f"Samples: {agree}/{numbers.n_samples} agree")
    asked = []
    if numbers.p_ask_yes is not None:
        asked.append(f"P(yes) {numbers.p_ask_yes:.2f}")
    if numbers.p_ask_side is not None and claim.side is not None:
        side = "both" if claim.side.value == "bilateral" else claim.side.value
        asked.append(f"P({side}) {numbers.p_ask_side:.2f}")
    if asked:
        lines.append("Ask-back: " + " · ".join(asked))
    if numbers.token_probability is not None:
        lines.append(f"Token probability: {numbers.token_probability:.2f}")
    if numbers.p_second_opinion is not None:
        lines.append(f"Second opinion: {numbers.p_second_opinion:.2f}")
    return lines
