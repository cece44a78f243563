"""``radloop bench evidence``: evidence from the drafting model, over HTTP, and what it costs.

(a) Plumbing. ``radloop serve-model`` runs as a subprocess on a free loopback port, once with
the ``mock`` backend (a scripted report, yes/no and side answers; it answers at once) and once
with a tiny transformers vision-language model the benchmark builds (random weights,
:mod:`radloop.lab.bench.tiny_vlm`). radloop reaches both through its ``openai`` backend, as a
site reaches vLLM. Each study is drafted, sampled, asked back and checked under each setting:
0, 3 and 5 sampled drafts without ask-back, ask-back without samples, and 5 samples with
ask-back (``full``). Reported per setting (``cost_per_study``): requests, prompt and
completion tokens as the server counts them, the seconds spent inside the model calls, the
wall seconds per study and radloop's own seconds (wall minus model calls). With the mock,
``sources_per_claim`` is the fewest evidence sources that gave a reading of one claim in the
``full`` setting (verifier, sample agreement, ask-back, token probability, second opinion),
and ``readings_missing`` lists any (claim, source) without one. The tiny model answers the
closed questions about the mock's claims (ask-back to another configured model): its P(yes)
from the top log-probabilities. The second opinion is the ``onnx`` verifier with a
random-weight DenseNet-121 (``radloop verifier import torchxrayvision``) where it imports.

``own_time_overhead`` is the bar "self-consistency and ask-back add at most 20 % to radloop's
own (non-model) time per study": radloop's own seconds per study in ``full`` over those in
``samples_0``, minus 1, against the mock server that answers at once. The model's time (the
calls, HTTP included) is reported apart.

(b) and (c) come from :mod:`radloop.lab.bench.evidence_calibration` (the calibration learning
curve on signed cases, the second opinion's domain gate on real films) when asked for.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

__all__ = ["SETTINGS", "bench_evidence", "run_evidence_plumbing"]

REPORT = (
    "FINDINGS:\nLungs: Consolidation in the right lower zone.\n"
    "Pleura: Small left pleural effusion. No pneumothorax.\n"
    "Heart and mediastinum: Normal heart size.\nBones: No fracture.\n"
    "IMPRESSION: Right lower zone consolidation. Small left pleural effusion."
)
SAMPLED = (
    "FINDINGS:\nLungs: Right basal consolidation.\nPleura: Left pleural effusion. "
    "No pneumothorax.\nHeart and mediastinum: Normal.\nBones: Normal.\n"
    "IMPRESSION: Consolidation on the right, left effusion."
)
ANSWERS = {
    "Answer yes or no": "yes",
    "side is the pleural effusion": "left",
    "side is the consolidation": "right",
}


@dataclass(frozen=True)
class Setting:
    name: str
    samples: int
    ask_back: bool


SETTINGS = (
    Setting("samples_0", 0, False),
    Setting("samples_3", 3, False),
    Setting("samples_5", 5, False),
    Setting("ask_back", 0, True),
    Setting("full", 5, True),
)
SOURCES = ("verifier", "samples", "ask_back", "token_probability", "second_opinion")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(model: str, options: Sequence[str], log: Path) -> Iterator[str]:
    """``radloop serve-model`` as a subprocess on a free port; its base URL until the block
    ends (then it is stopped)."""
    import httpx

    port = _free_port()
    command = [sys.executable, "-m", "radloop", "serve-model", "--model", model,
               "--port", str(port), *(a for o in options for a in ("--option", o))]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"serve-model exited with {process.returncode}: {tail}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve-model did not answer within 120 s")
            time.sleep(0.2)
        yield f"{url}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _studies(data: Path | None, n: int) -> list[Any]:
    """``n`` frontal films of ``data`` (the folder layout), else ``n`` in-memory phantoms."""
    import numpy as np

    from radloop.models.images import image_from_pixels
    from radloop.study import Series, Study

    if data is not None:
        from radloop.evaluate.datasets import open_dataset

        dataset = open_dataset(f"folder:{data}")
        frontal = [c for c in dataset.cases() if c.attributes.get("view") in ("PA", "AP")]
        return [dataset.load_study(c) for c in frontal[:n]]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        image = image_from_pixels(rng.random((256, 256)), uid=f"2.25.{i + 1}.1")
        out.append(Study(f"2.25.{i + 1}", (Series(f"2.25.{i + 1}.0", (image,)),)))
    return out


def _second_opinion(tmp: Path) -> tuple[Any, str | None]:
    """The random-weight DenseNet-121 as the ``onnx`` verifier, or why there is none."""
    try:
        import torch

        from radloop.safety import load_verifier
        from radloop.safety.verifier_cli import import_torchxrayvision
        from radloop.safety.xrv_densenet import XrvDenseNet
    except ImportError as error:
        return None, f"no second opinion here: {error}"
    torch.manual_seed(0)
    torch.save(XrvDenseNet().state_dict(), tmp / "weights.pt")
    summary = import_torchxrayvision(tmp / "weights.pt", tmp / "onnx")
    return load_verifier("onnx", sidecar=summary["sidecar"]), None


def _sources(numbers: Any) -> dict[str, bool]:
    return {
        "verifier": numbers.p_claim is not None,
        "samples": numbers.sample_agreement is not None,
        "ask_back": numbers.p_ask_yes is not None or numbers.p_ask_side is not None,
        "token_probability": numbers.token_probability is not None,
        "second_opinion": numbers.p_second_opinion is not None,
    }


def _run_setting(
    setting: Setting, studies: Sequence[Any], drafter: Any, asker: Any, verifier: Any,
    second: Any, *, max_tokens: int, top_logprobs: int,
) -> dict[str, Any]:  # fmt: skip
    from radloop.assist import Sampling, draft
    from radloop.models.base import Cost
    from radloop.safety import check
    from radloop.safety.askback import ask_back

    sampling = Sampling(setting.samples, 0.7)
    totals, walls, owns = Cost(), [], []
    claims: list[dict[str, bool]] = []
    for study in studies:
        started = time.perf_counter()
        drafted = draft(study, drafter, sampling=sampling, logprobs=True, max_tokens=max_tokens,
                        output="text")  # fmt: skip
        asked = None
        if setting.ask_back:
            asked = ask_back(drafted, study, asker, samples=setting.samples or 5,
                             temperature=0.7, top_logprobs=top_logprobs)  # fmt: skip
        checked = check(drafted, study, verifier, asked=asked, second_opinion=second)
        wall = time.perf_counter() - started
        cost = checked.draft.total_cost
        totals += cost
        walls.append(wall)
        owns.append(wall - cost.seconds)
        claims += [_sources(c.numbers) | {"positive": c.finding.is_positive}
                   for c in checked.checks if c.index is not None]  # fmt: skip
    n = len(studies)
    return {
        "requests": totals.requests / n,
        "prompt_tokens": totals.prompt_tokens / n,
        "completion_tokens": totals.completion_tokens / n,
        "model_seconds": round(totals.seconds / n, 5),
        "wall_seconds": round(statistics.mean(walls), 5),
        "own_seconds": round(statistics.mean(owns), 5),
        "claims": len(claims),
        "_claims": claims,
    }


def run_evidence_plumbing(
    *, data: Path | None = None, studies: int = 8, tiny_studies: int = 2, repeats: int = 3,
    transformers: bool = True, second_opinion: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Part (a): see the module docstring. ``repeats`` runs of the mock's settings, the
    median per setting (the own-time bar compares medians)."""
    from radloop.models import load_model
    from radloop.safety import load_verifier

    started = time.perf_counter()
    out: dict[str, Any] = {"studies": studies, "data": str(data) if data else "phantoms"}
    films = _studies(data, studies)
    verifier = load_verifier("reference")
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        second, why = _second_opinion(tmp) if second_opinion else (None, "not asked for")
        out["second_opinion"] = "onnx (random-weight DenseNet-121)" if second else why
        script = tmp / "mock.json"
        script.write_text(json.dumps({"replies": [REPORT, SAMPLED, REPORT], "answers": ANSWERS}))
        mock_url = stack.enter_context(served("mock", [f"replies_file={script}"], tmp / "m.log"))
        mock = stack.enter_context(load_model("openai", base_url=mock_url, max_concurrency=8))
        runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in SETTINGS}
        # Warm up (the verifier's session, the client's connections), then the settings in
        # turn, ``repeats`` times; the median of each.
        _run_setting(SETTINGS[-1], films[:1], mock, mock, verifier, second, max_tokens=256,
                     top_logprobs=5)  # fmt: skip
        for _ in range(repeats):
            for setting in SETTINGS:
                runs[setting.name].append(_run_setting(
                    setting, films, mock, mock, verifier, second, max_tokens=256,
                    top_logprobs=5,
                ))  # fmt: skip
        mock_costs = {name: _median(r) for name, r in runs.items()}
        full_claims = runs["full"][0]["_claims"]
        out["cost_per_study"] = {"mock": mock_costs}
        out.update(_sources_summary(full_claims, second is not None))
        base, full = mock_costs["samples_0"]["own_seconds"], mock_costs["full"]["own_seconds"]
        out["own_time_overhead"] = round(full / base - 1.0, 4) if base > 0 else None
        out["own_seconds_per_study"] = {"samples_0": base, "full": full}
        out["model_seconds_per_study"] = {
            "samples_0": mock_costs["samples_0"]["model_seconds"],
            "full": mock_costs["full"]["model_seconds"],
        }
        if transformers:
            out["cost_per_study"]["transformers"] = _tiny_part(
                tmp, stack, films[:tiny_studies], mock, verifier, second, out
            )
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def _tiny_part(
    tmp: Path, stack: ExitStack, films: Sequence[Any], mock: Any, verifier: Any, second: Any,
    out: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The tiny transformers model over HTTP: it drafts (0, 3, 5 samples) and answers the
    closed questions about the mock's claims."""
    from radloop.lab.bench.tiny_vlm import build_tiny_vlm
    from radloop.models import load_model

    try:
        checkpoint = build_tiny_vlm(tmp / "tiny-vlm")
    except ImportError as error:
        out["transformers_skipped"] = f"torch or transformers missing: {error}"
        return {}
    url = stack.enter_context(served(f"transformers/{checkpoint}", ["seed=0"], tmp / "t.log"))
    tiny = stack.enter_context(load_model("openai", base_url=url, max_concurrency=4))
    costs: dict[str, Any] = {}
    for setting in SETTINGS:
        drafter = mock if setting.ask_back else tiny
        result = _run_setting(setting, films, drafter, tiny, verifier, second, max_tokens=64,
                              top_logprobs=20)  # fmt: skip
        if setting.ask_back:  # the tiny model answers; the mock's draft request counts in
            result["drafted_by"] = "mock"
        costs[setting.name] = {k: v for k, v in result.items() if k != "_claims"}
        if setting.name == "full":
            positive = [c for c in result["_claims"] if c["positive"]]
            asked = sum(c["ask_back"] for c in positive)
            out["tiny_ask_back_readings"] = f"{asked}/{len(positive)} positive claims"
    return costs


def _median(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if not k.startswith("_")]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def _sources_summary(claims: Sequence[Mapping[str, bool]], with_second: bool) -> dict[str, Any]:
    """Over the positive claims (each is checked by every source valid for the film): the
    fewest sources that read one, and the sources that missed any; the same for the draft's
    negative statements (ask-back asks about a denied finding only when it is critical)."""
    sources = [s for s in SOURCES if with_second or s != "second_opinion"]
    out: dict[str, Any] = {"sources_expected": sources}
    for kind, chosen in (("", [c for c in claims if c["positive"]]),
                         ("negative_", [c for c in claims if not c["positive"]])):  # fmt: skip
        counts = [sum(c[s] for s in SOURCES) for c in chosen]
        out[f"{kind}sources_per_claim"] = min(counts) if counts else 0
        out[f"{kind}readings_missing"] = {
            s: sum(not c[s] for c in chosen) for s in sources if any(not c[s] for c in chosen)
        }
        out[f"{kind}claims"] = len(chosen)
    return out


@click.command("evidence")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Real films in the folder layout (realcxr-dev): the studies, "
              "and part (c)'s films; default: in-memory phantoms and no part (c).")  # fmt: skip
