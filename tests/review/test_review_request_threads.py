"""RADLOOP_REQUEST_THREADS sizes the request thread pool; nonsense is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_request_threads_from_the_environment(tmp_path: Path) -> None:
    from radloop.errors import InputError
    from radloop.review.settings import settings_from_env

    assert settings_from_env(tmp_path, env={}).request_threads == 4
    assert settings_from_env(tmp_path, env={"RADLOOP_REQUEST_THREADS": "2"}).request_threads == 2
    for bad in ("0", "-1", "many"):
        with pytest.raises(InputError, match="RADLOOP_REQUEST_THREADS"):
            settings_from_env(tmp_path, env={"RADLOOP_REQUEST_THREADS": bad})
