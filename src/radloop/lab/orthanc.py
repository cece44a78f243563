"""A private Orthanc PACS on loopback, for the PACS tests and ``radloop bench pacs``.

Debian's ``orthanc`` and ``orthanc-dicomweb`` packages: :func:`running_orthanc` writes a
configuration into a folder (storage there too), starts ``/usr/sbin/Orthanc`` on free ports
with the DICOMweb plugin, a test user, and radloop's storage SCP as a known modality, waits
until it answers, and stops it on leaving. Nothing is mocked: radloop talks to it by QIDO-RS,
WADO-RS, STOW-RS, C-ECHO and C-STORE as it would to a hospital's PACS.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ORTHANC",
    "ORTHANC_MISSING",
    "Orthanc",
    "free_port",
    "orthanc_missing",
    "running_orthanc",
]

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_MISSING = "Orthanc not installed: apt-get install orthanc orthanc-dicomweb"


def orthanc_missing() -> str | None:
    """Why Orthanc cannot be started here (the message to skip with), or None."""
    if not ORTHANC.is_file() or not DICOMWEB_PLUGIN.is_file():
        return ORTHANC_MISSING
    return None


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Orthanc:
    """A running Orthanc: its ports, AE title, test user and REST helpers."""

    http_port: int
    dicom_port: int
    ae_title: str
    user: str
    password: str
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def pacs_env(self, *, scp_ae: str = "RADLOOP", scp_port: int | None = None) -> dict[str, str]:
        """``RADLOOP_PACS_*`` settings that point radloop at this Orthanc (the password goes
        in a file, as a site would keep it)."""
        secret = self.folder / "dicomweb-password"
        secret.write_text(self.password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        env = {
            "RADLOOP_PACS_AE_TITLE": scp_ae,
            "RADLOOP_PACS_BIND": "127.0.0.1",
            "RADLOOP_PACS_DICOMWEB_URL": self.dicomweb_url,
            "RADLOOP_PACS_DICOMWEB_USER": self.user,
            "RADLOOP_PACS_DICOMWEB_PASSWORD_FILE": str(secret),
            "RADLOOP_PACS_REMOTE_HOST": "127.0.0.1",
            "RADLOOP_PACS_REMOTE_PORT": str(self.dicom_port),
            "RADLOOP_PACS_REMOTE_AE_TITLE": self.ae_title,
            # Studies here are stored whole before a poll: take them when first seen.
            "RADLOOP_PACS_POLL_SETTLE_S": "0",
        }
        if scp_port is not None:
            env["RADLOOP_PACS_PORT"] = str(scp_port)
        return env

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call to Orthanc's REST API as the test user; the response (checked)."""
        import requests

        response = requests.request(
            method, self.url + path, auth=(self.user, self.password), timeout=60, **kwargs
        )
        response.raise_for_status()
        return response

    def upload(self, data: bytes) -> str:
        """Store one DICOM instance through the REST API; its Orthanc id."""
        answer = self.rest(
            "POST", "/instances", data=data, headers={"Content-Type": "application/dicom"}
        ).json()
        if answer.get("Status") not in ("Success", "AlreadyStored"):
            raise RuntimeError(f"Orthanc did not store the instance: {answer}")
        return str(answer["ID"])

    def push_to(self, modality: str, resources: list[str]) -> dict[str, Any]:
        """C-STORE ``resources`` (Orthanc ids) to a configured modality (Orthanc as the SCU)."""
        result: dict[str, Any] = self.rest(
            "POST",
            f"/modalities/{modality}/store",
            json={"Resources": resources, "Synchronous": True},
        ).json()
        return result

    def log_tail(self, lines: int = 30) -> str:
        log = self.folder / "orthanc.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])


def _config(
    folder: Path,
    http_port: int,
    dicom_port: int,
    ae_title: str,
    user: str,
    password: str,
    modalities: dict[str, tuple[str, str, int]],
) -> dict[str, Any]:
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    return {
        "Name": "radloop-test-pacs",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "StorageCompression": False,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ae_title,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {user: password},
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
        "DicomModalities": {name: list(node) for name, node in modalities.items()},
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        "SaveJobs": False,
        "ConcurrentJobs": 2,
        "HttpThreadsCount": 8,
        "StableAge": 1,
        "HttpTimeout": 60,
    }


@contextlib.contextmanager
def running_orthanc(
    folder: Path,
    *,
    modalities: dict[str, tuple[str, str, int]] | None = None,
    ae_title: str = "ORTHANC",
    timeout_s: float = 60.0,
) -> Iterator[Orthanc]:
    """Orthanc on free loopback ports with its storage in ``folder``; stopped on leaving.

    ``modalities`` are the DICOM nodes it knows, by name: ``{"radloop": ("RADLOOP",
    "127.0.0.1", 11112)}`` lets it push (C-STORE) to radloop's storage SCP.
    """
    missing = orthanc_missing()
    if missing:
        raise FileNotFoundError(missing)
    folder.mkdir(parents=True, exist_ok=True)
    user, password = "radloop", secrets.token_urlsafe(12)
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    config = _config(
        folder, http_port, dicom_port, ae_title, user, password, dict(modalities or {})
    )
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    with (folder / "orthanc.log").open("wb") as log:
        process = subprocess.Popen(
            [str(ORTHANC), str(folder / "orthanc.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    server = Orthanc(http_port, dicom_port, ae_title, user, password, folder, process)
    try:
        _wait_ready(server, timeout_s)
        yield server
    finally:
        # Its storage is thrown away with the folder's owner, so it is killed rather than shut
        # down (a clean shutdown takes Orthanc over 3 s).
        if process.poll() is None:
            process.kill()
        process.wait(timeout=20)


def _wait_ready(server: Orthanc, timeout_s: float) -> None:
    """Until ``/system`` answers; RuntimeError with the end of the log if Orthanc exits or
    does not answer within ``timeout_s``."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"Orthanc exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            answer = requests.get(
                server.url + "/system", auth=(server.user, server.password), timeout=2
            )
            if answer.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Orthanc did not answer within {timeout_s:g} s:\n{server.log_tail()}")
