"""``radloop pacs status``: the PACS link at a glance, from its tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from radloop.pacs.config import PacsConfig
from radloop.pacs.tables import PacsOutbox, PacsPoll, PacsSeen
from radloop.review.store import Store, as_utc

__all__ = ["link_status"]


def link_status(store: Store, config: PacsConfig, polls: int = 5) -> dict[str, Any]:
    """Studies taken from the PACS and reports for it, counted by state, and the last
    ``polls`` polls (newest first)."""
    with store.sessions() as session:
        seen = dict(
            session.execute(select(PacsSeen.state, func.count()).group_by(PacsSeen.state)).all()
        )
        outbox = dict(
            session.execute(select(PacsOutbox.state, func.count()).group_by(PacsOutbox.state)).all()
        )
        rows = session.execute(
            select(PacsPoll).order_by(PacsPoll.started_at.desc()).limit(polls)
        ).scalars()
        recent = [
            {
                "started_at": as_utc(p.started_at).isoformat(timespec="seconds"),
                "since": p.since.isoformat(),
                "found": p.found,
                "fetched": p.fetched,
                "refused": p.refused,
                "failed": p.failed,
                "error": p.error,
            }
            for p in rows
        ]
    return {
        "settings": dict(config.describe()),
        "seen": {str(k): int(v) for k, v in seen.items()},
        "outbox": {str(k): int(v) for k, v in outbox.items()},
        "polls": recent,
    }
