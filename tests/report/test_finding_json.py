"""Finding.to_dict / Finding.from_dict: stored findings come back equal, bad objects are refused."""

import json

import pytest

from radloop.errors import InputError
from radloop.report import parse
from radloop.report.types import Evidence, Finding, Verdict


def test_parsed_findings_survive_json() -> None:
    text = (
        "Small left pleural effusion. 2 x 3 cm nodule in the right upper lobe, increased. "
        "Endotracheal tube tip 4 cm above the carina. No pneumothorax."
    )
    findings = parse(text)
    assert len(findings) >= 3
    for f in findings:
        back = Finding.from_dict(json.loads(json.dumps(f.to_dict())))
        assert back == f
        assert back.evidence == f.evidence


def test_fields_that_do_not_compare_survive_too() -> None:
    f = Finding(
        "pneumothorax",
        probability=0.83,
        verdict=Verdict.UNSUPPORTED,
        source="builtin",
        evidence=Evidence("pneumothorax", 0, 12),
    )
    back = Finding.from_dict(f.to_dict())
    assert (back.probability, back.verdict, back.source, back.evidence) == (
        0.83,
        Verdict.UNSUPPORTED,
        "builtin",
        Evidence("pneumothorax", 0, 12),
    )


def test_objects_without_a_code_are_refused() -> None:
    with pytest.raises(InputError, match="code"):
        Finding.from_dict({"presence": "present"})
