"""The reference model's card: ``card.md`` filled in from the sidecars and ONNX files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from radloop.lab.training.lungfields.card import lung_fields_section, real_domain_paragraph
from radloop.models.reference.runtime import MIN_RELIABLE_AUROC

__all__ = ["refresh_model_card", "render_model_card"]


def refresh_model_card(out: Path) -> None:
    """Rewrite ``out/MODEL_CARD.md`` where ``out`` holds a whole-image network (after a crop
    network was trained beside it)."""
    main = out / "reference.json"
    if main.is_file() and (out / "reference.onnx").is_file():
        card = render_model_card(json.loads(main.read_text()), out / "reference.onnx")
        (out / "MODEL_CARD.md").write_text(card)


def render_model_card(sidecar: dict[str, Any], onnx_path: Path) -> str:
    """The model card (``card.md``) filled in from a sidecar and its ONNX file."""
    from importlib.resources import files

    template = (
        files("radloop.lab.training.reference").joinpath("card.md").read_text(encoding="utf-8")
    )
    training, validation = sidecar["training"], sidecar["validation"]
    devices_path = onnx_path.parent / "devices.json"
    devices = json.loads(devices_path.read_text()) if devices_path.is_file() else None
    lungs_path = onnx_path.parent / "lungs.json"
    lungs = json.loads(lungs_path.read_text()) if lungs_path.is_file() else None
    newest = lungs or devices or sidecar
    return template.format(
        devices_section="\n".join(
            section
            for section in (
                _devices_section(devices, onnx_path.parent / "devices.onnx"),
                _lungs_section(lungs, onnx_path.parent / "lungs.onnx"),
                lung_fields_section(onnx_path.parent),
            )
            if section
        ),
        devices_note=(
            "Tubes and lines are read by the device network instead (above)."
            if devices
            else "This folder has no device network, so they are never reported."
        )
        + (
            " Nodules and rib fractures are read by the lung network (above)."
            if lungs
            else " This folder has no lung network."
        ),
        real_domain=textwrap.fill(real_domain_paragraph(onnx_path.parent), 95),
        version=newest["version"],
        parameters=f"{sidecar.get('parameters', 0) / 1e6:.2f} M",
        onnx_mb=f"{onnx_path.stat().st_size / 1e6:.1f}",
        input_size=sidecar["input"]["size"],
        field_mm=sidecar["input"]["field_mm"],
        mm_per_px=sidecar["input"]["field_mm"] / sidecar["input"]["size"],
        heatmap_size=sidecar["heatmap_size"],
        findings=", ".join(f.replace("_", " ") for f in sidecar["findings"]),
        embedding=training["widths"][-1],
        n_train=training["n_train"],
        data_seed=training["data_seed"],
        profiles=", ".join(training["profiles"]),
        n_images=training["n_images"],
        n_val_images=training["n_val_images"],
        val_percent=round(100 * training["val_fraction"]),
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        learning_rate=training["learning_rate"],
        seed=training["seed"],
        threads=training["threads"],
        torch=training["torch"],
        precision=training.get("precision", "float32"),
        data_minutes=round(training["data_seconds"] / 60, 1),
        train_minutes=round(training["train_seconds"] / 60, 1),
        macro_auroc=validation["macro_auroc"],
        zone_accuracy=validation["zone_exact_accuracy"],
        view_accuracy=validation["view_accuracy"],
        regression_mae=", ".join(f"{k} {v}" for k, v in validation["regression_mae"].items()),
        auroc=", ".join(f"{k.replace('_', ' ')} {v}" for k, v in validation["auroc"].items()),
    )


def _crop_geometry(sidecar: dict[str, Any]) -> tuple[dict[str, float], float]:
    """A crop network's crop (fractions of the field) and its input's mm per pixel."""
    crop = sidecar["input"]["crop_of_field"]
    rows = sidecar["input"]["shape"][0]
    return crop, sidecar["input"]["field_mm"] * (crop["bottom"] - crop["top"]) / rows


def _lungs_section(lungs: dict[str, Any] | None, onnx_path: Path) -> str:
    """The model card's section on the lung network (empty without one)."""
    if lungs is None:
        return ""
    training, validation = lungs["training"], lungs["validation"]
    crop, mm_per_px = _crop_geometry(lungs)
    by_size = ", ".join(f"{k} {v}" for k, v in validation["auroc_by_size"]["nodule"].items())
    auroc = validation["auroc"]
    reported = [
        name
        for code, name in (("nodule", "Nodules"), ("rib_fracture", "rib fractures"))
        if (auroc.get(code) or 0.0) >= MIN_RELIABLE_AUROC
    ]
    paragraphs = [
        f"## The lung network (version {lungs['version']})",
        "Lung nodules (6–26 mm in the lab) and healing rib fractures are read by one small "
        f"network with two output channels ({lungs['parameters']:,} parameters; `lungs.onnx`, "
        f"{onnx_path.stat().st_size / 1e6:.2f} MB) from a fixed crop of both lungs — rows "
        f"{crop['top']:.0%}–{crop['bottom']:.0%}, columns {crop['left']:.0%}–"
        f"{crop['right']:.0%} of the field — at {lungs['input']['shape'][0]} × "
        f"{lungs['input']['shape'][1]} pixels (about {mm_per_px:.2f} mm per pixel): the crop "
        "minus its 41-pixel box mean, scaled per image, six convolutions to two logits per "
        "8-pixel cell; each finding's probability is its most object-like cell's after Platt "
        "scaling. The caliper measures a nodule about its heatmap's peak; a fracture's zones "
        "are read about its peak. What it sees of a fracture is the lab's healing callus, a "
        "spindle of new bone 8–14 mm across on the lateral arc of a 4th–9th rib: the break "
        "alone is not visible on the lab's 2 mm grid, and an acute fracture without callus "
        "would not be found.",
        f"Training: nodules and fractures inserted into {training['n_train']} lab studies "
        f"rendered without either ({training['variants']} exposures each; 0–2 nodules, "
        "a sphere's chord length times its attenuation above lung, and independently 0–2 "
        "fractures drawn and rendered as the lab draws them, added to the line integral "
        "before the lab's exposure, blur, noise and tone curve), plus "
        f"{training['n_lab']} lab studies with the lab's own nodules and fractures; seed "
        f"{training['data_seed']}, profiles {', '.join(training['profiles'])}, frontal only. "
        f"{training['epochs']} epochs on 64-pixel patches with hard negatives (AdamW, lr "
        f"{training['learning_rate']}, one-cycle); rendering "
        f"{training['data_seconds'] / 60:.1f} min, training "
        f"{training['train_seconds'] / 60:.1f} min on 2 CPU threads.",
        f"Validation ({validation['n_images']} further lab studies with the lab's own "
        f"objects; {validation['n_nodules']} with a nodule, {validation['n_fractures']} of the "
        f"{validation['n_read']['rib_fracture']} it reads for ribs with a fracture; training "
        f"profiles): nodule AUROC {auroc['nodule']} (by diameter {by_size}); rib fracture "
        f"AUROC {auroc['rib_fracture']} "
        f"({validation['auroc_all_images']['rib_fracture']} with the images it does not "
        "read for ribs). Nodules are read on images of about 1.1 mm per pixel or finer, rib "
        "fractures only on images of about 0.86 mm per pixel or finer (not the lab's "
        "portable profile); elsewhere they are not assessed. Small nodules behind the heart, "
        "the diaphragm or a rib crossing are missed, as on real films. "
        + (
            f"{' and '.join(reported)} are reported."
            if reported
            else "Below the reporting bar, neither is reported."
        )
        + (
            ""
            if len(reported) == 2
            else f" Types under validation AUROC {MIN_RELIABLE_AUROC} are never reported or "
            "used to verify a claim."
        ),
    ]
    return "\n\n".join(textwrap.fill(p, 95) for p in paragraphs) + "\n"


