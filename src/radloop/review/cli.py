"""``radloop serve``, ``radloop worker``, ``radloop users``, ``radloop audit``, and ingest into
the workstation's store."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from radloop.errors import InputError
from radloop.registry import Registry

__all__ = ["audit", "ingest_into_store", "jobs", "serve", "users", "worker"]

DEMO = "synthetic"
DEMO_CONTENT: Registry[Any] = Registry(
    "demo content",
    "radloop.demo",
    unknown_error=lambda message: InputError(
        "demo content from the radloop.demo entry point group (radloop's lab provides "
        "'synthetic'; reinstall radloop with `pip install -e .` if it is missing)",
        message,
    ),
)
"""Demo content for ``radloop serve --demo``: ``fill(store, progress=...) -> login`` with
``username`` and ``password``. radloop's lab provides ``synthetic`` (``radloop.lab.demo``)."""

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The workstation's data directory (default: $RADLOOP_DATA_DIR or ./radloop-data). "
    "RADLOOP_DATABASE_URL=postgresql+psycopg://… puts the database in PostgreSQL.",
)


def _settings(data_dir: Path | None, **overrides: Any) -> Any:
    from radloop.review.settings import settings_from_env

    return settings_from_env(data_dir, **overrides)


def _get(app: Any, path: str, as_user: str | None) -> int:
    """One in-process request (a smoke test); prints the body, returns the exit status."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from radloop.review.accounts import create_session
    from radloop.review.db import User
    from radloop.review.deps import SESSION_COOKIE

    ctx = app.state.ctx
    with TestClient(app, base_url="https://localhost") as client:
        if as_user is not None:
            with ctx.store.sessions() as session:
                user = session.execute(
                    select(User).where(User.username == as_user)
                ).scalar_one_or_none()
                if user is None:
                    raise click.UsageError(f"--as-user: no user {as_user!r}")
                client.cookies.set(SESSION_COOKIE, create_session(session, ctx.settings, user))
        response = client.get(path, follow_redirects=False)
    click.echo(response.text)
    if response.status_code != 200:
        click.echo(f"GET {path}: HTTP {response.status_code}", err=True)
        return 1
    return 0


@click.command()
@_DATA_DIR
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "-p", default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--get",
    "get_path",
    default=None,
    metavar="PATH",
    help="Run one GET request in-process, print the body and exit (0 on HTTP 200).",
)
@click.option("--as-user", default=None, help="With --get: make the request as this user.")
@click.option(
    "--demo",
    is_flag=True,
    help="Fill the store with synthetic demo studies and a demo radiologist account.",
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not draft inside the server (run `radloop worker` processes instead).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    help="Server processes (on Linux each listens on the port itself, and new connections "
    "are spread evenly between them).",
)
def serve(
    data_dir: Path | None,
    host: str,
    port: int,
    get_path: str | None,
    as_user: str | None,
    demo: bool,
    no_worker: bool,
    workers: int,
) -> None:
    """Run the review workstation: worklist, viewer, edit, sign, audit, export.

    The embedded default is one SQLite file and the images under --data-dir, with drafting
    in a background worker inside the server. Every draft is assistant output for review by
    a qualified reader, not a diagnosis.
    """
    from radloop.review.app import create_app
    from radloop.review.store import open_store

    settings = _settings(data_dir, in_process_worker=not no_worker and get_path is None)
    store = open_store(settings)
    app = create_app(settings, store=store)  # creates the first admin on a fresh store
    login = None
    if demo:
        fill = DEMO_CONTENT.factory(DEMO)
        login = fill(store, progress=lambda m: click.echo(m, err=True))
    first = app.state.ctx.first_admin_password
    if first:
        click.secho(
            f"First start: created user 'admin' with the one-time password {first} "
            "(shown only now; add users with `radloop users add`).",
            fg="yellow",
            err=get_path is not None,
        )
    if get_path is not None:
        sys.exit(_get(app, get_path, as_user))
    import uvicorn

    address = f"http://{host}:{port}/"
    click.secho(f"radloop review workstation at {address}", bold=True)
    click.echo(
        f"data: {settings.data_dir.resolve()}  database: "
        f"{'SQLite (embedded)' if settings.is_sqlite else 'PostgreSQL'}"
    )
    if login is not None:
        click.secho(
            f"demo radiologist: user {login.username}  password {login.password}", fg="green"
        )
    click.secho(
        "Drafts are assistant output, not a diagnosis; the reference model is trained "
        "on synthetic images only.",
        fg="yellow",
    )
    if workers > 1:
        # Each process builds its own app from the same settings, passed through RADLOOP_*.
        import os

        from radloop.review.processes import serve_processes

        store.close()
        os.environ["RADLOOP_DATA_DIR"] = str(settings.data_dir)
        os.environ["RADLOOP_IN_PROCESS_WORKER"] = "1" if settings.in_process_worker else "0"
        try:
            serve_processes(host, port, workers)
        except (OSError, RuntimeError) as error:
            raise click.ClickException(str(error)) from None
        return
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.command()
@_DATA_DIR
@click.option("--once", is_flag=True, help="Draft what is queued now, then exit.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Studies drafted at once (default: $RADLOOP_WORKER_CONCURRENCY or 4); match the "
    "model server's slots.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A drafting-model option (repeatable), added to $RADLOOP_MODEL_OPTIONS: "
    "base_url=…, timeout_s=60, max_concurrency=8.",
)
def worker(
    data_dir: Path | None, once: bool, concurrency: int | None, options: tuple[str, ...]
) -> None:
    """Draft queued studies in this process, against the same database as the server.

    Run several (e.g. with PostgreSQL) for larger sites. Each holds its jobs under a lease
    that a heartbeat renews; jobs of a worker that died are requeued when their lease runs
    out. SIGTERM or Ctrl-C gives unfinished jobs back at once.
    """
    import signal
    import threading

    from radloop.models import parse_options
    from radloop.review.store import open_store
    from radloop.review.worker import DraftingWorker

    settings = _settings(data_dir)
    if options:
        try:
            extra = parse_options(options)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--option") from None
        settings = settings.with_(model_options={**settings.model_options, **extra})
    store = open_store(settings)
    drafting = DraftingWorker(store, concurrency=concurrency)
    if once:
        click.echo(f"drafted {drafting.run_pending()} studies")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    click.echo(
        f"worker {drafting.name} drafting up to {drafting.concurrency} studies at once "
        "(Ctrl-C to stop)"
    )
    with contextlib.suppress(KeyboardInterrupt):
        drafting.serve(stop)


@click.group()
def jobs() -> None:
    """Drafting jobs: what is queued, running or failed, and requeueing a failed draft."""


@jobs.command("list")
@_DATA_DIR
@click.option(
    "--state",
    type=click.Choice(["queued", "running", "failed", "done", "all"]),
    default="all",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job.")
def jobs_list(data_dir: Path | None, state: str, as_json: bool) -> None:
    """The drafting jobs, newest first (at most 200)."""
    import json

    from sqlalchemy import select

    from radloop.review.db import Job
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    query = select(Job).order_by(Job.id.desc()).limit(200)
    if state != "all":
        query = query.where(Job.state == state)
    with store.sessions() as session:
        for job in session.execute(query).scalars():
            fields = {
                "id": job.id,
                "study": job.study_id,
                "state": job.state,
                "attempts": job.attempts,
                "worker": job.worker,
                "lease_until": job.lease_until.isoformat() if job.lease_until else None,
                "error": job.error,
            }
            if as_json:
                click.echo(json.dumps(fields))
            else:
                error = f"  {job.error[:100]}" if job.error else ""
                click.echo(
                    f"{job.id:>6}  {job.study_id}  {job.state:<10} attempts {job.attempts}{error}"
                )


@jobs.command("requeue")
@_DATA_DIR
@click.argument("study_ids", nargs=-1, required=True)
def jobs_requeue(data_dir: Path | None, study_ids: tuple[str, ...]) -> None:
    """Queue failed drafts again (attempts from zero); audited as the command-line user."""
    from radloop.review import audit as audit_trail
    from radloop.review.jobs import JobQueue
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    queue = JobQueue(store, "radloop jobs requeue")
    refused = []
    for study_id in study_ids:
        if queue.requeue(study_id):
            audit_trail.record(store.sessions, "cli", "requeue_draft", study_id, seal=store.seal)
            click.echo(f"{study_id}: queued again")
        else:
            refused.append(study_id)
    if refused:
        raise click.ClickException(
            "expected studies whose draft failed; not failed (or unknown): " + ", ".join(refused)
        )


@click.group()
def users() -> None:
    """Workstation accounts (roles: radiologist, admin, auditor)."""


@users.command("add")
@_DATA_DIR
@click.argument("username")
@click.option("--role", type=click.Choice(["radiologist", "admin", "auditor"]), required=True)
@click.option("--full-name", default="", help="The name shown on signed reports.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 12 characters, not the user name, not a common password (prompted for "
    "when not given).",
)
def users_add(
    data_dir: Path | None, username: str, role: str, full_name: str, password: str
) -> None:
    """Add a user."""
    from radloop.review import audit as audit_trail
    from radloop.review.accounts import create_user
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    with store.sessions() as session:
        create_user(session, username, password, role, full_name)
        session.commit()
    audit_trail.record(store.sessions, "cli", "add_user", username, {"role": role}, seal=store.seal)
    click.echo(f"added {username} ({role})")


@users.command("list")
@_DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user, one a line.")
def users_list(data_dir: Path | None, as_json: bool) -> None:
    """List the users: name, role, active, must change password, full name."""
    import json

    from sqlalchemy import select

    from radloop.review.db import User
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    with store.sessions() as session:
        rows = list(session.execute(select(User).order_by(User.username)).scalars())
        listed = [
            {
                "username": u.username,
                "role": u.role,
                "active": bool(u.active),
                "must_change_password": bool(u.must_change_password),
                "full_name": u.full_name,
            }
            for u in rows
        ]
    for item in listed:
        if as_json:
            click.echo(json.dumps(item))
        else:
            state = "active" if item["active"] else "deactivated"
            extra = ", one-time password" if item["must_change_password"] else ""
            click.echo(f"{item['username']}\t{item['role']}\t{state}{extra}\t{item['full_name']}")


@users.command("deactivate")
@_DATA_DIR
@click.argument("username")
def users_deactivate(data_dir: Path | None, username: str) -> None:
    """Deactivate a user: no more sign-ins, every session ends (kept for the audit trail)."""
    from radloop.review import audit as audit_trail
    from radloop.review.accounts import deactivate_user
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    with store.sessions() as session:
        deactivate_user(session, username)
    audit_trail.record(store.sessions, "cli", "deactivate_user", username, seal=store.seal)
    click.echo(f"deactivated {username}")


@users.command("reset")
@_DATA_DIR
@click.argument("username")
def users_reset(data_dir: Path | None, username: str) -> None:
    """Give a user a one-time password (printed once; replaced at the next sign-in) and end
    every session of the user."""
    from radloop.review import audit as audit_trail
    from radloop.review.accounts import reset_password
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    with store.sessions() as session:
        password = reset_password(session, username)
    audit_trail.record(store.sessions, "cli", "reset_password", username, seal=store.seal)
    click.echo(f"one-time password for {username} (shown only now): {password}")


@click.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@_DATA_DIR
def audit_verify(data_dir: Path | None) -> None:
    """Recompute the audit trail's hash chain; exit 1 if any entry was edited or removed."""
    from sqlalchemy import select

    from radloop.review.audit import verify_chain
    from radloop.review.db import AuditEntry
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    with store.sessions() as session:
        checked, problems = verify_chain(session, store.seal)
        head = session.execute(
            select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).scalar_one_or_none()
    if problems:
        for problem in problems:
            click.secho(f"TAMPERED {problem}", fg="red")
        click.secho(f"audit trail broken: {len(problems)} problems in {checked} entries", fg="red")
        sys.exit(1)
    click.secho(f"audit trail intact: {checked} entries; head {head or '-'}", fg="green")


def ingest_into_store(path: Path, data_dir: Path | None) -> dict[str, list[str]]:
    """``radloop ingest PATH --data-dir DIR``: put studies onto the workstation's worklist."""
    from radloop.review import audit as audit_trail
    from radloop.review.ingest import ingest_path
    from radloop.review.store import open_store

    store = open_store(_settings(data_dir))
    result = ingest_path(store, path)
    audit_trail.record(
        store.sessions, "cli", "ingest", str(path)[:200], result.to_dict(), seal=store.seal
    )
    return result.to_dict()
