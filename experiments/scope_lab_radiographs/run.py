"""Experiment (twelfth session, not shipped): the synthetic lab's radiographs in the scope
classifier's frontal and lateral classes. Figures in docs/benchmarks.md (scope).

    python run.py --seed 20260101 --out /tmp/scopelab                 # ~8 min on 2 cores
    python run.py --seed 20260101 --out /tmp/scopebal --balanced
    radloop bench scope --classifier /tmp/scopelab --json

Renders 600 lab studies (seed 990303, profiles standard / portable / community in turn, 256
px; the standard profile adds a lateral), shrinks each radiograph to at most 192 px, and adds
each to its class after a random crop (0.75-1.0), a mirror image half the time and the
nuisances every class gets (`scope_synth._nuisance`), from its own random stream, so that the
recipe's own images are unchanged. `--balanced` takes as many projection frontals and
laterals away as lab ones come in (frontal 600 + 600, lateral 1000 + 200), so that the class
totals stay those of the shipped recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

LAB_SEED = 990303  # used nowhere else
PROFILES = ("standard", "portable", "community")


def _render(job: tuple[int, str]) -> list[tuple[np.ndarray, bool]]:
    from radloop.safety.scope_synth import _resize
    from radloop.synth import load_anatomy, make_study

    index, profile = job
    study = make_study(load_anatomy(), LAB_SEED, index, site=profile, size=256)
    out = []
    for truth, rendered in zip(study.truth["images"], study.views.values(), strict=True):
        shown = rendered.exposure.display.astype(np.float32)
        h, w = shown.shape
        f = 192 / max(h, w)
        out.append((_resize(shown, (round(h * f), round(w * f))), truth["view"] == "LL"))
    return out


def lab_radiographs(n: int) -> list[tuple[np.ndarray, bool]]:
    started = time.time()
    with Pool(2) as pool:
        rendered = [x for r in pool.imap(_render, [(i, PROFILES[i % 3]) for i in range(n)], 4)
                    for x in r]  # fmt: skip
    print(f"rendered {n} lab studies in {time.time() - started:.0f} s", flush=True)
    return rendered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--studies", type=int, default=600)
    parser.add_argument("--balanced", action="store_true")
    args = parser.parse_args()

    from radloop.safety import scope_synth as ss
    from radloop.safety import scope_train as st

    lab = lab_radiographs(args.studies)
    config = st.ScopeTrainConfig(seed=args.seed)
    if args.balanced:
        config = dataclasses.replace(
            config, counts={"frontal": 600, "lateral": 1000, "ct": 1200, "other": 400}
        )
    original = st._made

    def made(config_, counts, seed, angles, cache):  # type: ignore[no-untyped-def]
        base = original(config_, counts, seed, angles, cache)
        if counts != config_.counts:  # the validation set stays as it is
            return base
        rng = np.random.default_rng([seed, 2])
        extra, labels = [], []
        for image, lateral in lab:
            x = ss._crop(image, rng, (0.75, 1.0))
            if rng.random() < 0.5:
                x = x[:, ::-1]
            x = ss._nuisance(np.ascontiguousarray(x), rng, config_.size)
            extra.append((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))
            labels.append(1 if lateral else 0)
        return ss.SynthSet(
            np.concatenate([base.images, np.stack(extra)]),
            np.concatenate([base.labels, np.asarray(labels, np.int64)]),
        )

    st._made = made
    st.train_scope(config, args.out, cache=Path("/tmp/scope-cache"), log=print)


if __name__ == "__main__":
    main()
