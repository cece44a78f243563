"""Ask-back: closed questions about each claim, read from token log-probabilities where the
backend gives them and from sampled answers otherwise; the readings reach the claim's
numbers and the reader's lines, and the cost joins the draft's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from safety_builders import make_draft, make_study

from radloop.assist import draft as draft_report
from radloop.models import Generation, JsonSchema, TokenLogprob, VisionLanguageModel
from radloop.models.mock import MockModel, MockRequest
from radloop.report import Finding, Presence
from radloop.safety import TableVerifier, check
from radloop.safety.askback import ASK_BACK_VERSION, ask_back, questions, token_probability
from radloop.study import Image
from radloop.vocabulary import Side

LAB = {"domains": [{"name": "synthetic-lab", "images": "the test's phantom",
                    "findings": ["pleural_effusion", "nodule", "pneumothorax"]}]}  # fmt: skip
TABLE = TableVerifier(
    {"1.2.3": {"presence": {"pleural_effusion": 0.9, "nodule": 0.3, "pneumothorax": 0.1}}},
    competence=LAB,
)


class LogprobModel(VisionLanguageModel):
    """Answers with a first token whose top log-probabilities are set per question word."""

    def __init__(self, tops: dict[str, list[tuple[str, float]]]) -> None:
        self.tops = tops
        self.prompts: list[str] = []
        self.max_concurrency = 2

    @property
    def model_id(self) -> str:
        return "logprob-model"

    supports_logprobs = True

    def _generate(
        self, images: Sequence[Image], prompt: str, *, n: int, temperature: float,
        max_tokens: int, logprobs: bool, top_logprobs: int, system: str | None,
        json_schema: JsonSchema | None,
    ) -> list[Generation]:  # fmt: skip
        self.prompts.append(prompt)
        key = next(k for k in self.tops if k in prompt)
        top = tuple(self.tops[key][:top_logprobs])
        token = TokenLogprob(top[0][0], top[0][1], top)
        return [Generation(top[0][0], self.model_id, logprobs=(token,))] * n


def test_questions_cover_positive_claims_sides_and_denied_critical_findings() -> None:
    asked = questions([
        Finding("pleural_effusion", side=Side.LEFT),
        Finding("nodule", presence=Presence.UNCERTAIN),
        Finding("pneumothorax", presence=Presence.ABSENT),
        Finding("nodule", presence=Presence.ABSENT),  # not critical: not asked
    ])  # fmt: skip
    assert [(q.index, q.kind, q.wanted) for q in asked] == [
        (0, "presence", "yes"), (0, "side", "left"), (1, "presence", "yes"),
        (2, "presence", "yes"),
    ]  # fmt: skip
    assert asked[0].text == "Is there a pleural effusion on this radiograph? Answer yes or no."
    assert asked[1].text == (
        "On which side is the pleural effusion: left, right or both? Answer with one word."
    )
    assert ASK_BACK_VERSION


def test_p_yes_is_read_from_the_first_tokens_top_logprobs_normalised_over_yes_and_no() -> None:
    model = LogprobModel({
        "Is there": [("Yes", math.log(0.6)), (" yes", math.log(0.2)), ("No", math.log(0.1)),
                     ("Maybe", math.log(0.05))],
        "which side": [("left", math.log(0.5)), ("right", math.log(0.3)),
                       ("both", math.log(0.1)), ("bilateral", math.log(0.1))],
    })  # fmt: skip
    draft = make_draft([Finding("pleural_effusion", side=Side.LEFT)])
    asked = ask_back(draft, make_study(), model)
    reading = asked.readings[0]
    assert reading.p_yes == pytest.approx(0.8 / 0.9)
    assert reading.p_side == pytest.approx(0.5)
    assert reading.methods == ("presence:logprobs", "side:logprobs")
    assert asked.cost.requests == 0  # this backend reports no usage
    assert asked.cost.seconds > 0


def test_without_logprobs_the_answers_are_sampled() -> None:
    answers = iter(["yes", "no", "Yes.", "yes", "unclear"])

    def reply(request: MockRequest) -> str:
        return next(answers) if "Answer yes or no" in request.prompt else "report"

    model = MockModel(reply)
    model.supports_logprobs = False
    draft = make_draft([Finding("nodule")])
    asked = ask_back(draft, make_study(), model, samples=5, temperature=0.7)
    # 3 yes, 1 no, 1 neither: P(yes) = 3/4.
    assert asked.readings[0].p_yes == pytest.approx(0.75)
    assert asked.readings[0].methods == ("presence:samples",)
    assert [(r.n, r.temperature) for r in model.requests] == [(5, 0.7)]
    assert asked.cost.requests == 1


def test_an_answer_that_is_neither_gives_no_reading() -> None:
    model = MockModel("The image shows lungs.")
    asked = ask_back(make_draft([Finding("nodule")]), make_study(), model)
    assert asked.readings == {}
    assert asked.numbers(0) == {}


def test_the_readings_reach_the_claims_numbers_lines_and_the_drafts_cost() -> None:
    model = LogprobModel({"Is there": [("yes", math.log(0.9)), ("no", math.log(0.1))]})
    draft = make_draft([Finding("nodule")])
    asked = ask_back(draft, make_study(), model)
    checked = check(draft, make_study(), TABLE, asked=asked)
    numbers = checked.checks[0].numbers
    assert numbers.p_ask_yes == pytest.approx(0.9)
    assert checked.checks[0].to_dict()["readings"] == ["Verifier: 0.30", "Ask-back: P(yes) 0.90"]
    assert "ask_back" in checked.to_dict()["cost"]


def test_questions_run_concurrently_within_the_backends_cap() -> None:
    import threading
    import time

    running = {"now": 0, "most": 0}
    lock = threading.Lock()

    def reply(request: MockRequest) -> str:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        time.sleep(0.05)
        with lock:
            running["now"] -= 1
        return "left" if "which side" in request.prompt else "yes"

    model = MockModel(reply)
    model.max_concurrency = 3  # type: ignore[attr-defined]
    findings = [Finding("nodule"), Finding("pleural_effusion", side=Side.LEFT),
                Finding("pneumothorax", side=Side.RIGHT), Finding("mass")]  # fmt: skip
    asked = ask_back(make_draft(findings), make_study(), model)
    assert running["most"] == 3
    assert len(model.requests) == 6 and len(asked.readings) == 4
    assert (asked.readings[1].p_side, asked.readings[2].p_side) == (1.0, 0.0)


def test_token_probability_is_the_geometric_mean_over_the_claims_words() -> None:
    reply = "Small left pleural effusion. No pneumothorax."
    model = MockModel(reply)
    drafted = draft_report(make_study(), model, logprobs=True, output="text")
    effusion = next(f for f in drafted.findings if f.code == "pleural_effusion")
    assert effusion.evidence is not None
    generation = drafted.generations[0]
    assert generation.logprobs is not None
    words = reply.split()
    start = len(reply[: effusion.evidence.start].split())
    end = len(reply[: effusion.evidence.end].split())
    expected = math.exp(sum(t.logprob for t in generation.logprobs[start:end]) / (end - start))
    assert token_probability(generation, effusion) == pytest.approx(expected)
    assert len(words) == len(generation.logprobs)
    assert token_probability(None, effusion) is None
    assert token_probability(Generation(reply, "m"), effusion) is None


def test_radloop_draft_samples_asks_back_and_prints_each_claims_readings(tmp_path: Path) -> None:
    import json as jsonlib

    from click.testing import CliRunner

    from radloop.safety.assist_cli import draft as draft_command
    from radloop.study import sample_study_path

    script = tmp_path / "script.json"
    script.write_text(jsonlib.dumps({
        "replies": ["Small left pleural effusion. No pneumothorax."],
        "answers": {"Answer yes or no": "yes", "which side": "left"},
    }))  # fmt: skip
    args = [str(sample_study_path()), "--model", "mock", "--option", f"replies_file={script}",
            "--samples", "3"]  # fmt: skip
    printed = CliRunner().invoke(draft_command, args)
    assert printed.exit_code == 0, printed.output
    assert "Samples: 3/3 agree · Ask-back: P(yes) 1.00 · P(left) 1.00" in printed.output
    payload = jsonlib.loads(CliRunner().invoke(draft_command, [*args, "--json"]).output)
    effusion = next(c for c in payload["checks"] if c["finding"]["code"] == "pleural_effusion")
    assert "Samples: 3/3 agree" in effusion["readings"]
    assert payload["cost"]["total"]["requests"] == 1 + 1 + 3  # report, samples, 3 questions
    off = CliRunner().invoke(draft_command, [*args[:-2], "--samples", "0", "--no-ask-back",
                                             "--json"])  # fmt: skip
    assert jsonlib.loads(off.output)["cost"]["total"]["requests"] == 1
