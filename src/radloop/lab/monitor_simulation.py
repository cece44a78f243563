"""A simulated deployment: synthetic studies → draft → safety check → simulated reader → sign-off.

Rendering is the slow part (the synthetic lab makes about 10 images/s), so each site profile
gets a *pool* of studies rendered once and cached on disk: every pool study is rendered by
``radloop.lab.synth``, read back from DICOM, drafted by the reference model (``builtin``), checked
by ``radloop.safety.check`` with the ``reference`` verifier, and kept with its truth, its image
statistics and the reference model's embedding. Streams then resample pool studies with fresh
identifiers and times, so thousands of studies cost milliseconds each. The draft is a pure
function of the image, so drafting a resampled study again would give the same draft.

The out-of-distribution score is the Mahalanobis distance of the embedding from a separate
pool of ``standard``-profile studies (``radloop.safety.MahalanobisScorer``), the scope guard's
scorer, fitted here because the shipped model carries none.

The simulated reader corrects drafts toward the truth: it removes a false finding unless it
wrongly accepts it (``accept_rate``, lower when the guard flagged the claim), adds a finding the
draft missed unless it misses it too (``miss_rate``), and rewrites a right finding with wrong
details (side, zones, size) as the truth says with ``correct_rate``. A site-profile change
mid-stream (``standard`` → ``portable``: a bedside unit; → ``community``: a CR clinic) is the
shift the drift monitor must catch.

Everything here is synthetic: the images are rendered from one CT and the model is trained on
such images only. Nothing it produces is a diagnosis.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import click
import numpy as np

from radloop.errors import InputError
from radloop.monitor.agreement import match_findings
from radloop.monitor.cases import FlagOutcome, ImageStats, SignedCase, image_stats
from radloop.report import write
from radloop.report.types import Finding, Presence

__all__ = [
    "DEFAULT_CACHE",
    "POOL_SCHEMA",
    "Pool",
    "PoolStudy",
    "ReaderConfig",
    "StreamConfig",
    "load_pools",
    "read_as_reader",
    "simulate",
    "simulate_command",
]

POOL_SCHEMA = "radloop.monitor/pool-v1"
DEFAULT_CACHE = Path.home() / ".cache" / "radloop" / "monitor"
POOL_SEEDS = {"standard": 990_001, "portable": 990_002, "community": 990_003,
              "enhanced": 990_004}  # fmt: skip
OOD_FIT_SEED = 990_100
POOL_SIZE = 160
OOD_FIT_SIZE = 80
IMAGE_SIZE = 256
PUBLIC_NOTICE = (
    "Synthetic studies drafted by radloop's reference model (trained on synthetic images only); "
    "the reader is simulated. Not a diagnosis."
)


@dataclass(frozen=True)
class PoolStudy:
    """One rendered, drafted and checked study of a pool."""

    key: str
    profile: str
    age: int | None
    sex: str | None
    view: str | None
    manufacturer: str | None
    institution: str | None
    model: str
    truth: tuple[Finding, ...]
    draft_findings: tuple[Finding, ...]
    draft_text: str
    flags: tuple[tuple[str, str], ...]  # (finding code, reason) of flagged draft claims
    image_stats: ImageStats
    embedding: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "profile": self.profile,
            "age": self.age,
            "sex": self.sex,
            "view": self.view,
            "manufacturer": self.manufacturer,
            "institution": self.institution,
            "model": self.model,
            "truth": [f.to_dict() for f in self.truth],
            "draft_findings": [f.to_dict() for f in self.draft_findings],
            "draft_text": self.draft_text,
            "flags": [list(f) for f in self.flags],
            "image_stats": self.image_stats.to_dict(),
            "embedding": [round(v, 5) for v in self.embedding],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolStudy:
        return cls(
            key=str(data["key"]),
            profile=str(data["profile"]),
            age=data.get("age"),
            sex=data.get("sex"),
            view=data.get("view"),
            manufacturer=data.get("manufacturer"),
            institution=data.get("institution"),
            model=str(data["model"]),
            truth=tuple(Finding.from_dict(f) for f in data["truth"]),
            draft_findings=tuple(Finding.from_dict(f) for f in data["draft_findings"]),
            draft_text=str(data["draft_text"]),
            flags=tuple((str(c), str(r)) for c, r in data["flags"]),
            image_stats=ImageStats(**{k: float(v) for k, v in data["image_stats"].items()}),
            embedding=tuple(float(v) for v in data["embedding"]),
        )


@dataclass(frozen=True)
class Pool:
    """The studies of one site profile, each with its out-of-distribution score."""

    profile: str
    studies: tuple[PoolStudy, ...]
    ood_scores: tuple[float, ...]


def _render_and_draft(
    profile: str, n: int, seed: int, size: int, workers: int, anatomy_cache: Path,
    progress: Callable[[int], None] | None,
) -> list[PoolStudy]:  # fmt: skip
    from radloop.assist import draft
    from radloop.lab.synth import truth_findings
    from radloop.lab.synth.study_writer import make_dataset
    from radloop.models import load_model
    from radloop.safety import check, load_verifier
    from radloop.study import load_study

    model = load_model("builtin")
    verifier = load_verifier("reference")
    out: list[PoolStudy] = []
    with tempfile.TemporaryDirectory(prefix="radloop-monitor-pool-") as scratch:
        root = Path(scratch)
        manifest = make_dataset(n, seed, root, profile=profile, size=size, workers=workers,
                                cache_dir=anatomy_cache, progress=progress)  # fmt: skip
        for entry in manifest["studies"]:
            folder = root / entry["path"]
            truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
            study = load_study(folder / "dicom")
            checked = check(draft(study, model), study, verifier)
            frontal = next(
                (im for im in study.images if (im.view_position or "").upper() in ("PA", "AP")),
                study.images[0],
            )
            embedding = model.read([frontal]).embedding  # type: ignore[attr-defined]
            meta = study.metadata
            out.append(
                PoolStudy(
                    key=f"{profile}-{seed}-{entry['study_id']}",
                    profile=profile,
                    age=None if meta.patient_age is None else int(meta.patient_age),
                    sex=meta.patient_sex if meta.patient_sex in ("M", "F") else None,
                    view=frontal.view_position,
                    manufacturer=meta.manufacturer,
                    institution=meta.institution,
                    model=checked.draft.model_id,
                    truth=truth_findings(truth),
                    draft_findings=checked.findings,
                    draft_text=checked.text,
                    flags=tuple(
                        (f.finding.code, "; ".join(f.reasons) or f.verdict)
                        for f in checked.flags
                        if not f.possible_omission
                    ),
                    image_stats=image_stats(frontal.pixels),
                    embedding=tuple(float(v) for v in np.asarray(embedding).ravel()),
                )
            )
    return out


@lru_cache(maxsize=1)
def _pool_tag() -> str:
    """The package version and the drafting model's id and sidecar, hashed: new weights (e.g.
    the reference model's device network) draft a new pool instead of reusing the old one."""
    from radloop import __version__
    from radloop.models import load_model

    model = load_model("builtin")
    sidecar = json.dumps(getattr(model, "sidecar", {}), sort_keys=True)
    key = f"{POOL_SCHEMA}|{__version__}|{model.model_id}|{sidecar}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _pool_file(cache: Path, profile: str, n: int, seed: int, size: int) -> Path:
    return cache / f"pool-{profile}-{seed}-{n}-{size}-{_pool_tag()}.json"


