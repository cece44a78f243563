"""Workstation settings: one explicit object, built by one factory that reads the environment.

Nothing else in :mod:`radloop.review` reads ``os.environ``: the app, the store and the worker
receive a :class:`Settings`. ``RADLOOP_DATABASE_URL`` switches the embedded SQLite default to
PostgreSQL (``postgresql+psycopg://user@host:5432/db``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radloop.context import DEFAULT_MAX_CHARS, FhirServer
from radloop.errors import InputError
from radloop.study import IngestLimits

__all__ = ["DEFAULT_DATA_DIR", "ROLES", "Settings", "settings_from_env"]

DEFAULT_DATA_DIR = Path("radloop-data")
ROLES = ("radiologist", "admin", "auditor")
MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the workstation needs to know, passed explicitly.

    ``database_url`` None means the embedded default: ``<data_dir>/radloop.db`` (SQLite).
    ``scope_options`` are passed to :func:`radloop.safety.assess_study` as they are (empty:
    the safety layer's defaults). ``cookie_secure`` marks the session cookie Secure (browsers
    still send it to ``http://localhost`` and ``127.0.0.1``); switch it off only behind plain
    HTTP on a trusted network. ``db_schema`` puts every table in one PostgreSQL schema (the
    tests use one per run). ``trusted_proxies`` are the networks whose ``X-Forwarded-For``
    names the client (empty: the peer address is the client). ``audit_key`` (or the file
    ``audit_key_file``, default ``<data_dir>/audit.key``, generated on the first start) keys
    the audit chain's HMAC; ``audit_anchor`` (default ``<data_dir>/audit-anchor.log``) is the
    append-only file the chain's head is written to after every append.

    Drafting jobs: a worker drafts up to ``worker_concurrency`` studies at once, holds each
    claimed job under a lease of ``job_lease_s`` seconds that a heartbeat renews, and a job
    whose lease ran out (its worker died) is queued again, after ``job_backoff_s`` × 2^(n-1)
    seconds, until it has been tried ``job_max_attempts`` times; then it fails with the reason.
    ``model_options`` are passed to the drafting model's backend (base URL, API key variable,
    timeouts, concurrency: whatever that backend takes).

    Questions (the ask box) run in their own pool of ``ask_threads`` threads, never on the
    request threads: a user may have ``ask_per_user`` questions in flight, and an answer not
    back in ``ask_timeout_s`` seconds is given up with 504, so a hung model never holds pages.
    """

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    db_schema: str | None = None
    model: str = "builtin"
    model_options: Mapping[str, Any] = field(default_factory=dict)
    verifier: str = "reference"
    worker_concurrency: int = 4
    job_lease_s: float = 60.0
    job_max_attempts: int = 3
    job_backoff_s: float = 5.0
    ask_threads: int = 4
    ask_per_user: int = 2
    ask_timeout_s: float = 60.0
    in_process_worker: bool = True
    worker_poll_s: float = 0.5
    cookie_secure: bool = True
    session_hours: float = 12.0
    max_upload_bytes: int = 200 * MiB
    limits: IngestLimits = field(
        default_factory=lambda: IngestLimits(
            max_file_bytes=100 * MiB, max_study_bytes=200 * MiB, max_archive_members=500
        )
    )
    login_max_failures: int = 5
    login_delay_s: float = 60.0
    login_max_delay_s: float = 900.0
    login_window_s: float = 86400.0
    trusted_proxies: tuple[str, ...] = ()
    audit_key: str | None = None
    audit_key_file: Path | None = None
    audit_anchor: Path | None = None
    viewer_max_side: int = 2048
    request_threads: int = 4
    scope_options: Mapping[str, Any] = field(default_factory=dict)
    ood_scorer: Path | None = None
    calibration: Path | None = None
    calibration_check_s: float = 5.0
    second_opinion: Path | None = None
    # The clinical context given to the drafting model (radloop.context): a FHIR server to ask
    # for the patient's lab values and conditions, and the characters its items may take.
    context_fhir: FhirServer | None = None
    context_max_chars: int = DEFAULT_MAX_CHARS
    samples: int = 5
    sample_temperature: float = 0.7
    ask_back: bool = True
    ask_back_model: str | None = None
    ask_back_model_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL: the setting, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'radloop.db').resolve()}"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.data_dir / "audit.key"

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor or self.data_dir / "audit-anchor.log"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def settings_from_env(
    data_dir: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """Settings from arguments first, then ``RADLOOP_*`` variables, then defaults.

    Read: ``RADLOOP_DATA_DIR``, ``RADLOOP_DATABASE_URL``, ``RADLOOP_DB_SCHEMA`` (a PostgreSQL
    schema for every table, created if missing), ``RADLOOP_OOD_SCORER`` (a fitted
    ``MahalanobisScorer`` as JSON for the out-of-distribution flag; unset: the verifier's own
    reference, which the shipped model has; ``none``: no OOD score), ``RADLOOP_CALIBRATION``
    (a calibration file from ``radloop calibrate``: calibrated probabilities, certainty phrases
    and fitted omission thresholds; unset: the verifier's raw probabilities; a worker reads it
    again when the file changes, looking at most every ``RADLOOP_CALIBRATION_CHECK_S`` seconds,
    default 5), ``RADLOOP_SECOND_OPINION`` (the sidecar of a classifier exported to ONNX, as
    ``radloop eval --second-opinion`` takes it: its reading of each claim inside its validated
    domain; unset: none), ``RADLOOP_MODEL``,
    ``RADLOOP_INSECURE_COOKIES`` (``1`` to drop the Secure flag), ``RADLOOP_IN_PROCESS_WORKER``
    (``0``: leave drafting to ``radloop worker`` processes), ``RADLOOP_REQUEST_THREADS``
    (threads a server process gives the synchronous endpoints), ``RADLOOP_TRUSTED_PROXIES``
    (comma-separated addresses or networks of reverse proxies whose ``X-Forwarded-For`` is
    believed; unset: none), ``RADLOOP_AUDIT_KEY`` (the audit chain's HMAC key, 32 characters
    or more) or ``RADLOOP_AUDIT_KEY_FILE`` (a file holding it; unset: ``<data_dir>/audit.key``,
    generated on the first start), ``RADLOOP_AUDIT_ANCHOR`` (the append-only file of chain
    heads; unset: ``<data_dir>/audit-anchor.log``).

    The drafting model: ``RADLOOP_MODEL_OPTIONS`` (``key=value`` pairs separated by commas,
    as ``--option`` takes them), and for the common ones ``RADLOOP_MODEL_BASE_URL``,
    ``RADLOOP_MODEL_API_KEY_ENV`` (the name of the variable that holds the key, never the key),
    ``RADLOOP_MODEL_TIMEOUT_S`` and ``RADLOOP_MODEL_CONCURRENCY``. Jobs:
    ``RADLOOP_WORKER_CONCURRENCY``, ``RADLOOP_JOB_LEASE_S``, ``RADLOOP_JOB_MAX_ATTEMPTS``,
    ``RADLOOP_JOB_BACKOFF_S``. Questions: ``RADLOOP_ASK_THREADS``, ``RADLOOP_ASK_PER_USER``,
    ``RADLOOP_ASK_TIMEOUT_S``. Evidence from the drafting model: ``RADLOOP_SAMPLES`` (drafts
    sampled for self-consistency, default 5, ``0`` off; a model that cannot sample is never
    sampled), ``RADLOOP_SAMPLE_TEMPERATURE`` (default 0.7), ``RADLOOP_ASK_BACK`` (``0``: no
    closed questions about the claims), ``RADLOOP_ASK_BACK_MODEL`` and
    ``RADLOOP_ASK_BACK_MODEL_OPTIONS`` (another model to answer them, with its options as
    ``RADLOOP_MODEL_OPTIONS`` takes them; unset: the drafting model). Clinical context:
    ``RADLOOP_CONTEXT_MAX_CHARS`` (the
    characters the context items may take in the prompt, default 2000), and a FHIR server asked
    for each patient's lab values and active conditions (``RADLOOP_FHIR_BASE_URL`` with its
    credentials, ``RADLOOP_CONTEXT_FHIR=0`` not to ask it: see
    :meth:`radloop.context.FhirServer.from_env`).
    """
    environ = os.environ if env is None else env
    url = environ.get("RADLOOP_DATABASE_URL") or None
    if url is not None and not url.startswith(("sqlite", "postgresql")):
        raise InputError(
            "a SQLAlchemy URL for SQLite or PostgreSQL (postgresql+psycopg://user@host/db)",
            repr(url),
            source="RADLOOP_DATABASE_URL",
        )
    values: dict[str, object] = {
        "data_dir": data_dir or Path(environ.get("RADLOOP_DATA_DIR") or DEFAULT_DATA_DIR),
        "database_url": url,
        "db_schema": environ.get("RADLOOP_DB_SCHEMA") or None,
        "ood_scorer": Path(environ["RADLOOP_OOD_SCORER"])
        if environ.get("RADLOOP_OOD_SCORER")
        else None,
        "calibration": Path(environ["RADLOOP_CALIBRATION"])
        if environ.get("RADLOOP_CALIBRATION")
        else None,
        "second_opinion": Path(environ["RADLOOP_SECOND_OPINION"].strip())
        if environ.get("RADLOOP_SECOND_OPINION", "").strip()
        else None,
        "model": environ.get("RADLOOP_MODEL") or "builtin",
        "cookie_secure": environ.get("RADLOOP_INSECURE_COOKIES", "") not in ("1", "true"),
        "in_process_worker": environ.get("RADLOOP_IN_PROCESS_WORKER", "1") not in ("0", "false"),
    }
    key = environ.get("RADLOOP_AUDIT_KEY") or None
    if key is not None and len(key) < 32:
        raise InputError(
            "an audit key of at least 32 characters (e.g. `openssl rand -hex 32`)",
            f"{len(key)} characters",
            source="RADLOOP_AUDIT_KEY",
        )
    values["audit_key"] = key
    for name, setting in (("RADLOOP_AUDIT_KEY_FILE", "audit_key_file"),
                          ("RADLOOP_AUDIT_ANCHOR", "audit_anchor")):  # fmt: skip
        if environ.get(name):
            values[setting] = Path(environ[name])
    values["model_options"] = _model_options(environ)
    values["context_fhir"] = FhirServer.from_env(environ)
    for name, setting, kind in _NUMBERS:
        raw = environ.get(name, "").strip()
        if raw:
            values[setting] = _number(raw, kind, name)
    values.update(_evidence(environ))
    proxies = environ.get("RADLOOP_TRUSTED_PROXIES", "")
    if proxies.strip():
        values["trusted_proxies"] = _networks(proxies)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


_NUMBERS: tuple[tuple[str, str, type], ...] = (
    ("RADLOOP_REQUEST_THREADS", "request_threads", int),
    ("RADLOOP_WORKER_CONCURRENCY", "worker_concurrency", int),
    ("RADLOOP_JOB_LEASE_S", "job_lease_s", float),
    ("RADLOOP_JOB_MAX_ATTEMPTS", "job_max_attempts", int),
    ("RADLOOP_JOB_BACKOFF_S", "job_backoff_s", float),
    ("RADLOOP_ASK_THREADS", "ask_threads", int),
    ("RADLOOP_ASK_PER_USER", "ask_per_user", int),
    ("RADLOOP_ASK_TIMEOUT_S", "ask_timeout_s", float),
    ("RADLOOP_CONTEXT_MAX_CHARS", "context_max_chars", int),
    ("RADLOOP_CALIBRATION_CHECK_S", "calibration_check_s", float),
)

_MODEL_VARIABLES = (
    ("RADLOOP_MODEL_BASE_URL", "base_url", str),
    ("RADLOOP_MODEL_API_KEY_ENV", "api_key_env", str),
    ("RADLOOP_MODEL_TIMEOUT_S", "timeout_s", float),
    ("RADLOOP_MODEL_CONCURRENCY", "max_concurrency", int),
)


def _number(raw: str, kind: type, source: str) -> int | float:
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value <= 0:
        what = "a whole number" if kind is int else "a number"
        raise InputError(f"{what} greater than 0", repr(raw), source=source)
    return value  # type: ignore[no-any-return]


def _evidence(environ: Mapping[str, str]) -> dict[str, object]:
    """Sampling and ask-back from ``RADLOOP_SAMPLES``, ``RADLOOP_SAMPLE_TEMPERATURE`` and
    ``RADLOOP_ASK_BACK`` (checked as :class:`radloop.assist.Sampling` checks them)."""
    from radloop.assist import Sampling

    default = Sampling()
    samples, temperature = default.samples, default.temperature
    raw = environ.get("RADLOOP_SAMPLES", "").strip()
    if raw:
        if not raw.isdigit():
            raise InputError("a whole number of samples (0: off)", repr(raw),
                             source="RADLOOP_SAMPLES")  # fmt: skip
        samples = int(raw)
    raw = environ.get("RADLOOP_SAMPLE_TEMPERATURE", "").strip()
    if raw:
        temperature = float(_number(raw, float, "RADLOOP_SAMPLE_TEMPERATURE"))
    try:
        Sampling(samples, temperature)  # the same limits as everywhere else
    except InputError as error:
        source = "RADLOOP_SAMPLES" if error.source == "samples" else "RADLOOP_SAMPLE_TEMPERATURE"
        raise InputError(error.expected, error.received, source=source) from None
    ask_back = environ.get("RADLOOP_ASK_BACK", "1").strip() not in ("0", "false")
    asker = environ.get("RADLOOP_ASK_BACK_MODEL", "").strip() or None
    options = _model_options(
        {"RADLOOP_MODEL_OPTIONS": environ.get("RADLOOP_ASK_BACK_MODEL_OPTIONS", "")}
    )
    return {"samples": samples, "sample_temperature": temperature, "ask_back": ask_back,
            "ask_back_model": asker, "ask_back_model_options": options}  # fmt: skip


def _model_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The drafting backend's options from ``RADLOOP_MODEL_OPTIONS`` and the named variables."""
    from radloop.models import parse_options

    options: dict[str, Any] = {}
    text = environ.get("RADLOOP_MODEL_OPTIONS", "").strip()
    if text:
        try:
            options = parse_options(p.strip() for p in text.split(",") if p.strip())
        except ValueError as error:
            raise InputError(
                "key=value pairs separated by commas (timeout_s=30,max_concurrency=8)",
                repr(text),
                source="RADLOOP_MODEL_OPTIONS",
            ) from error
    for name, option, kind in _MODEL_VARIABLES:
        raw = environ.get(name, "").strip()
        if raw:
            options[option] = raw if kind is str else _number(raw, kind, name)
    return options


def _networks(text: str) -> tuple[str, ...]:
    import ipaddress

    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise InputError(
                "comma-separated IP addresses or networks (10.0.0.5, 10.1.0.0/16)",
                repr(part),
                source="RADLOOP_TRUSTED_PROXIES",
            ) from None
    return tuple(networks)
