"""The PACS and EHR connection settings: one typed object read from ``RADLOOP_PACS_*``.

What a PACS administrator sets up on both sides of the link (docs/review.md, "Connecting to
PACS and EHR", has the table):

- radloop's own DICOM node: its AE title (``RADLOOP_PACS_AE_TITLE``), the address and port its
  storage SCP listens on (``RADLOOP_PACS_BIND``, ``RADLOOP_PACS_PORT``) and the calling AE
  titles it accepts (``RADLOOP_PACS_ALLOWED_AES``);
- the remote PACS: its DICOMweb base URL (``RADLOOP_PACS_DICOMWEB_URL``, QIDO-RS, WADO-RS and
  STOW-RS) and its DICOM node for C-ECHO (``RADLOOP_PACS_REMOTE_HOST``, ``_REMOTE_PORT``,
  ``_REMOTE_AE_TITLE``);
- what is pulled: modalities (``RADLOOP_PACS_MODALITIES``, default CR,DX), body parts
  (``RADLOOP_PACS_BODY_PARTS``, default CHEST), how many days before the last poll a poll looks
  back (``RADLOOP_PACS_LOOKBACK_DAYS``), and how long a study's series and instance counts
  must stay unchanged between polls before it is taken (``RADLOOP_PACS_POLL_SETTLE_S``,
  default 60; 0 takes a study the first time it is seen);
- results back: ``RADLOOP_PACS_SEND_ON_SIGN=1`` sends each signed report as DICOM SR;
- prior reports: ``RADLOOP_PACS_PRIOR_REPORTS=1`` gives the drafting model the patient's latest
  earlier SR found in the PACS, where radloop has no signed report of its own for the prior;
- the EHR: the FHIR base URL (``RADLOOP_FHIR_BASE_URL``), shown by ``radloop pacs status``; the
  results sender (:mod:`radloop.review.fhir_out`) reads it and its own FHIR settings.

Credentials come from the environment or from files, never from the command line:
``RADLOOP_PACS_DICOMWEB_USER`` with ``RADLOOP_PACS_DICOMWEB_PASSWORD`` (or
``..._PASSWORD_FILE``, a file holding it), or a bearer token in ``RADLOOP_PACS_DICOMWEB_TOKEN``
(or ``..._TOKEN_FILE``); ``RADLOOP_PACS_CA_BUNDLE`` names a CA bundle for a PACS whose
certificate a private authority signed.
A bad value is a :class:`PacsConfigError` naming the variable, what it expected and what it got.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from radloop.errors import InputError

__all__ = ["Credentials", "PacsConfig", "PacsConfigError", "RemoteNode"]

DEFAULT_AE_TITLE = "RADLOOP"
DEFAULT_PORT = 11112


class PacsConfigError(InputError):
    """A ``RADLOOP_PACS_*`` setting (or ``RADLOOP_FHIR_BASE_URL``) that cannot be used."""


@dataclass(frozen=True)
class Credentials:
    """HTTP credentials: a user and password (basic auth) or a bearer token; never printed."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return bool(self.user or self.token)


