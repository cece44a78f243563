"""Study ingestion: DICOM, PNG and JPEG files, folders and zips into ``Study`` objects, with
header-first size limits, typed errors for bad input and PS3.15 Annex E de-identification.

    >>> from radloop.study import load_study, sample_study_path
    >>> study = load_study(sample_study_path())
    >>> study.images[0].pixels.shape
    (256, 256)
"""

from radloop.study.deid import deidentify, deidentify_dataset
from radloop.study.loader import (
    EmptyStudyError,
    MultipleStudiesError,
    dicom_files,
    load_files,
    load_image,
    load_studies,
    load_study,
)
from radloop.study.metadata import parse_age_string
from radloop.study.sample import sample_report_path, sample_study_path
from radloop.study.types import (
    ClinicalContext,
    ContextItem,
    ContextKind,
    Image,
    IngestLimits,
    PatientSex,
    Series,
    SpacingSource,
    Study,
    StudyMetadata,
)

__all__ = [
    "ClinicalContext",
    "ContextItem",
    "ContextKind",
    "EmptyStudyError",
    "Image",
    "IngestLimits",
    "MultipleStudiesError",
    "PatientSex",
    "Series",
    "SpacingSource",
    "Study",
    "StudyMetadata",
    "deidentify",
    "deidentify_dataset",
    "dicom_files",
    "load_files",
    "load_image",
    "load_studies",
    "load_study",
    "parse_age_string",
    "sample_report_path",
    "sample_study_path",
]
