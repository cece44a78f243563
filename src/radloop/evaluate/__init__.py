"""Evaluation: the pre-deployment report for any model over a labelled dataset.

Dataset (a registry entry) → runner (model and safety layer as in production, one cached
prediction per case) → scorers (pure numpy with bootstrap intervals) → a ``MetricTable``
written as JSON and as one self-contained HTML report. See docs/evaluate.md.
"""

from radloop.evaluate.datasets import (
    DATASETS,
    Dataset,
    available_datasets,
    open_dataset,
    register_dataset,
)
from radloop.evaluate.errors import (
    DatasetError,
    EvaluationError,
    RunFolderError,
    UnknownDatasetError,
)
from radloop.evaluate.types import Case, Lesion, Prediction

__all__ = [
    "DATASETS",
    "Case",
    "Dataset",
    "DatasetError",
    "EvaluationError",
    "Lesion",
    "Prediction",
    "RunFolderError",
    "UnknownDatasetError",
    "available_datasets",
    "open_dataset",
    "register_dataset",
]
