"""Render lab studies and keep the trachea crop (fifth-session ETT experiment).

python render.py N SEED PROFILE OUT.npz [--with-line]: half the studies with an endotracheal
tube; with --with-line every study also has a central venous catheter.
"""
import sys, time
import numpy as np
from multiprocessing import Pool
from pathlib import Path

def job(args):
    seed, i, site, ett = args
    from radloop.synth.anatomy import find_source, load_anatomy
    from radloop.synth.lab import make_study
    global _anat
    try:
        _anat
    except NameError:
        _anat = load_anatomy(find_source())
    codes = (["endotracheal_tube"] if ett else []) + (["central_venous_catheter"] if LINE else [])
    st = make_study(_anat, seed, i, site=site, codes=codes)
    view, rv = next(iter(st.views.items()))
    img = rv.exposure.display.astype(np.float32)
    h, w = img.shape
    # fixed crop: upper 55 %, central 40 % of columns
    c = img[10:290, 154:358].copy()
    tip = None
    for f in st.truth["findings"]:
        if f["code"] == "endotracheal_tube" and f["presence"] == "present":
            tip = f.get("tip_distance_mm")
    ok = tip is not None
    return c, float(ett and ok), (tip if tip is not None else np.nan), img.shape, st.truth["images"][0].get("pixel_spacing_mm")

LINE = "--with-line" in sys.argv

if __name__ == "__main__":
    n, seed, site, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    t = time.time()
    with Pool(2) as pool:
        res = pool.map(job, [(seed, i, site, i % 2 == 0) for i in range(n)], chunksize=8)
    X = np.stack([r[0] for r in res]); y = np.array([r[1] for r in res]); tip = np.array([r[2] for r in res], dtype=np.float64)
    print("shape", res[0][3], "spacing", res[0][4], "pos", y.sum(), "of", n, "in", round(time.time()-t), "s")
    np.savez_compressed(out, X=X, y=y, tip=tip)
