"""Accounts: roles, argon2 password hashes, server-side sessions and login rate limiting.

Roles: ``radiologist`` (reviews, edits and signs), ``admin`` (manages users, ingests),
``auditor`` (reads studies and the audit trail; changes nothing). Passwords are hashed with
argon2id (RFC 9106) by argon2-cffi. A session cookie carries a random 256-bit token; the
database keeps only its SHA-256, with the session's CSRF token and expiry.
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
from radloop.review.settings import ROLES, Settings

__all__ = [
    "AuthenticatedUser",
    "LoginThrottledError",
    "UserExistsError",
    "authenticate",
    "change_password",
    "create_session",
    "create_user",
    "end_session",
    "ensure_first_admin",
    "hash_password",
    "session_user",
    "verify_password",
]

MIN_PASSWORD = 10


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
    if len(password) < MIN_PASSWORD:
        raise InputError(
            f"a password of at least {MIN_PASSWORD} characters",
            f"{len(password)} characters",
            source="password",
        )
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
    return [f"user:{username.lower()}", f"ip:{client}"]


def authenticate(
    session: Session, settings: Settings, username: str, password: str, client: str
) -> User | None:
    """The user for these credentials, or None; raises LoginThrottledError when throttled.

    Failures are counted per user name and per client address over a sliding window, so one
    address cannot guess many accounts and many addresses cannot guess one.
    """
    now = utcnow()
    since = now - datetime.timedelta(seconds=settings.login_window_s)
    keys = _throttle_keys(username, client)
    counts = session.execute(
        select(LoginAttempt.key, func.count(LoginAttempt.id))
        .where(LoginAttempt.key.in_(keys), LoginAttempt.at >= since)
        .group_by(LoginAttempt.key)
    ).all()
    if max((int(n) for _, n in counts), default=0) >= settings.login_max_failures:
        raise LoginThrottledError(int(settings.login_window_s))
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    # Verify against a dummy hash for unknown users so timing does not reveal which exist.
    stored = user.password_hash if user is not None else _DUMMY_HASH.value
    ok = verify_password(stored, password) and user is not None and user.active
    if not ok:
        session.add_all([LoginAttempt(key=k, at=now) for k in keys])
        session.commit()
        return None
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == keys[0]))
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


def change_password(session: Session, user_id: int, current: str, new: str) -> None:
    """Replace a user's password after checking the current one (InputError otherwise)."""
    user = session.get(User, user_id)
    if user is None or not verify_password(user.password_hash, current):
        raise InputError("the current password", "a wrong one", source="password")
    if len(new) < MIN_PASSWORD or new == current:
        raise InputError(
            f"a new password of at least {MIN_PASSWORD} characters, not the old one",
            f"{len(new)} characters",
            source="new password",
        )
    user.password_hash = hash_password(new)
    user.must_change_password = False
    session.commit()


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
        session.commit()