@dataclass(frozen=True)
class RemoteNode:
    """A DICOM application entity on the network: host, port and AE title."""

    host: str
    port: int
    ae_title: str

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class PacsConfig:
    """radloop's side of the PACS/EHR link (see the module's docstring for the variables)."""

    ae_title: str = DEFAULT_AE_TITLE
    bind: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    allowed_aes: tuple[str, ...] = ()
    dicomweb_url: str | None = None
    dicomweb_credentials: Credentials = field(default_factory=Credentials)
    ca_bundle: Path | None = None
    remote: RemoteNode | None = None
    modalities: tuple[str, ...] = ("CR", "DX")
    body_parts: tuple[str, ...] = ("CHEST",)
    lookback_days: int = 1
    poll_settle_s: float = 60.0
    study_idle_s: float = 30.0
    timeout_s: float = 30.0
    send_on_sign: bool = False
    prior_reports: bool = False
    fhir_base_url: str | None = None

    def require_dicomweb(self) -> str:
        """The DICOMweb base URL, or a :class:`PacsConfigError` saying how to set it."""
        if not self.dicomweb_url:
            raise PacsConfigError(
                "the PACS's DICOMweb base URL",
                "none",
                source="RADLOOP_PACS_DICOMWEB_URL",
                fix="Set it, e.g. RADLOOP_PACS_DICOMWEB_URL=https://pacs.example.org/dicom-web",
            )
        return self.dicomweb_url

    def require_remote(self) -> RemoteNode:
        """The remote DICOM node, or a :class:`PacsConfigError` saying how to set it."""
        if self.remote is None:
            raise PacsConfigError(
                "the PACS's DICOM node",
                "none",
                source="RADLOOP_PACS_REMOTE_HOST",
                fix="Set RADLOOP_PACS_REMOTE_HOST, RADLOOP_PACS_REMOTE_PORT and "
                "RADLOOP_PACS_REMOTE_AE_TITLE.",
            )
        return self.remote

    def accepted_calling_aes(self) -> tuple[str, ...]:
        """Calling AE titles the storage SCP accepts: the allowed list, else the remote's
        title if one is configured, else any (empty)."""
        if self.allowed_aes:
            return self.allowed_aes
        return (self.remote.ae_title,) if self.remote is not None else ()

    def describe(self) -> list[tuple[str, str]]:
        """The settings as (name, value) lines for ``radloop pacs echo``; secrets shown as set
        or not, never their value."""

        def secret(credentials: Credentials) -> str:
            if credentials.token:
                return "bearer token (set)"
            if credentials.user:
                password = "set" if credentials.password else "not set"
                return f"user {credentials.user}, password {password}"
            return "none"

        return [
            ("own AE", f"{self.ae_title} listening on {self.bind}:{self.port}"),
            ("DICOMweb", self.dicomweb_url or "not set"),
            ("DICOMweb credentials", secret(self.dicomweb_credentials)),
            ("remote AE", str(self.remote) if self.remote else "not set"),
            (
                "pulled",
                f"modalities {','.join(self.modalities)}; body parts "
                f"{','.join(self.body_parts) or 'any'}; taken after {self.poll_settle_s:g} s "
                "unchanged",
            ),
            ("send on sign", "yes" if self.send_on_sign else "no"),
            ("prior reports from the PACS", "yes" if self.prior_reports else "no"),
            ("FHIR", self.fhir_base_url or "not set"),
        ]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PacsConfig:
        """The settings from ``RADLOOP_PACS_*`` and ``RADLOOP_FHIR_BASE_URL`` (``env``
        defaults to ``os.environ``); unset variables keep their defaults."""
        environ = os.environ if env is None else env
        read = _Reader(environ)
        host = read.text("RADLOOP_PACS_REMOTE_HOST")
        remote = None
        if host:
            remote = RemoteNode(
                host=host,
                port=read.port("RADLOOP_PACS_REMOTE_PORT", 104),
                ae_title=read.ae_title("RADLOOP_PACS_REMOTE_AE_TITLE", "ANY-SCP"),
            )
        config = cls(
            ae_title=read.ae_title("RADLOOP_PACS_AE_TITLE", DEFAULT_AE_TITLE),
            bind=read.text("RADLOOP_PACS_BIND") or "0.0.0.0",
            port=read.port("RADLOOP_PACS_PORT", DEFAULT_PORT),
            allowed_aes=tuple(
                read.ae_title_value(v, "RADLOOP_PACS_ALLOWED_AES")
                for v in read.items("RADLOOP_PACS_ALLOWED_AES")
            ),
            dicomweb_url=read.url("RADLOOP_PACS_DICOMWEB_URL"),
            dicomweb_credentials=read.credentials("RADLOOP_PACS_DICOMWEB"),
            ca_bundle=read.existing_file("RADLOOP_PACS_CA_BUNDLE"),
            remote=remote,
            modalities=tuple(m.upper() for m in read.items("RADLOOP_PACS_MODALITIES", "CR,DX")),
            body_parts=tuple(b.upper() for b in read.items("RADLOOP_PACS_BODY_PARTS", "CHEST")),
            lookback_days=int(read.number("RADLOOP_PACS_LOOKBACK_DAYS", 1, int, zero=True)),
            poll_settle_s=read.number("RADLOOP_PACS_POLL_SETTLE_S", 60.0, float, zero=True),
            study_idle_s=read.number("RADLOOP_PACS_STUDY_IDLE_S", 30.0, float),
            timeout_s=read.number("RADLOOP_PACS_TIMEOUT_S", 30.0, float),
            send_on_sign=read.flag("RADLOOP_PACS_SEND_ON_SIGN"),
            prior_reports=read.flag("RADLOOP_PACS_PRIOR_REPORTS"),
            fhir_base_url=read.url("RADLOOP_FHIR_BASE_URL"),
        )
        if not config.modalities:
            raise PacsConfigError(
                "at least one modality (CR,DX)", "none", source="RADLOOP_PACS_MODALITIES"
            )
        if config.send_on_sign or config.prior_reports:
            config.require_dicomweb()
        return config


