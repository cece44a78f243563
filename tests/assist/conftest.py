"""Fixtures for the assist tests: the bundled sample study, a prior, a fake reference model."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from radloop.report import Finding
from radloop.study import Image, Study, load_study, sample_study_path


@pytest.fixture(scope="session")
def study() -> Study:
    return load_study(sample_study_path())


@pytest.fixture(scope="session")
def prior(study: Study) -> Study:
    series = tuple(
        replace(s, images=tuple(replace(i, sop_instance_uid=f"prior-{i.sop_instance_uid}")
                                for i in s.images))
        for s in study.series
    )  # fmt: skip
    return replace(
        study,
        study_instance_uid="1.2.3.prior",
        series=series,
        metadata=replace(study.metadata, study_date=datetime.date(2023, 1, 2)),
    )


class FakeReferenceModel:
    """A FindingsPredictor: what the reference model will be, with findings given per study."""

    def __init__(self, current: Sequence[Finding], prior: Sequence[Finding] = ()) -> None:
        self.current = tuple(current)
        self.prior = tuple(prior)

    @property
    def model_id(self) -> str:
        return "fake-reference"

    def predict_findings(self, images: Sequence[Image]) -> tuple[Finding, ...]:
        return self.prior if images[0].sop_instance_uid.startswith("prior-") else self.current


ReferenceFactory = Callable[..., FakeReferenceModel]


@pytest.fixture
def reference_model() -> ReferenceFactory:
    """``reference_model(current=[...], prior=[...])``: a fake FindingsPredictor."""
    return FakeReferenceModel
