"""Small signed cases for the monitor tests, built by hand (no rendering)."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np

from radloop.monitor.cases import FlagOutcome, ImageStats, SignedCase
from radloop.report.types import Finding, Presence, Verdict
from radloop.vocabulary import Side, Zone

START = datetime.datetime(2025, 3, 3, 8, 0, tzinfo=datetime.UTC)


def effusion(side: Side = Side.RIGHT, **kw: Any) -> Finding:
    return Finding("pleural_effusion", side=side, **kw)


def make_case(
    i: int = 0,
    draft: tuple[Finding, ...] = (),
    signed: tuple[Finding, ...] = (),
    *,
    flags: tuple[FlagOutcome, ...] = (),
    draft_text: str = "No acute cardiopulmonary abnormality.",
    signed_text: str | None = None,
    sex: str | None = "F",
    age: int | None = 64,
    site: str | None = "site-A",
    manufacturer: str | None = "Vendor A",
    view: str | None = "PA",
    ood: float | None = 10.0,
    stats: ImageStats | None = None,
    when: datetime.datetime | None = None,
) -> SignedCase:
    received = when or START + datetime.timedelta(hours=i)
    return SignedCase(
        study_id=f"s{i:05d}",
        received_at=received,
        signed_at=received + datetime.timedelta(minutes=30),
        age=age,
        sex=sex,
        site=site,
        manufacturer=manufacturer,
        view=view,
        model="test-model",
        draft_findings=draft,
        signed_findings=signed,
        draft_text=draft_text,
        signed_text=draft_text if signed_text is None else signed_text,
        flags=flags,
        ood_score=ood,
        image_stats=stats or ImageStats(0.45, 0.2, 0.1, 0.8),
    )


def random_cases(
    n: int,
    seed: int,
    *,
    start_index: int = 0,
    stats_shift: float = 0.0,
    rate: float = 0.2,
    miss: float = 0.1,
) -> list[SignedCase]:
    """Cases whose drafts claim an effusion at ``rate`` and whose readers disagree at random."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        i = start_index + k
        claimed = rng.random() < rate
        draft: tuple[Finding, ...] = (effusion(zones=(Zone.RIGHT_LOWER,)),) if claimed else ()
        draft += (Finding("pneumothorax", presence=Presence.ABSENT),)
        signed = draft if rng.random() >= miss else ()
        mean = float(np.clip(rng.normal(0.45 + stats_shift, 0.03), 0, 1))
        out.append(
            make_case(
                i,
                draft,
                signed,
                sex="F" if rng.random() < 0.5 else "M",
                age=int(rng.integers(20, 95)),
                ood=float(rng.normal(10 + 20 * stats_shift, 1.0)),
                stats=ImageStats(mean, 0.2, 0.1, min(1.0, mean + 0.35)),
            )
        )
    return out


def pool_study(key: str, profile: str = "standard", **overrides: Any) -> Any:
    """A pool study made by hand: the truth has a right effusion and a pneumothorax; the draft
    states the effusion on the wrong side (supported), a false nodule (unsupported, flagged),
    "no consolidation" (not checked) and misses the pneumothorax."""
    from radloop.lab.monitor_simulation import PoolStudy

    values: dict[str, Any] = {
        "key": key,
        "profile": profile,
        "age": 70,
        "sex": "M",
        "view": "PA" if profile == "standard" else "AP",
        "manufacturer": f"Vendor {profile}",
        "institution": f"Hospital {profile}",
        "model": "test-model",
        "truth": (effusion(Side.RIGHT), Finding("pneumothorax", side=Side.LEFT)),
        "draft_findings": (
            effusion(Side.LEFT, probability=0.8, verdict=Verdict.SUPPORTED),
            Finding("nodule", probability=0.3, verdict=Verdict.UNSUPPORTED),
            Finding("consolidation", presence=Presence.ABSENT, verdict=Verdict.NOT_CHECKED),
        ),
        "draft_text": "Left pleural effusion. May represent a nodule.",
        "flags": (("nodule", "unsupported"),),
        "image_stats": ImageStats(0.5 if profile == "standard" else 0.3, 0.2, 0.1, 0.9),
        "embedding": (0.0, 1.0),
    }
    values.update(overrides)
    return PoolStudy(**values)


def hand_pools() -> dict[str, Any]:
    """Pools of two profiles built by hand, with OOD scores."""
    from radloop.lab.monitor_simulation import Pool

    standard = tuple(pool_study(f"s{i}") for i in range(3))
    portable = tuple(pool_study(f"p{i}", "portable") for i in range(3))
    community = tuple(pool_study(f"c{i}", "community") for i in range(3))
    return {
        "standard": Pool("standard", standard, (10.0, 11.0, 12.0)),
        "portable": Pool("portable", portable, (30.0, 31.0, 32.0)),
        "community": Pool("community", community, (20.0, 21.0, 22.0)),
    }