class _Reader:
    """Typed reads of environment variables, each failing as a :class:`PacsConfigError`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def items(self, name: str, default: str = "") -> list[str]:
        raw = self.environ.get(name)
        text = default if raw is None else raw
        return [part.strip() for part in text.split(",") if part.strip()]

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "0").lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise PacsConfigError("1 or 0 (true or false)", repr(value), source=name)

    def number(self, name: str, default: float, kind: type = float, *, zero: bool = False) -> float:
        """A number greater than 0 (or at least 0 with ``zero``) of type ``kind``."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or value < 0 or (value == 0 and not zero):
            what = "a whole number" if kind is int else "a number"
            bound = "of at least 0" if zero else "greater than 0"
            raise PacsConfigError(f"{what} {bound}", repr(raw), source=name)
        return value  # type: ignore[no-any-return]

    def port(self, name: str, default: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise PacsConfigError("a TCP port from 1 to 65535", repr(raw), source=name)
        return int(raw)

    def ae_title(self, name: str, default: str) -> str:
        raw = self.text(name)
        return default if raw is None else self.ae_title_value(raw, name)

    @staticmethod
    def ae_title_value(raw: str, name: str) -> str:
        """An AE title (PS3.5 6.2, VR AE): 1 to 16 characters of printable ASCII, no
        backslash, not only spaces."""
        value = raw.strip()
        if (
            not value
            or len(value) > 16
            or "\\" in value
            or not all(32 <= ord(c) < 127 for c in value)
        ):
            raise PacsConfigError(
                "an AE title of 1 to 16 printable ASCII characters without a backslash",
                repr(raw),
                source=name,
            )
        return value

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PacsConfigError(
                "an http:// or https:// base URL (https://pacs.example.org/dicom-web)",
                repr(raw),
                source=name,
            )
        if parts.username or parts.password:
            raise PacsConfigError(
                "a URL without credentials in it",
                "a URL with a user or password",
                source=name,
                fix=f"Put them in {name.removesuffix('_URL').removesuffix('_BASE')}_USER and "
                "..._PASSWORD_FILE instead.",
            )
        return raw.rstrip("/")

    def existing_file(self, name: str) -> Path | None:
        raw = self.text(name)
        if raw is None:
            return None
        path = Path(raw)
        if not path.is_file():
            raise PacsConfigError("an existing file", repr(raw), source=name)
        return path

    def secret(self, name: str) -> str | None:
        """``NAME`` or the contents of the file ``NAME_FILE`` (not both), stripped."""
        value = self.environ.get(name)
        path = self.text(f"{name}_FILE")
        if value and path:
            raise PacsConfigError(
                f"one of {name} and {name}_FILE", "both", source=name, fix="Unset one of them."
            )
        if path:
            try:
                value = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise PacsConfigError(
                    "a readable text file holding the secret",
                    f"{path!r} ({type(error).__name__})",
                    source=f"{name}_FILE",
                ) from None
        value = (value or "").strip()
        return value or None

    def credentials(self, prefix: str) -> Credentials:
        user = self.text(f"{prefix}_USER")
        password = self.secret(f"{prefix}_PASSWORD")
        token = self.secret(f"{prefix}_TOKEN")
        if token and (user or password):
            raise PacsConfigError(
                f"either a bearer token ({prefix}_TOKEN) or a user and password",
                "both",
                source=f"{prefix}_TOKEN",
            )
        if password and not user:
            raise PacsConfigError(
                f"a user name with the password ({prefix}_USER)", "none", source=f"{prefix}_USER"
            )
        return Credentials(user=user, password=password, token=token)
