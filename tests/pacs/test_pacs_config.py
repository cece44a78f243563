"""The PACS settings: RADLOOP_PACS_* read into one typed object, bad values as typed errors
that name the variable, credentials from the environment or files only."""

from __future__ import annotations

from pathlib import Path

import pytest

from radloop.pacs.config import PacsConfig, PacsConfigError, RemoteNode


def test_defaults_need_no_variable() -> None:
    config = PacsConfig.from_env({})
    assert (config.ae_title, config.port, config.bind) == ("RADLOOP", 11112, "0.0.0.0")
    assert config.modalities == ("CR", "DX") and config.body_parts == ("CHEST",)
    assert config.dicomweb_url is None and config.remote is None and not config.send_on_sign
    assert config.accepted_calling_aes() == ()
    assert config.poll_settle_s == 60.0  # a polled study waits a poll before it is taken


def test_a_full_site_configuration(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret pass\n", encoding="utf-8")
    config = PacsConfig.from_env(
        {
            "RADLOOP_PACS_AE_TITLE": "RADLOOP_WS1",
            "RADLOOP_PACS_PORT": "4242",
            "RADLOOP_PACS_DICOMWEB_URL": "https://pacs.example.org/dicom-web/",
            "RADLOOP_PACS_DICOMWEB_USER": "radloop",
            "RADLOOP_PACS_DICOMWEB_PASSWORD_FILE": str(secret),
            "RADLOOP_PACS_REMOTE_HOST": "pacs.example.org",
            "RADLOOP_PACS_REMOTE_PORT": "104",
            "RADLOOP_PACS_REMOTE_AE_TITLE": "PACS01",
            "RADLOOP_PACS_MODALITIES": "cr, dx",
            "RADLOOP_PACS_BODY_PARTS": "",
            "RADLOOP_PACS_SEND_ON_SIGN": "1",
            "RADLOOP_PACS_POLL_SETTLE_S": "0",
            "RADLOOP_FHIR_BASE_URL": "https://ehr.example.org/fhir",
        }
    )
    assert config.ae_title == "RADLOOP_WS1" and config.port == 4242
    assert config.dicomweb_url == "https://pacs.example.org/dicom-web"
    assert config.dicomweb_credentials.password == "s3cret pass"
    assert config.remote == RemoteNode("pacs.example.org", 104, "PACS01")
    assert config.accepted_calling_aes() == ("PACS01",)
    assert config.modalities == ("CR", "DX") and config.body_parts == ()
    assert config.send_on_sign and config.fhir_base_url == "https://ehr.example.org/fhir"
    assert config.poll_settle_s == 0.0
    shown = repr(config) + str(config.describe())
    assert "s3cret" not in shown


@pytest.mark.parametrize(
    ("variables", "named", "expected"),
    [
        ({"RADLOOP_PACS_PORT": "70000"}, "RADLOOP_PACS_PORT", "a TCP port from 1 to 65535"),
        ({"RADLOOP_PACS_AE_TITLE": "A" * 17}, "RADLOOP_PACS_AE_TITLE", "an AE title"),
        ({"RADLOOP_PACS_AE_TITLE": "BAD\\AE"}, "RADLOOP_PACS_AE_TITLE", "without a backslash"),
        ({"RADLOOP_PACS_DICOMWEB_URL": "ftp://pacs"}, "RADLOOP_PACS_DICOMWEB_URL", "http"),
        (
            {"RADLOOP_PACS_DICOMWEB_URL": "https://user:pw@pacs/dicom-web"},
            "RADLOOP_PACS_DICOMWEB_URL",
            "a URL without credentials",
        ),
        (
            {"RADLOOP_PACS_DICOMWEB_PASSWORD": "x"},
            "RADLOOP_PACS_DICOMWEB_USER",
            "a user name with the password",
        ),
        (
            {"RADLOOP_PACS_DICOMWEB_USER": "u", "RADLOOP_PACS_DICOMWEB_TOKEN": "t"},
            "RADLOOP_PACS_DICOMWEB_TOKEN",
            "either a bearer token",
        ),
        (
            {"RADLOOP_PACS_DICOMWEB_PASSWORD": "x", "RADLOOP_PACS_DICOMWEB_PASSWORD_FILE": "/f"},
            "RADLOOP_PACS_DICOMWEB_PASSWORD",
            "one of",
        ),
        ({"RADLOOP_PACS_STUDY_IDLE_S": "0"}, "RADLOOP_PACS_STUDY_IDLE_S", "greater than 0"),
        ({"RADLOOP_PACS_LOOKBACK_DAYS": "-1"}, "RADLOOP_PACS_LOOKBACK_DAYS", "of at least 0"),
        ({"RADLOOP_PACS_POLL_SETTLE_S": "-5"}, "RADLOOP_PACS_POLL_SETTLE_S", "of at least 0"),
        ({"RADLOOP_PACS_SEND_ON_SIGN": "maybe"}, "RADLOOP_PACS_SEND_ON_SIGN", "1 or 0"),
        ({"RADLOOP_PACS_SEND_ON_SIGN": "1"}, "RADLOOP_PACS_DICOMWEB_URL", "DICOMweb base URL"),
        ({"RADLOOP_PACS_MODALITIES": " , "}, "RADLOOP_PACS_MODALITIES", "at least one"),
        (
            {
                "RADLOOP_PACS_DICOMWEB_PASSWORD_FILE": "/no/such/file",
                "RADLOOP_PACS_DICOMWEB_USER": "u",
            },
            "RADLOOP_PACS_DICOMWEB_PASSWORD_FILE",
            "a readable text file",
        ),
    ],
)
def test_a_bad_value_is_a_typed_error_naming_the_variable(
    variables: dict[str, str], named: str, expected: str
) -> None:
    with pytest.raises(PacsConfigError) as raised:
        PacsConfig.from_env(variables)
    assert raised.value.source == named
    assert expected in str(raised.value)


def test_no_command_takes_a_password_or_token() -> None:
    from radloop.pacs.cli import pacs

    options = {
        name
        for command in pacs.commands.values()
        for param in command.params
        for name in param.opts
    }
    assert not {o for o in options if any(w in o for w in ("pass", "token", "secret", "user"))}
