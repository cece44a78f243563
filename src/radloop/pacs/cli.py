"""``radloop pacs``: poll, listen, echo, send and status (settings from ``RADLOOP_PACS_*``)."""

from __future__ import annotations

import contextlib
import datetime
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["pacs"]

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The workstation's data directory (default: $RADLOOP_DATA_DIR or ./radloop-data).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON object per result.")


def _config() -> Any:
    """The settings from RADLOOP_PACS_* (a bad one: a typed error, exit 2)."""
    from radloop.pacs.config import PacsConfig

    return PacsConfig.from_env()


def _store(data_dir: Path | None) -> Any:
    from radloop.review.settings import settings_from_env
    from radloop.review.store import open_store

    return open_store(settings_from_env(data_dir))


def _stop_event() -> threading.Event:
    """Set by SIGTERM (and by Ctrl-C, through KeyboardInterrupt in the caller)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    return stop


@click.group()
def pacs() -> None:
    """The PACS link: pull studies (QIDO-RS/WADO-RS), receive them (C-STORE), check the
    connection (C-ECHO, QIDO-RS) and send signed reports back (DICOM SR by STOW-RS).

    Settings come from RADLOOP_PACS_* environment variables, credentials from variables or
    files, never from the command line (docs/review.md, "Connecting to PACS and EHR").
    """


def _print_poll(result: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(
        f"poll since {result.since}: {result.found} studies found, {len(result.fetched)} "
        f"fetched ({result.instances} instances), {result.skipped} already here, "
        f"{len(result.refused)} refused, {len(result.failed)} failed, "
        f"{len(result.settling)} settling, {result.seconds:.1f} s"
    )
    for uid, why in {**result.refused, **result.failed}.items():
        click.secho(f"  {uid}: {why}", fg="yellow")


@pacs.command("poll")
@_DATA_DIR
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Search studies dated from this day (default: the last poll's date less "
    "RADLOOP_PACS_LOOKBACK_DAYS).",
)
@click.option(
    "--every",
    type=click.FloatRange(min=1.0),
    default=None,
    metavar="SECONDS",
    help="Poll on this schedule until stopped (and send due reports when "
    "RADLOOP_PACS_SEND_ON_SIGN=1); once without it.",
)
@_JSON
def poll(
    data_dir: Path | None, since: datetime.datetime | None, every: float | None, as_json: bool
) -> None:
    """Pull new chest radiographs from the PACS onto the worklist, each study once."""
    from radloop.pacs.poll import poll_once
    from radloop.pacs.send import send_pending

    config = _config()
    config.require_dicomweb()
    store = _store(data_dir)
    first_since = since.date() if since is not None else None
    if every is None:
        _print_poll(poll_once(store, config, since=first_since), as_json)
        return
    stop = _stop_event()
    click.echo(f"polling {config.dicomweb_url} every {every:g} s (Ctrl-C to stop)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.is_set():
            try:
                _print_poll(poll_once(store, config, since=first_since), as_json)
                first_since = None  # later polls follow on from the last one
                if config.send_on_sign:
                    _print_sent(send_pending(store, config), as_json)
            except Exception as error:  # the PACS is down: report it and poll again later
                click.secho(f"poll failed: {type(error).__name__}: {error}", fg="red", err=True)
            stop.wait(every)


def _print_sent(results: list[Any], as_json: bool) -> None:
    for result in results:
        if as_json:
            click.echo(json.dumps(result.to_dict()))
        elif result.state == "sent":
            click.echo(f"sent the report of {result.study_id} as SR {result.sop_instance_uid}")
        else:
            click.secho(f"report of {result.study_id} {result.state}: {result.error}", fg="yellow")


@pacs.command("listen")
@_DATA_DIR
@_JSON
def listen(data_dir: Path | None, as_json: bool) -> None:
    """Receive studies pushed by C-STORE (radloop as a storage SCP) until stopped."""
    import queue

    from radloop.pacs.scp import StorageSCP
    from radloop.pacs.send import send_pending

    config = _config()
    store = _store(data_dir)
    scp = StorageSCP(store, config)
    try:
        host, port = scp.start()
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {config.bind}:{config.port} ({error}); set RADLOOP_PACS_BIND "
            "and RADLOOP_PACS_PORT"
        ) from None
    allowed = ", ".join(config.accepted_calling_aes()) or "any"
    click.echo(
        f"storage SCP {config.ae_title} listening on {host}:{port}; calling AEs: {allowed} "
        "(Ctrl-C to stop)",
        err=True,
    )
    stop = _stop_event()
    last_send = 0.0
    try:
        while not stop.is_set():
            with contextlib.suppress(queue.Empty):
                _print_outcome(scp.ingested.get(timeout=1.0), as_json)
            if config.send_on_sign and time.monotonic() - last_send > 5:
                last_send = time.monotonic()
                try:
                    _print_sent(send_pending(store, config), as_json)
                except Exception as error:  # the database went away: try again later
                    click.secho(f"sending failed: {error}", fg="red", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        scp.stop()  # the studies received so far are ingested
        while not scp.ingested.empty():
            _print_outcome(scp.ingested.get(), as_json)


def _print_outcome(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome))
        return
    error = f": {outcome['error']}" if outcome.get("error") else ""
    click.echo(
        f"study {outcome['uid']} ({outcome['instances']} instances): "
        f"{outcome['state']} {outcome.get('study_id') or ''}{error}".rstrip()
    )


@pacs.command("echo")
@_JSON
def echo(as_json: bool) -> None:
    """Check the connection: C-ECHO to the remote AE and a QIDO-RS query; exit 1 if either
    fails."""
    import sys

    from radloop.pacs.echo import check_all

    config = _config()
    checks = check_all(config)
    for check in checks:
        if as_json:
            click.echo(json.dumps(check.to_dict()))
        else:
            click.secho(check.line(), fg="green" if check.ok else "red")
    if not all(check.ok for check in checks):
        sys.exit(1)


@pacs.command("send")
@_DATA_DIR
@click.argument("study_ids", nargs=-1)
@click.option("--pending", is_flag=True, help="Send the reports waiting in the outbox.")
@_JSON
def send(data_dir: Path | None, study_ids: tuple[str, ...], pending: bool, as_json: bool) -> None:
    """Store signed reports in the PACS as DICOM SR (STOW-RS): the studies named, or with
    --pending those the outbox holds."""
    from radloop.pacs.send import send_pending, send_report

    if not study_ids and not pending:
        raise click.UsageError("name at least one STUDY_ID, or give --pending")
    config = _config()
    config.require_dicomweb()
    store = _store(data_dir)
    for study_id in study_ids:
        _print_sent([send_report(store, config, study_id)], as_json)
    if pending:
        _print_sent(send_pending(store, config), as_json)


@pacs.command("status")
@_DATA_DIR
@_JSON
def status(data_dir: Path | None, as_json: bool) -> None:
    """The settings (no secrets), the last polls, and the studies and reports by state."""
    from radloop.pacs.status import link_status

    config = _config()
    summary = link_status(_store(data_dir), config)
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    for name, value in config.describe():
        click.echo(f"{name:<22} {value}")
    click.echo(f"{'studies from the PACS':<22} {summary['seen'] or 'none'}")
    click.echo(f"{'reports to the PACS':<22} {summary['outbox'] or 'none'}")
    for poll in summary["polls"]:
        error = f"  error: {poll['error']}" if poll["error"] else ""
        click.echo(
            f"poll {poll['started_at']}: since {poll['since']}, {poll['found']} found, "
            f"{poll['fetched']} fetched, {poll['refused']} refused, {poll['failed']} failed{error}"
        )
