"""Fixtures of the PACS tests: a private Orthanc (never mocked) and a workstation store.

``orthanc`` starts Debian's Orthanc with the DICOMweb plugin on free loopback ports, its
storage in the test's temporary folder, a test user, and radloop's storage SCP (on
``orthanc.scp_port``) as the modality ``radloop``; it is stopped after the test. Where
Orthanc is not installed the tests that need it skip, saying how to install it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

from pacskit import scope_options


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Any]:
    from radloop.lab.orthanc import free_port, orthanc_missing, running_orthanc

    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    scp_port = free_port()
    with running_orthanc(
        tmp_path / "orthanc", modalities={"radloop": ("RADLOOP", "127.0.0.1", scp_port)}
    ) as server:
        server.scp_port = scp_port  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def pacs_config(orthanc: Any) -> Any:
    """radloop's PACS settings pointing at the test's Orthanc (password in a file)."""
    from radloop.pacs.config import PacsConfig

    return PacsConfig.from_env(orthanc.pacs_env(scp_port=orthanc.scp_port))


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_store(**settings)``: a workstation store (SQLite) in the test's folder."""
    from radloop.review.settings import Settings
    from radloop.review.store import open_store

    opened: list[Any] = []

    def make(name: str = "radloop", **overrides: Any) -> Any:
        settings = Settings(
            data_dir=tmp_path / name,
            in_process_worker=False,
            scope_options=scope_options(),
            **overrides,
        )
        store = open_store(settings)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Any]) -> Any:
    return make_store()
