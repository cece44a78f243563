"""Accounts under attack: the password policy, login throttling with growing delays (counted
atomically under parallel guesses), trusted proxies, sessions ended by a password change or
reset, and the ``radloop users`` commands. Runs against SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from reviewkit import PASSWORD, login
from sqlalchemy import delete, select, update


def _fresh_user(store: Any, role: str = "radiologist") -> str:
    from radloop.review.accounts import create_user

    name = f"u{secrets.token_hex(4)}"
    with store.sessions() as session:
        create_user(session, name, PASSWORD, role)
        session.commit()
    return name


def _user_id(store: Any, name: str) -> int:
    from radloop.review.db import User

    with store.sessions() as session:
        return int(session.execute(select(User.id).where(User.username == name)).scalar_one())


def _clear_attempts(store: Any) -> None:
    from radloop.review.db import LoginAttempt

    with store.sessions() as session:
        session.execute(delete(LoginAttempt))
        session.commit()


@pytest.mark.parametrize(
    "password, rule",
    [
        ("short one", "at least 12 characters"),
        ("xx-Carol.Ray-xx", "not the user name"),
        ("CAROL.RAY.2024", "not the user name"),
        ("password123456", "not among the commonly used"),
        ("Password!!2024", "not among the commonly used"),
        ("abcabcabcabc", "not among the commonly used"),
    ],
)
def test_the_password_policy_names_the_rule_a_password_breaks(password: str, rule: str) -> None:
    from radloop.review.passwords import WeakPasswordError, check_password

    with pytest.raises(WeakPasswordError, match=rule):
        check_password(password, "carol.ray")
    check_password("plum tractor evening", "carol.ray")


def test_the_policy_applies_to_a_new_user_and_a_password_change(store: Any) -> None:
    from radloop.review.accounts import change_password, create_user
    from radloop.review.passwords import WeakPasswordError

    with store.sessions() as session, pytest.raises(WeakPasswordError, match="user name"):
        create_user(session, "dana.long", "dana.long.2024", "radiologist")
    name = _fresh_user(store)
    with store.sessions() as session:
        user_id = _user_id(store, name)
        with pytest.raises(WeakPasswordError, match="commonly used"):
            change_password(session, user_id, PASSWORD, "qwerty123456")


def test_a_weak_password_gets_a_clear_422_on_the_users_page_and_api(client_for: Any) -> None:
    admin = client_for("boss")
    response = admin.post(
        "/api/users", json={"username": "weakling", "role": "auditor", "password": "password1234"}
    )
    assert response.status_code == 422 and "commonly used" in response.text


def test_the_delay_doubles_after_the_allowed_failures_up_to_a_ceiling(store: Any) -> None:
    from radloop.review.accounts import login_delay

    settings = store.settings.with_(login_max_failures=5, login_delay_s=60.0)
    delays = [login_delay(settings, n) for n in range(4, 12)]
    assert delays == [0.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]


def test_the_right_password_gets_through_once_the_delay_has_passed(store: Any) -> None:
    from radloop.review.accounts import LoginThrottledError, authenticate
    from radloop.review.db import LoginAttempt

    name = _fresh_user(store)
    client = "10.20.30.40"
    with store.sessions() as session:
        for _ in range(store.settings.login_max_failures):
            assert authenticate(session, store.settings, name, "wrong guess!!", client) is None
        with pytest.raises(LoginThrottledError, match="too many failed logins"):
            authenticate(session, store.settings, name, PASSWORD, client)
        # The delay passes (the failures are moved back in time): the right password works.
        earlier = datetime.datetime.now(datetime.UTC) - datetime.timedelta(
            seconds=store.settings.login_delay_s + 1
        )
        session.execute(update(LoginAttempt).values(at=earlier))
        session.commit()
        assert authenticate(session, store.settings, name, PASSWORD, client) is not None
    _clear_attempts(store)


def test_parallel_guesses_are_counted_atomically(store: Any) -> None:
    from radloop.review.accounts import LoginThrottledError, authenticate

    name = _fresh_user(store)
    limit = store.settings.login_max_failures

    def guess(i: int) -> str:
        with store.sessions() as session:
            try:
                result = authenticate(
                    session, store.settings, name, f"guess {i:08d}!", f"10.1.{i}.1"
                )
            except LoginThrottledError:
                return "throttled"
            return "checked" if result is None else "signed in"

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(guess, range(24)))
    assert outcomes.count("checked") <= limit, outcomes
    assert outcomes.count("throttled") >= 24 - limit
    _clear_attempts(store)


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    from starlette.requests import Request

    from radloop.review.deps import client_address

    def request(peer: str, forwarded: str) -> Request:
        headers = [(b"x-forwarded-for", forwarded.encode())]
        return Request({"type": "http", "client": (peer, 1234), "headers": headers})

    spoofed = request("203.0.113.9", "1.2.3.4")
    assert client_address(spoofed, ()) == "203.0.113.9"
    assert client_address(spoofed, ("10.0.0.0/8",)) == "203.0.113.9"
    proxied = request("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.3")
    # The client wrote 1.2.3.4 itself; the trusted proxies saw 198.51.100.7.
    assert client_address(proxied, ("10.0.0.0/8",)) == "198.51.100.7"


def test_the_settings_factory_reads_the_trusted_proxies() -> None:
    from radloop.errors import InputError
    from radloop.review.settings import settings_from_env

    assert settings_from_env(env={}).trusted_proxies == ()
    settings = settings_from_env(env={"RADLOOP_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/16"})
    assert settings.trusted_proxies == ("10.0.0.5/32", "192.168.0.0/16")
    with pytest.raises(InputError, match="RADLOOP_TRUSTED_PROXIES: expected comma-separated"):
        settings_from_env(env={"RADLOOP_TRUSTED_PROXIES": "proxy.example"})


def test_a_forged_forwarded_for_does_not_dodge_the_login_limit(
    app: Any, client_for: Any, store: Any
) -> None:
    name = _fresh_user(store)
    client = client_for(None)
    try:
        statuses = []
        for i in range(store.settings.login_max_failures + 2):
            client.headers["X-Forwarded-For"] = f"198.51.100.{i}"
            statuses.append(login(client, f"x{name}{i}", "not the password").status_code)
        assert statuses[-1] == 429, statuses
    finally:
        _clear_attempts(store)


def test_a_password_change_ends_every_other_session(client_for: Any, store: Any) -> None:
    name = _fresh_user(store)
    here, elsewhere = client_for(name), client_for(name)
    assert elsewhere.get("/api/me").status_code == 200
    form = here.get("/account/password")
    assert form.status_code == 200
    changed = here.post(
        "/account/password",
        data={"current": PASSWORD, "new": "plum tractor evening", "repeat": "plum tractor evening"},
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text[:300]
    assert here.get("/api/me").status_code == 200
    assert elsewhere.get("/api/me").status_code == 401


def test_an_admin_reset_ends_every_session_and_demands_a_new_password(
    app: Any, client_for: Any, store: Any
) -> None:
    from radloop.review.accounts import reset_password

    name = _fresh_user(store)
    signed_in = client_for(name)
    with store.sessions() as session:
        one_time = reset_password(session, name)
    # A reset from the command line cannot reach a server's few-second session cache.
    app.state.ctx.session_cache.drop_user(_user_id(store, name))
    assert signed_in.get("/api/me").status_code == 401
    fresh = client_for(None)
    assert login(fresh, name, one_time).headers["location"] == "/"
    assert fresh.get("/", follow_redirects=False).headers["location"] == "/account/password"


def test_users_commands_list_reset_and_deactivate_and_are_audited(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from radloop.review.accounts import authenticate
    from radloop.review.cli import users
    from radloop.review.db import AuditEntry
    from radloop.review.settings import Settings
    from radloop.review.store import open_store

    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(
        users, ["add", *data, "erin", "--role", "auditor", "--password", "plum tractor evening"]
    )
    assert added.exit_code == 0, added.output
    weak = runner.invoke(users, ["add", *data, "frank", "--role", "auditor", "--password", "frank"])
    assert weak.exit_code != 0 and "at least 12 characters" in str(weak.exception)
    listed = runner.invoke(users, ["list", *data, "--json"])
    assert '"username": "erin"' in listed.output and '"active": true' in listed.output
    reset = runner.invoke(users, ["reset", *data, "erin"])
    assert reset.exit_code == 0, reset.output
    one_time = reset.output.strip().rsplit(" ", 1)[-1]
    store = open_store(Settings(data_dir=tmp_path, in_process_worker=False))
    with store.sessions() as session:
        user = authenticate(session, store.settings, "erin", one_time, "127.0.0.1")
        assert user is not None and user.must_change_password
    assert runner.invoke(users, ["deactivate", *data, "erin"]).exit_code == 0
    assert "deactivated" in runner.invoke(users, ["list", *data]).output
    with store.sessions() as session:
        assert authenticate(session, store.settings, "erin", one_time, "127.0.0.2") is None
        actions = set(session.execute(select(AuditEntry.action)).scalars())
    assert {"add_user", "reset_password", "deactivate_user"} <= actions
    missing = runner.invoke(users, ["reset", *data, "nobody"])
    assert missing.exit_code != 0 and "an existing user" in str(missing.exception)
