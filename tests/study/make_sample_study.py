"""Build radloop's bundled sample study: a synthetic PA chest radiograph and its report.

Run ``python tests/study/make_sample_study.py`` to rewrite ``src/radloop/data/samples``. The
output is deterministic (fixed seed, UIDs derived from fixed text), and a test checks that the
bundled files match what this script builds. The patient is fictional.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    generate_uid,
)

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "radloop" / "data" / "samples"
SIZE = 256
SPACING_MM = 1.4  # 256 px x 1.4 mm = 36 cm, a typical chest field
BITS = 12

SAMPLE_REPORT = """\
EXAMINATION: Chest radiograph, single PA view.

INDICATION: 54-year-old woman with fever and shortness of breath. Check endotracheal tube
position.

COMPARISON: None.

FINDINGS:
Endotracheal tube tip is 4 cm above the carina.
There is patchy airspace opacity in the right lower lobe.
A 1.2 cm nodule is seen in the right upper lobe.
Small left pleural effusion with blunting of the left costophrenic angle.
No pneumothorax.
Heart size is normal. The mediastinal contours are unremarkable.
No acute osseous abnormality.

IMPRESSION:
1. Right lower lobe opacity, suspicious for pneumonia in the appropriate clinical setting.
2. Small left pleural effusion.
3. 1.2 cm right upper lobe nodule. Recommend CT chest for further characterisation.
4. Endotracheal tube tip 4 cm above the carina.
5. No pneumothorax.
"""


def _ellipse(
    y: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    cy: float,
    cx: float,
    ry: float,
    rx: float,
) -> npt.NDArray[np.float64]:
    return (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0).astype(np.float64)


def _blur(image: npt.NDArray[np.float64], passes: int = 3) -> npt.NDArray[np.float64]:
    """Repeated 3x3 box blur, close to a Gaussian, so edges look like anatomy."""
    for _ in range(passes):
        padded = np.pad(image, 1, mode="edge")
        total = np.zeros_like(image)
        rows, columns = image.shape
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                total += padded[dy : dy + rows, dx : dx + columns]
        image = total / 9.0
    return image


def chest_phantom(seed: int = 54) -> npt.NDArray[np.uint16]:
    """A 256 x 256 chest-like radiograph, higher = denser (brighter), in the radiographic
    convention: the patient's right is on the image's left."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1.0)
    image = np.full((SIZE, SIZE), 0.06)
    image = np.where(_ellipse(y, x, 0.60, 0.50, 0.58, 0.47) > 0, 0.50, image)  # body
    right_lung = _ellipse(y, x, 0.44, 0.30, 0.30, 0.15)
    left_lung = _ellipse(y, x, 0.44, 0.70, 0.30, 0.15)
    lungs = np.clip(right_lung + left_lung, 0, 1)
    image = np.where(lungs > 0, 0.16, image)
    for k in range(9):  # posterior ribs: gentle arcs across each lung
        centre = 0.14 + 0.065 * k + 0.9 * (np.abs(x - 0.5) - 0.05) ** 2
        image += 0.07 * lungs * (np.abs(y - centre) < 0.010)
    image += 0.10 * (np.abs(y - (0.13 + 0.10 * np.abs(x - 0.5))) < 0.012) * (np.abs(x - 0.5) < 0.3)
    heart = _ellipse(y, x, 0.62, 0.55, 0.13, 0.15)
    image = np.maximum(image, 0.58 * heart)
    image = np.where(np.abs(x - 0.5) < 0.035, np.maximum(image, 0.66), image)  # spine
    carina_row = 0.40
    trachea = (np.abs(x - 0.5) < 0.018) & (y < carina_row)
    image = np.where(trachea, 0.30, image)  # air column, lucent over the spine
    # Findings named in the report.
    image += 0.18 * right_lung * np.exp(-(((y - 0.62) / 0.06) ** 2 + ((x - 0.29) / 0.07) ** 2))
    effusion = left_lung * (y > 0.66 + 0.25 * (0.83 - x)) * (x > 0.60)
    image = np.where(effusion > 0, 0.46, image)
    nodule_radius = 12.0 / SPACING_MM / 2 / (SIZE - 1)  # 1.2 cm
    image += 0.22 * _ellipse(y, x, 0.27, 0.33, nodule_radius, nodule_radius)
    tip_row = carina_row - 40.0 / SPACING_MM / (SIZE - 1)  # 4 cm above the carina
    image = np.where((np.abs(x - 0.5) < 0.006) & (y < tip_row), 0.92, image)  # tube
    image = _blur(image)
    rng = np.random.default_rng(seed)
    image = image + rng.normal(0.0, 0.01, image.shape)
    full_scale = 2**BITS - 1
    scaled: npt.NDArray[np.uint16] = np.clip(np.rint(image * full_scale), 0, full_scale).astype(
        np.uint16
    )
    return scaled


def _uid(*parts: str) -> str:
    return str(generate_uid(entropy_srcs=["radloop sample study", *parts]))


def sample_dataset() -> Dataset:
    """The sample image as a DX For Presentation dataset (PS3.3 A.26), JPEG 2000 lossless."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = UID(_uid("image", "1"))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid("study")
    ds.SeriesInstanceUID = _uid("series", "1")
    ds.FrameOfReferenceUID = _uid("frame of reference")
    ds.PatientName = "SAMPLE^FICTIONAL"
    ds.PatientID = "RADLOOP-SAMPLE-0001"
    ds.PatientBirthDate = ""
    ds.PatientAge = "054Y"
    ds.PatientSex = "F"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240315"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "093000"
    ds.AccessionNumber = "SAMPLE0001"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "XR CHEST PA"
    ds.ReasonForTheRequestedProcedure = "Fever and shortness of breath; check ETT position"
    ds.Modality = "DX"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "radloop"
    ds.ManufacturerModelName = "synthetic chest phantom"
    ds.InstitutionName = "radloop sample hospital"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]  # rows toward the patient's left, columns toward feet
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ImagerPixelSpacing = [SPACING_MM, SPACING_MM]
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows = ds.Columns = SIZE
    ds.BitsAllocated = 16
    ds.BitsStored = BITS
    ds.HighBit = BITS - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 1900
    ds.WindowWidth = 3400
    ds.LossyImageCompression = "00"
    ds.PixelData = chest_phantom().tobytes()
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
