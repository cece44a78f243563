"""``radloop pacs echo``: is the PACS reachable? A C-ECHO to its DICOM node and a QIDO-RS
query to its DICOMweb server, each with a clear OK or FAILED and the reason."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from radloop.pacs.config import PacsConfig

__all__ = ["Check", "c_echo", "check_all", "qido_query"]


@dataclass(frozen=True)
class Check:
    """One connectivity check: what was tried, against what, whether it worked and why not."""

    name: str
    target: str
    ok: bool
    detail: str
    ms: float | None = None

    def line(self) -> str:
        took = f" in {self.ms:.0f} ms" if self.ms is not None else ""
        verdict = "OK" if self.ok else "FAILED"
        return f"{self.name} {self.target}: {verdict}{took} ({self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def c_echo(config: PacsConfig) -> Check:
    """A C-ECHO (Verification SOP Class) from radloop's AE title to the remote node."""
    if config.remote is None:
        return Check(
            "C-ECHO",
            "(no remote AE)",
            False,
            "set RADLOOP_PACS_REMOTE_HOST, _REMOTE_PORT and _REMOTE_AE_TITLE",
        )
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    remote = config.remote
    ae = AE(ae_title=config.ae_title)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = config.timeout_s
    ae.connection_timeout = config.timeout_s
    started = time.perf_counter()
    assoc = ae.associate(remote.host, remote.port, ae_title=remote.ae_title)
    try:
        if not assoc.is_established:
            if assoc.is_rejected:
                why = f"association rejected: does it accept the calling AE {config.ae_title}?"
            else:
                why = f"no association: is a DICOM node listening on {remote.host}:{remote.port}?"
            return Check("C-ECHO", str(remote), False, why)
        status = assoc.send_c_echo()
        code = getattr(status, "Status", None)
        took = (time.perf_counter() - started) * 1000
        if code == 0:
            return Check("C-ECHO", str(remote), True, "status 0000H Success", took)
        shown = f"{code:04X}H" if isinstance(code, int) else "none"
        return Check("C-ECHO", str(remote), False, f"status {shown}", took)
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def qido_query(config: PacsConfig) -> Check:
    """A QIDO-RS search for one study: the DICOMweb server answers, with these credentials."""
    if not config.dicomweb_url:
        return Check("QIDO-RS", "(no DICOMweb URL)", False, "set RADLOOP_PACS_DICOMWEB_URL")
    from radloop.pacs.web import make_client

    web = make_client(config)
    started = time.perf_counter()
    try:
        found = web.client.search_for_studies(limit=1)
    except Exception as error:
        response = getattr(error, "response", None)
        why = (
            f"HTTP {response.status_code} {response.reason or ''}".strip()
            if response is not None
            else f"{type(error).__name__}: {error}"[:300]
        )
        return Check("QIDO-RS", config.dicomweb_url, False, why)
    took = (time.perf_counter() - started) * 1000
    listed = "a study" if found else "no study"
    return Check("QIDO-RS", config.dicomweb_url, True, f"searched; {listed} listed", took)


def check_all(config: PacsConfig) -> list[Check]:
    """Both checks, C-ECHO first."""
    return [c_echo(config), qido_query(config)]
