"""``radloop bench pacs``: the PACS link end to end against Orthanc on loopback.

Protocol (docs/benchmarks.md): N synthetic lab studies (PA and lateral DX, 256 px, seed 2028)
are stored in a private Orthanc (Debian's ``orthanc`` with its DICOMweb plugin) through its REST
API. radloop then pulls them (``radloop pacs poll``: QIDO-RS, WADO-RS, the workstation's
ingestion) and polls a second time; the builtin model drafts them (``radloop worker --once``'s
worker, reference verifier); a reader signs each (accepting what the safety layer flagged and
waiving the communication of a critical result with a reason, as a script can); every
signature writes an outbox row in its transaction (``RADLOOP_PACS_SEND_ON_SIGN=1``'s hook) and
the sender stores the SR in Orthanc by STOW-RS. Finally the SRs are searched for in Orthanc
(QIDO-RS, modality SR), retrieved and checked with dicom3tools' ``dciodvfy``.

Keys: ``studies`` (pushed), ``pulled`` (distinct studies fetched), ``duplicates_pulled``
(fetches of a study fetched before, across both polls, plus studies stored twice),
``drafted``, ``signed``, ``sr_sent``, ``sr_stored`` (SR instances Orthanc holds),
``sr_dciodvfy_errors`` (dciodvfy "Error" lines over all of them; null without dciodvfy),
``seconds_per_study_pull`` (radloop's wall time for the first poll over the studies it pulled:
search, retrieve and ingest; no model), and the other phases' times.
"""

from __future__ import annotations

import datetime
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

__all__ = ["PacsBenchResult", "bench_pacs", "run_pacs_benchmark"]

SEED = 2028
SIZE = 256


@dataclass
class PacsBenchResult:
    studies: int
    pulled: int
    duplicates_pulled: int
    drafted: int
    signed: int
    sr_sent: int
    sr_stored: int
    sr_dciodvfy_errors: int | None
    seconds_per_study_pull: float
    pull_seconds: float
    draft_seconds: float
    sign_seconds: float
    send_seconds: float
    instances_pulled: int
    refused: dict[str, str]
    not_signed: dict[str, str]
    dciodvfy_error_lines: list[str] = field(default_factory=list)
    orthanc: str = ""
    model: str = "builtin"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lab_studies(n: int, out: Path) -> list[Path]:
    """``n`` synthetic studies (PA and lateral DX); their DICOM files."""
    from radloop.lab.synth.study_writer import make_dataset

    make_dataset(n, SEED, out, size=SIZE)
    return sorted(out.glob("*/dicom/*.dcm"))


def _sign_all(store: Any, ids: list[str]) -> tuple[int, dict[str, str]]:
    """Sign each drafted study as a reader would: flagged claims accepted, a critical result's
    communication waived with a reason. (signed, {study id: why not})."""
    from radloop.errors import RadloopError
    from radloop.review import worksheet
    from radloop.review.accounts import create_user
    from radloop.review.db import Draft, StudyRow, Worksheet

    with store.sessions() as session:
        create_user(session, "benchreader", "bench-reader-password", "radiologist", "Bench Reader")
        session.commit()
    signed, refused = 0, {}
    for study_id in ids:
        try:
            with store.sessions() as session:
                row = session.get(StudyRow, study_id)
                assert row is not None
                if row.status not in ("ready", "failed"):
                    refused[study_id] = f"status {row.status}"
                    continue
                draft = session.get(Draft, study_id)
                sheet = session.get(Worksheet, study_id)
                for item in worksheet.review_items(draft, sheet):
                    if item.flagged and item.decision is None:
                        worksheet.decide(session, study_id, item.key, "accepted", "benchreader")
                if row.urgent:
                    from radloop.review.communication import record_communication

                    record_communication(
                        session,
                        study_id,
                        username="benchreader",
                        full_name="Bench Reader",
                        waived_reason="benchmark: synthetic study, no patient",
                    )
                    session.commit()
                worksheet.sign(session, study_id, "benchreader", "Bench Reader")
            signed += 1
        except (RadloopError, KeyError) as error:
            refused[study_id] = f"{type(error).__name__}: {error}"[:300]
    return signed, refused


def _stored_srs(orthanc: Any, folder: Path) -> list[Path]:
    """Every SR instance Orthanc holds (QIDO-RS, then WADO-RS), written to ``folder``."""
    import pydicom

    from radloop.pacs.config import PacsConfig
    from radloop.pacs.web import make_client

    web = make_client(PacsConfig.from_env(orthanc.pacs_env()))
    found = web.client.search_for_instances(search_filters={"Modality": "SR"}, get_remaining=True)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, item in enumerate(found):
        uids = [item[tag]["Value"][0] for tag in ("0020000D", "0020000E", "00080018")]
        ds = web.client.retrieve_instance(*uids, media_types=(("application/dicom", "*"),))
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        paths.append(folder / f"sr-{k:04d}.dcm")
        paths[-1].write_bytes(buffer.getvalue())
    return paths


def _dciodvfy(paths: list[Path]) -> tuple[int | None, list[str]]:
    """Error lines of dciodvfy over ``paths`` (None where it is not installed) and the
    distinct ones."""
    from radloop.review.dciodvfy import dciodvfy_errors, dciodvfy_path

    if dciodvfy_path() is None:
        return None, []
    lines = [line.strip() for path in paths for line in dciodvfy_errors(path)]
    return len(lines), sorted(set(lines))


