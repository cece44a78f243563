"""Accounts: roles, argon2 password hashes, server-side sessions and login throttling.

Roles: ``radiologist`` (reviews, edits and signs), ``admin`` (manages users, ingests),
``auditor`` (reads studies and the audit trail; changes nothing). Passwords are hashed with
argon2id (RFC 9106) by argon2-cffi. A session cookie carries a random 256-bit token; the
database keeps only its SHA-256, with the session's CSRF token and expiry. Passwords follow
:mod:`radloop.review.passwords`; setting one (a change, a reset) ends the user's other
sessions.

Failed logins are throttled per user name and per client address with growing delays: after
``login_max_failures`` failures, each attempt waits ``login_delay_s`` doubled per further
failure (at most ``login_max_delay_s``), so the right password always gets through in the
end. Each attempt is recorded before its password is checked and counted after, so parallel
guesses are counted atomically: of N simultaneous guesses at most the allowance is checked.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from radloop.errors import InputError
from radloop.review.db import LoginAttempt, User, WebSession, utcnow
from radloop.review.passwords import MIN_PASSWORD, check_password
from radloop.review.settings import ROLES, Settings

__all__ = [
    "MIN_PASSWORD",
    "AuthenticatedUser",
    "LoginThrottledError",
    "UserExistsError",
    "authenticate",
    "change_password",
    "create_session",
    "create_user",
    "deactivate_user",
    "end_other_sessions",
    "end_session",
    "ensure_first_admin",
    "hash_password",
    "login_delay",
    "reset_password",
    "session_user",
    "verify_password",
]


class UserExistsError(InputError):
    """A user name that is already taken."""


class LoginThrottledError(Exception):
    """Too many failed logins for this user name or client address; try again later."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")


@dataclass(frozen=True)
class AuthenticatedUser:
    """Who is making a request: what the app needs, never the password hash."""

    id: int
    username: str
    full_name: str
    role: str
    csrf_token: str
    must_change_password: bool = False


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return str(_hasher().hash(password))


def verify_password(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def create_user(
    session: Session, username: str, password: str, role: str, full_name: str = ""
) -> User:
    """Add a user (not committed). The name is 1-64 letters, digits, '.', '_' or '-'."""
    if role not in ROLES:
        raise InputError(f"a role among {', '.join(ROLES)}", repr(role), source="role")
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-" for c in username):
        raise InputError("1-64 letters, digits, '.', '_' or '-'", repr(username), source="username")
    check_password(password, username)
    if session.execute(select(User.id).where(User.username == username)).first():
        raise UserExistsError("a new user name", f"{username!r}, which exists", source="username")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        full_name=full_name or username,
    )
    session.add(user)
    session.flush()
    return user


def ensure_first_admin(session: Session) -> str | None:
    """On the first start (no users), create ``admin`` and return its one-time password."""
    if session.execute(select(func.count(User.id))).scalar_one() > 0:
        return None
    from sqlalchemy.exc import IntegrityError

    password = secrets.token_urlsafe(12)
    try:
        admin = create_user(session, "admin", password, "admin", "Administrator")
        admin.must_change_password = True  # one-time: replaced at the first sign-in
        session.commit()
    except (IntegrityError, UserExistsError):  # another server process got there first
        session.rollback()
        return None
    return password


def _throttle_keys(username: str, client: str) -> list[str]:
    return [f"user:{username.lower()[:64]}", f"ip:{client[:64]}"]


def login_delay(settings: Settings, failures: int) -> float:
    """Seconds an attempt must wait after the last failure, with ``failures`` on record."""
    over = failures - settings.login_max_failures
    if over < 0:
        return 0.0
    return float(min(settings.login_delay_s * 2 ** min(over, 30), settings.login_max_delay_s))


