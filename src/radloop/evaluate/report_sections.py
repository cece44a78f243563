"""Parts of the eval report that say things in words: the scope guard's outcomes (right for
zero), which sites have no AUROC and why, who a fairness gap compares, and a table of
contents with an anchor on every section."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["gap_groups", "scope_html", "site_words", "with_contents"]


def _slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", html.unescape(re.sub(r"<[^>]+>", "", title)).lower())
    base = base.strip("-") or "section"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def with_contents(body: str) -> tuple[str, str]:
    """``body`` with an id on every <h2>, and a table of contents linking to each."""
    taken: set[str] = set()
    links: list[str] = []

    def anchor(match: re.Match[str]) -> str:
        slug = _slug(match.group(1), taken)
        links.append(f'<li><a href="#{slug}">{match.group(1)}</a></li>')
        return f'<h2 id="{slug}">{match.group(1)}</h2>'

    body = re.sub(r"<h2>(.*?)</h2>", anchor, body)
    nav = (
        '<nav aria-labelledby="contents"><h2 id="contents">Contents</h2>'
        f"<ol>{''.join(links)}</ol></nav>"
    )
    return nav, body


def gap_groups(gap: Mapping[str, Any]) -> str:
    """Who is compared with whom: the best group (the reference) against the worst one."""
    better, worse = str(gap["better_group"]), str(gap["worse_group"])
    if gap.get("tied") or better == worse:
        return "every group equal (no gap)"
    return html.escape(f"{worse} against {better} (best)")


def site_words(table: Mapping[str, Any]) -> str:
    """Which sites have no macro AUROC, and why, in words."""
    sites = table["shift"]["sites"]
    missing = {
        s: (e.get("macro_auroc") or {}).get("undefined_because")
        for s, e in sites.items()
        if (e.get("macro_auroc") or {}).get("value") is None
    }
    if not missing:
        return ""
    said = "; ".join(f"{html.escape(s)}: {html.escape(str(why))}" for s, why in missing.items())
    whole = (
        "at no site" if len(missing) == len(sites) else f"at {len(missing)} of {len(sites)} sites"
    )
    return (
        f"<p class=notice>The draft's macro AUROC is undefined {whole} (AUROC needs a "
        f"positive and a negative case of a finding): {said}.</p>"
    )


def scope_html(table: Mapping[str, Any]) -> str:
    """The scope guard's outcomes, with the expected-refusal figures said right for zero."""
    scope = table["scope"]
    out = ""
    if scope.get("unavailable"):
        out += (
            f"<p class=gap>The scope guard did not run on {scope['unavailable']} case(s): "
            f"{html.escape(str(scope['unavailable_reason']))}</p>"
        )
    if scope.get("unavailable") == table["n_cases"]:
        return out
    outcomes = ", ".join(f"{html.escape(str(k))} {v}" for k, v in scope["outcomes"].items())
    out += f"<p>Outcomes: {outcomes or 'none'}.</p>"
    refused, expected = scope["refused_when_expected"], scope["expected_refused"]
    if expected:
        out += (
            f"<p>Of {expected} image(s) outside the intended use (CT, lateral), {refused} "
            f"refused ({refused / expected:.0%}).</p>"
        )
    else:
        out += (
            "<p>No image in this dataset is known to be outside the intended use (CT, "
            "lateral), so whether the guard refuses such images is not measured here.</p>"
        )
    accepted, wrongly = scope["expected_in_scope"], scope["refused_when_in_scope"]
    if accepted:
        out += (
            f"<p>Of {accepted} frontal radiograph(s) known to be in scope, {wrongly} refused "
            f"({wrongly / accepted:.0%}).</p>"
        )
    else:
        out += (
            "<p>No frontal radiograph is marked as expected in scope, so wrongful refusals of "
            "frontal radiographs are not measured here.</p>"
        )
    return out
