"""`radloop serve`'s server processes tune the garbage collector once the app is up; an app
built any other way (tests, an embedding program) leaves the process's collector alone."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

pytest.importorskip("fastapi")


def test_a_served_app_freezes_its_startup_objects_and_raises_the_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from radloop.review.app import app_from_env, create_app
    from radloop.review.lifespan import GC_THRESHOLDS
    from radloop.review.settings import Settings

    before = gc.get_threshold()
    monkeypatch.setenv("RADLOOP_DATA_DIR", str(tmp_path / "served"))
    monkeypatch.setenv("RADLOOP_IN_PROCESS_WORKER", "0")
    try:
        plain = create_app(Settings(data_dir=tmp_path / "plain", in_process_worker=False))
        with TestClient(plain):
            assert gc.get_threshold() == before  # not a server process: left alone
        served = app_from_env()
        with TestClient(served):
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
