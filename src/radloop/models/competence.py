"""Competence: where a model or verifier was shown to work, and whether a study lies there.

Every drafting model and every verifier radloop ships or loads declares its validated domains:
which finding types, on which images (the synthetic lab's radiographs, or real frontal films of
named collections), with the validation figures behind them. A per-study domain check then
decides whether the model may speak about that study at all. Outside its domain, or for a
finding type it was not validated for, a verifier is silent and a claim is *not checked*; the
built-in model abstains. A model or verifier that declares nothing is validated nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "REAL_FILMS",
    "SYNTHETIC_LAB",
    "Competence",
    "DomainDecision",
    "ValidatedDomain",
    "competence_of",
    "covers",
]

SYNTHETIC_LAB = "synthetic-lab"
"""The domain of the lab's synthetic radiographs (``radloop.lab.synth``)."""
REAL_FILMS = "real-frontal"
"""The domain of real frontal chest films (``collections`` name where they came from)."""


def covers(codes: frozenset[str] | tuple[str, ...], code: str) -> bool:
    """Whether validation for ``codes`` covers a claim of ``code``: the code itself, or a
    broader code it is checked against ("consolidation" against "lung_opacity")."""
    from radloop.vocabulary import ancestors

    return code in codes or any(a in codes for a in ancestors(code))


@dataclass(frozen=True)
class ValidatedDomain:
    """One domain a model was validated on: its images, finding types and figures."""

    name: str
    images: str
    findings: tuple[str, ...]
    figures: Mapping[str, float] = field(default_factory=dict)
    collections: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError('Argument "name" must be a non-empty domain name.')

    @property
    def real(self) -> bool:
        """A domain of real films (not the synthetic lab)."""
        return self.name != SYNTHETIC_LAB

    def validates(self, code: str, collection: str | None = None) -> bool:
        """Validated here for ``code`` (or a broader code), on films of ``collection`` when
        named (a domain that names no collection covers every one)."""
        named = collection is None or not self.collections or collection in self.collections
        return named and covers(self.findings, code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "images": self.images,
            "findings": list(self.findings),
            "figures": {k: round(float(v), 4) for k, v in self.figures.items()},
            "collections": list(self.collections),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidatedDomain:
        from radloop.errors import InputError

        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise InputError(
                'a validated domain {"name", "images", "findings", "figures"}', repr(data)[:200]
            )
        findings = data.get("findings", [])
        if not isinstance(findings, list) or not all(isinstance(c, str) for c in findings):
            raise InputError("a list of finding codes under 'findings'", repr(findings)[:200])
        return cls(
            name=data["name"],
            images=str(data.get("images", "")),
            findings=tuple(findings),
            figures={str(k): float(v) for k, v in dict(data.get("figures", {})).items()},
            collections=tuple(str(c) for c in data.get("collections", ())),
        )


@dataclass(frozen=True)
class Competence:
    """The validated domains of one model or verifier (none: validated nowhere)."""

    owner: str
    domains: tuple[ValidatedDomain, ...] = ()
    note: str = ""

    @property
    def declared(self) -> bool:
        return bool(self.domains)

    def domain(self, name: str | None) -> ValidatedDomain | None:
        return next((d for d in self.domains if d.name == name), None)

    def findings_in(self, name: str | None) -> frozenset[str]:
        """The finding types validated in domain ``name`` (empty outside every domain)."""
        domain = self.domain(name)
        return frozenset(domain.findings) if domain is not None else frozenset()

    @property
    def real(self) -> bool:
        """Validated on real films for at least one finding type."""
        return any(d.real and d.findings for d in self.domains)

    def summary(self) -> str:
        """One line: where it may speak."""
        if not self.domains:
            return "no validated domain declared: it is never used as evidence"
        parts = [f"{d.name} ({len(d.findings)} finding types)" for d in self.domains]
        only = "" if self.real else " only"
        return "validated on " + ", ".join(parts) + only

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "domains": [d.to_dict() for d in self.domains],
            "summary": self.summary(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, owner: str) -> Competence:
        domains = data.get("domains", []) if isinstance(data, Mapping) else None
        if not isinstance(domains, list):
            from radloop.errors import InputError

            raise InputError('a competence object {"domains": [...]}', repr(data)[:200])
        return cls(
            owner=str(data.get("owner", owner)),
            domains=tuple(ValidatedDomain.from_dict(d) for d in domains),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True)
class DomainDecision:
    """Whether one study lies in a validated domain of a model: which one, and why (not)."""

    owner: str
    domain: str | None
    reason: str
    score: float | None = None
    threshold: float | None = None

    @property
    def in_domain(self) -> bool:
        return self.domain is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "owner": self.owner,
            "domain": self.domain,
            "in_domain": self.in_domain,
            "reason": self.reason,
        }
        if self.score is not None:
            out["score"] = round(self.score, 3)
        if self.threshold is not None:
            out["threshold"] = round(self.threshold, 3)
        return out


def competence_of(thing: object, owner: str | None = None) -> Competence:
    """The declared competence of a model or verifier; an empty one where it declares none."""
    declared = getattr(thing, "competence", None)
    if isinstance(declared, Competence):
        return declared
    name = owner or str(
        getattr(thing, "verifier_id", None) or getattr(thing, "model_id", None) or "unknown"
    )
    return Competence(name)
