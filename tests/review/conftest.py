"""Fixtures of the review workstation tests: one tiny store per database backend.

Every test module that takes ``backend`` runs against SQLite and against PostgreSQL at
127.0.0.1:5432 (database ``test``; each run gets its own schema, dropped afterwards). The
store holds a few copies of the bundled sample radiograph with new UIDs, drafted by a scripted
model and checked by a table verifier, so verdicts are deterministic and nothing is rendered.
"""

from __future__ import annotations

import inspect
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from reviewkit import PASSWORD, PG_URL, Seeded, login, seed_store


def _postgres_ready() -> str | None:
    """None when PostgreSQL answers; otherwise why not (after trying to start it once)."""
    import sqlalchemy

    for attempt in range(2):
        try:
            engine = sqlalchemy.create_engine(PG_URL)
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("select 1"))
            engine.dispose()
            return None
        except Exception as error:  # not running: try to start it once
            reason = str(error).splitlines()[0]
            if attempt == 0:
                subprocess.run(["service", "postgresql", "start"], capture_output=True, check=False)
    return f"PostgreSQL at 127.0.0.1:5432 is not reachable ({reason})"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        reason = _postgres_ready()
        if reason:
            pytest.skip(reason)
    return str(request.param)


def _scope_options() -> dict[str, Any]:
    """The safety layer's scope defaults, minus its acquisition classifier while the package
    does not ship one yet (it is being trained in another part of the project)."""
    from importlib import resources

    from radloop.safety import assess_study

    shipped = Path(str(resources.files("radloop"))) / "data" / "scope" / "acquisition.onnx"

    takes = "acquisition" in inspect.signature(assess_study).parameters
    return {"acquisition": False} if takes and not shipped.is_file() else {}


@pytest.fixture(scope="module")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from radloop.review.settings import Settings

    data_dir = tmp_path_factory.mktemp(f"review-{backend}")
    schema = f"rv_{secrets.token_hex(4)}" if backend == "postgresql" else None
    yield Settings(
        data_dir=data_dir,
        database_url=PG_URL if backend == "postgresql" else None,
        db_schema=schema,
        in_process_worker=False,
        login_max_failures=3,
        max_upload_bytes=2 * 1024 * 1024,
        scope_options=_scope_options(),
    )
    if schema:
        import sqlalchemy

        engine = sqlalchemy.create_engine(PG_URL)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module")
def store(settings: Any) -> Iterator[Any]:
    from radloop.review.store import open_store

    opened = open_store(settings)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def seeded(store: Any, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_store(store, tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def accounts(store: Any) -> dict[str, str]:
    """One user per role (password ``PASSWORD``)."""
    from radloop.review.accounts import create_user

    names = {"radiologist": "rad", "admin": "boss", "auditor": "aud"}
    with store.sessions() as session:
        for role, name in names.items():
            create_user(session, name, PASSWORD, role, f"Dr {name.title()}")
        session.commit()
    return names


@pytest.fixture(scope="module")
def app(settings: Any, store: Any, seeded: Seeded, accounts: dict[str, str]) -> Any:
    from radloop.review.app import create_app

    return create_app(settings, store=store, start_worker=False)


@pytest.fixture()
def client_for(app: Any) -> Iterator[Any]:
    """``client_for(username)``: a signed-in TestClient with its CSRF header set."""
    from fastapi.testclient import TestClient

    clients = []

    def make(username: str | None) -> Any:
        client = TestClient(app, base_url="https://testserver")
        clients.append(client)
        if username is not None:
            response = login(client, username)
            assert response.status_code == 303, response.text[:300]
            client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def server(app: Any) -> Iterator[str]:
    """The module's app served by uvicorn on loopback (for the browser tests)."""
    from browserkit import served

    with served(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright, one per test module."""
    from browserkit import chromium

    with chromium() as launched:
        yield launched