def _cached_pool(
    cache: Path, profile: str, n: int, seed: int, size: int, workers: int,
    progress: Callable[[int], None] | None,
) -> list[PoolStudy]:  # fmt: skip
    path = _pool_file(cache, profile, n, seed, size)
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") == POOL_SCHEMA:
            return [PoolStudy.from_dict(s) for s in data["studies"]]
    cache.mkdir(parents=True, exist_ok=True)
    studies = _render_and_draft(profile, n, seed, size, workers, cache / "anatomy", progress)
    records = [s.to_dict() for s in studies]
    payload = {"schema": POOL_SCHEMA, "profile": profile, "seed": seed, "size": size,
               "studies": records}  # fmt: skip
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
    partial.replace(path)
    # What was cached (embeddings rounded), so a fresh pool equals the same pool read back.
    return [PoolStudy.from_dict(json.loads(json.dumps(r))) for r in records]


def load_pools(
    profiles: Sequence[str],
    *,
    cache: Path = DEFAULT_CACHE,
    n: int = POOL_SIZE,
    ood_fit_n: int = OOD_FIT_SIZE,
    size: int = IMAGE_SIZE,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Pool]:
    """The pool of each profile (rendered and cached on first use), with OOD scores.

    The OOD scorer is fitted on a separate pool of ``ood_fit_n`` ``standard`` studies.
    """
    from radloop.lab.synth import PROFILES
    from radloop.safety import MahalanobisScorer

    unknown = [p for p in profiles if p not in PROFILES or p not in POOL_SEEDS]
    if unknown:
        raise InputError(f"site profiles among {', '.join(POOL_SEEDS)}", ", ".join(unknown))
    fit = _cached_pool(cache, "standard", ood_fit_n, OOD_FIT_SEED, size, workers, progress)
    scorer = MahalanobisScorer.fit(np.array([s.embedding for s in fit]))
    pools = {}
    for profile in dict.fromkeys(profiles):
        studies = _cached_pool(cache, profile, n, POOL_SEEDS[profile], size, workers, progress)
        scores = tuple(scorer.score(np.array(s.embedding)) for s in studies)
        pools[profile] = Pool(profile, tuple(studies), scores)
    return pools


