"""The reference model's OOD reference: where its embeddings of training-like images lie.

The scope guard flags an image as out of distribution when the Mahalanobis distance of the
reference model's embedding to the embeddings of its training distribution is larger than
nearly all training-like images reach (:class:`radloop.safety.MahalanobisScorer`, Lee et al.,
NeurIPS 2018). The reference is fitted on synthetic studies of the three training site
profiles (``standard``, ``portable``, ``community``) drawn from :data:`OOD_SEED`, a seed used
nowhere else: two thirds fit the mean and the (Ledoit-Wolf) covariance, and the threshold is the
99th percentile of the scores of the other third (the fitting images' own scores are
optimistic). ``radloop fit-ood --model DIR`` writes it beside the weights as
``reference-ood.json``, where :class:`radloop.safety.ReferenceVerifier` finds it; the shipped
model carries one.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from radloop.safety.scope import MahalanobisScorer

__all__ = [
    "OOD_PROFILES",
    "OOD_QUANTILE",
    "OOD_SEED",
    "fit_ood",
    "fit_ood_reference",
    "write_ood_reference",
]

OOD_SEED = 990_101
OOD_PROFILES = ("standard", "portable", "community")
OOD_QUANTILE = 0.99


def fit_ood_reference(
    verifier: Any,
    work_dir: Path,
    *,
    n: int = 300,
    seed: int = OOD_SEED,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> tuple[MahalanobisScorer, dict[str, Any]]:
    """(scorer, provenance) from ``n`` synthetic training-like studies rendered in work_dir."""
    from radloop.lab.synth.study_writer import make_dataset
    from radloop.study import load_study

    if n < 6:
        raise ValueError(f"expected at least 6 studies to fit an OOD reference, got {n}")
    embeddings = []
    per = [n // len(OOD_PROFILES) + (i < n % len(OOD_PROFILES)) for i in range(len(OOD_PROFILES))]
    for offset, (profile, k) in enumerate(zip(OOD_PROFILES, per, strict=True)):
        out = work_dir / profile
        manifest_path = out / "manifest.json"
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        else:
            manifest = make_dataset(
                k, seed + offset, out, profile=profile, workers=workers, progress=progress
            )
        for entry in manifest["studies"]:
            output = verifier.verify(load_study(out / entry["path"] / "dicom"))
            if output.embedding is not None:
                embeddings.append(np.asarray(output.embedding, dtype=np.float64).ravel())
    if len(embeddings) < 6:
        raise ValueError(
            f"expected embeddings from the verifier for at least 6 studies, got {len(embeddings)}"
        )
    x = np.vstack(embeddings)
    held_out = np.arange(len(x)) % 3 == 2
    fitted = MahalanobisScorer.fit(x[~held_out])
    held_scores = np.array([fitted.score(row) for row in x[held_out]])
    threshold = float(np.quantile(held_scores, OOD_QUANTILE))
    provenance = {
        "verifier": verifier.verifier_id,
        "studies": len(x),
        "fitted_on": int((~held_out).sum()),
        "threshold_from": int(held_out.sum()),
        "quantile": OOD_QUANTILE,
        "seed": seed,
        "profiles": list(OOD_PROFILES),
        "embedding_dim": int(x.shape[1]),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return MahalanobisScorer(fitted.mean, fitted.precision, threshold), provenance


def write_ood_reference(
    model_dir: Path, scorer: MahalanobisScorer, provenance: dict[str, Any]
) -> Path:
    """Write ``reference-ood.json`` beside the model's weights (atomically)."""
    from radloop.models.builtin import OOD_NAME

    path = model_dir / OOD_NAME
    payload = {**scorer.to_dict(), "provenance": provenance}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return path


@click.command("fit-ood")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The reference model folder to add the OOD reference to (default: the shipped one).",
)
@click.option("--n", default=300, show_default=True, help="Synthetic training-like studies.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to render the studies (default: a temporary folder).",
)
@click.option("--workers", default=2, show_default=True, help="Rendering processes.")
def fit_ood(model_dir: Path | None, n: int, work_dir: Path | None, workers: int) -> None:
    """Fit the reference model's OOD reference and write it beside the weights.

    Renders N synthetic studies of the training site profiles (seed 990101, used nowhere
    else), embeds them with the model, fits a Mahalanobis reference on two thirds and sets the
    threshold at the 99th percentile of the other third. Needs the synth extra and its CT.
    """
    import tempfile

    from tqdm import tqdm

    from radloop.models.builtin import shipped_model_dir
    from radloop.safety.verifiers import ReferenceVerifier

    folder = model_dir or shipped_model_dir()
    verifier = ReferenceVerifier(folder)
    with tempfile.TemporaryDirectory(prefix="radloop-ood-") as scratch:
        bar = tqdm(total=n, desc="rendering", unit="study")

        def advance(k: int) -> None:
            bar.update(k)

        scorer, provenance = fit_ood_reference(
            verifier, work_dir or Path(scratch), n=n, workers=workers, progress=advance
        )
        bar.close()
    path = write_ood_reference(folder, scorer, provenance)
    click.echo(
        f"OOD reference for {provenance['verifier']}: {provenance['fitted_on']} studies fitted, "
        f"threshold {scorer.threshold:.2f} (99th percentile of {provenance['threshold_from']} "
        f"held-out studies) -> {path}"
    )