def _devices_section(devices: dict[str, Any] | None, onnx_path: Path) -> str:
    """The model card's section on the device network (empty without one)."""
    if devices is None:
        return ""
    training, validation = devices["training"], devices["validation"]
    crop, mm_per_px = _crop_geometry(devices)
    auroc = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in validation["auroc"].items())
    mae = ", ".join(f"{k} {v} mm" for k, v in validation["regression_mae"].items())
    paragraphs = [
        f"## The device network (version {devices['version']})",
        "Endotracheal tubes and central venous catheters are 2–10 mm objects that the "
        "whole-image network, at its resolution, does not learn. A second small network "
        f"({devices['parameters']:,} parameters; `devices.onnx`, "
        f"{onnx_path.stat().st_size / 1e6:.2f} MB) reads a fixed crop of the detector field — "
        f"rows {crop['top']:.0%}–{crop['bottom']:.0%} of its height, columns "
        f"{crop['left']:.0%}–{crop['right']:.0%} of its width (trachea, carina, superior vena "
        f"cava) — at {devices['input']['shape'][0]} × {devices['input']['shape'][1]} pixels "
        f"(about {mm_per_px:.2f} mm per pixel). It subtracts a 15-pixel box mean, runs four "
        "convolution blocks and predicts, per device, a logit per 16-pixel cell (trained on the "
        "devices' masks; the study's probability is the most device-like cell's after Platt "
        "scaling fitted on the validation split, and the cells are the device's heatmap) and "
        "the tip's distance from the carina (per-cell regression weighted by where the device "
        "is). Its probabilities, tip distances and heatmaps replace the whole-image network's "
        "for these two types.",
        f"Training: {training['n_train']} further synthetic studies (seed "
        f"{training['data_seed']}, profiles {', '.join(training['profiles'])}, frontal images "
        "only), each with the lab's random findings minus devices and then, in turn, a tube, a "
        "catheter, both or neither; the last "
        f"{round(100 * training['val_fraction'])}% of the studies for validation. "
        f"{training['epochs']} epochs, batch {training['batch_size']}, AdamW (lr "
        f"{training['learning_rate']}, one-cycle), gamma, contrast, noise, left-right flips "
        f"and shifts; rendering {training['data_seconds'] / 60:.1f} min, training "
        f"{training['train_seconds'] / 60:.1f} min on 2 CPU threads.",
        f"Validation (held-out studies, training profiles): AUROC {auroc}; tip distance MAE "
        f"{mae}. The crop is fixed in the detector field: an image framed far from the lab's "
        "framing puts the trachea outside it, and the network then sees no tube. It reads "
        "only images fine enough for it (the crop's source at least 70 % of its pixels, about "
        "1.0 mm per pixel or finer at the 360 mm field): on coarser ones, where it called "
        "catheters on most device-free studies, tubes and lines are not assessed and never "
        "reported.",
    ]
    return "\n\n".join(textwrap.fill(p, 95) for p in paragraphs) + "\n"