@dataclass(frozen=True)
class ReaderConfig:
    """How the simulated reader corrects a draft (probabilities per finding)."""

    miss_rate: float = 0.15  # a truth finding the draft omitted that the reader misses too
    accept_rate: float = 0.10  # a false draft finding signed anyway
    flagged_accept_rate: float = 0.03  # ... when the safety layer flagged it
    correct_rate: float = 0.90  # a right finding with wrong details corrected to the truth

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not 0.0 <= value <= 1.0:
                raise InputError(f"reader {name} in [0, 1]", repr(value))


def _signed_version(found: Finding) -> Finding:
    # What a reader signs carries no model probability, verdict or source.
    return found.with_(probability=None, verdict=None, source=None, evidence=None)


def read_as_reader(
    study: PoolStudy, reader: ReaderConfig, rng: np.random.Generator
) -> tuple[tuple[Finding, ...], tuple[FlagOutcome, ...]]:
    """The findings the simulated reader signs for a pool study, and the fate of each flag."""
    flagged = {code for code, _ in study.flags}
    pairs, false_claims, _ = match_findings(study.draft_findings, study.truth)
    matched_truth = {id(t) for _, t in pairs}
    signed: list[Finding] = []
    fate: dict[str, str] = {}
    for draft_found, truth_found in pairs:
        details_wrong = (
            draft_found.side != truth_found.side
            or set(draft_found.zones) != set(truth_found.zones)
            or draft_found.presence is not Presence.PRESENT
        )
        if details_wrong and rng.random() < reader.correct_rate:
            signed.append(_signed_version(truth_found))
            fate.setdefault(draft_found.code, "edited")
        else:
            signed.append(_signed_version(draft_found))
            fate.setdefault(draft_found.code, "kept")
    for found in false_claims:
        rate = reader.flagged_accept_rate if found.code in flagged else reader.accept_rate
        if rng.random() < rate:
            signed.append(_signed_version(found))
            fate.setdefault(found.code, "kept")
        else:
            fate.setdefault(found.code, "rejected")
    for truth_found in study.truth:
        if id(truth_found) not in matched_truth and rng.random() >= reader.miss_rate:
            signed.append(_signed_version(truth_found))
    positive = {f.code for f in signed}
    negatives = [
        _signed_version(f)
        for f in study.draft_findings
        if not f.is_positive and f.code not in positive
    ]
    flags = tuple(
        FlagOutcome(code, reason, fate.get(code, "rejected")) for code, reason in study.flags
    )
    return (*signed, *negatives), flags


@dataclass(frozen=True)
class StreamConfig:
    """A stream of studies: its length, seed, site, pace and an optional profile change."""

    n: int = 2000
    seed: int = 0
    base: str = "standard"
    shift_profile: str | None = None
    shift_at: int | None = None
    shift_fraction: float = 1.0  # share of studies from the new profile after the shift
    start: datetime.datetime = datetime.datetime(2025, 1, 6, 8, 0, tzinfo=datetime.UTC)
    per_day: int = 40
    site: str = "site-A"

    def __post_init__(self) -> None:
        if self.n < 1 or self.per_day < 1:
            raise InputError("a stream of at least 1 study and 1 study a day",
                             f"n={self.n}, per_day={self.per_day}")  # fmt: skip
        if not 0.0 < self.shift_fraction <= 1.0:
            raise InputError("shift_fraction in (0, 1]", repr(self.shift_fraction))
        if (self.shift_profile is None) != (self.shift_at is None):
            raise InputError(
                "shift_profile and shift_at together (or neither)",
                f"shift_profile={self.shift_profile}, shift_at={self.shift_at}",
            )