def run_pacs_benchmark(
    n: int = 20, *, scratch: Path | None = None, progress: Callable[[str], None] | None = None
) -> PacsBenchResult:
    """The protocol of the module's docstring, in ``scratch`` (a temporary folder by
    default, removed afterwards)."""
    from radloop.lab.orthanc import orthanc_missing, running_orthanc

    missing = orthanc_missing()
    if missing:
        raise click.ClickException(missing)
    say = progress or (lambda _message: None)
    owned = scratch is None
    folder = Path(tempfile.mkdtemp(prefix="radloop-bench-pacs-")) if scratch is None else scratch
    try:
        say(f"writing {n} synthetic lab studies")
        files = _lab_studies(n, folder / "lab")
        with running_orthanc(folder / "orthanc") as orthanc:
            say(f"storing {len(files)} instances in Orthanc {orthanc.url}")
            for path in files:
                orthanc.upload(path.read_bytes())
            result = _measure(orthanc, folder, n, say)
            result.orthanc = f"Orthanc {orthanc.rest('GET', '/system').json().get('Version', '')}"
            return result
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)


def _measure(orthanc: Any, folder: Path, n: int, say: Callable[[str], None]) -> PacsBenchResult:
    from sqlalchemy import func, select

    from radloop.lab.synth.study_writer import STUDY_DATE
    from radloop.pacs.config import PacsConfig
    from radloop.pacs.outbox import queue_on_sign
    from radloop.pacs.poll import poll_once
    from radloop.pacs.send import send_pending
    from radloop.review.db import Draft, StudyRow
    from radloop.review.settings import settings_from_env
    from radloop.review.store import open_store
    from radloop.review.worker import DraftingWorker

    config = PacsConfig.from_env(orthanc.pacs_env() | {"RADLOOP_PACS_SEND_ON_SIGN": "1"})
    settings = settings_from_env(folder / "radloop", env={}, in_process_worker=False)
    store = open_store(settings)
    since = STUDY_DATE - datetime.timedelta(days=1)
    say("pulling (QIDO-RS, WADO-RS, ingest)")
    started = time.perf_counter()
    first = poll_once(store, config, since=since)
    pull_s = time.perf_counter() - started
    second = poll_once(store, config, since=since)
    with store.sessions() as session:
        stored = session.execute(select(func.count()).select_from(StudyRow)).scalar_one()
    fetched = first.fetched + second.fetched
    duplicates = len(fetched) - len(set(fetched)) + max(0, stored - len(set(fetched)))
    ids = list(first.added)
    say(f"drafting {len(ids)} studies with the builtin model")
    started = time.perf_counter()
    DraftingWorker(store).run_pending()
    draft_s = time.perf_counter() - started
    with store.sessions() as session:
        drafted = session.execute(select(func.count()).select_from(Draft)).scalar_one()
    queue_on_sign(store.sessions)
    say("signing")
    started = time.perf_counter()
    signed, not_signed = _sign_all(store, ids)
    sign_s = time.perf_counter() - started
    say("sending the signed reports (STOW-RS)")
    started = time.perf_counter()
    sent = [r for r in send_pending(store, config, limit=10 * n + 10) if r.state == "sent"]
    send_s = time.perf_counter() - started
    srs = _stored_srs(orthanc, folder / "sr-back")
    errors, lines = _dciodvfy(srs)
    store.close()
    return PacsBenchResult(
        studies=n,
        pulled=len(set(first.fetched)),
        duplicates_pulled=duplicates,
        drafted=int(drafted),
        signed=signed,
        sr_sent=len(sent),
        sr_stored=len(srs),
        sr_dciodvfy_errors=errors,
        seconds_per_study_pull=round(pull_s / max(1, len(first.fetched)), 4),
        pull_seconds=round(pull_s, 3),
        draft_seconds=round(draft_s, 3),
        sign_seconds=round(sign_s, 3),
        send_seconds=round(send_s, 3),
        instances_pulled=first.instances,
        refused=first.refused,
        not_signed=not_signed,
        dciodvfy_error_lines=lines[:20],
    )


def format_pacs_benchmark(result: PacsBenchResult) -> str:
    errors = (
        "not run (dciodvfy missing)"
        if result.sr_dciodvfy_errors is None
        else (str(result.sr_dciodvfy_errors))
    )
    lines = [
        f"PACS link against {result.orthanc} on loopback, {result.studies} synthetic studies",
        f"  pulled {result.pulled} ({result.instances_pulled} instances), duplicates "
        f"{result.duplicates_pulled}, {result.seconds_per_study_pull:.3f} s per study "
        f"(pull {result.pull_seconds:.1f} s, radloop's own time, no model)",
        f"  drafted {result.drafted} (builtin model, {result.draft_seconds:.1f} s), signed "
        f"{result.signed} ({result.sign_seconds:.1f} s)",
        f"  SR sent {result.sr_sent} ({result.send_seconds:.1f} s), in Orthanc "
        f"{result.sr_stored}, dciodvfy errors {errors}",
    ]
    lines += [f"    {line}" for line in result.dciodvfy_error_lines[:10]]
    lines += [f"  not signed {k}: {v}" for k, v in result.not_signed.items()]
    lines += [f"  refused {k}: {v}" for k, v in result.refused.items()]
    return "\n".join(lines)


@click.command("pacs")
@click.option("--studies", "n", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_pacs(n: int, as_json: bool) -> None:
    """Pull → draft → sign → SR back against Orthanc on loopback (needs orthanc,
    orthanc-dicomweb; dicom3tools for the SR check)."""
    result = run_pacs_benchmark(n, progress=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(format_pacs_benchmark(result))
