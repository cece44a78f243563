"""The report's plots, drawn with matplotlib's Agg backend and inlined as base64 PNG.

Reliability diagram, ROC per finding, subgroup forest plot, per-site bars with the OOD
score, hallucinations by error type: each is an ``<img>`` tag, so the HTML stays one file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

__all__ = ["NAMES", "draw_plots", "fmt"]

NAMES = {
    "macro_auroc": "macro AUROC",
    "sensitivity": "sensitivity (pooled)",
    "specificity": "specificity (pooled)",
    "f1": "F1 (micro)",
    "ece": "ECE (15 bins)",
    "brier": "Brier score",
    "hallucination_rate": "hallucination rate (false findings / claims)",
    "reports_with_hallucination": "reports with ≥ 1 false finding",
    "omission_rate": "omission rate (missed / present)",
    "reports_with_omission": "reports with ≥ 1 omission",
    "critical_miss_rate": "critical-finding miss rate",
    "error_rate_false_finding": "claims: false finding",
    "error_rate_wrong_side": "claims: wrong side",
    "error_rate_wrong_zone": "claims: wrong zone",
    "error_rate_inflated_size": "claims: inflated size",
    "drafts_failed": "drafts failed (degenerate output)",
    "drafts_abstained": "drafts abstained (film outside the model's domain)",
    "claims_supported": "positive claims supported",
    "claims_unsupported": "positive claims unsupported (flagged)",
    "claims_contradicted": "positive claims contradicted (flagged)",
    "claims_unverifiable": "positive claims unverifiable",
    "claims_not_checked": "positive claims not checked (no valid evidence)",
    "hallucination_rate_not_checked": "false findings reaching the reader not checked",
}


def fmt(value: Any, digits: int = 3) -> str:
    """A figure for a table cell: "–" for none, ``digits`` decimals, text escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _png(fig: Any, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _sites_alt(shift: Mapping[str, Any]) -> str:
    parts = []
    for site in sorted(shift):
        value = (shift[site].get("macro_auroc") or {}).get("value")
        parts.append(f"{site} {fmt(value, 2) if value is not None else 'undefined'}")
    return (
        "Bar charts per site: the draft's macro AUROC ("
        + "; ".join(parts)
        + ") and the mean out-of-distribution score."
    )


def draw_plots(table: Mapping[str, Any]) -> dict[str, str]:
    """Each plot as an inline <img>."""
    try:
        import matplotlib
    except ImportError:
        from radloop.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "evaluate", "The HTML report's plots") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
    for variant, colour, style in (("draft", "#1f77b4", "-"), ("safety", "#d62728", "--")):
        bins = table["calibration"][variant]
        if bins:
            ax.plot(
                [b["mean_probability"] for b in bins],
                [b["observed"] for b in bins],
                marker="o",
                ls=style,
                color=colour,
                label=variant,
            )
    ax.set(
        xlabel="predicted probability",
        ylabel="observed frequency",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Reliability diagram",
    )
    if ax.get_legend_handles_labels()[0]:  # a run with nothing labelled draws no curve
        ax.legend()
    out["reliability"] = _png(
        fig,
        "Reliability diagram: observed frequency against predicted probability, draft "
        "and with safety, against the diagonal of perfect calibration.",
    )

    roc = table.get("roc", {})
    if roc:
        fig, ax = plt.subplots(figsize=(5.5, 4.6))
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for code, curve in roc.items():
            if curve["fpr"]:
                auc = table["per_finding"][code]["draft"]["auroc"]["value"]
                ax.plot(curve["fpr"], curve["tpr"], lw=1.3, label=f"{code} ({fmt(auc, 2)})")
        ax.set(xlabel="1 − specificity", ylabel="sensitivity", title="ROC per finding")
        if ax.get_legend_handles_labels()[0]:  # no finding with both classes: no curve
            ax.legend(fontsize=7, loc="lower right")
        out["roc"] = _png(
            fig,
            "ROC curves per finding, sensitivity against 1 − specificity; the legend "
            "gives each finding's AUROC (also in the table above).",
        )

    rows: list[tuple[str, dict[str, Any]]] = []
    for feature, block in table["fairness"]["draft"].items():
        if feature == "min_group":
            continue
        for group, figures in block.get("groups", {}).items():
            rows.append((f"{feature}: {group} (n={figures['n']})", figures))
    if rows:
        fig, axes = plt.subplots(1, 2, figsize=(9, 0.32 * len(rows) + 1.2), sharey=True)
        for ax, metric in zip(axes, ("macro_auroc", "sensitivity"), strict=True):
            for k, (_, figures) in enumerate(rows):
                e = figures[metric]
                if e["value"] is None:
                    continue
                low = e["low"] if e["low"] is not None else e["value"]
                high = e["high"] if e["high"] is not None else e["value"]
                ax.errorbar(
                    e["value"],
                    k,
                    xerr=[[e["value"] - low], [high - e["value"]]],
                    fmt="o",
                    color="#1f77b4",
                    capsize=3,
                )
            overall = table["summary"]["draft"][metric]["value"]
            if overall is not None:
                ax.axvline(overall, color="#999", ls="--", lw=1)
            ax.set_title(NAMES[metric])
        axes[0].set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
        axes[0].invert_yaxis()
        out["forest"] = _png(
            fig,
            "Forest plot: macro AUROC and sensitivity per subgroup with 95 % intervals; "
            "the dashed line is the overall figure (the table below has every value).",
        )

    shift = table["shift"]["sites"]
    if shift:
        names = sorted(shift)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for k, site in enumerate(names):
            e = shift[site].get("macro_auroc") or {}
            if e.get("value") is None:
                axes[0].text(k, 0.02, "n/a", ha="center", fontsize=8, color="#555")
                continue
            low = e["low"] if e.get("low") is not None else e["value"]
            high = e["high"] if e.get("high") is not None else e["value"]
            axes[0].bar(k, e["value"], color="#1f77b4")
            axes[0].errorbar(
                k,
                e["value"],
                yerr=[[e["value"] - low], [high - e["value"]]],
                color="black",
                capsize=3,
            )
        axes[0].set(title="draft macro AUROC per site (n/a: undefined)", ylim=(0, 1))
        ood = [shift[s]["ood_mean"] or 0 for s in names]
        axes[1].bar(range(len(names)), ood, color="#ff7f0e")
        threshold = table.get("run", {}).get("ood_threshold")
        if threshold:
            axes[1].axhline(threshold, color="#d62728", ls="--", lw=1, label="OOD threshold")
            axes[1].legend(fontsize=8)
        axes[1].set(title="mean out-of-distribution score per site")
        for ax in axes:
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        out["sites"] = _png(fig, _sites_alt(shift))

    kinds = ["false_finding", "wrong_side", "wrong_zone", "inflated_size"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for offset, (variant, label) in enumerate(
        (("draft", "draft"), ("safety", "unflagged after safety"))
    ):
        vals = [table["summary"][variant][f"error_rate_{k}"]["value"] or 0 for k in kinds]
        ax.bar([i + 0.4 * offset for i in range(len(kinds))], vals, width=0.4, label=label)
    ax.set_xticks([i + 0.2 for i in range(len(kinds))], [k.replace("_", " ") for k in kinds])
    ax.set(ylabel="share of positive claims", title="Hallucinations by error type")
    ax.legend()
    out["hallucinations"] = _png(
        fig,
        "Bar chart: share of positive claims per error type (false finding, wrong side, "
        "wrong zone, inflated size), draft and unflagged after safety.",
    )
    return out