def simulate(
    pools: Mapping[str, Pool],
    stream: StreamConfig,
    reader: ReaderConfig | None = None,
) -> Iterator[SignedCase]:
    """Signed cases of a simulated stream, in the order received."""
    reader = reader or ReaderConfig()
    needed = [stream.base, *([stream.shift_profile] if stream.shift_profile else [])]
    missing = [p for p in needed if p not in pools]
    if missing:
        raise InputError(f"pools for {', '.join(needed)}", f"pools for {', '.join(pools)}")
    rng = np.random.default_rng(stream.seed)
    gap = datetime.timedelta(days=1) / stream.per_day
    for i in range(stream.n):
        shifted = stream.shift_at is not None and i >= stream.shift_at
        if shifted and stream.shift_fraction < 1.0:
            shifted = bool(rng.random() < stream.shift_fraction)
        pool = pools[stream.shift_profile if shifted and stream.shift_profile else stream.base]
        j = int(rng.integers(len(pool.studies)))
        study = pool.studies[j]
        received = stream.start + i * gap + datetime.timedelta(minutes=float(rng.uniform(0, 5)))
        signed_at = received + datetime.timedelta(minutes=float(rng.exponential(45.0)) + 2.0)
        signed, flags = read_as_reader(study, reader, rng)
        unchanged = signed == tuple(_signed_version(f) for f in study.draft_findings)
        yield SignedCase(
            study_id=f"sim-{stream.seed}-{i:06d}",
            received_at=received,
            signed_at=signed_at,
            age=study.age,
            sex=study.sex,
            site=stream.site,
            manufacturer=study.manufacturer,
            view=study.view,
            model=study.model,
            draft_findings=study.draft_findings,
            signed_findings=signed,
            draft_text=study.draft_text,
            signed_text=study.draft_text if unchanged else write(signed),
            flags=flags,
            ood_score=pool.ood_scores[j],
            image_stats=study.image_stats,
        )


@click.command("simulate")
@click.option("--n", "n", type=int, default=2000, show_default=True, help="Studies to stream.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--base", default="standard", show_default=True, help="Site profile at the start.")
@click.option(
    "--shift-profile",
    default=None,
    help="Site profile to switch to mid-stream (portable, community, enhanced).",
)
@click.option("--shift-at", type=int, default=None, help="Study index where the switch happens.")
@click.option(
    "--miss-rate",
    type=float,
    default=0.15,
    show_default=True,
    help="Share of draft omissions the simulated reader misses too.",
)
@click.option(
    "--accept-rate",
    type=float,
    default=0.10,
    show_default=True,
    help="Share of false draft findings the reader signs anyway (unflagged).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSONL file of signed cases to write.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the rendered study pools (default ~/.cache/radloop/monitor).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a summary as one JSON object.")
def simulate_command(
    n: int, seed: int, base: str, shift_profile: str | None, shift_at: int | None,
    miss_rate: float, accept_rate: float, out: Path, cache: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Stream synthetic studies through draft, a simulated reader and sign-off into a JSONL.

    Studies are rendered by the synthetic lab and drafted by the reference model (trained on
    synthetic images only); the reader is simulated. Nothing here is a diagnosis.
    """
    from tqdm import tqdm

    from radloop.monitor.cases import write_cases

    if shift_profile is not None and shift_at is None:
        shift_at = n // 2
    stream = StreamConfig(n=n, seed=seed, base=base, shift_profile=shift_profile,
                          shift_at=shift_at)  # fmt: skip
    reader = ReaderConfig(miss_rate=miss_rate, accept_rate=accept_rate)
    profiles = [base, *([shift_profile] if shift_profile else [])]
    with tqdm(unit="study", desc="render pools (cached after the first run)",
              disable=as_json) as bar:  # fmt: skip

        def advance(k: int) -> None:
            bar.update(k)

        pools = load_pools(profiles, cache=cache or DEFAULT_CACHE, progress=advance)
    written = write_cases(tqdm(simulate(pools, stream, reader), total=n, unit="study",
                               desc="stream", disable=as_json), out)  # fmt: skip
    result = {
        "written": written,
        "out": str(out),
        "seed": seed,
        "base": base,
        "shift_profile": shift_profile,
        "shift_at": shift_at,
        "notice": PUBLIC_NOTICE,
    }
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"wrote {written} signed cases to {out}")
        click.secho(PUBLIC_NOTICE, fg="yellow")
