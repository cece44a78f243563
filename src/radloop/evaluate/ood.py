"""The OOD reference the evaluation uses for the reference verifier.

The reference shipped beside the model's weights (``reference-ood.json``, written by
``radloop fit-ood``). A retrained model without one has none: the evaluation then scores no
out-of-distribution flag and says so, rather than fitting one from the synthetic lab here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["reference_ood_scorer"]


def reference_ood_scorer(verifier: Any) -> Any:
    """The OOD scorer shipped with the reference verifier's weights, or None."""
    shipped = getattr(verifier, "ood_scorer", None)
    return shipped() if callable(shipped) else None
