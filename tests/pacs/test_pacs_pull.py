"""Pulling from a real PACS (Orthanc): QIDO-RS then WADO-RS, each study once, through the
workstation's one ingestion path and its limits."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from pacskit import corrupt_instance, sample_instance
from pydicom.uid import generate_uid
from sqlalchemy import func, select

SINCE = datetime.date(2024, 1, 1)


def _counts(store: Any) -> dict[str, int]:
    from radloop.pacs.tables import PacsSeen
    from radloop.review.db import ImageRow, Job, StudyRow

    with store.sessions() as session:
        counted = {
            name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in (("studies", StudyRow), ("images", ImageRow), ("jobs", Job))
        }
        counted["seen"] = session.execute(select(func.count()).select_from(PacsSeen)).scalar_one()
    return counted


def _left_on_disk(store: Any) -> dict[str, list[str]]:
    root = store.data_dir
    return {
        folder: sorted(p.name for p in (root / folder).iterdir())
        if (root / folder).is_dir()
        else []
        for folder in ("incoming", "originals")
    }


def test_a_poll_takes_new_chest_radiographs_once(
    orthanc: Any, pacs_config: Any, store: Any
) -> None:
    from radloop.pacs.poll import poll_once
    from radloop.pacs.tables import PacsSeen

    wanted = [generate_uid() for _ in range(2)]
    for i, uid in enumerate(wanted):
        orthanc.upload(sample_instance(uid, patient=f"P{i}", date=datetime.date(2024, 3, 1 + i)))
    # A second image of the first study, in its own series.
    orthanc.upload(sample_instance(wanted[0], patient="P0", date=datetime.date(2024, 3, 1)))
    # Not pulled: another modality, another body part, a study dated before the search.
    orthanc.upload(sample_instance(modality="CT", body_part="CHEST"))
    orthanc.upload(sample_instance(modality="DX", body_part="HAND"))
    orthanc.upload(sample_instance(date=datetime.date(2023, 6, 1)))

    first = poll_once(store, pacs_config, since=SINCE)
    assert sorted(first.fetched) == sorted(wanted)
    assert first.found == 2 and first.instances == 3 and not first.refused and not first.failed
    assert len(first.added) == 2
    assert _counts(store) == {"studies": 2, "images": 3, "jobs": 2, "seen": 2}

    again = poll_once(store, pacs_config, since=SINCE)
    assert again.fetched == [] and again.added == [] and again.skipped == 2
    assert _counts(store) == {"studies": 2, "images": 3, "jobs": 2, "seen": 2}
    with store.sessions() as session:
        seen = list(session.execute(select(PacsSeen)).scalars())
    assert {(s.state, s.source) for s in seen} == {("fetched", "qido-rs")}
    assert {s.study_id for s in seen} == set(first.added)
    status = _status(store, orthanc.pacs_env())
    assert status["seen"] == {"fetched": 2} and status["outbox"] == {}
    assert [p["fetched"] for p in status["polls"]] == [0, 2]  # newest first
    assert status["settings"]["DICOMweb credentials"] == "user radloop, password set"
    assert orthanc.password not in json.dumps(status)


def _status(store: Any, env: dict[str, str]) -> dict[str, Any]:
    """``radloop pacs status --json`` of the store."""
    from click.testing import CliRunner

    from radloop.cli import main

    clean = {k: None for k in os.environ if k.startswith("RADLOOP_")}
    result = CliRunner().invoke(
        main,
        ["pacs", "status", "--json", "--data-dir", str(store.data_dir)],
        env={**clean, **env},
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_a_poll_follows_on_from_the_last_one(orthanc: Any, pacs_config: Any, store: Any) -> None:
    from radloop.pacs.poll import default_since, poll_once

    today = datetime.date.today()
    assert default_since(store, pacs_config, today) == today - datetime.timedelta(days=1)
    orthanc.upload(sample_instance(date=today))
    result = poll_once(store, pacs_config)  # no --since: from the look-back before today
    assert (
        len(result.fetched) == 1
        and result.since == (today - datetime.timedelta(days=1)).isoformat()
    )
    assert default_since(store, pacs_config) == today - datetime.timedelta(days=1)


def test_a_study_already_on_the_worklist_is_not_fetched(
    orthanc: Any, pacs_config: Any, store: Any, tmp_path: Path
) -> None:
    from radloop.pacs.poll import poll_once
    from radloop.review.ingest import ingest_path

    uid = generate_uid()
    data = sample_instance(uid)
    orthanc.upload(data)
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "IM0001.dcm").write_bytes(data)
    ingest_path(store, upload)
    result = poll_once(store, pacs_config, since=SINCE)
    assert result.found == 1 and result.fetched == [] and result.skipped == 1
    assert _counts(store)["studies"] == 1


def test_the_ingestion_limits_refuse_a_pulled_study_and_nothing_is_half_written(
    orthanc: Any, pacs_config: Any, make_store: Any
) -> None:
    from radloop.pacs.poll import poll_once
    from radloop.study import IngestLimits

    limits = IngestLimits(max_file_bytes=100_000, max_study_bytes=150_000)
    store = make_store(limits=limits)
    big, broken, fine = generate_uid(), generate_uid(), generate_uid()
    orthanc.upload(sample_instance(big, patient="BIG"))  # about 240 kB: over both limits
    cut_short = corrupt_instance(broken, patient="BROKEN")
    assert len(cut_short) < limits.max_file_bytes
    orthanc.upload(cut_short)  # reads as DICOM, its image does not decode
    orthanc.upload(_small_good_instance(fine))

    result = poll_once(store, pacs_config, since=SINCE)
    assert set(result.refused) == {big, broken}, result.refused
    assert result.fetched == [fine]
    # The typed errors of the ingestion path, as an upload would get them.
    assert "expected a study of at most 150,000 bytes" in result.refused[big]
    assert "JPEG 2000" in result.refused[broken] or "decode" in result.refused[broken]
    assert _counts(store) == {"studies": 1, "images": 1, "jobs": 1, "seen": 3}
    left = _left_on_disk(store)
    assert left["incoming"] == [] and len(left["originals"]) == 1  # the good study's only

    # A refused study is settled: the next poll does not fetch it again.
    again = poll_once(store, pacs_config, since=SINCE)
    assert again.refused == {} and again.fetched == [] and again.skipped == 3


def _small_good_instance(study_uid: str) -> bytes:
    """A sample instance taken down to 128 px, uncompressed (about 33 kB)."""
    import io

    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(io.BytesIO(sample_instance(study_uid, patient="FINE")))
    ds.decompress()
    pixels = ds.pixel_array[::4, ::4].copy()
    ds.PixelData = pixels.tobytes()
    ds.Rows, ds.Columns = pixels.shape
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_pacs_that_is_down_fails_the_study_for_a_later_poll(
    orthanc: Any, pacs_config: Any, store: Any
) -> None:
    import dataclasses

    from radloop.pacs.poll import poll_once
    from radloop.pacs.web import PacsError

    wrong = dataclasses.replace(pacs_config, dicomweb_url=orthanc.url + "/no-such-dicom-web")
    try:
        poll_once(store, wrong, since=SINCE)
    except PacsError as error:
        assert "QIDO-RS" in str(error) and "404" in str(error)
    else:
        raise AssertionError("expected a PacsError")
    orthanc.upload(sample_instance())
    assert len(poll_once(store, pacs_config, since=SINCE).fetched) == 1


def test_a_study_still_arriving_in_the_pacs_is_taken_whole_once_it_has_settled(
    orthanc: Any, pacs_config: Any, store: Any
) -> None:
    """The first poll that finds a study only records it; a poll takes it when its series
    and instance counts have stayed the same for the settle time, so a second image stored
    between two polls is fetched with the first."""
    import dataclasses
    import time

    from radloop.pacs.poll import poll_once
    from radloop.pacs.tables import PacsSeen

    config = dataclasses.replace(pacs_config, poll_settle_s=1.0)
    uid = generate_uid()
    orthanc.upload(sample_instance(uid, patient="P0", date=datetime.date(2024, 3, 1)))
    first = poll_once(store, config, since=SINCE)
    assert first.settling == [uid] and not first.fetched and _counts(store)["studies"] == 0
    with store.sessions() as session:
        assert session.get(PacsSeen, uid).state == "settling"  # type: ignore[union-attr]

    orthanc.upload(sample_instance(uid, patient="P0", date=datetime.date(2024, 3, 1)))
    time.sleep(1.2)
    changed = poll_once(store, config, since=SINCE)  # a new series since: wait again
    assert changed.settling == [uid] and not changed.fetched
    soon = poll_once(store, config, since=SINCE)  # unchanged, but not for 1 s yet
    assert soon.settling == [uid] and not soon.fetched

    time.sleep(1.2)
    taken = poll_once(store, config, since=SINCE)
    assert taken.fetched == [uid] and taken.instances == 2 and not taken.settling
    assert _counts(store)["images"] == 2
    with store.sessions() as session:
        assert session.get(PacsSeen, uid).state == "fetched"  # type: ignore[union-attr]
    assert poll_once(store, config, since=SINCE).skipped == 1
