"""A hung model server never blocks pages: questions run in their own bounded pool.

The app is served by uvicorn on loopback (real request threads, as in production). The
drafting model's ``generate`` blocks on an event, as a model server that accepted the
request and never answers: eight questions hang at once, and the worklist and the login page
still answer at once; a user's third question is 429, a question past the pool's size is 503
at once, a question not answered in ``ask_timeout_s`` is 504, and a hung call keeps its place
in the pool until the model returns. Every refusal is in the audit trail.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from reviewkit import PASSWORD, Seeded, login

from browserkit import served

httpx = pytest.importorskip("httpx")

TIMEOUT_S = 4.0
USERS = ("rad", "boss", "aud", "rad2")
"""Four users with two questions each: eight hung questions, the pool's size."""
REPLY = "Yes, there is a large left pneumothorax."


class HungModel:
    """A drafting model whose ``generate`` waits for ``release`` (a hung model server)."""

    def __init__(self, release: threading.Event) -> None:
        from radloop.models.mock import MockModel

        self.release = release
        self.inner = MockModel(REPLY, model="hung-test-model")
        self.model_id = self.inner.model_id
        self.supports_json_schema = False
        self.calls = 0
        self._lock = threading.Lock()

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
        self.release.wait(120)
        return self.inner.generate(*args, **kwargs)


class HungBackends:
    """A worker stand-in for the ask box: the hung model, no verifier (answers unchecked)."""

    def __init__(self, model: HungModel) -> None:
        self.model = model

    def drafting_model(self) -> Any:
        return self.model

    def backends(self) -> tuple[Any, Any]:
        raise RuntimeError("no verifier in this test")


@pytest.fixture(scope="module")
def pool_app(settings: Any, store: Any, seeded: Seeded, accounts: dict[str, str]) -> Any:
    from radloop.review.accounts import create_user
    from radloop.review.app import create_app

    with store.sessions() as session:
        for name in ("rad2", "rad3"):
            create_user(session, name, PASSWORD, "radiologist", f"Dr {name.title()}")
        session.commit()
    # Plain HTTP on loopback: the test client sends the cookie only when it is not Secure.
    chosen = settings.with_(
        cookie_secure=False, ask_threads=8, ask_per_user=2, ask_timeout_s=TIMEOUT_S
    )
    return create_app(chosen, store=store, start_worker=False, extensions=())


@pytest.fixture(scope="module")
def server(pool_app: Any) -> Iterator[str]:
    with served(pool_app) as url:
        yield url


def _signed_in(base: str, username: str) -> Any:
    client = httpx.Client(base_url=base, timeout=30)
    assert login(client, username).status_code == 303
    client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
    return client


def _ask(base: str, user: Any, study_id: str) -> tuple[int, float, dict[str, Any]]:
    """One question from a fresh connection with ``user``'s session: (status, seconds, body)."""
    with httpx.Client(
        base_url=base, cookies=user.cookies, headers=dict(user.headers), timeout=60
    ) as client:
        started = time.monotonic()
        reply = client.post(f"/api/studies/{study_id}/ask", json={"question": "Pneumothorax?"})
        return reply.status_code, time.monotonic() - started, reply.json()


def _wait_until(condition: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _last_seq(store: Any) -> int:
    from sqlalchemy import func, select

    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        return int(session.execute(select(func.max(AuditEntry.seq))).scalar() or 0)


def _entries_after(store: Any, seq: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    from sqlalchemy import select

    from radloop.review.db import AuditEntry

    with store.sessions() as session:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq)
        ).scalars()
        return [(e.username, e.action, e.target, json.loads(e.detail or "{}")) for e in rows]


