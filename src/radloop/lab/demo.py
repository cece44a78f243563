"""The demo store: synthetic studies rendered by the lab, drafted, checked and on the worklist.

Four studies: an urgent one (a large pneumothorax), a prior/current pair of one patient, a
routine study, and one whose draft carries a fabricated finding (a 2.3 cm right upper lobe
mass that is not in the image), written by a scripted stand-in for an MLLM so that the
safety layer has a hallucination to flag. Everything else is drafted by the reference model.
None of it is a patient.
"""

from __future__ import annotations

import datetime
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from radloop.review.accounts import create_user, hash_password
from radloop.review.db import Job, User
from radloop.review.ingest import ingest_path
from radloop.review.store import Store

__all__ = ["DEMO_USER", "HALLUCINATION", "DemoLogin", "fill_demo"]

DEMO_USER = "demo"
HALLUCINATION = "A 2.3 cm mass in the right upper lobe."
_SEED = 2024


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str


def demo_login(store: Store) -> DemoLogin:
    """Create the demo radiologist, or give it a fresh password; returns the credentials."""
    password = secrets.token_urlsafe(9)
    with store.sessions() as session:
        user = session.execute(select(User).where(User.username == DEMO_USER)).scalar_one_or_none()
        if user is None:
            create_user(session, DEMO_USER, password, "radiologist", "Dr Demo Reader")
        else:
            user.password_hash, user.role, user.active = (
                hash_password(password),
                "radiologist",
                True,
            )
        session.commit()
    return DemoLogin(DEMO_USER, password)


def _render(out: Path, size: int | None) -> dict[str, Path]:
    """Write the demo studies as DICOM with the synthetic lab; folder by role."""
    from radloop.lab.synth.anatomy import find_source, load_anatomy
    from radloop.lab.synth.lab import make_study
    from radloop.lab.synth.pairs import INTERVAL_DAYS, make_pair
    from radloop.lab.synth.study_writer import STUDY_DATE, write_study

    anatomy = load_anatomy(find_source(), cache_dir=out / "cache")
    folders: dict[str, Path] = {}
    urgent = make_study(anatomy, _SEED, 1, codes=["pneumothorax"], size=size)
    folders["urgent"] = out / "urgent"
    write_study(urgent, folders["urgent"], seed=_SEED)
    prior, current = make_pair(anatomy, _SEED, 2, size=size)
    folders["prior"], folders["current"] = out / "pair" / "prior", out / "pair" / "current"
    prior_date = STUDY_DATE - datetime.timedelta(days=INTERVAL_DAYS)
    write_study(prior, folders["prior"], seed=_SEED, study_date=prior_date, patient_key="p2")
    write_study(current, folders["current"], seed=_SEED, patient_key="p2")
    routine = make_study(anatomy, _SEED, 3, codes=[], size=size)
    folders["routine"] = out / "routine"
    write_study(routine, folders["routine"], seed=_SEED)
    invented = make_study(anatomy, _SEED, 4, codes=["cardiomegaly"], size=size)
    folders["hallucination"] = out / "hallucination"
    write_study(invented, folders["hallucination"], seed=_SEED)
    return folders


def _scripted_reply(folder: Path) -> str:
    """A fluent draft: the study's true findings plus one fabricated claim."""
    import json

    from radloop.lab.synth import truth_findings
    from radloop.report import write

    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    text = write(list(truth_findings(truth)))
    return text.replace("Lungs: ", f"Lungs: {HALLUCINATION} ", 1)


def fill_demo(
    store: Store, *, size: int | None = 512, progress: Callable[[str], None] = print
) -> dict[str, str]:
    """Render, ingest and draft the demo studies; role → study id. Idempotent per store."""
    from radloop.models.mock import MockModel
    from radloop.review.worker import DraftingWorker, draft_study
    from radloop.safety import load_verifier

    ids: dict[str, str] = {}
    worker = DraftingWorker(store)
    with tempfile.TemporaryDirectory(prefix="radloop-demo-") as scratch:
        progress("rendering synthetic studies with the lab (not patients)…")
        folders = _render(Path(scratch), size)
        for role in ("prior", "current", "routine", "hallucination", "urgent"):
            result = ingest_path(store, folders[role] / "dicom")
            if result.added:
                ids[role] = result.added[0]
        if "hallucination" in ids:
            study_id = ids["hallucination"]
            with store.sessions() as session:
                session.execute(update(Job).where(Job.study_id == study_id).values(state="done"))
                session.commit()
            model = MockModel(
                _scripted_reply(folders["hallucination"]),
                model="demo-scripted-mllm (fabricates one finding on purpose)",
            )
            verifier = load_verifier(store.settings.verifier)
            draft_study(store, study_id, model, verifier, calibrator=worker.calibrator)
    progress("drafting with the reference model and checking with the safety layer…")
    worker.run_pending()
    return ids


def demo_content(store: Store, *, progress: Callable[[str], None] = print) -> DemoLogin:
    """The workstation's demo (``radloop serve --demo``, through the ``radloop.demo`` entry
    point): the synthetic studies drafted and checked, and the demo radiologist's login."""
    fill_demo(store, progress=progress)
    return demo_login(store)
