"""The review workstation: the radiologist reviews, edits and signs every draft.

A FastAPI app with server-rendered pages and a JSON API; SQLite and images on local disk by
default, PostgreSQL with ``RADLOOP_DATABASE_URL``; drafting by :mod:`radloop.assist` and
:mod:`radloop.safety` in a worker thread or in ``radloop worker`` processes; accounts, CSRF,
a hash-chained audit trail, and export as FHIR R4 and DICOM SR. See docs/review.md.

Importing this package imports nothing heavy; the web stack loads with :func:`create_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from radloop.review.settings import Settings, settings_from_env

if TYPE_CHECKING:
    from radloop.review.app import create_app
    from radloop.review.deps import AppContext, NavLink
    from radloop.review.store import Store, open_store, signed_cases

__all__ = [
    "AppContext",
    "NavLink",
    "Settings",
    "Store",
    "create_app",
    "open_store",
    "settings_from_env",
    "signed_cases",
]

_LAZY = {
    "AppContext": "radloop.review.deps",
    "NavLink": "radloop.review.deps",
    "create_app": "radloop.review.app",
    "Store": "radloop.review.store",
    "open_store": "radloop.review.store",
    "signed_cases": "radloop.review.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'radloop.review' has no attribute {name!r}")