def authenticate(
    session: Session, settings: Settings, username: str, password: str, client: str
) -> User | None:
    """The user for these credentials, or None; raises LoginThrottledError when throttled.

    Failures are counted per user name and per client address over ``login_window_s``, so
    one address cannot guess many accounts and many addresses cannot guess one. The attempt
    is written (and committed) before anything is checked; each attempt then counts every
    attempt on record, its own and those of parallel requests included, so the k-th of
    simultaneous guesses sees at least k and no more guesses are checked than allowed.
    """
    now = utcnow()
    since = now - datetime.timedelta(seconds=settings.login_window_s)
    keys = _throttle_keys(username, client)
    mine = [LoginAttempt(key=k, at=now) for k in keys]
    session.add_all(mine)
    session.commit()
    own_ids = [attempt.id for attempt in mine]
    wait = 0.0
    for key, own_id in zip(keys, own_ids, strict=True):
        failures, last = session.execute(
            select(func.count(LoginAttempt.id), func.max(LoginAttempt.at)).where(
                LoginAttempt.key == key, LoginAttempt.at >= since, LoginAttempt.id != own_id
            )
        ).one()
        delay = login_delay(settings, int(failures))
        if delay and last is not None:
            wait = max(wait, delay - (now - _as_utc(last)).total_seconds())
    if wait > 0:
        # Not checked, so not counted: only checked guesses lengthen the delay.
        session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(own_ids)))
        session.commit()
        raise LoginThrottledError(max(1, int(wait + 0.999)))
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    # Verify against a dummy hash for unknown users so timing does not reveal which exist.
    stored = user.password_hash if user is not None else _DUMMY_HASH.value
    ok = verify_password(stored, password) and user is not None and user.active
    if not ok:
        return None  # the attempt stays on record as a failure
    session.execute(
        delete(LoginAttempt).where((LoginAttempt.key == keys[0]) | LoginAttempt.id.in_(own_ids))
    )
    session.commit()
    return user


class _LazyHash:
    _value: str | None = None

    @property
    def value(self) -> str:
        if self._value is None:
            self._value = hash_password(secrets.token_hex(16))
        return self._value


_DUMMY_HASH = _LazyHash()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def create_session(session: Session, settings: Settings, user: User) -> str:
    """Start a session for ``user``; returns the cookie token (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + datetime.timedelta(hours=settings.session_hours)
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=expires,
        )
    )
    session.commit()
    return token


def session_user(session: Session, token: str | None) -> AuthenticatedUser | None:
    """The user of a live session token, or None (unknown, expired or deactivated)."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    web, user = row
    if _as_utc(web.expires_at) < utcnow() or not user.active:
        return None
    return AuthenticatedUser(
        user.id, user.username, user.full_name, user.role, web.csrf_token, user.must_change_password
    )


def change_password(
    session: Session, user_id: int, current: str, new: str, *, keep_token: str | None = None
) -> None:
    """Replace a user's password after checking the current one (InputError otherwise).

    Every session of the user but ``keep_token`` (the one making the change) ends.
    """
    user = session.get(User, user_id)
    if user is None or not verify_password(user.password_hash, current):
        raise InputError("the current password", "a wrong one", source="password")
    if new == current:
        raise InputError("a new password, not the old one", "the old one", source="new password")
    check_password(new, user.username)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    end_other_sessions(session, user.id, keep_token)
    session.commit()


def reset_password(session: Session, username: str) -> str:
    """An administrator's reset: a one-time password (returned, shown once) that must be
    replaced at the next sign-in; every session of the user ends."""
    user = _named(session, username)
    password = secrets.token_urlsafe(15)
    check_password(password, user.username)
    user.password_hash = hash_password(password)
    user.must_change_password = True
    end_other_sessions(session, user.id, None)
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == _throttle_keys(username, "")[0]))
    session.commit()
    return password


def deactivate_user(session: Session, username: str) -> None:
    """Deactivate a user (kept for the audit trail and signed reports); its sessions end."""
    user = _named(session, username)
    user.active = False
    end_other_sessions(session, user.id, None)
    session.commit()


def _named(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise InputError("the name of an existing user", repr(username), source="username")
    return user


def end_other_sessions(session: Session, user_id: int, keep_token: str | None) -> int:
    """End every session of ``user_id`` but the one of ``keep_token``; returns how many."""
    statement = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_token:
        statement = statement.where(WebSession.token_hash != _digest(keep_token))
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
        session.commit()