def test_hung_questions_never_block_pages_and_are_refused_or_given_up(
    server: str, pool_app: Any, seeded: Seeded, store: Any
) -> None:
    from radloop.review.audit import verify_chain

    ctx = pool_app.state.ctx
    release = threading.Event()
    model = HungModel(release)
    kept = ctx.worker
    ctx.worker = HungBackends(model)
    study = seeded.ids["urgent"]
    clients = {name: _signed_in(server, name) for name in (*USERS, "rad3")}
    start = _last_seq(store)
    askers = ThreadPoolExecutor(max_workers=8)
    try:
        hung = [askers.submit(_ask, server, clients[name], study) for name in USERS * 2]
        _wait_until(lambda: ctx.ask_pool.in_flight()[0] == 8 and model.calls == 8)

        # Eight questions hang in the model; pages and the API still answer at once.
        for path in ("/api/worklist", "/login", "/api/worklist?status=all", "/"):
            client = clients["rad"] if path != "/login" else httpx.Client(base_url=server)
            started = time.monotonic()
            page = client.get(path)
            elapsed = time.monotonic() - started
            assert page.status_code == 200, (path, page.text[:200])
            assert elapsed < 1.0, f"{path} took {elapsed:.2f} s while the model hung"
        # A user's third question: 429 at once; anyone's question past the pool: 503 at once.
        status, elapsed, body = _ask(server, clients["rad"], study)
        assert (status, elapsed < 1.0) == (429, True), body
        assert "already have 2 question(s) waiting for the model" in body["detail"]
        status, elapsed, body = _ask(server, clients["rad3"], study)
        assert (status, elapsed < 1.0) == (503, True), body
        assert "all 8 question slots are busy" in body["detail"]
        assert not any(future.done() for future in hung)

        # No answer in the time allowed: 504 for every one of the eight.
        answers = [future.result(timeout=30) for future in hung]
        assert {status for status, _, _ in answers} == {504}, answers
        for _, elapsed, body in answers:
            assert body["detail"].startswith(f"the model did not answer in {TIMEOUT_S:g} s")
            assert elapsed < TIMEOUT_S + 2
        # The threads are still stuck in the model: they keep their places in the pool.
        assert ctx.ask_pool.in_flight()[0] == 8
        assert _ask(server, clients["rad3"], study)[0] == 503

        # The model answers at last: the places are free, the next question is answered.
        release.set()
        _wait_until(lambda: ctx.ask_pool.in_flight() == (0, {}))
        status, _, body = _ask(server, clients["rad3"], study)
        assert status == 200, body
        assert (body["text"], body["label"]) == (REPLY, "assistant output — not a diagnosis")
        assert body["state"] == "unchecked"
    finally:
        release.set()
        askers.shutdown(wait=True)
        ctx.worker = kept
        for client in clients.values():
            client.close()

    entries = [e for e in _entries_after(store, start) if e[1] not in {"view_worklist"}]
    path = f"/api/studies/{study}/ask"
    refusals = [(user, action, target, d.get("status")) for user, action, target, d in entries]
    assert refusals.count(("rad", "refused_ask_per_user", path, 429)) == 1
    assert refusals.count(("rad3", "refused_ask_full", path, 503)) == 2
    timed_out = [r for r in refusals if r[1] == "ask_timed_out"]
    assert sorted(r[0] for r in timed_out) == sorted(USERS * 2)
    assert {(r[2], r[3]) for r in timed_out} == {(path, 504)}
    assert [(user, action) for user, action, _, _ in entries if action == "ask"] == [
        ("rad3", "ask")
    ]
    for _, action, _, detail in entries:
        if action.startswith(("refused", "ask_timed")):
            assert detail["client"] == "127.0.0.1" and detail["method"] == "POST"
    with store.sessions() as session:
        assert verify_chain(session, store.seal)[1] == []


def test_the_ask_pool_counts_per_user_and_refuses_past_its_size() -> None:
    from radloop.review.askpool import AskPool, AskRefusedError

    pool = AskPool(threads=2, per_user=1)
    gate = threading.Event()
    first = pool.submit("a", lambda: gate.wait(10) and "a")
    with pytest.raises(AskRefusedError) as per_user:
        pool.submit("a", lambda: "again")
    assert (per_user.value.status, per_user.value.action) == (429, "refused_ask_per_user")
    second = pool.submit("b", lambda: gate.wait(10) and "b")
    with pytest.raises(AskRefusedError) as full:
        pool.submit("c", lambda: "c")
    assert (full.value.status, full.value.action) == (503, "refused_ask_full")
    assert pool.in_flight() == (2, {"a": 1, "b": 1})
    gate.set()
    assert (first.result(5), second.result(5)) == ("a", "b")
    _wait_until(lambda: pool.in_flight() == (0, {}))
    failing = pool.submit("a", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    _wait_until(lambda: pool.in_flight() == (0, {}))
    pool.close()
    with pytest.raises(AskRefusedError) as closed:
        pool.submit("a", lambda: "late")
    assert closed.value.status == 503


def test_ask_settings_from_the_environment(tmp_path: Any) -> None:
    from radloop.review.settings import settings_from_env

    chosen = settings_from_env(
        tmp_path,
        env={
            "RADLOOP_ASK_THREADS": "3",
            "RADLOOP_ASK_PER_USER": "1",
            "RADLOOP_ASK_TIMEOUT_S": "2.5",
        },
    )
    assert (chosen.ask_threads, chosen.ask_per_user, chosen.ask_timeout_s) == (3, 1, 2.5)
