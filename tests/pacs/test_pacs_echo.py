"""``radloop pacs echo`` against Orthanc: one clear OK or FAILED line per check."""

from __future__ import annotations

import os
from typing import Any

from click.testing import CliRunner

from radloop.cli import main


def _echo(env: dict[str, str]) -> Any:
    clean = {k: None for k in os.environ if k.startswith("RADLOOP_")}
    return CliRunner().invoke(main, ["pacs", "echo"], env={**clean, **env})


def test_echo_says_ok_for_c_echo_and_qido(orthanc: Any) -> None:
    result = _echo(orthanc.pacs_env())
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"C-ECHO ORTHANC@127.0.0.1:{orthanc.dicom_port}: OK")
    assert lines[1].startswith(f"QIDO-RS {orthanc.dicomweb_url}: OK")


def test_echo_names_what_failed(orthanc: Any, tmp_path: Any) -> None:
    from radloop.lab.orthanc import free_port

    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password", encoding="utf-8")
    env = orthanc.pacs_env() | {
        "RADLOOP_PACS_REMOTE_PORT": str(free_port()),
        "RADLOOP_PACS_DICOMWEB_PASSWORD_FILE": str(wrong),
    }
    result = _echo(env)
    assert result.exit_code == 1, result.output
    c_echo, qido = result.output.strip().splitlines()
    assert "C-ECHO" in c_echo and ": FAILED" in c_echo and "no association" in c_echo
    assert "QIDO-RS" in qido and ": FAILED" in qido and "HTTP 401" in qido


def test_echo_without_settings_says_what_to_set() -> None:
    result = _echo({})
    assert result.exit_code == 1
    assert "set RADLOOP_PACS_REMOTE_HOST" in result.output
    assert "set RADLOOP_PACS_DICOMWEB_URL" in result.output


def test_a_bad_setting_is_one_clear_line_and_exit_2() -> None:
    result = _echo({"RADLOOP_PACS_PORT": "nope"})
    assert result.exit_code == 2
    assert "RADLOOP_PACS_PORT: expected a TCP port from 1 to 65535" in result.output