@click.option("--studies", type=click.IntRange(1), default=8, show_default=True)
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True)
@click.option("--no-transformers", is_flag=True, help="Leave out the tiny transformers model.")
@click.option(
    "--calibration/--no-calibration",
    default=False,
    show_default=True,
    help="Also part (b), the calibration learning curve (renders the lab's pools).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_evidence(
    data: Path | None, studies: int, repeats: int, no_transformers: bool, calibration: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Evidence from the drafting model over HTTP: readings per claim and cost per study."""
    result = run_evidence_plumbing(data=data, studies=studies, repeats=repeats,
                                   transformers=not no_transformers)  # fmt: skip
    try:
        from radloop.lab.bench import evidence_calibration as parts
    except ImportError:
        parts = None  # type: ignore[assignment]
    # Parts (b) and (c) keep their own detail; their bar keys are lifted to the top.
    if parts is not None and calibration:
        result["learning_curve"] = curve = parts.run_learning_curve()
        result.update({k: v for k, v in curve.items() if k.startswith("ece_after_")})
    if parts is not None and data is not None:
        result["second_opinion_gate"] = gate = parts.run_second_opinion_share(data)
        result["second_opinion_in_domain_share"] = gate["second_opinion_in_domain_share"]
    bars = {
        "sources_per_claim": result["sources_per_claim"] >= 4,
        "own_time_overhead": result["own_time_overhead"] is not None
        and result["own_time_overhead"] <= 0.20,
    }
    if "ece_after_1000" in result:
        bars["ece_after_1000"] = result["ece_after_1000"] <= 0.03
    if "second_opinion_in_domain_share" in result:
        bars["second_opinion_in_domain_share"] = result["second_opinion_in_domain_share"] >= 0.95
    result["bars"] = bars
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    click.echo(json.dumps(result, indent=1, default=str))
